//! THE op registry (design principle 1) and the user-facing tensor API that dispatches through it.
//!
//! * [`schema`] parses PyTorch schema strings from the generated `schemas.txt`.
//! * [`value`] holds argument values ([`Value`]), tensor metadata ([`TensorMeta`]) and schema binding.
//! * [`registry`] maps `aten.add.Tensor` → [`OpDef`] (schema, meta function, kernel).
//! * `defs/` declares each overload once, grouped by family.
//! * [`api`] gives `Tensor` its methods (`x.add(&y)`, `x.view(&[2, 3])`), each one registry call.
pub mod api;
mod decompositions;
mod defs;
mod einsum;
pub mod registry;
pub mod schema;
pub mod value;

pub use api::{ArangeArgs, Operand, TensorOptions};
pub use defs::view_strides;
pub use registry::{
    alloc_outputs, call, call_def, register_custom_op, registry, with_dispatch_hook, CustomOp,
    DecompFn, Decomposed, DispatchHook, HookCall, Kernel, KernelFn, MetaFn, OpDef, OpId,
    OutKernelFn, Registry,
};
pub use schema::FunctionSchema;
pub use value::{Args, SymScalar, TensorMeta, Value};
