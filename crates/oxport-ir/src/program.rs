//! [`ExportedProgram`]: the serialized program plus its state (parameters, buffers, constants).
use crate::ordered_map::OrderedMap;
use crate::schema::*;
use oxport_core::Tensor;
use serde::{Deserialize, Serialize};

/// A parameter or buffer of the program's `state_dict`.
#[derive(Debug, Clone)]
pub struct Weight {
    /// The value (a view: weights sharing storage in PyTorch share it here too).
    pub tensor: Tensor,
    /// True for `nn.Parameter`s, false for buffers.
    pub is_param: bool,
    /// `requires_grad` as saved.
    pub requires_grad: bool,
}

/// An exported program: torch.export's `ExportedProgram`.
///
/// The serialized fields are those of `models/<name>.json` in a `.pt2` (schema 8.x); `state_dict` and
/// `constants` hold the tensors that the archive keeps in `data/weights` and `data/constants`.
/// `Display` prints what PyTorch's `print(ep)` prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportedProgram {
    /// Graph, signature and call graph.
    pub graph_module: GraphModule,
    /// Operator set versions (`{"aten": 10}`).
    pub opset_version: OrderedMap<i64>,
    /// Ranges of the symbols.
    pub range_constraints: OrderedMap<RangeConstraint>,
    /// Schema version.
    pub schema_version: SchemaVersion,
    /// IR dialects the program satisfies (`TRAINING`, `ATEN`).
    #[serde(default)]
    pub verifiers: Vec<String>,
    /// The torch version that wrote it.
    #[serde(default = "default_torch_version")]
    pub torch_version: String,
    /// Guard code strings.
    #[serde(default)]
    pub guards_code: Vec<String>,
    /// Parameters and persistent buffers by fully qualified name.
    #[serde(skip)]
    pub state_dict: OrderedMap<Weight>,
    /// Lifted tensor constants and non-persistent buffers by name.
    #[serde(skip)]
    pub constants: OrderedMap<Tensor>,
}

fn default_torch_version() -> String {
    "<=2.4".into()
}

impl ExportedProgram {
    /// The graph.
    pub fn graph(&self) -> &Graph {
        &self.graph_module.graph
    }
    /// The graph signature.
    pub fn graph_signature(&self) -> &GraphSignature {
        &self.graph_module.signature
    }
}
