//! The invariants of an exported program, checked when a program is loaded and before it is saved.
//!
//! Every value is defined once (a graph input or a node output) before it is used; every tensor value
//! has metadata; the signature has one spec per graph input and output, naming the same values; every
//! lifted parameter, buffer and constant exists in the program's state.
use crate::error::{Error, Result};
use crate::program::ExportedProgram;
use crate::schema::*;
use std::collections::HashSet;

/// Checks `ep`'s invariants; the error names the offending value or node.
pub fn validate(ep: &ExportedProgram) -> Result<()> {
    check_version(&ep.schema_version)?;
    let g = &ep.graph_module.graph;
    validate_graph(g, "graph")?;
    let sig = &ep.graph_module.signature;
    if sig.input_specs.len() != g.inputs.len() {
        return Err(invalid(format!(
            "the signature has {} input specs but the graph has {} inputs",
            sig.input_specs.len(),
            g.inputs.len()
        )));
    }
    for (spec, input) in sig.input_specs.iter().zip(&g.inputs) {
        let (spec_name, graph_name) = (spec.value_name(), input.value_name());
        if let (Some(s), Some(gn)) = (&spec_name, &graph_name) {
            if s != gn {
                return Err(invalid(format!(
                    "input spec '{s}' does not match graph input '{gn}'"
                )));
            }
        }
        match spec {
            InputSpec::Parameter(p) => need_weight(ep, &p.parameter_name, "parameter")?,
            InputSpec::Buffer(b) if b.persistent => need_weight(ep, &b.buffer_name, "buffer")?,
            InputSpec::Buffer(b) => need_constant(ep, &b.buffer_name, "non-persistent buffer")?,
            InputSpec::TensorConstant(c) => {
                need_constant(ep, &c.tensor_constant_name, "tensor constant")?
            }
            _ => {}
        }
    }
    if sig.output_specs.len() != g.outputs.len() {
        return Err(invalid(format!(
            "the signature has {} output specs but the graph has {} outputs",
            sig.output_specs.len(),
            g.outputs.len()
        )));
    }
    for spec in &sig.output_specs {
        if let OutputSpec::UserInputMutation(m) = spec {
            let is_user_input = sig.input_specs.iter().any(|s| match s {
                InputSpec::UserInput(u) => u.arg.value_name() == Some(m.user_input_name.as_str()),
                _ => false,
            });
            if !is_user_input {
                return Err(invalid(format!(
                    "USER_INPUT_MUTATION target '{}' is not a user input",
                    m.user_input_name
                )));
            }
        }
        if let OutputSpec::BufferMutation(b) = spec {
            let is_buffer = sig
                .input_specs
                .iter()
                .any(|s| matches!(s, InputSpec::Buffer(x) if x.buffer_name == b.buffer_name));
            if !is_buffer {
                return Err(invalid(format!(
                    "BUFFER_MUTATION target '{}' is not a buffer input",
                    b.buffer_name
                )));
            }
        }
    }
    Ok(())
}

/// Refuses schema versions oxport cannot read (a different major version than 8).
pub fn check_version(v: &SchemaVersion) -> Result<()> {
    if v.major != SCHEMA_VERSION.major && !(v.major == 0 && v.minor == 0) {
        return Err(Error::Unsupported(format!(
            "serialized schema version {}.{} (oxport reads {}.x, as PyTorch 2.15 does)",
            v.major, v.minor, SCHEMA_VERSION.major
        )));
    }
    Ok(())
}

fn invalid(msg: String) -> Error {
    Error::Invalid(msg)
}

fn need_weight(ep: &ExportedProgram, name: &str, what: &str) -> Result<()> {
    if ep.state_dict.contains_key(name) {
        Ok(())
    } else {
        Err(invalid(format!(
            "{what} '{name}' is lifted by the signature but missing from the state_dict"
        )))
    }
}

fn need_constant(ep: &ExportedProgram, name: &str, what: &str) -> Result<()> {
    if ep.constants.contains_key(name) {
        Ok(())
    } else {
        Err(invalid(format!(
            "{what} '{name}' is lifted by the signature but missing from the constants"
        )))
    }
}

/// Checks one graph (recursing into nested graphs); `what` names it in errors.
pub fn validate_graph(g: &Graph, what: &str) -> Result<()> {
    let mut defined: HashSet<String> = HashSet::new();
    let define = |name: &str, by: &str, defined: &mut HashSet<String>| -> Result<()> {
        if name.is_empty() {
            return Err(invalid(format!(
                "{what}: {by} defines a value with an empty name"
            )));
        }
        if !defined.insert(name.to_string()) {
            return Err(invalid(format!(
                "{what}: value '{name}' is defined twice (again by {by})"
            )));
        }
        Ok(())
    };
    let check_meta = |name: &str, a: &Argument| -> Result<()> {
        let ok = match a {
            Argument::AsTensor(_) | Argument::AsTensors(_) => g.tensor_values.contains_key(name),
            Argument::AsSymInt(_) | Argument::AsSymInts(_) => g.sym_int_values.contains_key(name),
            Argument::AsSymBool(_) | Argument::AsSymBools(_) => {
                g.sym_bool_values.contains_key(name)
            }
            Argument::AsSymFloat(_) | Argument::AsSymFloats(_) => {
                g.sym_float_values.contains_key(name)
            }
            Argument::AsCustomObj(_) => true,
            _ => true,
        };
        if ok {
            Ok(())
        } else {
            Err(invalid(format!(
                "{what}: value '{name}' has no metadata (tensor_values/sym_*_values)"
            )))
        }
    };
    for input in &g.inputs {
        let mut names = vec![];
        names.extend(input.value_names());
        for n in &names {
            define(n, "a graph input", &mut defined)?;
            check_meta(n, input)?;
        }
    }
    for (i, node) in g.nodes.iter().enumerate() {
        let label = match &node.name {
            Some(n) => format!("node '{n}' ({})", node.target),
            None => format!("node #{i} ({})", node.target),
        };
        for input in &node.inputs {
            if let Argument::AsGraph(sub) = &input.arg {
                validate_graph(&sub.graph, &format!("{what}.{}", sub.name))?;
                continue;
            }
            let mut names = vec![];
            names.extend(input.arg.value_names());
            for n in names {
                if !defined.contains(&n) {
                    return Err(invalid(format!(
                        "{what}: {label} uses '{n}' (argument '{}') before it is defined",
                        input.name
                    )));
                }
            }
        }
        for out in &node.outputs {
            let mut names = vec![];
            names.extend(out.value_names());
            for n in &names {
                define(n, &label, &mut defined)?;
                check_meta(n, out)?;
            }
        }
    }
    for out in &g.outputs {
        let mut names = vec![];
        names.extend(out.value_names());
        for n in names {
            if !defined.contains(&n) {
                return Err(invalid(format!("{what}: output '{n}' is not defined")));
            }
        }
    }
    Ok(())
}
