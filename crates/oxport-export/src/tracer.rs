//! The tracer: while export runs a model's forward, every op call is recorded as a graph node instead
//! of computed. Inputs are fake tensors (metadata, no data); each op's meta function gives its outputs'
//! dtypes and sizes, which become new fake tensors; parameters, buffers and captured tensors become
//! placeholders. Node names, argument lists (trailing defaults dropped) and metadata follow PyTorch.
use oxport_core::ops::value::default_to_value;
use oxport_core::ops::{Args, DispatchHook, HookCall, TensorMeta as CoreMeta, Value};
use oxport_core::{Error, Result, Scalar, SymInt, Tensor};
use oxport_ir::names::Namespace;
use oxport_ir::schema as ir;
use oxport_ir::OrderedMap;
use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::Location;
use std::rc::Rc;

/// Identity of a tensor view: storage, offset, sizes, strides.
pub(crate) type ViewKey = (usize, usize, Vec<usize>, Vec<usize>);

pub(crate) fn view_key(t: &Tensor) -> ViewKey {
    (
        std::sync::Arc::as_ptr(t.storage()) as *const () as usize,
        t.storage_offset(),
        t.sizes_untraced().to_vec(),
        t.strides().to_vec(),
    )
}

/// A frame of the module stack: fully-qualified name, type, where forward was called.
#[derive(Clone)]
pub(crate) struct Frame {
    pub fqn: String,
    pub type_name: String,
    pub call_site: &'static Location<'static>,
}

pub(crate) struct State {
    pub nodes: Vec<ir::Node>,
    pub tensor_values: OrderedMap<ir::TensorMeta>,
    pub ns: Namespace,
    /// Value names of fake tensors and lifted state, by view.
    pub values: HashMap<ViewKey, String>,
    /// Symbolic metadata of fake tensors whose sizes are symbolic, by view.
    pub metas: HashMap<ViewKey, CoreMeta>,
    /// Captured tensors that are neither inputs nor state: (placeholder, target, tensor).
    pub lifted: Vec<(String, String, Tensor)>,
    /// Module address -> (fqn, type).
    pub modules: HashMap<usize, (String, String)>,
    pub root_type: String,
    pub stack: Vec<Frame>,
    sources: HashMap<String, Option<Vec<String>>>,
    /// Symbolic sizes the user read or computed.
    pub sym: crate::sym_trace::SymState,
    /// Guards the ops' shape checks took: (guard, op, the user's line).
    pub guards: Vec<(
        oxport_core::sym::Guard,
        &'static str,
        &'static Location<'static>,
    )>,
    /// The graph this one is a branch of (`cond`): tensors of the enclosing graph are lifted into it.
    pub parent: Option<Rc<RefCell<State>>>,
    /// Inputs of a branch graph: (the enclosing graph's value, the placeholder here, tensor), operands
    /// first, then free variables in order of first use.
    pub inputs: Vec<(String, String, Tensor)>,
    /// Branch graphs made so far in this graph (`true_graph_0`, `true_graph_1`, ...).
    pub subgraphs: usize,
    /// Metadata for the nodes recorded next, instead of the caller's line (`run_decompositions` keeps
    /// each original node's stack trace and module stack on the nodes it decomposes into).
    pub meta_override: Option<OrderedMap<String>>,
    /// Re-tracing for `run_decompositions()`: ops with a decomposition run it instead of being recorded.
    pub decompose: bool,
    /// `(input, new value)` of the inputs the decompositions run so far mutated (functionalized).
    pub decomp_mutations: Vec<(Tensor, Tensor)>,
}

thread_local! {
    static ACTIVE: RefCell<Option<Rc<RefCell<State>>>> = const { RefCell::new(None) };
    /// Inside [`functional`]: the line every op reports, as PyTorch's traces stop at the module line that
    /// calls into `torch.nn.functional`.
    static FUNCTIONAL_SITE: std::cell::Cell<Option<&'static Location<'static>>> = const { std::cell::Cell::new(None) };
}

pub(crate) fn without_functional_site<R>(f: impl FnOnce() -> R) -> R {
    let prev = FUNCTIONAL_SITE.with(|s| s.replace(None));
    let r = f();
    FUNCTIONAL_SITE.with(|s| s.set(prev));
    r
}

/// Runs `f` with every op it calls attributed to the caller's line (a layer's call into a functional
/// helper, whose internal lines PyTorch does not show).
#[track_caller]
pub fn functional<R>(f: impl FnOnce() -> R) -> R {
    let site = Location::caller();
    let prev = FUNCTIONAL_SITE.with(|s| s.replace(Some(site)));
    let r = f();
    FUNCTIONAL_SITE.with(|s| s.set(prev));
    r
}

impl State {
    pub fn new(modules: HashMap<usize, (String, String)>, root_type: String) -> State {
        State {
            nodes: vec![],
            tensor_values: OrderedMap::new(),
            ns: Namespace::default(),
            values: HashMap::new(),
            metas: HashMap::new(),
            lifted: vec![],
            modules,
            root_type,
            stack: vec![],
            sources: HashMap::new(),
            sym: Default::default(),
            guards: vec![],
            parent: None,
            inputs: vec![],
            subgraphs: 0,
            meta_override: None,
            decompose: false,
            decomp_mutations: vec![],
        }
    }

    /// A branch graph of `parent`, under the same module stack.
    pub fn child(parent: &Rc<RefCell<State>>) -> State {
        let p = parent.borrow();
        let mut st = State::new(p.modules.clone(), p.root_type.clone());
        st.stack = p.stack.clone();
        st.metas = p.metas.clone();
        st.parent = Some(parent.clone());
        st
    }

    /// Makes `t` (a value of the enclosing graph) an input of this branch graph, named as outside.
    pub(crate) fn add_input(&mut self, t: &Tensor) -> String {
        let key = view_key(t);
        if let Some(n) = self.values.get(&key) {
            return n.clone();
        }
        let parent = self.parent.clone().expect("add_input on a branch graph");
        let outer = parent.borrow_mut().name_of(t);
        let local = self.ns.take_exact(&outer);
        self.inputs.push((outer, local.clone(), t.clone()));
        self.values.insert(key, local.clone());
        local
    }

    /// Makes `t` the graph value `name` with metadata `m`; symbolic metadata is kept aside, as a fake
    /// tensor's plain sizes cannot carry it.
    pub(crate) fn define(&mut self, t: &Tensor, name: &str, m: &CoreMeta) {
        self.values.insert(view_key(t), name.to_string());
        if m.sizes.iter().chain(&m.strides).any(SymInt::is_symbolic) {
            self.metas.insert(view_key(t), m.clone());
        }
        self.tensor_values
            .insert(name.to_string(), ir::TensorMeta::from_core(m, false));
    }

    /// The graph value a tensor argument refers to; a tensor export has not seen is lifted as a constant
    /// (in a branch graph: taken from the enclosing graph as an input).
    pub(crate) fn name_of(&mut self, t: &Tensor) -> String {
        let key = view_key(t);
        if let Some(n) = self.values.get(&key) {
            return n.clone();
        }
        if self.parent.is_some() {
            return self.add_input(t);
        }
        let target = format!("lifted_tensor_{}", self.lifted.len());
        let name = self
            .ns
            .create_name(&format!("c_{}", crate::export::placeholder_base(&target)));
        self.lifted.push((name.clone(), target, t.clone()));
        self.values.insert(key, name.clone());
        name
    }

    /// The text of `line` in `file` (searched from the current directory upwards).
    fn source_line(&mut self, file: &str, line: u32) -> String {
        let lines = self.sources.entry(file.to_string()).or_insert_with(|| {
            let mut dir = std::env::current_dir().ok()?;
            for _ in 0..6 {
                if let Ok(text) = std::fs::read_to_string(dir.join(file)) {
                    return Some(text.lines().map(str::to_string).collect());
                }
                dir = dir.parent()?.to_path_buf();
            }
            None
        });
        lines
            .as_ref()
            .and_then(|l| l.get(line as usize - 1))
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    }

    pub(crate) fn metadata(&mut self, location: &'static Location<'static>) -> OrderedMap<String> {
        let mut frames: Vec<(&'static Location<'static>, &str)> = vec![];
        let sites: Vec<_> = self.stack.iter().map(|f| f.call_site).collect();
        frames.extend(sites.iter().map(|l| (*l, "forward")));
        frames.push((location, "forward"));
        let mut parts = vec![];
        for (loc, func) in frames {
            let code = self.source_line(loc.file(), loc.line());
            parts.push(format!(
                "File \"{}\", line {}, in {func}\n    {code}",
                loc.file(),
                loc.line()
            ));
        }
        let mut stack = vec![format!("L__self__,,{}", self.root_type)];
        for f in &self.stack {
            let key = format!("L__self__{}", f.fqn.replace('.', "_"));
            stack.push(format!("{key},{},{}", f.fqn, f.type_name));
        }
        let mut m = OrderedMap::new();
        m.insert("stack_trace", parts.join("\n  "));
        m.insert("nn_module_stack", stack.join(";"));
        m
    }
}

pub(crate) fn enter_module(addr: usize, call_site: &'static Location<'static>) -> bool {
    ACTIVE.with(|a| {
        let Some(st) = a.borrow().clone() else {
            return false;
        };
        let mut st = st.borrow_mut();
        let Some((fqn, type_name)) = st.modules.get(&addr).cloned() else {
            return false;
        };
        if fqn.is_empty() {
            return false; // the root is always on the stack
        }
        st.stack.push(Frame {
            fqn,
            type_name,
            call_site,
        });
        true
    })
}

pub(crate) fn exit_module() {
    ACTIVE.with(|a| {
        if let Some(st) = a.borrow().clone() {
            st.borrow_mut().stack.pop();
        }
    })
}

/// The trace in progress on this thread, if any.
pub(crate) fn active() -> Option<Rc<RefCell<State>>> {
    ACTIVE.with(|a| a.borrow().clone())
}

/// Runs `f` with `state` receiving every op call on this thread.
pub(crate) fn trace<R>(state: Rc<RefCell<State>>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Rc<RefCell<State>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            ACTIVE.with(|a| *a.borrow_mut() = prev);
        }
    }
    let prev = ACTIVE.with(|a| a.borrow_mut().replace(state.clone()));
    let _restore = Restore(prev);
    oxport_core::ops::with_dispatch_hook(Rc::new(Hook(state)), f)
}

struct Hook(Rc<RefCell<State>>);

impl DispatchHook for Hook {
    fn dispatch(&self, call: &HookCall<'_>) -> Option<Result<Vec<Value<Tensor>>>> {
        if self.0.borrow().decompose {
            return Some(crate::decomp::dispatch_decomposed(&self.0, call));
        }
        Some(record(&mut self.0.borrow_mut(), call))
    }
    fn sym_size(&self, t: &Tensor, dim: usize, _: &'static Location<'static>) -> Option<SymInt> {
        self.0.borrow_mut().sym_size(t, dim)
    }
    fn size_read(&self, t: &Tensor, dims: &[usize], location: &'static Location<'static>) {
        // Export's own bookkeeping may look at sizes while recording; only the user's reads count.
        if let Ok(mut st) = self.0.try_borrow_mut() {
            st.size_read(t, dims, location);
        }
    }
    fn sym_op(
        &self,
        op: &'static str,
        lhs: &SymInt,
        rhs: &SymInt,
        result: &SymInt,
        location: &'static Location<'static>,
    ) {
        let mut st = self.0.borrow_mut();
        let location = FUNCTIONAL_SITE.with(|s| s.get()).unwrap_or(location);
        if let Err(e) = st.sym_op(op, lhs, rhs, result, location) {
            st.sym.specialized.get_or_insert(e.to_string());
        }
    }
    fn sym_call(
        &self,
        target: &'static str,
        args: &[oxport_core::ops::SymScalar],
        result: &oxport_core::ops::SymScalar,
        location: &'static Location<'static>,
    ) {
        let mut st = self.0.borrow_mut();
        let location = FUNCTIONAL_SITE.with(|s| s.get()).unwrap_or(location);
        if let Err(e) = st.sym_call(target, args, result, location) {
            st.sym.specialized.get_or_insert(e.to_string());
        }
    }
}

/// PyTorch's node name for an overload: its packet name (`aten.add_.Tensor` -> `add_`).
fn packet_name(op: &str) -> &str {
    op.split('.').nth(1).unwrap_or(op)
}

fn hints(v: &[SymInt]) -> Vec<usize> {
    v.iter().map(|s| s.hint().max(0) as usize).collect()
}

pub(crate) fn fake_of(m: &CoreMeta) -> Tensor {
    Tensor::fake(
        m.dtype,
        &hints(&m.sizes),
        &hints(&m.strides),
        m.offset.hint().max(0) as usize,
    )
}

fn argument(
    st: &mut State,
    v: &Value<Tensor>,
    at: &'static Location<'static>,
) -> Result<ir::Argument> {
    Ok(match v {
        Value::Int(s @ SymInt::Sym(_)) => ir::Argument::AsSymInt(st.sym_arg(s, at)?),
        Value::Ints(v) if v.iter().any(SymInt::is_symbolic) => {
            ir::Argument::AsSymInts(v.iter().map(|s| st.sym_arg(s, at)).collect::<Result<_>>()?)
        }
        Value::None => ir::Argument::AsNone(true),
        Value::Tensor(t) => ir::Argument::AsTensor(ir::TensorArgument::new(st.name_of(t))),
        Value::Tensors(ts) => ir::Argument::AsTensors(
            ts.iter()
                .map(|t| ir::TensorArgument::new(st.name_of(t)))
                .collect(),
        ),
        Value::OptTensors(ts) => ir::Argument::AsOptionalTensors(
            ts.iter()
                .map(|t| match t {
                    Some(t) => {
                        ir::OptionalTensorArgument::AsTensor(ir::TensorArgument::new(st.name_of(t)))
                    }
                    None => ir::OptionalTensorArgument::AsNone(true),
                })
                .collect(),
        ),
        Value::Int(i) => ir::Argument::AsInt(i.hint()),
        Value::Ints(v) => ir::Argument::AsInts(v.iter().map(SymInt::hint).collect()),
        Value::Float(f) => ir::Argument::AsFloat(ir::PyFloat(*f)),
        Value::SymFloat(f) => st.sym_float_arg(f, at)?,
        Value::Floats(v) => ir::Argument::AsFloats(v.iter().map(|f| ir::PyFloat(*f)).collect()),
        Value::Bool(b) => ir::Argument::AsBool(*b),
        Value::Bools(v) => ir::Argument::AsBools(v.clone()),
        Value::Str(s) => ir::Argument::AsString(s.clone()),
        Value::Scalar(Scalar::Int(i)) => ir::Argument::AsInt(*i),
        Value::Scalar(Scalar::Float(f)) => ir::Argument::AsFloat(ir::PyFloat(*f)),
        Value::Scalar(Scalar::Bool(b)) => ir::Argument::AsBool(*b),
        Value::ScalarType(d) => ir::Argument::AsScalarType(ir::ScalarType::from(*d)),
        Value::Layout(_) => ir::Argument::AsLayout(ir::Layout::Strided),
        Value::Device(d) => ir::Argument::AsDevice(ir::Device {
            type_: d.clone(),
            index: None,
        }),
        Value::MemoryFormat(m) => ir::Argument::AsMemoryFormat(match m {
            oxport_core::ops::value::MemoryFormat::ContiguousFormat => {
                ir::MemoryFormat::ContiguousFormat
            }
            oxport_core::ops::value::MemoryFormat::ChannelsLast => ir::MemoryFormat::ChannelsLast,
            oxport_core::ops::value::MemoryFormat::ChannelsLast3d => {
                ir::MemoryFormat::ChannelsLast3d
            }
            oxport_core::ops::value::MemoryFormat::PreserveFormat => {
                ir::MemoryFormat::PreserveFormat
            }
        }),
    })
}

pub(crate) fn record(st: &mut State, call: &HookCall<'_>) -> Result<Vec<Value<Tensor>>> {
    let def = call.def;
    let schema = &def.schema;
    let metas = &st.metas;
    let to_meta = |v: &Value<Tensor>| {
        v.map_tensors(&mut |t: &Tensor| {
            metas
                .get(&view_key(t))
                .cloned()
                .unwrap_or_else(|| CoreMeta::of(t))
        })
    };
    let pos_meta: Vec<Value<CoreMeta>> = call.positional.iter().map(to_meta).collect();
    let kw_meta: Vec<(String, Value<CoreMeta>)> = call
        .kwargs
        .iter()
        .map(|(k, v)| (k.clone(), to_meta(v)))
        .collect();
    let bound = Args::bind(schema, pos_meta, kw_meta)?;
    // The decisions this op's shape checks take on symbolic sizes, kept with the op and the line so a
    // guard that fails the export can name them.
    let (outs, guards) = oxport_core::sym::with_guard_sink(|| def.infer(&bound));
    let outs = outs?;
    let location = FUNCTIONAL_SITE.with(|s| s.get()).unwrap_or(call.location);
    for g in guards {
        st.guards.push((g, def.name, location));
    }

    // The arguments as passed, minus those equal to their defaults (trailing positional ones and keyword
    // ones), as PyTorch records them.
    let is_default = |name: &str| -> bool {
        let Some(i) = schema.arg_index(name) else {
            return false;
        };
        let arg = &schema.arguments[i];
        match &arg.default {
            Some(d) => default_to_value::<CoreMeta>(d, arg) == bound.values[i],
            None => false,
        }
    };
    let positional_params: Vec<&str> = schema
        .arguments
        .iter()
        .filter(|a| !a.kwarg_only)
        .map(|a| a.name.as_str())
        .collect();
    // A symbolic number is never dropped: binding compares its hint, but the graph needs the value.
    let symbolic = |v: &Value<Tensor>| matches!(v, Value::SymFloat(_) | Value::Int(SymInt::Sym(_)));
    let mut n_pos = call.positional.len();
    while n_pos > 0
        && is_default(positional_params[n_pos - 1])
        && !symbolic(&call.positional[n_pos - 1])
    {
        n_pos -= 1;
    }
    let mut inputs = vec![];
    for (i, v) in call.positional.iter().take(n_pos).enumerate() {
        inputs.push(ir::NamedArgument {
            name: positional_params[i].to_string(),
            arg: argument(st, v, location)?,
            kind: Some(ir::ArgumentKind::Positional),
        });
    }
    for (k, v) in call.kwargs {
        if is_default(k) && !symbolic(v) {
            continue;
        }
        inputs.push(ir::NamedArgument {
            name: k.clone(),
            arg: argument(st, v, location)?,
            kind: Some(ir::ArgumentKind::Keyword),
        });
    }

    let name = st.ns.create_name(packet_name(def.name));
    // An op returning `Tensor(a!)` returns its mutated input: later uses see this node's value.
    let written_input = |ret: &oxport_core::ops::schema::SchemaArg| -> Option<Tensor> {
        let alias = ret.alias.as_ref().filter(|a| a.is_write)?;
        let i = schema
            .arguments
            .iter()
            .position(|a| a.alias.as_ref().is_some_and(|b| b.set == alias.set))?;
        bound_tensor(call, schema, i)
    };
    let mut results = vec![];
    let mut out_args = vec![];
    let single = outs.len() == 1;
    for (i, o) in outs.iter().enumerate() {
        match o {
            Value::Tensor(m) => {
                let out_name = if single {
                    name.clone()
                } else {
                    st.ns.create_name("getitem")
                };
                let t = match schema.returns.get(i).and_then(written_input) {
                    Some(t) => t,
                    None => fake_of(m),
                };
                st.define(&t, &out_name, m);
                out_args.push(ir::Argument::AsTensor(ir::TensorArgument::new(out_name)));
                results.push(Value::Tensor(t));
            }
            Value::Tensors(ms) => {
                let mut ts = vec![];
                let mut names = vec![];
                for m in ms {
                    let n = st.ns.create_name("getitem");
                    let t = fake_of(m);
                    st.define(&t, &n, m);
                    names.push(ir::TensorArgument::new(n));
                    ts.push(t);
                }
                out_args.push(ir::Argument::AsTensors(names));
                results.push(Value::Tensors(ts));
            }
            other => {
                return Err(Error::Symbolic(format!(
                    "{}: tracing an op that returns a {} is not supported yet",
                    def.name,
                    other.kind()
                )))
            }
        }
    }
    let metadata = match &st.meta_override {
        Some(m) => m.clone(),
        None => st.metadata(location),
    };
    st.nodes.push(ir::Node {
        target: format!("torch.ops.{}", def.name),
        inputs,
        outputs: out_args,
        metadata,
        is_hop_single_tensor_return: None,
        name: Some(name),
    });
    Ok(results)
}

/// The tensor the caller passed for schema argument `i`.
fn bound_tensor(
    call: &HookCall<'_>,
    schema: &oxport_core::ops::FunctionSchema,
    i: usize,
) -> Option<Tensor> {
    let arg = &schema.arguments[i];
    let positional_index = schema
        .arguments
        .iter()
        .filter(|a| !a.kwarg_only)
        .position(|a| a.name == arg.name);
    let v = match positional_index {
        Some(p) if p < call.positional.len() => &call.positional[p],
        _ => &call.kwargs.iter().find(|(k, _)| *k == arg.name)?.1,
    };
    match v {
        Value::Tensor(t) => Some(t.clone()),
        _ => None,
    }
}
