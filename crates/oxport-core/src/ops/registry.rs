//! The op registry: one [`OpDef`] per supported ATen overload.
use super::schema::FunctionSchema;
use super::value::{Args, TensorMeta, Value};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::collections::{BTreeMap, HashMap};
use std::sync::{OnceLock, RwLock};

/// Computes output metadata (dtype, symbolic sizes) from input metadata, validating shapes and dtypes.
pub type MetaFn = fn(&Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>>;
/// A kernel that makes its own outputs: views of its inputs (`view`, `permute`, `slice`), outputs whose
/// sizes depend on the data (`nonzero`), and kernels not yet moved to [`OutKernelFn`]. Receives the
/// outputs' metadata as computed by the meta function.
pub type KernelFn = fn(&Args<Tensor>, &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>>;
/// A kernel that writes into outputs the caller provides — one tensor per tensor the meta function
/// returns, with its dtype, sizes and strides (ExecuTorch's out variants): the runtime's planner owns
/// the memory, the kernel only computes.
pub type OutKernelFn = fn(&Args<Tensor>, &mut [Tensor]) -> Result<()>;
/// A decomposition: the op written with other ops, over the Tensor API (PyTorch's `torch/_decomp`).
/// Run eagerly it is a kernel; run under the tracer it is `run_decompositions()`. It is only called on
/// arguments the op's meta function accepted ([`OpDef::run`], [`OpDef::decompose`]), so it does not
/// repeat the meta's checks.
pub type DecompFn = fn(&Args<Tensor>) -> Result<Decomposed>;

/// What a decomposition returns: the op's outputs, and the new values of the inputs the op mutates
/// (functionalized: `batch_norm` in training mode returns its new running statistics here).
#[derive(Debug, Default)]
pub struct Decomposed {
    /// The op's outputs, as its schema returns them.
    pub outputs: Vec<Value<Tensor>>,
    /// `(argument index, new value)` for each mutated tensor argument.
    pub mutations: Vec<(usize, Tensor)>,
}

impl From<Vec<Value<Tensor>>> for Decomposed {
    fn from(outputs: Vec<Value<Tensor>>) -> Self {
        Decomposed {
            outputs,
            mutations: vec![],
        }
    }
}

impl From<Tensor> for Decomposed {
    fn from(t: Tensor) -> Self {
        Decomposed::from(vec![Value::Tensor(t)])
    }
}

/// How an op computes on the CPU.
#[derive(Clone, Copy)]
pub enum Kernel {
    /// Makes its own outputs.
    Alloc(KernelFn),
    /// Writes into outputs the caller allocated from the meta function's result.
    Out(OutKernelFn),
}

/// An op's index in the registry: resolved from its name once (at plan or registration time), so hot
/// paths and kernels never compare strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub u32);

/// Everything oxport knows about one ATen overload.
pub struct OpDef {
    /// `aten.add.Tensor`
    pub name: &'static str,
    /// Index in the registry.
    pub id: OpId,
    /// PyTorch's schema, from the generated table.
    pub schema: FunctionSchema,
    /// Tagged `core` in PyTorch (part of the Core ATen opset).
    pub is_core: bool,
    /// Meta function.
    pub meta: MetaFn,
    /// CPU kernel; an op without one runs its decomposition.
    pub kernel: Option<Kernel>,
    /// PyTorch's decomposition of the op (what `run_decompositions()` emits for a non-Core op).
    pub decomposition: Option<DecompFn>,
    /// Registered at run time with [`CustomOp`] (not an ATen op): `run_decompositions()` keeps it
    /// unless it has a decomposition, as PyTorch keeps custom ops.
    pub is_custom: bool,
    /// Its meta function and kernel take complex tensors (declared with [`Decl::complex`]). For any
    /// other op, a complex input or output is an error naming the op ([`OpDef::infer`]), never a
    /// kernel reading complex numbers as real ones.
    pub takes_complex: bool,
}

impl std::fmt::Debug for OpDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpDef")
            .field("name", &self.name)
            .field("schema", &self.schema.text)
            .finish()
    }
}

/// Allocates the outputs an [`OutKernelFn`] writes: one tensor per tensor meta (with its strides).
pub fn alloc_outputs(outs: &[Value<TensorMeta>]) -> Result<Vec<Tensor>> {
    let mut ts = vec![];
    for o in outs {
        match o {
            Value::Tensor(m) => ts.push(empty_for_meta(m)?),
            Value::Tensors(ms) => {
                for m in ms {
                    ts.push(empty_for_meta(m)?)
                }
            }
            other => {
                return Err(Error::value(format!(
                    "an out kernel cannot return a {}",
                    other.kind()
                )))
            }
        }
    }
    Ok(ts)
}

/// A tensor with a meta's dtype, sizes and strides.
fn empty_for_meta(m: &TensorMeta) -> Result<Tensor> {
    let sizes = m.concrete_sizes()?;
    let strides = super::value::concrete_usizes(&m.strides)?;
    Tensor::zeros_strided(m.dtype, &sizes, &strides)
}

/// Regroups the tensors an out kernel wrote as the meta function's output structure.
pub fn regroup_outputs(outs: &[Value<TensorMeta>], ts: Vec<Tensor>) -> Vec<Value<Tensor>> {
    let mut it = ts.into_iter();
    outs.iter()
        .map(|o| match o {
            Value::Tensors(ms) => Value::Tensors(it.by_ref().take(ms.len()).collect()),
            _ => it.next().map(Value::Tensor).unwrap_or(Value::None),
        })
        .collect()
}

/// The first complex dtype among the tensors of `values`.
fn complex_dtype_in<'a>(
    values: impl IntoIterator<Item = &'a Value<TensorMeta>>,
) -> Option<crate::DType> {
    let mut found = None;
    for v in values {
        let mut check = |m: &TensorMeta| {
            if m.dtype.is_complex() && found.is_none() {
                found = Some(m.dtype);
            }
        };
        match v {
            Value::Tensor(m) => check(m),
            Value::Tensors(ms) => ms.iter().for_each(&mut check),
            Value::OptTensors(ms) => ms.iter().flatten().for_each(&mut check),
            _ => {}
        }
    }
    found
}

impl OpDef {
    /// Runs the meta function, refusing complex inputs and outputs unless the op takes them
    /// ([`OpDef::takes_complex`]). Every caller of a meta function on an op's own arguments (the
    /// eager path, the runtime, the tracer) goes through here.
    pub fn infer(&self, args: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
        let refuse = |dtype| {
            Err(Error::DTypeNotSupported {
                op: format!(
                    "{} (oxport has no complex kernel for this op yet)",
                    self.name
                ),
                dtype,
            })
        };
        let gated = !self.takes_complex && !self.is_custom;
        if gated {
            if let Some(d) = complex_dtype_in(&args.values) {
                return refuse(d);
            }
        }
        let outs = (self.meta)(args)?;
        if gated {
            if let Some(d) = complex_dtype_in(&outs) {
                return refuse(d);
            }
        }
        Ok(outs)
    }
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
        self.infer(&meta_args)
    }
    /// Runs the op eagerly: meta (validation, output shapes) then the kernel, or the decomposition when
    /// the op has no kernel (its mutations written back into the mutated arguments).
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
        let outs = match self.meta_of(args) {
            // Sizes that depend on the data (boolean-mask indexing): the meta validated what it could,
            // and the kernel sizes its own outputs.
            Err(Error::DataDependent(_)) if matches!(self.kernel, Some(Kernel::Alloc(_))) => vec![],
            r => r?,
        };
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
        match (self.kernel, self.decomposition) {
            (Some(Kernel::Alloc(k)), _) => k(args, &outs),
            (Some(Kernel::Out(k)), _) => {
                let mut ts = alloc_outputs(&outs)?;
                k(args, &mut ts)?;
                Ok(regroup_outputs(&outs, ts))
            }
            (None, Some(d)) => {
                let r = d(args)?;
                for (i, new) in &r.mutations {
                    if let Some(Value::Tensor(t)) = args.values.get(*i) {
                        t.assign_untraced(new)?;
                    }
                }
                Ok(r.outputs)
            }
            (None, None) => Err(Error::value(format!(
                "{} has neither a kernel nor a decomposition",
                self.name
            ))),
        }
    }
    /// Runs the op's decomposition (an error if it has none), after its meta function has validated
    /// the arguments: decompositions rely on the meta's checks rather than repeating them.
    pub fn decompose(&self, args: &Args<Tensor>) -> Result<Decomposed> {
        match self.decomposition {
            Some(d) => {
                self.meta_of(args)?;
                d(args)
            }
            None => Err(Error::value(format!("{} has no decomposition", self.name))),
        }
    }
    /// True for an op that writes its first argument (`add_`, `relu_`).
    pub fn is_in_place(&self) -> bool {
        self.schema
            .arguments
            .first()
            .and_then(|a| a.alias.as_ref())
            .is_some_and(|a| a.is_write)
    }
}

/// The table of all registered overloads.
#[derive(Debug, Default)]
pub struct Registry {
    ops: Vec<OpDef>,
    by_name: HashMap<&'static str, OpId>,
    errors: Vec<String>,
}

/// The schema table generated from PyTorch by `tools/gen_schemas.py`.
pub const SCHEMA_TABLE: &str = include_str!("schemas.txt");

impl Registry {
    /// The overload called `name` (e.g. `aten.add.Tensor`, or a custom op's `mylib.scaled_add.default`).
    pub fn get(&self, name: &str) -> Result<&OpDef> {
        // Built-in ops first, without a lock; custom ops only when that misses.
        match self.by_name.get(name) {
            Some(id) => Ok(&self.ops[id.0 as usize]),
            None => custom_table()
                .by_name
                .get(name)
                .copied()
                .ok_or_else(|| Error::UnknownOp(name.to_string())),
        }
    }
    /// The overload with id `id` (custom ops' ids follow the built-in ones).
    pub fn op(&self, id: OpId) -> &OpDef {
        let i = id.0 as usize;
        match self.ops.get(i) {
            Some(d) => d,
            None => custom_table().ops[i - self.ops.len()],
        }
    }
    /// The custom ops registered so far, in registration order.
    pub fn custom_ops(&self) -> Vec<&'static OpDef> {
        custom_table().ops.clone()
    }
    /// All built-in (ATen) overloads, sorted by name; see [`Registry::custom_ops`] for the others.
    pub fn ops(&self) -> Vec<&OpDef> {
        let mut v: Vec<&OpDef> = self.ops.iter().collect();
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
    /// Declares overload `name` with its meta function and a kernel that makes its own outputs. Returns
    /// the declaration, to attach a decomposition: `r.op(..).decomposition(f)`.
    pub fn op(&mut self, name: &'static str, meta: MetaFn, kernel: KernelFn) -> Decl<'_> {
        self.declare(name, meta, Some(Kernel::Alloc(kernel)), None)
    }
    /// Declares overload `name` with its meta function and a kernel that writes into given outputs.
    pub fn out_op(&mut self, name: &'static str, meta: MetaFn, kernel: OutKernelFn) -> Decl<'_> {
        self.declare(name, meta, Some(Kernel::Out(kernel)), None)
    }
    /// Declares overload `name` with its meta function and a decomposition, and no kernel of its own:
    /// the runtime runs the decomposition.
    pub fn decomposed(&mut self, name: &'static str, meta: MetaFn, d: DecompFn) -> Decl<'_> {
        self.declare(name, meta, None, Some(d))
    }
    fn declare(
        &mut self,
        name: &'static str,
        meta: MetaFn,
        kernel: Option<Kernel>,
        decomposition: Option<DecompFn>,
    ) -> Decl<'_> {
        let Some((is_core, schema)) = self.schemas.remove(name) else {
            self.reg.errors.push(format!(
                "{name} is registered but has no schema in schemas.txt (run tools/gen_schemas.py)"
            ));
            return Decl { def: None };
        };
        let id = OpId(self.reg.ops.len() as u32);
        self.reg.by_name.insert(name, id);
        self.reg.ops.push(OpDef {
            name,
            id,
            schema,
            is_core,
            meta,
            kernel,
            decomposition,
            is_custom: false,
            takes_complex: false,
        });
        Decl {
            def: self.reg.ops.last_mut(),
        }
    }
    /// Marks already declared ops as taking complex tensors ([`Decl::complex`] for a family of
    /// dtype-agnostic ops: views and copies).
    pub fn complex_ops(&mut self, names: &[&'static str]) {
        for name in names {
            match self.reg.by_name.get(name) {
                Some(id) => self.reg.ops[id.0 as usize].takes_complex = true,
                None => self
                    .reg
                    .errors
                    .push(format!("{name} is marked complex but not registered")),
            }
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

/// One declaration being made (see [`Builder::op`]).
pub struct Decl<'b> {
    def: Option<&'b mut OpDef>,
}

impl Decl<'_> {
    /// Attaches PyTorch's decomposition of the op.
    pub fn decomposition(mut self, d: DecompFn) -> Self {
        if let Some(def) = self.def.as_deref_mut() {
            def.decomposition = Some(d);
        }
        self
    }
    /// Declares that the op's meta function and kernel (or decomposition) take complex tensors;
    /// see [`OpDef::takes_complex`]. Each such op has complex oracle cases.
    pub fn complex(mut self) -> Self {
        if let Some(def) = self.def.as_deref_mut() {
            def.takes_complex = true;
        }
        self
    }
}

/// The [`OpDef`] of an overload named by a literal, looked up once per call site:
/// `op_def!("aten.mm.default")` is a `Result<&'static OpDef>`.
///
/// ```
/// let mm = oxport_core::op_def!("aten.mm.default")?;
/// assert_eq!(mm.name, "aten.mm.default");
/// # Ok::<(), oxport_core::Error>(())
/// ```
#[macro_export]
macro_rules! op_def {
    ($name:literal) => {{
        static DEF: std::sync::OnceLock<Option<&'static $crate::ops::OpDef>> =
            std::sync::OnceLock::new();
        DEF.get_or_init(|| $crate::ops::registry().get($name).ok())
            .ok_or_else(|| $crate::Error::UnknownOp($name.to_string()))
    }};
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

/// The ops registered at run time: append-only, each leaked so that `&'static OpDef` stays valid (and
/// its identity stable) for the life of the process.
#[derive(Default)]
struct CustomTable {
    ops: Vec<&'static OpDef>,
    by_name: HashMap<&'static str, &'static OpDef>,
}

static CUSTOM: OnceLock<RwLock<CustomTable>> = OnceLock::new();

fn custom_table() -> std::sync::RwLockReadGuard<'static, CustomTable> {
    let lock = CUSTOM.get_or_init(Default::default);
    // A panic while holding the lock cannot leave the table half-written (one push, one insert).
    lock.read().unwrap_or_else(|e| e.into_inner())
}

/// Namespaces PyTorch reserves (`torch/_library/custom_ops.py`): custom ops cannot live there.
const RESERVED_NAMESPACES: &[&str] = &["prim", "prims", "aten", "at", "torch", "pytorch"];

/// A custom operator (PyTorch's `torch.library.custom_op`) being declared: a schema, a meta function
/// (PyTorch's `register_fake`), a CPU kernel and/or a decomposition. [`CustomOp::register`] adds it to
/// the process-wide [`registry`], after which it is called, exported, saved, loaded and run like an
/// ATen op, under the name `torch.ops.<namespace>.<name>.<overload>` (`default` when the schema names
/// no overload).
///
/// ```
/// use oxport_core::ops::{call, Args, CustomOp, Kernel, TensorMeta, Value};
/// use oxport_core::{Result, Tensor};
///
/// // Output metadata: the shape and dtype of `x` (a real op would validate `y` too).
/// fn meta(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
///     let x = a.tensor("x")?;
///     Ok(vec![Value::Tensor(TensorMeta::contiguous(x.dtype, x.sizes.clone()))])
/// }
/// // The CPU kernel, written with the tensor API: x + alpha * y.
/// fn kernel(a: &Args<Tensor>, _: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
///     let y = a.tensor("y")?.mul(a.float("alpha")?)?;
///     Ok(vec![Value::Tensor(a.tensor("x")?.add(&y)?)])
/// }
///
/// let def = CustomOp::new("doclib::scaled_add(Tensor x, Tensor y, float alpha=1.0) -> Tensor", meta)
///     .kernel(Kernel::Alloc(kernel))
///     .register()?;
/// assert_eq!(def.name, "doclib.scaled_add.default");
///
/// let x = Tensor::arange_f32(3);
/// let out = call("doclib.scaled_add.default", vec![Value::from(&x), Value::from(&x), Value::from(2.0)], vec![])?;
/// let Value::Tensor(y) = &out[0] else { unreachable!() };
/// assert_eq!(y.to_vec::<f32>()?, vec![0.0, 3.0, 6.0]);
///
/// // A second registration of the same name is refused.
/// assert!(CustomOp::new("doclib::scaled_add(Tensor x) -> Tensor", meta).kernel(Kernel::Alloc(kernel)).register().is_err());
/// # Ok::<(), oxport_core::Error>(())
/// ```
#[derive(Clone)]
pub struct CustomOp {
    schema: String,
    meta: MetaFn,
    kernel: Option<Kernel>,
    decomposition: Option<DecompFn>,
}

impl CustomOp {
    /// An op with schema `schema` (PyTorch's syntax, `mylib::op.overload(Tensor x, int n=1) -> Tensor`)
    /// and meta function `meta`.
    pub fn new(schema: impl Into<String>, meta: MetaFn) -> Self {
        CustomOp {
            schema: schema.into(),
            meta,
            kernel: None,
            decomposition: None,
        }
    }
    /// The CPU kernel (without one, the op runs its decomposition).
    pub fn kernel(mut self, kernel: Kernel) -> Self {
        self.kernel = Some(kernel);
        self
    }
    /// A decomposition into other ops: `run_decompositions()` replaces the op with it (without one the
    /// op is kept as is), and it runs the op when there is no kernel.
    pub fn decomposition(mut self, d: DecompFn) -> Self {
        self.decomposition = Some(d);
        self
    }
    /// Adds the op to the registry. An error for a schema that does not parse, lacks a namespace, uses a
    /// reserved namespace (`aten`, `prims`, ...) or mutates or aliases its inputs (not supported yet), for
    /// an op with neither kernel nor decomposition, and for a name already registered.
    pub fn register(self) -> Result<&'static OpDef> {
        let err = |msg: String| Error::Schema {
            op: self.schema.clone(),
            msg,
        };
        let schema = FunctionSchema::parse(&self.schema)?;
        let ns = schema.name.split("::").next().unwrap_or_default();
        if RESERVED_NAMESPACES.contains(&ns) {
            return Err(err(format!(
                "the namespace '{ns}' is reserved for PyTorch's own ops; use your own (e.g. 'mylib::')"
            )));
        }
        let aliases = schema
            .arguments
            .iter()
            .chain(&schema.returns)
            .any(|a| a.alias.is_some());
        if aliases {
            return Err(err(
                "custom ops that mutate or alias their inputs are not supported yet".into(),
            ));
        }
        if self.kernel.is_none() && self.decomposition.is_none() {
            return Err(err("a custom op needs a kernel or a decomposition".into()));
        }
        let name = schema.op_name();
        let base = registry();
        let lock = CUSTOM.get_or_init(Default::default);
        let mut table = lock.write().unwrap_or_else(|e| e.into_inner());
        if base.by_name.contains_key(name.as_str()) || table.by_name.contains_key(name.as_str()) {
            return Err(err(format!(
                "an operator named '{name}' is already registered"
            )));
        }
        let name: &'static str = Box::leak(name.into_boxed_str());
        let def: &'static OpDef = Box::leak(Box::new(OpDef {
            name,
            id: OpId((base.ops.len() + table.ops.len()) as u32),
            schema,
            is_core: false,
            meta: self.meta,
            kernel: self.kernel,
            decomposition: self.decomposition,
            is_custom: true,
            takes_complex: true,
        }));
        table.ops.push(def);
        table.by_name.insert(name, def);
        Ok(def)
    }
}

/// Registers a custom operator with a kernel: `CustomOp::new(schema, meta).kernel(kernel).register()`
/// (see [`CustomOp`], also for a decomposition).
pub fn register_custom_op(schema: &str, meta: MetaFn, kernel: Kernel) -> Result<&'static OpDef> {
    CustomOp::new(schema, meta).kernel(kernel).register()
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
    call_def(registry().get(op)?, positional, kwargs)
}

/// [`call`] with the overload already resolved (see [`op_def!`](crate::op_def)).
#[track_caller]
pub fn call_def(
    def: &'static OpDef,
    positional: Vec<Value<Tensor>>,
    kwargs: Vec<(String, Value<Tensor>)>,
) -> Result<Vec<Value<Tensor>>> {
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
    /// The caller computed `result = target(args...)` on symbolic numbers, where `target` is the node
    /// target PyTorch records (`torch.sym_float`, `_operator.truediv`, `_operator.pow`, `_operator.mul`
    /// on floats, `_operator.neg`, `torch._sym_sqrt`, `math.trunc`).
    fn sym_call(
        &self,
        _target: &'static str,
        _args: &[super::SymScalar],
        _result: &super::SymScalar,
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
