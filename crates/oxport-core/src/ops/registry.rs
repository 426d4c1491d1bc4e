//! The op registry: one [`OpDef`] per supported ATen overload.
use super::schema::FunctionSchema;
use super::value::{Args, TensorMeta, Value};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

/// Computes output metadata (dtype, symbolic sizes) from input metadata, validating shapes and dtypes.
pub type MetaFn = fn(&Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>>;
/// Computes outputs on the CPU. Receives the outputs' metadata as computed by the meta function.
pub type KernelFn = fn(&Args<Tensor>, &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>>;

/// Everything oxport knows about one ATen overload.
pub struct OpDef {
    /// `aten.add.Tensor`
    pub name: &'static str,
    /// PyTorch's schema, from the generated table.
    pub schema: FunctionSchema,
    /// Tagged `core` in PyTorch (part of the Core ATen opset).
    pub is_core: bool,
    /// Meta function.
    pub meta: MetaFn,
    /// CPU kernel.
    pub kernel: KernelFn,
}

impl std::fmt::Debug for OpDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpDef")
            .field("name", &self.name)
            .field("schema", &self.schema.text)
            .finish()
    }
}

impl OpDef {
    /// Runs the meta function on real tensors' metadata.
    pub fn meta_of(&self, args: &Args<Tensor>) -> Result<Vec<Value<TensorMeta>>> {
        let meta_args = Args {
            schema: args.schema,
            values: args
                .values
                .iter()
                .map(|v| v.map_tensors(&mut TensorMeta::of))
                .collect(),
        };
        (self.meta)(&meta_args)
    }
    /// Runs the op eagerly: meta (validation, output shapes) then kernel.
    pub fn run(&self, args: &Args<Tensor>) -> Result<Vec<Value<Tensor>>> {
        let fake = |v: &Value<Tensor>| match v {
            Value::Tensor(t) => t.is_fake(),
            Value::Tensors(ts) => ts.iter().any(Tensor::is_fake),
            Value::OptTensors(ts) => ts.iter().flatten().any(Tensor::is_fake),
            _ => false,
        };
        if args.values.iter().any(fake) {
            return Err(Error::DataDependent(format!(
                "{}: a fake (export) tensor reached a kernel outside export",
                self.name
            )));
        }
        let outs = self.meta_of(args)?;
        // Refuse absurd outputs before a kernel allocates them.
        for o in &outs {
            let metas: &[TensorMeta] = match o {
                Value::Tensor(m) => std::slice::from_ref(m),
                Value::Tensors(ms) => ms,
                _ => &[],
            };
            for m in metas {
                crate::tensor::checked_numel(&m.concrete_sizes()?)?;
            }
        }
        (self.kernel)(args, &outs)
    }
}

/// The table of all registered overloads.
#[derive(Debug, Default)]
pub struct Registry {
    ops: HashMap<&'static str, OpDef>,
    errors: Vec<String>,
}

/// The schema table generated from PyTorch by `tools/gen_schemas.py`.
pub const SCHEMA_TABLE: &str = include_str!("schemas.txt");

impl Registry {
    /// The overload called `name` (e.g. `aten.add.Tensor`).
    pub fn get(&self, name: &str) -> Result<&OpDef> {
        self.ops
            .get(name)
            .ok_or_else(|| Error::UnknownOp(name.to_string()))
    }
    /// All overloads, sorted by name.
    pub fn ops(&self) -> Vec<&OpDef> {
        let mut v: Vec<&OpDef> = self.ops.values().collect();
        v.sort_by_key(|o| o.name);
        v
    }
    /// Problems found while building the registry (a registration without a schema, a bad schema line).
    /// Empty in a consistent build; a test checks it.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }
}

/// Collects registrations; see `defs/*.rs`.
pub struct Builder {
    schemas: BTreeMap<String, (bool, FunctionSchema)>,
    reg: Registry,
}

impl Builder {
    fn new() -> Self {
        let mut reg = Registry::default();
        let mut schemas = BTreeMap::new();
        for line in SCHEMA_TABLE
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let mut parts = line.splitn(3, '\t');
            let (Some(name), Some(tag), Some(text)) = (parts.next(), parts.next(), parts.next())
            else {
                reg.errors.push(format!("malformed schema line: {line}"));
                continue;
            };
            match FunctionSchema::parse(text) {
                Ok(s) => {
                    schemas.insert(name.to_string(), (tag == "core", s));
                }
                Err(e) => reg.errors.push(e.to_string()),
            }
        }
        Builder { schemas, reg }
    }
    /// Declares overload `name` with its meta function and kernel.
    pub fn op(&mut self, name: &'static str, meta: MetaFn, kernel: KernelFn) {
        match self.schemas.remove(name) {
            Some((is_core, schema)) => {
                self.reg.ops.insert(
                    name,
                    OpDef {
                        name,
                        schema,
                        is_core,
                        meta,
                        kernel,
                    },
                );
            }
            None => self.reg.errors.push(format!(
                "{name} is registered but has no schema in schemas.txt (run tools/gen_schemas.py)"
            )),
        }
    }
    fn finish(mut self) -> Registry {
        for name in self.schemas.keys() {
            self.reg
                .errors
                .push(format!("{name} has a schema but no registration"));
        }
        self.reg
    }
}

/// The process-wide registry.
pub fn registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(|| {
        let mut b = Builder::new();
        super::defs::register_all(&mut b);
        b.finish()
    })
}

/// Calls overload `op` eagerly with positional and keyword arguments.
///
/// ```
/// use oxport_core::ops::{call, Value};
/// use oxport_core::Tensor;
/// let x = Tensor::arange_f32(3);
/// let out = call("aten.add.Tensor", vec![Value::from(&x), Value::from(&x)], vec![("alpha".into(), Value::from(2i64))])?;
/// let Value::Tensor(y) = &out[0] else { unreachable!() };
/// assert_eq!(y.to_vec::<f32>()?, vec![0.0, 3.0, 6.0]);
/// # Ok::<(), oxport_core::Error>(())
/// ```
#[track_caller]
pub fn call(
    op: &str,
    positional: Vec<Value<Tensor>>,
    kwargs: Vec<(String, Value<Tensor>)>,
) -> Result<Vec<Value<Tensor>>> {
    let def = registry().get(op)?;
    let location = std::panic::Location::caller();
    if let Some(hook) = current_hook() {
        let call = HookCall {
            def,
            positional: &positional,
            kwargs: &kwargs,
            location,
        };
        if let Some(r) = hook.dispatch(&call) {
            return r;
        }
    }
    let args = Args::bind(&def.schema, positional, kwargs)?;
    def.run(&args)
}

/// One op call as a [`DispatchHook`] sees it: the overload, the arguments as the caller passed them, and
/// the caller's source location (the user's line: the tensor API is `#[track_caller]`).
pub struct HookCall<'a> {
    /// The overload.
    pub def: &'static OpDef,
    /// Positional arguments as passed.
    pub positional: &'a [Value<Tensor>],
    /// Keyword arguments as passed.
    pub kwargs: &'a [(String, Value<Tensor>)],
    /// Where the user called the op.
    pub location: &'static std::panic::Location<'static>,
}

/// Intercepts op calls on this thread while installed with [`with_dispatch_hook`]. Export installs one
/// that records the call in a graph instead of computing it; this layer knows nothing more about it.
pub trait DispatchHook {
    /// `Some(result)` to answer the call, `None` to let it run eagerly.
    fn dispatch(&self, call: &HookCall<'_>) -> Option<Result<Vec<Value<Tensor>>>>;
    /// [`Tensor::sym_size`] of a fake tensor: the size as the hook knows it (`None`: use the plain size).
    fn sym_size(
        &self,
        _t: &Tensor,
        _dim: usize,
        _location: &'static std::panic::Location<'static>,
    ) -> Option<crate::SymInt> {
        None
    }
    /// The caller read dims `dims` of a fake tensor as plain integers ([`Tensor::sizes`],
    /// [`Tensor::size`], [`Tensor::numel`]).
    fn size_read(
        &self,
        _t: &Tensor,
        _dims: &[usize],
        _location: &'static std::panic::Location<'static>,
    ) {
    }
    /// The caller computed `result = lhs op rhs` on symbolic ints (`op`: `add`, `sub`, `mul`,
    /// `floordiv`, `mod`), as PyTorch records `_operator.mul` and friends.
    fn sym_op(
        &self,
        _op: &'static str,
        _lhs: &crate::SymInt,
        _rhs: &crate::SymInt,
        _result: &crate::SymInt,
        _location: &'static std::panic::Location<'static>,
    ) {
    }
}

/// The hook installed on this thread, if any.
pub(crate) fn current_hook() -> Option<std::rc::Rc<dyn DispatchHook>> {
    HOOK.with(|h| h.borrow().clone())
}

thread_local! {
    static HOOK: std::cell::RefCell<Option<std::rc::Rc<dyn DispatchHook>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with `hook` intercepting every op call made on this thread (restoring the previous hook
/// afterwards, also on panic).
pub fn with_dispatch_hook<R>(hook: std::rc::Rc<dyn DispatchHook>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<std::rc::Rc<dyn DispatchHook>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            HOOK.with(|h| *h.borrow_mut() = prev);
        }
    }
    let prev = HOOK.with(|h| h.borrow_mut().replace(hook));
    let _restore = Restore(prev);
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_and_schema_table_agree() {
        let reg = registry();
        assert!(
            reg.errors().is_empty(),
            "registry errors: {:#?}",
            reg.errors()
        );
        for op in reg.ops() {
            assert_eq!(
                op.schema.op_name(),
                op.name,
                "schema text names another overload"
            );
        }
    }

    #[test]
    fn every_op_exported_by_the_reference_models_is_registered() {
        // tools/collect_ops.py writes the ATen overloads that torch.export (training IR and after
        // run_decompositions) emits for the seed programs, resnet18, mobilenet_v3_small, vit_b_16,
        // TransformerEncoder, LSTM and the GPT block.
        let list = include_str!("../../../../tools/data/model_ops.txt");
        let missing: Vec<&str> = list
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter(|l| registry().get(l).is_err())
            .collect();
        assert!(missing.is_empty(), "not in the registry: {missing:?}");
    }

    #[test]
    fn unknown_op_is_an_error() {
        let e = call("aten.nonexistent.default", vec![], vec![]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "operator 'aten.nonexistent.default' is not in oxport's op registry"
        );
    }
}
