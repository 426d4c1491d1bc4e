//! Pytrees: the calling convention of an exported program.
//!
//! A program's `module_call_graph` stores `in_spec`/`out_spec` as `torch.utils._pytree.treespec_dumps`
//! JSON: `[1, {"type": "builtins.tuple", "context": "null", "children_spec": [...]}]`, where a leaf has
//! type `null`. [`TreeSpec`] parses that; [`PyValue`] is a Python-like value (tensors, numbers, None,
//! strings, lists, tuples, dicts) that [`TreeSpec::flatten`] turns into the program's flat inputs and
//! [`TreeSpec::unflatten`] builds from its flat outputs.
use crate::error::{Error, Result};
use crate::Value;
use oxport_core::Tensor;

/// A Python-like value passed to or returned from [`crate::Module::call`].
#[derive(Debug, Clone)]
pub enum PyValue {
    /// A tensor.
    Tensor(Tensor),
    /// An int.
    Int(i64),
    /// A float.
    Float(f64),
    /// A bool.
    Bool(bool),
    /// A string.
    Str(String),
    /// `None`.
    None,
    /// A list.
    List(Vec<PyValue>),
    /// A tuple.
    Tuple(Vec<PyValue>),
    /// A dict with string keys, in order.
    Dict(Vec<(String, PyValue)>),
    /// An instance of a class registered as a pytree node in Python (a `dataclass`, or a Hugging Face
    /// `ModelOutput` such as `transformers.modeling_outputs.BaseModelOutput`): its fully qualified type
    /// name and its fields, in the order the spec's context lists them.
    Object {
        /// The Python type, e.g. `transformers.modeling_outputs.BaseModelOutput`.
        type_name: String,
        /// The fields in flattening order.
        fields: Vec<(String, PyValue)>,
    },
}

impl From<Tensor> for PyValue {
    fn from(t: Tensor) -> Self {
        PyValue::Tensor(t)
    }
}

impl PyValue {
    /// The field `name` of a dict or an object (`out["last_hidden_state"]`, `out.logits`).
    ///
    /// ```
    /// use oxport_runtime::PyValue;
    /// let v = PyValue::Dict(vec![("n".into(), PyValue::Int(3))]);
    /// assert!(matches!(v.get("n"), Some(PyValue::Int(3))));
    /// ```
    pub fn get(&self, name: &str) -> Option<&PyValue> {
        match self {
            PyValue::Dict(items) | PyValue::Object { fields: items, .. } => {
                items.iter().find(|(k, _)| k == name).map(|(_, v)| v)
            }
            _ => None,
        }
    }

    /// The tensor, if this is one.
    pub fn as_tensor(&self) -> Option<&Tensor> {
        match self {
            PyValue::Tensor(t) => Some(t),
            _ => None,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            PyValue::Tensor(_) => "Tensor",
            PyValue::Int(_) => "int",
            PyValue::Float(_) => "float",
            PyValue::Bool(_) => "bool",
            PyValue::Str(_) => "str",
            PyValue::None => "None",
            PyValue::List(_) => "list",
            PyValue::Tuple(_) => "tuple",
            PyValue::Dict(_) => "dict",
            PyValue::Object { .. } => "object",
        }
    }
}

/// The node types of a spec.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeType {
    /// A leaf: one flat value.
    Leaf,
    /// `None` (no leaves).
    None,
    /// A tuple (also namedtuples, flattened by position).
    Tuple,
    /// A list.
    List,
    /// A dict with these keys.
    Dict(Vec<String>),
    /// Another registered pytree class (a `ModelOutput`, a dataclass): its type name and, when its
    /// context is a list of field names (as `ModelOutput` and dataclasses serialize it), those names;
    /// otherwise its fields are numbered.
    Object(String, Vec<String>),
}

/// A parsed pytree spec.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeSpec {
    /// What this node is.
    pub node: NodeType,
    /// Its children.
    pub children: Vec<TreeSpec>,
}

fn spec_err(msg: impl Into<String>) -> Error {
    Error::Ir(oxport_ir::Error::Invalid(format!(
        "pytree spec: {}",
        msg.into()
    )))
}

impl TreeSpec {
    /// Parses `treespec_dumps` JSON (protocol 1).
    pub fn parse(json: &str) -> Result<TreeSpec> {
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| spec_err(e.to_string()))?;
        match v.as_array().map(|a| a.as_slice()) {
            Some([serde_json::Value::Number(p), spec]) if p.as_i64() == Some(1) => {
                Self::from_json(spec)
            }
            _ => Err(spec_err("expected [1, {...}] (treespec protocol 1)")),
        }
    }

    fn from_json(v: &serde_json::Value) -> Result<TreeSpec> {
        let children = v["children_spec"]
            .as_array()
            .map(|c| c.iter().map(Self::from_json).collect::<Result<Vec<_>>>())
            .transpose()?
            .unwrap_or_default();
        let node = match v["type"].as_str() {
            None => NodeType::Leaf,
            Some("builtins.tuple") | Some("collections.namedtuple") | Some("torch.Size") => {
                NodeType::Tuple
            }
            Some("builtins.list") | Some("torch.fx.immutable_collections.immutable_list") => {
                NodeType::List
            }
            Some("builtins.NoneType") => NodeType::None,
            Some("builtins.dict")
            | Some("collections.OrderedDict")
            | Some("collections.defaultdict")
            | Some("torch.fx.immutable_collections.immutable_dict") => {
                let ctx = v["context"].as_str().unwrap_or("[]");
                let keys: serde_json::Value =
                    serde_json::from_str(ctx).map_err(|e| spec_err(e.to_string()))?;
                let keys = keys
                    .as_array()
                    .ok_or_else(|| spec_err("dict context is not a list"))?
                    .iter()
                    .map(|k| match k {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                NodeType::Dict(keys)
            }
            Some(other) => {
                // Registered classes serialize their context with their own `to_dumpable_context`;
                // ModelOutput and dataclasses write a JSON list of field names. Anything else gets
                // positional names: its children still flatten in order.
                let names = v["context"]
                    .as_str()
                    .and_then(|c| serde_json::from_str::<Vec<String>>(c).ok())
                    .filter(|n| n.len() == children.len())
                    .unwrap_or_else(|| (0..children.len()).map(|i| i.to_string()).collect());
                NodeType::Object(other.to_string(), names)
            }
        };
        Ok(TreeSpec { node, children })
    }

    /// Number of leaves.
    pub fn num_leaves(&self) -> usize {
        match self.node {
            NodeType::Leaf => 1,
            _ => self.children.iter().map(TreeSpec::num_leaves).sum(),
        }
    }

    /// The leaves of `v`, which must have this structure; `path` names `v` in errors.
    pub fn flatten(&self, v: &PyValue, path: &str, out: &mut Vec<Value>) -> Result<()> {
        let mismatch =
            |want: &str| Error::Guard(format!("input {path} must be a {want}, got a {}", v.kind()));
        match (&self.node, v) {
            (NodeType::Leaf, leaf) => out.push(match leaf {
                PyValue::Tensor(t) => Value::Tensor(t.clone()),
                PyValue::Int(i) => Value::Int((*i).into()),
                PyValue::Float(f) => Value::Float(*f),
                PyValue::Bool(b) => Value::Bool(*b),
                PyValue::Str(s) => Value::Str(s.clone()),
                PyValue::None => Value::None,
                _ => return Err(mismatch("tensor or number")),
            }),
            (NodeType::None, PyValue::None) => {}
            (NodeType::None, _) => return Err(mismatch("None")),
            (NodeType::Tuple, PyValue::Tuple(items) | PyValue::List(items))
            | (NodeType::List, PyValue::List(items) | PyValue::Tuple(items)) => {
                if items.len() != self.children.len() {
                    return Err(Error::Guard(format!(
                        "input {path} must have {} elements, got {}",
                        self.children.len(),
                        items.len()
                    )));
                }
                for (i, (c, x)) in self.children.iter().zip(items).enumerate() {
                    c.flatten(x, &format!("{path}[{i}]"), out)?;
                }
            }
            (NodeType::Tuple, _) => return Err(mismatch("tuple")),
            (NodeType::List, _) => return Err(mismatch("list")),
            (NodeType::Dict(keys), PyValue::Dict(items)) => {
                if items.len() != keys.len() {
                    let got: Vec<&str> = items.iter().map(|(k, _)| k.as_str()).collect();
                    return Err(Error::Guard(format!(
                        "input {path} must have keys {keys:?}, got {got:?}"
                    )));
                }
                for (c, k) in self.children.iter().zip(keys) {
                    let x = items
                        .iter()
                        .find(|(key, _)| key == k)
                        .map(|(_, x)| x)
                        .ok_or_else(|| Error::Guard(format!("input {path} has no key '{k}'")))?;
                    c.flatten(x, &format!("{path}['{k}']"), out)?;
                }
            }
            (NodeType::Dict(_), _) => return Err(mismatch("dict")),
            (
                NodeType::Object(ty, names),
                PyValue::Object { fields, .. } | PyValue::Dict(fields),
            ) => {
                for (c, k) in self.children.iter().zip(names) {
                    let x = fields.iter().find(|(key, _)| key == k).map(|(_, x)| x);
                    let x = x.ok_or_else(|| {
                        Error::Guard(format!("input {path} ({ty}) has no field '{k}'"))
                    })?;
                    c.flatten(x, &format!("{path}.{k}"), out)?;
                }
            }
            (NodeType::Object(ty, _), _) => return Err(mismatch(ty)),
        }
        Ok(())
    }

    /// Builds the value of this structure from leaves (consumed from the front).
    pub fn unflatten(&self, leaves: &mut dyn Iterator<Item = Value>) -> Result<PyValue> {
        Ok(match &self.node {
            NodeType::Leaf => {
                let v = leaves
                    .next()
                    .ok_or_else(|| spec_err("fewer outputs than the out_spec has leaves"))?;
                match v {
                    Value::Tensor(t) => PyValue::Tensor(t),
                    Value::Int(i) => {
                        PyValue::Int(i.as_int().ok_or_else(|| spec_err("symbolic output"))?)
                    }
                    Value::Float(f) => PyValue::Float(f),
                    Value::Bool(b) => PyValue::Bool(b),
                    Value::Str(s) => PyValue::Str(s),
                    Value::None => PyValue::None,
                    other => return Err(spec_err(format!("cannot return a {}", other.kind()))),
                }
            }
            NodeType::None => PyValue::None,
            NodeType::Tuple => PyValue::Tuple(
                self.children
                    .iter()
                    .map(|c| c.unflatten(leaves))
                    .collect::<Result<_>>()?,
            ),
            NodeType::List => PyValue::List(
                self.children
                    .iter()
                    .map(|c| c.unflatten(leaves))
                    .collect::<Result<_>>()?,
            ),
            NodeType::Dict(keys) => PyValue::Dict(
                keys.iter()
                    .zip(&self.children)
                    .map(|(k, c)| Ok((k.clone(), c.unflatten(leaves)?)))
                    .collect::<Result<_>>()?,
            ),
            NodeType::Object(ty, names) => PyValue::Object {
                type_name: ty.clone(),
                fields: names
                    .iter()
                    .zip(&self.children)
                    .map(|(k, c)| Ok((k.clone(), c.unflatten(leaves)?)))
                    .collect::<Result<_>>()?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_args_kwargs_spec() {
        // in_spec of conv_relu_maxpool: ((x,), {"constant": c})
        let s = r#"[1, {"type": "builtins.tuple", "context": "null", "children_spec": [{"type": "builtins.tuple", "context": "null", "children_spec": [{"type": null, "context": null, "children_spec": []}]}, {"type": "builtins.dict", "context": "[\"constant\"]", "children_spec": [{"type": null, "context": null, "children_spec": []}]}]}]"#;
        let spec = TreeSpec::parse(s).unwrap();
        assert_eq!(spec.num_leaves(), 2);
        assert_eq!(
            spec.children[1].node,
            NodeType::Dict(vec!["constant".into()])
        );
        let v = PyValue::Tuple(vec![
            PyValue::Tuple(vec![PyValue::Int(1)]),
            PyValue::Dict(vec![("constant".into(), PyValue::Float(2.0))]),
        ]);
        let mut flat = vec![];
        spec.flatten(&v, "", &mut flat).unwrap();
        assert_eq!(flat.len(), 2);
        let back = spec.unflatten(&mut flat.into_iter()).unwrap();
        assert!(matches!(back, PyValue::Tuple(ref t) if t.len() == 2));
        let bad = PyValue::Tuple(vec![PyValue::Tuple(vec![]), PyValue::Dict(vec![])]);
        let e = spec.flatten(&bad, "", &mut vec![]).unwrap_err().to_string();
        assert!(e.contains("must have 1 elements"), "{e}");
    }

    #[test]
    fn registered_classes_flatten_by_their_field_names() {
        // out_spec of a transformers BertModel (PyTorch 2.15, transformers 5.24): a ModelOutput.
        let s = r#"[1, {"type": "transformers.modeling_outputs.BaseModelOutputWithPoolingAndCrossAttentions", "context": "[\"last_hidden_state\", \"pooler_output\"]", "children_spec": [{"type": null, "context": null, "children_spec": []}, {"type": null, "context": null, "children_spec": []}]}]"#;
        let spec = TreeSpec::parse(s).unwrap();
        assert_eq!(spec.num_leaves(), 2);
        let out = spec
            .unflatten(&mut vec![Value::Int(1.into()), Value::Float(2.0)].into_iter())
            .unwrap();
        assert!(matches!(out.get("pooler_output"), Some(PyValue::Float(f)) if *f == 2.0));
        assert!(
            matches!(&out, PyValue::Object { type_name, .. } if type_name.ends_with("CrossAttentions"))
        );
        let mut flat = vec![];
        spec.flatten(&out, "out", &mut flat).unwrap();
        assert_eq!(flat.len(), 2);
        let e = spec
            .flatten(&PyValue::Dict(vec![]), "x", &mut vec![])
            .unwrap_err()
            .to_string();
        assert!(e.contains("has no field 'last_hidden_state'"), "{e}");
    }
}
