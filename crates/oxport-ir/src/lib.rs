//! oxport-ir: torch.export's `ExportedProgram` in Rust.
//!
//! * [`schema`] — the IR: every type of PyTorch's serialized schema 8.x (`Graph`, `Node`, `Argument`,
//!   `TensorMeta`, `GraphSignature`, ...), as enums and structs.
//! * [`ExportedProgram`] — a program with its weights; `Display` prints exactly what `print(ep)` prints
//!   in PyTorch 2.15.
//! * [`pt2`] — `.pt2` archives: [`pt2::load`] reads what `torch.export.save` writes, [`pt2::save`] writes
//!   what `torch.export.load` reads (byte-identical for the same program).
//! * [`validate`] — the IR's invariants, checked on load.
//!
//! ```no_run
//! let ep = oxport_ir::pt2::load("model.pt2")?;
//! print!("{ep}");
//! oxport_ir::pt2::save(&ep, "copy.pt2")?;
//! # Ok::<(), oxport_ir::Error>(())
//! ```
#![warn(missing_docs)]

pub mod error;
pub mod json;
pub mod names;
pub mod ordered_map;
mod print;
pub mod program;
pub mod pt2;
pub mod safetensors;
pub mod schema;
pub mod sympy;
pub mod validate;

pub use error::{Error, Result};
pub use ordered_map::OrderedMap;
pub use program::{ExportedProgram, Weight};
pub use schema::*;
