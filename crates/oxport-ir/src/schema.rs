//! The ExportedProgram IR: torch.export's serialized schema 8.x (`torch/_export/serde/schema.py`)
//! as Rust types.
//!
//! Each `_Union` of the schema is a Rust enum whose variants carry the schema's field names
//! (`Argument::AsTensor` is `{"as_tensor": ...}` in JSON); each struct keeps the schema's field order,
//! which is the order PyTorch writes. Integer-coded enums (`ScalarType`, `Layout`, `MemoryFormat`,
//! `ArgumentKind`) keep the schema's codes. Unknown JSON keys are ignored, as PyTorch ignores them;
//! fields with a schema default may be absent.
use crate::ordered_map::OrderedMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Defines an integer-coded schema enum with its JSON codes and PyTorch's Python names.
macro_rules! int_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $code:literal => $py:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum $name { $($(#[$vm])* $variant,)* }
        impl $name {
            /// The schema's integer code.
            pub fn code(self) -> i64 { match self { $($name::$variant => $code,)* } }
            /// The value for a schema code.
            pub fn from_code(code: i64) -> Option<Self> {
                match code { $($code => Some($name::$variant),)* _ => None }
            }
            /// How Python prints the value (`torch.float32`, `torch.strided`, ...).
            pub fn python_name(self) -> &'static str { match self { $($name::$variant => $py,)* } }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> { s.serialize_i64(self.code()) }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let code = i64::deserialize(d)?;
                $name::from_code(code).ok_or_else(|| serde::de::Error::custom(
                    format!(concat!("unknown ", stringify!($name), " code {}"), code)))
            }
        }
    };
}

int_enum! {
    /// `torch.dtype`, by its serialized code (not all of them are dtypes oxport computes with).
    ScalarType {
        Unknown = 0 => "torch.unknown",
        Byte = 1 => "torch.uint8",
        Char = 2 => "torch.int8",
        Short = 3 => "torch.int16",
        Int = 4 => "torch.int32",
        Long = 5 => "torch.int64",
        Half = 6 => "torch.float16",
        Float = 7 => "torch.float32",
        Double = 8 => "torch.float64",
        ComplexHalf = 9 => "torch.complex32",
        ComplexFloat = 10 => "torch.complex64",
        ComplexDouble = 11 => "torch.complex128",
        Bool = 12 => "torch.bool",
        BFloat16 = 13 => "torch.bfloat16",
        UInt16 = 28 => "torch.uint16",
        Float8E4M3Fn = 29 => "torch.float8_e4m3fn",
        Float8E5M2 = 30 => "torch.float8_e5m2",
        Float8E4M3Fnuz = 31 => "torch.float8_e4m3fnuz",
        Float8E5M2Fnuz = 32 => "torch.float8_e5m2fnuz",
        Float8E8M0Fnu = 33 => "torch.float8_e8m0fnu",
        UInt32 = 34 => "torch.uint32",
        UInt64 = 35 => "torch.uint64",
    }
}

impl ScalarType {
    /// PyTorch's short name used in printed type annotations (`f32`, `i64`, `b8`, ...).
    pub fn abbr(self) -> &'static str {
        match self {
            ScalarType::Unknown => "unknown",
            ScalarType::Byte => "u8",
            ScalarType::Char => "i8",
            ScalarType::Short => "i16",
            ScalarType::Int => "i32",
            ScalarType::Long => "i64",
            ScalarType::Half => "f16",
            ScalarType::Float => "f32",
            ScalarType::Double => "f64",
            ScalarType::ComplexHalf => "c32",
            ScalarType::ComplexFloat => "c64",
            ScalarType::ComplexDouble => "c128",
            ScalarType::Bool => "b8",
            ScalarType::BFloat16 => "bf16",
            ScalarType::UInt16 => "u16",
            ScalarType::Float8E4M3Fn => "f8e4m3fn",
            ScalarType::Float8E5M2 => "f8e5m2",
            ScalarType::Float8E4M3Fnuz => "f8e4m3fnuz",
            ScalarType::Float8E5M2Fnuz => "f8e5m2fnuz",
            ScalarType::Float8E8M0Fnu => "f8e8m0fnu",
            ScalarType::UInt32 => "u32",
            ScalarType::UInt64 => "u64",
        }
    }
    /// Bytes per element.
    pub fn itemsize(self) -> usize {
        match self {
            ScalarType::Unknown => 0,
            ScalarType::Byte
            | ScalarType::Char
            | ScalarType::Bool
            | ScalarType::Float8E4M3Fn
            | ScalarType::Float8E5M2
            | ScalarType::Float8E4M3Fnuz
            | ScalarType::Float8E5M2Fnuz
            | ScalarType::Float8E8M0Fnu => 1,
            ScalarType::Short | ScalarType::Half | ScalarType::BFloat16 | ScalarType::UInt16 => 2,
            ScalarType::Int | ScalarType::Float | ScalarType::ComplexHalf | ScalarType::UInt32 => 4,
            ScalarType::Long
            | ScalarType::Double
            | ScalarType::ComplexFloat
            | ScalarType::UInt64 => 8,
            ScalarType::ComplexDouble => 16,
        }
    }
    /// The oxport dtype, if oxport computes with this scalar type.
    pub fn dtype(self) -> Option<oxport_core::DType> {
        oxport_core::DType::from_code(self.code())
    }
}

impl From<oxport_core::DType> for ScalarType {
    fn from(d: oxport_core::DType) -> Self {
        ScalarType::from_code(d.code() as i64).expect("every oxport dtype has a schema code")
    }
}

int_enum! {
    /// `torch.layout`.
    Layout {
        Unknown = 0 => "torch.unknown_layout",
        SparseCoo = 1 => "torch.sparse_coo",
        SparseCsr = 2 => "torch.sparse_csr",
        SparseCsc = 3 => "torch.sparse_csc",
        SparseBsr = 4 => "torch.sparse_bsr",
        SparseBsc = 5 => "torch.sparse_bsc",
        Mkldnn = 6 => "torch._mkldnn",
        Strided = 7 => "torch.strided",
    }
}

int_enum! {
    /// `torch.memory_format`.
    MemoryFormat {
        Unknown = 0 => "torch.unknown_memory_format",
        ContiguousFormat = 1 => "torch.contiguous_format",
        ChannelsLast = 2 => "torch.channels_last",
        ChannelsLast3d = 3 => "torch.channels_last_3d",
        PreserveFormat = 4 => "torch.preserve_format",
    }
}

int_enum! {
    /// Whether a node input was passed positionally or by keyword.
    ArgumentKind {
        Unknown = 0 => "UNKNOWN",
        Positional = 1 => "POSITIONAL",
        Keyword = 2 => "KEYWORD",
    }
}

/// A Python float as the schema stores it: JSON numbers, or the strings `"Infinity"`, `"-Infinity"`
/// and `"NaN"` that PyTorch writes for non-finite values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PyFloat(pub f64);

impl Serialize for PyFloat {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let x = self.0;
        if x.is_nan() {
            s.serialize_str("NaN")
        } else if x == f64::INFINITY {
            s.serialize_str("Infinity")
        } else if x == f64::NEG_INFINITY {
            s.serialize_str("-Infinity")
        } else {
            s.serialize_f64(x)
        }
    }
}

impl<'de> Deserialize<'de> for PyFloat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(x) => Ok(PyFloat(x)),
            Raw::Str(s) => match s.as_str() {
                "Infinity" | "inf" => Ok(PyFloat(f64::INFINITY)),
                "-Infinity" | "-inf" => Ok(PyFloat(f64::NEG_INFINITY)),
                "NaN" | "nan" => Ok(PyFloat(f64::NAN)),
                _ => Err(serde::de::Error::custom(format!("'{s}' is not a float"))),
            },
        }
    }
}

/// `torch.device`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    /// `cpu`, `cuda`, `meta`, ...
    #[serde(rename = "type")]
    pub type_: String,
    /// Device index.
    #[serde(default)]
    pub index: Option<i64>,
}

impl Device {
    /// The CPU device.
    pub fn cpu() -> Device {
        Device {
            type_: "cpu".into(),
            index: None,
        }
    }
}

/// The example value a symbolic expression had at export time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum SymExprHint {
    AsInt(i64),
    AsBool(bool),
    AsFloat(PyFloat),
}

/// A symbolic expression in sympy's printed form (`s77`, `2*s77`, `((s27 - 1)//2) + 1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SymExpr {
    /// The expression as sympy prints it.
    pub expr_str: String,
    /// Its value at export time.
    #[serde(default)]
    pub hint: Option<SymExprHint>,
}

/// A size that is an integer or a symbolic expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum SymInt {
    AsExpr(SymExpr),
    AsInt(i64),
}

/// A float or a symbolic float expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum SymFloat {
    AsExpr(SymExpr),
    AsFloat(PyFloat),
}

/// A bool or a symbolic boolean expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum SymBool {
    AsExpr(SymExpr),
    AsBool(bool),
}

/// Fake-tensor metadata of a graph value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorMeta {
    /// Element type.
    pub dtype: ScalarType,
    /// Sizes (symbolic or concrete).
    pub sizes: Vec<SymInt>,
    /// `requires_grad`.
    pub requires_grad: bool,
    /// Device.
    pub device: Device,
    /// Strides in elements.
    pub strides: Vec<SymInt>,
    /// Offset into the storage, in elements.
    pub storage_offset: SymInt,
    /// Layout (`torch.strided` for dense tensors).
    pub layout: Layout,
}

impl SymInt {
    /// The schema form of a core symbolic int: an expression is written as sympy srepr, as PyTorch
    /// writes it, with its example value as the hint.
    pub fn from_core(s: &oxport_core::SymInt) -> SymInt {
        match s {
            oxport_core::SymInt::Int(i) => SymInt::AsInt(*i),
            oxport_core::SymInt::Sym(e) => SymInt::AsExpr(SymExpr {
                expr_str: crate::sympy::srepr(e),
                hint: Some(SymExprHint::AsInt(s.hint())),
            }),
        }
    }
}

impl SymFloat {
    /// The schema form of a core symbolic float: a constant, or its `srepr` and hint.
    ///
    /// ```
    /// use oxport_ir::schema::{SymFloat, SymExprHint};
    /// let s = oxport_core::SymInt::symbol("s0", 4);
    /// let SymFloat::AsExpr(e) = SymFloat::from_core(&oxport_core::SymFloat::from_int(&s)) else { panic!() };
    /// assert_eq!(e.expr_str, "ToFloat(Symbol('s0', positive=True, integer=True))");
    /// assert!(matches!(e.hint, Some(SymExprHint::AsFloat(f)) if f.0 == 4.0));
    /// ```
    pub fn from_core(s: &oxport_core::SymFloat) -> SymFloat {
        match s {
            oxport_core::SymFloat::Float(f) => SymFloat::AsFloat(PyFloat(*f)),
            oxport_core::SymFloat::Sym(e) => SymFloat::AsExpr(SymExpr {
                expr_str: crate::sympy::srepr(e),
                hint: Some(SymExprHint::AsFloat(PyFloat(s.hint()))),
            }),
        }
    }
}

impl TensorMeta {
    /// The schema form of a core tensor meta (a CPU, strided tensor).
    pub fn from_core(m: &oxport_core::ops::TensorMeta, requires_grad: bool) -> TensorMeta {
        TensorMeta {
            dtype: ScalarType::from(m.dtype),
            sizes: m.sizes.iter().map(SymInt::from_core).collect(),
            requires_grad,
            device: Device::cpu(),
            strides: m.strides.iter().map(SymInt::from_core).collect(),
            storage_offset: SymInt::from_core(&m.offset),
            layout: Layout::Strided,
        }
    }
}

/// A reference to a symbolic int value by name, or a constant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum SymIntArgument {
    AsName(String),
    AsInt(i64),
}

/// A reference to a symbolic float value by name, or a constant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum SymFloatArgument {
    AsName(String),
    AsFloat(PyFloat),
}

/// A reference to a symbolic bool value by name, or a constant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum SymBoolArgument {
    AsName(String),
    AsBool(bool),
}

/// A reference to a tensor value by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TensorArgument {
    /// The value's name in the graph.
    pub name: String,
}

impl TensorArgument {
    /// A reference to `name`.
    pub fn new(name: impl Into<String>) -> Self {
        TensorArgument { name: name.into() }
    }
}

/// A reference to an effect token by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenArgument {
    /// The token's name.
    pub name: String,
}

/// A tensor or `None` (elements of `Tensor?[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum OptionalTensorArgument {
    AsTensor(TensorArgument),
    /// Always `true` in JSON.
    AsNone(bool),
}

/// A nested graph passed to a higher-order op (cond branches, map bodies), with its submodule name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphArgument {
    /// Attribute name of the submodule (`true_graph_0`).
    pub name: String,
    /// The graph.
    pub graph: Box<Graph>,
}

/// A reference to a custom (torchbind) object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomObjArgument {
    /// The value's name.
    pub name: String,
    /// The class's fully qualified name.
    pub class_fqn: String,
}

/// A complex constant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplexValue {
    /// Real part.
    pub real: PyFloat,
    /// Imaginary part.
    pub imag: PyFloat,
}

/// A node input or output: a value reference or a constant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Argument {
    /// `None` (always `true` in JSON).
    AsNone(bool),
    AsTensor(TensorArgument),
    AsTensors(Vec<TensorArgument>),
    AsInt(i64),
    AsInts(Vec<i64>),
    AsFloat(PyFloat),
    AsFloats(Vec<PyFloat>),
    AsString(String),
    AsStrings(Vec<String>),
    AsSymInt(SymIntArgument),
    AsSymInts(Vec<SymIntArgument>),
    AsScalarType(ScalarType),
    AsMemoryFormat(MemoryFormat),
    AsLayout(Layout),
    AsDevice(Device),
    AsBool(bool),
    AsBools(Vec<bool>),
    AsSymBool(SymBoolArgument),
    AsSymBools(Vec<SymBoolArgument>),
    AsGraph(GraphArgument),
    AsOptionalTensors(Vec<OptionalTensorArgument>),
    AsCustomObj(CustomObjArgument),
    /// An operator passed as a value (`torch.ops.aten.add.Tensor`).
    AsOperator(String),
    AsSymFloat(SymFloatArgument),
    AsSymFloats(Vec<SymFloatArgument>),
    AsOptionalTensor(OptionalTensorArgument),
    AsComplex(ComplexValue),
    AsNestedTensors(Vec<Vec<TensorArgument>>),
    AsIntLists(Vec<Vec<i64>>),
    AsStringToArgument(OrderedMap<Argument>),
    AsFloatLists(Vec<Vec<PyFloat>>),
}

impl Argument {
    /// The graph value this argument names (a tensor, symbolic value or custom object), if it names one.
    pub fn value_name(&self) -> Option<&str> {
        match self {
            Argument::AsTensor(t) => Some(&t.name),
            Argument::AsSymInt(SymIntArgument::AsName(n))
            | Argument::AsSymBool(SymBoolArgument::AsName(n))
            | Argument::AsSymFloat(SymFloatArgument::AsName(n)) => Some(n),
            Argument::AsCustomObj(c) => Some(&c.name),
            _ => None,
        }
    }

    /// Every graph value this argument names: tensors (also in lists and optional lists), symbolic
    /// values, custom objects.
    pub fn value_names(&self) -> Vec<String> {
        let mut out = vec![];
        self.collect_value_names(&mut out);
        out
    }

    fn collect_value_names(&self, out: &mut Vec<String>) {
        match self {
            Argument::AsTensor(t) => out.push(t.name.clone()),
            Argument::AsTensors(ts) => out.extend(ts.iter().map(|t| t.name.clone())),
            Argument::AsNestedTensors(v) => out.extend(v.iter().flatten().map(|t| t.name.clone())),
            Argument::AsOptionalTensors(v) => out.extend(v.iter().filter_map(|o| match o {
                OptionalTensorArgument::AsTensor(t) => Some(t.name.clone()),
                OptionalTensorArgument::AsNone(_) => None,
            })),
            Argument::AsOptionalTensor(OptionalTensorArgument::AsTensor(t)) => {
                out.push(t.name.clone())
            }
            Argument::AsSymInts(v) => out.extend(v.iter().filter_map(|s| match s {
                SymIntArgument::AsName(n) => Some(n.clone()),
                SymIntArgument::AsInt(_) => None,
            })),
            Argument::AsSymBools(v) => out.extend(v.iter().filter_map(|s| match s {
                SymBoolArgument::AsName(n) => Some(n.clone()),
                SymBoolArgument::AsBool(_) => None,
            })),
            Argument::AsSymFloats(v) => out.extend(v.iter().filter_map(|s| match s {
                SymFloatArgument::AsName(n) => Some(n.clone()),
                SymFloatArgument::AsFloat(_) => None,
            })),
            Argument::AsStringToArgument(m) => m.values().for_each(|v| v.collect_value_names(out)),
            other => out.extend(other.value_name().map(str::to_string)),
        }
    }
}

/// A named node input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedArgument {
    /// The schema argument name (`self`, `other`, `padding`, ...); empty for some higher-order inputs.
    pub name: String,
    /// The value.
    pub arg: Argument,
    /// Positional or keyword.
    #[serde(default)]
    pub kind: Option<ArgumentKind>,
}

/// One operator call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// `torch.ops.aten.conv2d.default`, `torch.ops.higher_order.cond`, `_operator.mul`, ...
    pub target: String,
    /// Inputs by schema name.
    pub inputs: Vec<NamedArgument>,
    /// Outputs (one per schema return).
    pub outputs: Vec<Argument>,
    /// `stack_trace`, `nn_module_stack`, `source_fn_stack`, `torch_fn`, `custom`, ...
    pub metadata: OrderedMap<String>,
    /// For higher-order ops: whether a single output is a bare tensor rather than a 1-tuple.
    #[serde(default)]
    pub is_hop_single_tensor_return: Option<bool>,
    /// The node's name (absent in old files).
    #[serde(default)]
    pub name: Option<String>,
}

/// A graph: inputs, nodes in execution order, outputs, and the metadata of every value.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Graph {
    /// Placeholders, in order.
    pub inputs: Vec<Argument>,
    /// Returned values.
    pub outputs: Vec<Argument>,
    /// Nodes in execution order.
    pub nodes: Vec<Node>,
    /// Metadata of every tensor value.
    pub tensor_values: OrderedMap<TensorMeta>,
    /// Every symbolic int value.
    pub sym_int_values: OrderedMap<SymInt>,
    /// Every symbolic bool value.
    pub sym_bool_values: OrderedMap<SymBool>,
    /// True if the graph returns one bare tensor instead of a tuple.
    #[serde(default)]
    pub is_single_tensor_return: bool,
    /// Custom objects.
    #[serde(default)]
    pub custom_obj_values: OrderedMap<CustomObjArgument>,
    /// Every symbolic float value.
    #[serde(default)]
    pub sym_float_values: OrderedMap<SymFloat>,
}

/// A user input (a tensor, a symbolic value or a constant).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserInputSpec {
    /// The placeholder.
    pub arg: Argument,
}

/// A constant of a `constant_input` spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum ConstantValue {
    AsNone(bool),
    AsInt(i64),
    AsFloat(PyFloat),
    AsString(String),
    AsBool(bool),
}

/// A user input that export specialized to a constant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputToConstantInputSpec {
    /// The input's name.
    pub name: String,
    /// Its value.
    pub value: ConstantValue,
}

/// A lifted parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputToParameterSpec {
    /// The placeholder (`p_conv_weight`).
    pub arg: TensorArgument,
    /// The state_dict key (`conv.weight`).
    pub parameter_name: String,
}

/// A lifted buffer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputToBufferSpec {
    /// The placeholder (`b_bn_running_mean`).
    pub arg: TensorArgument,
    /// The buffer's fully qualified name.
    pub buffer_name: String,
    /// False for buffers registered with `persistent=False` (they live in `constants`).
    pub persistent: bool,
}

/// A lifted tensor constant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputToTensorConstantSpec {
    /// The placeholder (`c_lifted_tensor_0`).
    pub arg: TensorArgument,
    /// The key in `constants`.
    pub tensor_constant_name: String,
}

/// A lifted custom object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputToCustomObjSpec {
    /// The placeholder.
    pub arg: CustomObjArgument,
    /// The key in `constants`.
    pub custom_obj_name: String,
}

/// An effect token input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputTokenSpec {
    /// The token.
    pub arg: TokenArgument,
}

/// What a graph input is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum InputSpec {
    UserInput(UserInputSpec),
    Parameter(InputToParameterSpec),
    Buffer(InputToBufferSpec),
    TensorConstant(InputToTensorConstantSpec),
    CustomObj(InputToCustomObjSpec),
    Token(InputTokenSpec),
    ConstantInput(InputToConstantInputSpec),
}

impl InputSpec {
    /// The graph input this spec describes, if it is a named value (`None` for a specialized constant).
    pub fn value_name(&self) -> Option<&str> {
        match self {
            InputSpec::UserInput(u) => u.arg.value_name(),
            InputSpec::Parameter(p) => Some(&p.arg.name),
            InputSpec::Buffer(b) => Some(&b.arg.name),
            InputSpec::TensorConstant(c) => Some(&c.arg.name),
            InputSpec::CustomObj(c) => Some(&c.arg.name),
            InputSpec::Token(t) => Some(&t.arg.name),
            InputSpec::ConstantInput(_) => None,
        }
    }
}

/// A user output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserOutputSpec {
    /// The returned value.
    pub arg: Argument,
}

/// A loss output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossOutputSpec {
    /// The returned value.
    pub arg: TensorArgument,
}

/// The new value of a buffer mutated by the program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BufferMutationSpec {
    /// The returned value.
    pub arg: TensorArgument,
    /// The buffer's fully qualified name.
    pub buffer_name: String,
}

/// The new value of a parameter mutated by the program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParameterMutationSpec {
    /// The returned value.
    pub arg: TensorArgument,
    /// The parameter's fully qualified name.
    pub parameter_name: String,
}

/// A gradient of a parameter (joint graphs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradientToParameterSpec {
    /// The returned value.
    pub arg: TensorArgument,
    /// The parameter's fully qualified name.
    pub parameter_name: String,
}

/// A gradient of a user input (joint graphs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradientToUserInputSpec {
    /// The returned value.
    pub arg: TensorArgument,
    /// The user input's name.
    pub user_input_name: String,
}

/// The new value of a user input mutated by the program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserInputMutationSpec {
    /// The returned value.
    pub arg: TensorArgument,
    /// The user input's name.
    pub user_input_name: String,
}

/// An effect token output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputTokenSpec {
    /// The token.
    pub arg: TokenArgument,
}

/// What a graph output is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum OutputSpec {
    UserOutput(UserOutputSpec),
    LossOutput(LossOutputSpec),
    BufferMutation(BufferMutationSpec),
    GradientToParameter(GradientToParameterSpec),
    GradientToUserInput(GradientToUserInputSpec),
    UserInputMutation(UserInputMutationSpec),
    Token(OutputTokenSpec),
    ParameterMutation(ParameterMutationSpec),
}

/// How graph inputs and outputs map to the module's parameters, buffers, constants and user values.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GraphSignature {
    /// One per graph input, in order.
    pub input_specs: Vec<InputSpec>,
    /// One per graph output, in order.
    pub output_specs: Vec<OutputSpec>,
}

/// The range of a symbol; `None` is unbounded (`-int_oo` / `int_oo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeConstraint {
    /// Lower bound.
    pub min_val: Option<i64>,
    /// Upper bound.
    pub max_val: Option<i64>,
}

/// The calling convention of a module call: pytree specs (JSON strings as PyTorch writes them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleCallSignature {
    /// Flat inputs.
    pub inputs: Vec<Argument>,
    /// Flat outputs.
    pub outputs: Vec<Argument>,
    /// The input pytree spec (`treespec_dumps` JSON).
    pub in_spec: String,
    /// The output pytree spec.
    pub out_spec: String,
    /// Names of forward's arguments.
    #[serde(default)]
    pub forward_arg_names: Option<Vec<String>>,
}

/// One entry of the module call graph (`""` is the root module).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleCallEntry {
    /// The module's fully qualified name.
    pub fqn: String,
    /// Its signature, if preserved.
    #[serde(default)]
    pub signature: Option<ModuleCallSignature>,
}

/// Field names of a namedtuple type used in the specs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedTupleDef {
    /// The fields.
    pub field_names: Vec<String>,
}

/// The graph with its signature and calling convention.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GraphModule {
    /// The graph.
    pub graph: Graph,
    /// Input/output kinds.
    pub signature: GraphSignature,
    /// Module call graph with pytree specs.
    pub module_call_graph: Vec<ModuleCallEntry>,
    /// Free-form metadata.
    #[serde(default)]
    pub metadata: OrderedMap<String>,
    /// Namedtuple definitions.
    #[serde(default)]
    pub treespec_namedtuple_fields: OrderedMap<NamedTupleDef>,
}

/// Schema version of a serialized program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaVersion {
    /// Major: a different major cannot be read.
    pub major: i64,
    /// Minor.
    pub minor: i64,
}

/// The schema version oxport reads and writes (PyTorch 2.15's).
pub const SCHEMA_VERSION: SchemaVersion = SchemaVersion {
    major: 8,
    minor: 20,
};

/// Where a weight lives in a `.pt2` (`data/weights/<name>_weights_config.json` entries).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PayloadMeta {
    /// File name under the weights/constants directory (`weight_0`).
    pub path_name: String,
    /// True for `nn.Parameter`s.
    pub is_param: bool,
    /// True if the file is a pickle (tensor subclasses, custom objects).
    pub use_pickle: bool,
    /// Sizes/strides/offset of this tensor within the file's storage.
    pub tensor_meta: Option<TensorMeta>,
}

/// A weights or constants config file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PayloadConfig {
    /// Entries by fully qualified name.
    pub config: OrderedMap<PayloadMeta>,
}
