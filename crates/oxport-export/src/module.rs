//! The [`Module`] trait: what export needs to know about a model — its submodules, parameters and
//! buffers with PyTorch's fully-qualified names — and [`Forward`], the entry point export calls.
use crate::tracer;
use oxport_core::Tensor;
use oxport_runtime::PyValue;

/// A model or layer, like `torch.nn.Module`.
///
/// Names follow PyTorch: a child registered as `conv` has parameters `conv.weight`, `conv.bias`;
/// `Sequential` children are `0`, `1`, ...
pub trait Module {
    /// PyTorch's qualified class name (`torch.nn.modules.conv.Conv2d`), shown in `nn_module_stack`.
    fn type_name(&self) -> String;
    /// Registered children, in registration order.
    fn named_children(&self) -> Vec<(String, &dyn Module)> {
        vec![]
    }
    /// This module's own parameters, in registration order.
    fn named_own_parameters(&self) -> Vec<(String, &Tensor)> {
        vec![]
    }
    /// This module's own buffers, in registration order, with `persistent`.
    fn named_own_buffers(&self) -> Vec<(String, &Tensor, bool)> {
        vec![]
    }
    /// Switches this module's own training-dependent behaviour (not its children's: see [`train`]).
    fn set_own_training(&self, _training: bool) {}
}

/// `module.train(mode)`: sets training mode on `m` and every descendant.
pub fn train(m: &dyn Module, mode: bool) {
    walk(m, "", &mut |_, m| m.set_own_training(mode));
}

/// `module.eval()`: [`train`]`(m, false)`.
pub fn eval(m: &dyn Module) {
    train(m, false)
}

/// `module.state_dict()`: parameters and persistent buffers by fully-qualified name, in PyTorch's order
/// (each module's own parameters, then its own buffers, then its children).
pub fn state_dict(m: &dyn Module) -> Vec<(String, Tensor)> {
    let mut out = vec![];
    walk(m, "", &mut |prefix, m| {
        for (n, t) in m.named_own_parameters() {
            out.push((join(prefix, &n), t.clone()));
        }
        for (n, t, persistent) in m.named_own_buffers() {
            if persistent {
                out.push((join(prefix, &n), t.clone()));
            }
        }
    });
    out
}

/// Every parameter of `m` and its descendants, by fully-qualified name (PyTorch's order: a module's
/// own parameters, then its children's, depth first).
pub fn named_parameters(m: &dyn Module) -> Vec<(String, Tensor)> {
    let mut out = vec![];
    walk(m, "", &mut |prefix, m| {
        for (n, t) in m.named_own_parameters() {
            out.push((join(prefix, &n), t.clone()));
        }
    });
    out
}

/// Every buffer of `m` and its descendants, by fully-qualified name, with `persistent`.
pub fn named_buffers(m: &dyn Module) -> Vec<(String, Tensor, bool)> {
    let mut out = vec![];
    walk(m, "", &mut |prefix, m| {
        for (n, t, p) in m.named_own_buffers() {
            out.push((join(prefix, &n), t.clone(), p));
        }
    });
    out
}

/// Every module with its fully-qualified name (`""` for the root) and type, depth first.
pub fn named_modules(m: &dyn Module) -> Vec<(String, String, usize)> {
    let mut out = vec![];
    walk(m, "", &mut |prefix, m| {
        out.push((prefix.to_string(), m.type_name(), address(m)))
    });
    out
}

pub(crate) fn address(m: &dyn Module) -> usize {
    m as *const dyn Module as *const () as usize
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

fn walk(m: &dyn Module, prefix: &str, f: &mut dyn FnMut(&str, &dyn Module)) {
    f(prefix, m);
    for (n, c) in m.named_children() {
        walk(c, &join(prefix, &n), f);
    }
}

/// The model entry point export calls: `forward(*args, **kwargs)`.
pub trait Forward: Module {
    /// The names of forward's arguments, in order: they become the placeholder names.
    fn forward_arg_names(&self) -> Vec<String>;
    /// Runs forward on Python-like values (tensors, numbers, lists, dicts; keyword arguments by name).
    fn forward_py(
        &self,
        args: &[PyValue],
        kwargs: &[(String, PyValue)],
    ) -> oxport_core::Result<PyValue>;
}

/// Runs `f` as the forward of module `m`: under export, the ops `f` calls get `m` on their
/// `nn_module_stack`, and the caller's line as an outer stack frame. Layers wrap their forward in it.
#[track_caller]
pub fn scope<R>(m: &dyn Module, f: impl FnOnce() -> R) -> R {
    let location = std::panic::Location::caller();
    let entered = tracer::enter_module(address(m), location);
    // A module's own forward reports its own lines, even when called from a functional helper.
    let r = tracer::without_functional_site(f);
    if entered {
        tracer::exit_module();
    }
    r
}

/// `module.load_state_dict(state, strict=True)`: copies every parameter and buffer of `m` from `state`
/// (by fully-qualified name) into the module's tensors, in place. Missing or unexpected keys and
/// shape or dtype mismatches are errors naming the key.
pub fn load_state_dict<'a>(
    m: &dyn Module,
    state: impl IntoIterator<Item = (&'a str, &'a Tensor)>,
) -> oxport_core::Result<()> {
    use oxport_core::Error;
    let state: Vec<(&str, &Tensor)> = state.into_iter().collect();
    let mut targets: Vec<(String, Tensor)> = named_parameters(m);
    targets.extend(named_buffers(m).into_iter().map(|(n, t, _)| (n, t)));
    let unexpected: Vec<&str> = state
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| !targets.iter().any(|(n, _)| n == k))
        .collect();
    if !unexpected.is_empty() {
        return Err(Error::Value(format!(
            "Unexpected key(s) in state_dict: {}",
            unexpected.join(", ")
        )));
    }
    let missing: Vec<&str> = targets
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| !state.iter().any(|(k, _)| k == n))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Value(format!(
            "Missing key(s) in state_dict: {}",
            missing.join(", ")
        )));
    }
    for (name, dst) in &targets {
        let src = state
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, t)| *t)
            .expect("checked above");
        if src.sizes() != dst.sizes() || src.dtype() != dst.dtype() {
            return Err(Error::Value(format!(
                "size mismatch for {name}: copying a param with shape {:?} ({}) from checkpoint, the shape in current model is {:?} ({})",
                src.sizes(),
                src.dtype().name(),
                dst.sizes(),
                dst.dtype().name()
            )));
        }
        dst.assign_untraced(src)?;
    }
    Ok(())
}
