//! oxport-export: `export()` turns a Rust model into the `ExportedProgram` PyTorch's
//! `torch.export.export` makes for the same architecture.
//!
//! A model implements [`Module`] (its submodules, parameters and buffers, with PyTorch's names) and
//! [`Forward`] (its entry point). [`export`] runs forward once on fake tensors with every op recorded:
//! parameters and buffers become `p_...`/`b_...` placeholders, inputs take forward's argument names,
//! nodes are named like PyTorch's (`conv2d`, `add_`, `add_1`), trailing default arguments are omitted,
//! and each node carries the shape, the `nn_module_stack` and the Rust source line that called it.
//! Reading a tensor's values during export is an error: the graph cannot depend on one example's data.
#![warn(missing_docs)]

mod control_flow;
mod decomp;
mod export;
pub mod module;
pub mod nn;
mod sym_trace;
mod tracer;
pub mod zoo;

pub use control_flow::cond;
pub use decomp::run_decompositions;
pub use export::{export, export_dynamic, Dim, ExportError};
pub use module::{
    eval, load_state_dict, named_buffers, named_modules, named_parameters, scope, state_dict,
    train, Forward, Module,
};
pub use oxport_core::Tensor;
/// `#[derive(Module)]` (see the `oxport-derive` crate).
pub use oxport_derive::Module;
pub use tracer::functional;
