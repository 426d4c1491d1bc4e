//! Argument values, tensor metadata and binding of call arguments to a schema.
use super::schema::{BaseType, DefaultValue, FunctionSchema, SchemaArg};
use crate::dtype::{DType, Scalar};
use crate::error::{Error, Result};
use crate::sym::{SymFloat, SymInt};
use crate::tensor::Tensor;

/// `torch.layout` values that appear in schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `torch.strided`
    Strided,
}

/// `torch.memory_format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum MemoryFormat {
    ContiguousFormat,
    ChannelsLast,
    ChannelsLast3d,
    PreserveFormat,
}

/// What a tensor is to a meta function: dtype and (symbolic) geometry, no data.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorMeta {
    /// Element type.
    pub dtype: DType,
    /// Sizes.
    pub sizes: Vec<SymInt>,
    /// Strides, in elements.
    pub strides: Vec<SymInt>,
    /// Storage offset, in elements.
    pub offset: SymInt,
}

impl TensorMeta {
    /// A contiguous tensor of `dtype` and `sizes`.
    pub fn contiguous(dtype: DType, sizes: Vec<SymInt>) -> TensorMeta {
        let strides = contiguous_sym_strides(&sizes);
        TensorMeta {
            dtype,
            sizes,
            strides,
            offset: SymInt::Int(0),
        }
    }
    /// The metadata of a real tensor.
    pub fn of(t: &Tensor) -> TensorMeta {
        TensorMeta {
            dtype: t.dtype(),
            sizes: t
                .sizes_untraced()
                .iter()
                .map(|&s| SymInt::from(s))
                .collect(),
            strides: t.strides().iter().map(|&s| SymInt::from(s)).collect(),
            offset: SymInt::from(t.storage_offset()),
        }
    }
    /// Rank.
    pub fn dim(&self) -> usize {
        self.sizes.len()
    }
    /// Concrete sizes (errors if any is symbolic).
    pub fn concrete_sizes(&self) -> Result<Vec<usize>> {
        concrete_usizes(&self.sizes)
    }
    /// Number of elements.
    pub fn numel(&self) -> SymInt {
        self.sizes.iter().fold(SymInt::Int(1), |a, b| a.mul(b))
    }
}

/// Sizes (or strides) as `usize`: an error if any is symbolic or negative.
pub fn concrete_usizes(s: &[SymInt]) -> Result<Vec<usize>> {
    s.iter()
        .map(|x| match x.as_int() {
            Some(v) if v >= 0 => Ok(v as usize),
            Some(v) => Err(Error::shape(format!("negative size {v}"))),
            None => Err(Error::Symbolic(format!(
                "size {x} is symbolic where a concrete size is required"
            ))),
        })
        .collect()
}

/// Row-major strides over symbolic sizes (PyTorch uses max(size, 1) for the running product).
pub fn contiguous_sym_strides(sizes: &[SymInt]) -> Vec<SymInt> {
    let mut strides = vec![SymInt::Int(1); sizes.len()];
    let mut acc = SymInt::Int(1);
    for i in (0..sizes.len()).rev() {
        strides[i] = acc.clone();
        acc = match sizes[i].as_int() {
            Some(0) => acc,
            _ => acc.mul(&sizes[i]),
        };
    }
    strides
}

/// A value passed to or returned from an op. `T` is [`Tensor`] at run time and [`TensorMeta`] for meta
/// functions, so both see the same argument structure.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum Value<T> {
    None,
    Tensor(T),
    Tensors(Vec<T>),
    OptTensors(Vec<Option<T>>),
    Int(SymInt),
    Ints(Vec<SymInt>),
    Float(f64),
    /// A symbolic float (under export only: binding turns it into its hint for meta functions and kernels,
    /// the tracer records the graph value).
    SymFloat(SymFloat),
    Floats(Vec<f64>),
    Bool(bool),
    Bools(Vec<bool>),
    Str(String),
    /// A Python number; for a `Tensor` parameter this is a "wrapped number" operand.
    Scalar(Scalar),
    ScalarType(DType),
    Layout(Layout),
    Device(String),
    MemoryFormat(MemoryFormat),
}

impl<T> Value<T> {
    /// The variant's name, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Tensor(_) => "Tensor",
            Value::Tensors(_) => "Tensor[]",
            Value::OptTensors(_) => "Tensor?[]",
            Value::Int(_) => "int",
            Value::Ints(_) => "int[]",
            Value::Float(_) => "float",
            Value::SymFloat(_) => "SymFloat",
            Value::Floats(_) => "float[]",
            Value::Bool(_) => "bool",
            Value::Bools(_) => "bool[]",
            Value::Str(_) => "str",
            Value::Scalar(_) => "Scalar",
            Value::ScalarType(_) => "ScalarType",
            Value::Layout(_) => "Layout",
            Value::Device(_) => "Device",
            Value::MemoryFormat(_) => "MemoryFormat",
        }
    }
    /// Maps the tensor payloads.
    pub fn map_tensors<U>(&self, f: &mut impl FnMut(&T) -> U) -> Value<U> {
        match self {
            Value::Tensor(t) => Value::Tensor(f(t)),
            Value::Tensors(ts) => Value::Tensors(ts.iter().map(&mut *f).collect()),
            Value::OptTensors(ts) => {
                Value::OptTensors(ts.iter().map(|t| t.as_ref().map(&mut *f)).collect())
            }
            Value::None => Value::None,
            Value::Int(v) => Value::Int(v.clone()),
            Value::Ints(v) => Value::Ints(v.clone()),
            Value::Float(v) => Value::Float(*v),
            Value::SymFloat(v) => Value::SymFloat(v.clone()),
            Value::Floats(v) => Value::Floats(v.clone()),
            Value::Bool(v) => Value::Bool(*v),
            Value::Bools(v) => Value::Bools(v.clone()),
            Value::Str(v) => Value::Str(v.clone()),
            Value::Scalar(v) => Value::Scalar(*v),
            Value::ScalarType(v) => Value::ScalarType(*v),
            Value::Layout(v) => Value::Layout(*v),
            Value::Device(v) => Value::Device(v.clone()),
            Value::MemoryFormat(v) => Value::MemoryFormat(*v),
        }
    }
}

impl From<Tensor> for Value<Tensor> {
    fn from(t: Tensor) -> Self {
        Value::Tensor(t)
    }
}
impl From<&Tensor> for Value<Tensor> {
    fn from(t: &Tensor) -> Self {
        Value::Tensor(t.clone())
    }
}
impl<T> From<i64> for Value<T> {
    fn from(v: i64) -> Self {
        Value::Int(SymInt::Int(v))
    }
}
impl<T> From<f64> for Value<T> {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl<T> From<bool> for Value<T> {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl<T> From<Scalar> for Value<T> {
    fn from(v: Scalar) -> Self {
        Value::Scalar(v)
    }
}
impl<T> From<DType> for Value<T> {
    fn from(v: DType) -> Self {
        Value::ScalarType(v)
    }
}
impl<T> From<&str> for Value<T> {
    fn from(v: &str) -> Self {
        Value::Str(v.to_string())
    }
}
impl<T> From<&[i64]> for Value<T> {
    fn from(v: &[i64]) -> Self {
        Value::Ints(v.iter().map(|&i| SymInt::Int(i)).collect())
    }
}
impl<T> From<Vec<i64>> for Value<T> {
    fn from(v: Vec<i64>) -> Self {
        Value::Ints(v.into_iter().map(SymInt::Int).collect())
    }
}

/// A tensor operand or a Python number ("wrapped number").
#[derive(Debug, Clone)]
pub enum Operand<T> {
    /// A tensor.
    Tensor(T),
    /// A Python number.
    Scalar(Scalar),
}

/// A number where an op takes a `Scalar`: a Python number, or a symbolic int computed from sizes (PyTorch's
/// `c10::Scalar` holds either). Binary ops, `full`, `arange`, ... take `impl Into<SymScalar>`, so plain
/// numbers and [`SymInt`]s both work:
///
/// ```
/// use oxport_core::prelude::*;
/// let x = Tensor::from_vec(vec![1.0f32, 2.0], &[2])?;
/// let n: SymInt = x.sym_size(0)?; // eager: a plain int
/// assert_eq!(x.mul(n.clone())?.to_vec::<f32>()?, vec![2.0, 4.0]);
/// assert_eq!(x.mul(2.5)?.to_vec::<f32>()?, vec![2.5, 5.0]);
/// assert_eq!(SymScalar::from(n), SymScalar::Scalar(Scalar::Int(2)));
/// # Ok::<(), oxport_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum SymScalar {
    /// A concrete number.
    Scalar(Scalar),
    /// A symbolic int (under export, a value of the graph).
    Int(SymInt),
    /// A symbolic float (under export, a value of the graph).
    Float(SymFloat),
}

impl SymScalar {
    /// The value with every symbol at its hint.
    pub fn hint(&self) -> Scalar {
        match self {
            SymScalar::Scalar(s) => *s,
            SymScalar::Int(i) => Scalar::Int(i.hint()),
            SymScalar::Float(f) => Scalar::Float(f.hint()),
        }
    }
    /// True if this number is symbolic.
    pub fn is_symbolic(&self) -> bool {
        matches!(self, SymScalar::Int(_) | SymScalar::Float(_))
    }
    /// The int this is, if it is one (concrete or symbolic).
    pub fn as_sym_int(&self) -> Option<SymInt> {
        match self {
            SymScalar::Scalar(Scalar::Int(i)) => Some(SymInt::Int(*i)),
            SymScalar::Int(i) => Some(i.clone()),
            _ => None,
        }
    }
}

impl From<SymInt> for SymScalar {
    fn from(v: SymInt) -> Self {
        match v {
            SymInt::Int(i) => SymScalar::Scalar(Scalar::Int(i)),
            s => SymScalar::Int(s),
        }
    }
}
impl From<&SymInt> for SymScalar {
    fn from(v: &SymInt) -> Self {
        v.clone().into()
    }
}
impl From<SymFloat> for SymScalar {
    fn from(v: SymFloat) -> Self {
        match v {
            SymFloat::Float(f) => SymScalar::Scalar(Scalar::Float(f)),
            s => SymScalar::Float(s),
        }
    }
}
impl From<&SymFloat> for SymScalar {
    fn from(v: &SymFloat) -> Self {
        v.clone().into()
    }
}
macro_rules! sym_scalar_from_number {
    ($($t:ty),*) => {$(
        impl From<$t> for SymScalar {
            fn from(v: $t) -> Self {
                SymScalar::Scalar(Scalar::from(v))
            }
        }
    )*};
}
sym_scalar_from_number!(f64, f32, i64, i32, bool, Scalar);

impl<T> From<SymScalar> for Value<T> {
    fn from(v: SymScalar) -> Self {
        match v {
            SymScalar::Scalar(s) => Value::Scalar(s),
            SymScalar::Int(i) => Value::Int(i),
            SymScalar::Float(f) => Value::SymFloat(f),
        }
    }
}

/// Arguments bound to a schema: one value per schema argument, defaults filled in.
#[derive(Debug, Clone)]
pub struct Args<'s, T> {
    /// The schema the values are bound to.
    pub schema: &'s FunctionSchema,
    /// One value per schema argument.
    pub values: Vec<Value<T>>,
}

/// The value a schema default stands for (`int[2] stride=1` is `[1, 1]`).
pub fn default_to_value<T>(d: &DefaultValue, arg: &SchemaArg) -> Value<T> {
    let list_len = arg.ty.list.flatten();
    match d {
        DefaultValue::None => Value::None,
        DefaultValue::Int(i) => match (arg.ty.base, arg.ty.list) {
            (_, Some(_)) => Value::Ints(vec![SymInt::Int(*i); list_len.unwrap_or(1)]),
            (BaseType::Float, None) => Value::Float(*i as f64),
            (BaseType::Scalar, None) => Value::Scalar(Scalar::Int(*i)),
            // Schema defaults are c10 codes (`dtype=4` is torch.long).
            (BaseType::ScalarType, None) => DType::from_c10_code(*i)
                .map(Value::ScalarType)
                .unwrap_or(Value::None),
            // c10::MemoryFormat: 0 = Contiguous, 1 = Preserve, 2 = ChannelsLast, 3 = ChannelsLast3d.
            (BaseType::MemoryFormat, None) => Value::MemoryFormat(match i {
                1 => MemoryFormat::PreserveFormat,
                2 => MemoryFormat::ChannelsLast,
                3 => MemoryFormat::ChannelsLast3d,
                _ => MemoryFormat::ContiguousFormat,
            }),
            _ => Value::Int(SymInt::Int(*i)),
        },
        DefaultValue::Float(f) => match arg.ty.base {
            BaseType::Scalar => Value::Scalar(Scalar::Float(*f)),
            _ => Value::Float(*f),
        },
        DefaultValue::Bool(b) => match arg.ty.list {
            Some(n) => Value::Bools(vec![*b; n.unwrap_or(1)]),
            None => Value::Bool(*b),
        },
        DefaultValue::Str(s) => Value::Str(s.clone()),
        DefaultValue::IntList(v) => Value::Ints(v.iter().map(|&i| SymInt::Int(i)).collect()),
        DefaultValue::FloatList(v) => Value::Floats(v.clone()),
        DefaultValue::BoolList(v) => Value::Bools(v.clone()),
        DefaultValue::Ident(id) => match id.as_str() {
            "contiguous_format" => Value::MemoryFormat(MemoryFormat::ContiguousFormat),
            "long" => Value::ScalarType(DType::I64),
            "float" => Value::ScalarType(DType::F32),
            "strided" => Value::Layout(Layout::Strided),
            _ => Value::Str(id.clone()),
        },
    }
}

/// Coerces a passed value to the schema argument's type (int → float, int → int[N], number → Scalar, ...).
fn coerce<T>(op: &str, arg: &SchemaArg, v: Value<T>) -> Result<Value<T>> {
    let ty = &arg.ty;
    let bad = |v: &Value<T>| Error::Schema {
        op: op.to_string(),
        msg: format!("argument '{}' must be {}, not {}", arg.name, ty, v.kind()),
    };
    if matches!(v, Value::None) {
        return if ty.optional {
            Ok(Value::None)
        } else {
            Err(bad(&v))
        };
    }
    Ok(match (ty.base, ty.list.is_some(), v) {
        (BaseType::Tensor, false, v @ (Value::Tensor(_) | Value::Scalar(_))) => v,
        // A Python number passed for a Tensor parameter is a wrapped number.
        (BaseType::Tensor, false, Value::Int(i)) => Value::Scalar(Scalar::Int(i.hint())),
        (BaseType::Tensor, false, Value::Float(f)) => Value::Scalar(Scalar::Float(f)),
        (BaseType::Tensor, false, Value::SymFloat(f)) => Value::Scalar(Scalar::Float(f.hint())),
        (BaseType::Tensor, false, Value::Bool(b)) => Value::Scalar(Scalar::Bool(b)),
        (BaseType::Tensor, true, Value::Tensors(ts)) if ty.elem_optional => {
            Value::OptTensors(ts.into_iter().map(Some).collect())
        }
        (BaseType::Tensor, true, v @ (Value::Tensors(_) | Value::OptTensors(_))) => v,
        (BaseType::Int | BaseType::SymInt, false, Value::Int(i)) => Value::Int(i),
        (BaseType::Int | BaseType::SymInt, false, Value::Scalar(Scalar::Int(i))) => {
            Value::Int(SymInt::Int(i))
        }
        (BaseType::Int | BaseType::SymInt, true, Value::Ints(v)) => match ty.list.flatten() {
            Some(n) if v.len() == 1 && n > 1 => Value::Ints(vec![v[0].clone(); n]),
            _ => Value::Ints(v),
        },
        (BaseType::Int | BaseType::SymInt, true, Value::Int(i)) => {
            Value::Ints(vec![i; ty.list.flatten().unwrap_or(1)])
        }
        (BaseType::Float, false, Value::Float(f)) => Value::Float(f),
        (BaseType::Float, false, Value::Int(i)) => Value::Float(i.hint() as f64),
        (BaseType::Float, false, Value::SymFloat(f)) => Value::Float(f.hint()),
        (BaseType::Float, false, Value::Scalar(s)) => Value::Float(s.to_f64()),
        (BaseType::Float, true, Value::Floats(f)) => Value::Floats(f),
        (BaseType::Bool, false, Value::Bool(b)) => Value::Bool(b),
        (BaseType::Bool, false, Value::Scalar(Scalar::Bool(b))) => Value::Bool(b),
        (BaseType::Bool, true, Value::Bools(b)) => Value::Bools(b),
        (BaseType::Str, false, Value::Str(s)) => Value::Str(s),
        (BaseType::Scalar, false, Value::Scalar(s)) => Value::Scalar(s),
        // A symbolic int stays one, so meta functions see it (`arange(s0)` has `s0` elements).
        (BaseType::Scalar, false, Value::Int(i)) => match i {
            SymInt::Int(i) => Value::Scalar(Scalar::Int(i)),
            i => Value::Int(i),
        },
        (BaseType::Scalar, false, Value::Float(f)) => Value::Scalar(Scalar::Float(f)),
        (BaseType::Scalar, false, Value::SymFloat(f)) => Value::Scalar(Scalar::Float(f.hint())),
        (BaseType::Scalar, false, Value::Bool(b)) => Value::Scalar(Scalar::Bool(b)),
        (BaseType::ScalarType, false, Value::ScalarType(d)) => Value::ScalarType(d),
        (BaseType::Layout, false, v @ Value::Layout(_)) => v,
        (BaseType::Device, false, v @ Value::Device(_)) => v,
        // A device named by a string (`"cpu"`, `"cuda:0"`), as Python callers pass it.
        (BaseType::Device, false, Value::Str(s)) => Value::Device(s),
        (BaseType::MemoryFormat, false, v @ Value::MemoryFormat(_)) => v,
        (_, _, v) => return Err(bad(&v)),
    })
}

impl<'s, T> Args<'s, T> {
    /// Binds positional and keyword values to `schema`, filling defaults and coercing types.
    pub fn bind(
        schema: &'s FunctionSchema,
        positional: Vec<Value<T>>,
        kwargs: Vec<(String, Value<T>)>,
    ) -> Result<Self> {
        let op = schema.op_name();
        let n_positional_max = schema.arguments.iter().filter(|a| !a.kwarg_only).count();
        if positional.len() > n_positional_max {
            return Err(Error::Schema {
                op,
                msg: format!(
                    "takes {} positional arguments but {} were given",
                    n_positional_max,
                    positional.len()
                ),
            });
        }
        let mut slots: Vec<Option<Value<T>>> = (0..schema.arguments.len()).map(|_| None).collect();
        for (i, v) in positional.into_iter().enumerate() {
            slots[i] = Some(v);
        }
        for (name, v) in kwargs {
            let Some(i) = schema.arg_index(&name) else {
                return Err(Error::Schema {
                    op,
                    msg: format!("got an unexpected keyword argument '{name}'"),
                });
            };
            if slots[i].is_some() {
                return Err(Error::Schema {
                    op,
                    msg: format!("got multiple values for argument '{name}'"),
                });
            }
            slots[i] = Some(v);
        }
        let mut values = Vec::with_capacity(slots.len());
        for (arg, slot) in schema.arguments.iter().zip(slots) {
            let v = match slot {
                Some(v) => coerce(&op, arg, v)?,
                None => match &arg.default {
                    Some(d) => default_to_value(d, arg),
                    None => {
                        return Err(Error::Schema {
                            op,
                            msg: format!("missing required argument '{}'", arg.name),
                        })
                    }
                },
            };
            values.push(v);
        }
        Ok(Args { schema, values })
    }

    fn index(&self, name: &str) -> Result<usize> {
        self.schema.arg_index(name).ok_or_else(|| Error::Schema {
            op: self.schema.op_name(),
            msg: format!("schema has no argument '{name}'"),
        })
    }
    fn type_err(&self, name: &str, want: &str) -> Error {
        Error::Schema {
            op: self.schema.op_name(),
            msg: format!("argument '{name}' is not {want}"),
        }
    }
    /// The raw bound value.
    pub fn get(&self, name: &str) -> Result<&Value<T>> {
        Ok(&self.values[self.index(name)?])
    }
    /// A tensor argument.
    pub fn tensor(&self, name: &str) -> Result<&T> {
        match self.get(name)? {
            Value::Tensor(t) => Ok(t),
            _ => Err(self.type_err(name, "a Tensor")),
        }
    }
    /// An optional tensor argument.
    pub fn opt_tensor(&self, name: &str) -> Result<Option<&T>> {
        match self.get(name)? {
            Value::Tensor(t) => Ok(Some(t)),
            Value::None => Ok(None),
            _ => Err(self.type_err(name, "a Tensor or None")),
        }
    }
    /// A tensor-or-number operand.
    pub fn operand(&self, name: &str) -> Result<Operand<&T>> {
        match self.get(name)? {
            Value::Tensor(t) => Ok(Operand::Tensor(t)),
            Value::Scalar(s) => Ok(Operand::Scalar(*s)),
            _ => Err(self.type_err(name, "a Tensor or number")),
        }
    }
    /// A `Tensor[]` argument.
    pub fn tensors(&self, name: &str) -> Result<&[T]> {
        match self.get(name)? {
            Value::Tensors(t) => Ok(t),
            _ => Err(self.type_err(name, "a list of Tensors")),
        }
    }
    /// A (Sym)Int argument.
    pub fn symint(&self, name: &str) -> Result<&SymInt> {
        match self.get(name)? {
            Value::Int(i) => Ok(i),
            _ => Err(self.type_err(name, "an int")),
        }
    }
    /// A concrete int argument.
    pub fn int(&self, name: &str) -> Result<i64> {
        concrete(self.symint(name)?)
    }
    /// An optional concrete int.
    pub fn opt_int(&self, name: &str) -> Result<Option<i64>> {
        match self.get(name)? {
            Value::None => Ok(None),
            Value::Int(i) => Ok(Some(concrete(i)?)),
            _ => Err(self.type_err(name, "an int or None")),
        }
    }
    /// An optional symbolic int.
    pub fn opt_symint(&self, name: &str) -> Result<Option<&SymInt>> {
        match self.get(name)? {
            Value::None => Ok(None),
            Value::Int(i) => Ok(Some(i)),
            _ => Err(self.type_err(name, "an int or None")),
        }
    }
    /// A (Sym)Int list.
    pub fn symints(&self, name: &str) -> Result<&[SymInt]> {
        match self.get(name)? {
            Value::Ints(v) => Ok(v),
            _ => Err(self.type_err(name, "a list of ints")),
        }
    }
    /// A concrete int list.
    pub fn ints(&self, name: &str) -> Result<Vec<i64>> {
        self.symints(name)?.iter().map(concrete).collect()
    }
    /// An optional concrete int list.
    pub fn opt_ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        match self.get(name)? {
            Value::None => Ok(None),
            _ => self.ints(name).map(Some),
        }
    }
    /// A float.
    pub fn float(&self, name: &str) -> Result<f64> {
        match self.get(name)? {
            Value::Float(f) => Ok(*f),
            _ => Err(self.type_err(name, "a float")),
        }
    }
    /// An optional float.
    pub fn opt_float(&self, name: &str) -> Result<Option<f64>> {
        match self.get(name)? {
            Value::None => Ok(None),
            Value::Float(f) => Ok(Some(*f)),
            _ => Err(self.type_err(name, "a float or None")),
        }
    }
    /// A bool.
    pub fn bool(&self, name: &str) -> Result<bool> {
        match self.get(name)? {
            Value::Bool(b) => Ok(*b),
            _ => Err(self.type_err(name, "a bool")),
        }
    }
    /// An optional bool.
    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>> {
        match self.get(name)? {
            Value::None => Ok(None),
            Value::Bool(b) => Ok(Some(*b)),
            _ => Err(self.type_err(name, "a bool or None")),
        }
    }
    /// A string.
    pub fn str(&self, name: &str) -> Result<&str> {
        match self.get(name)? {
            Value::Str(s) => Ok(s),
            _ => Err(self.type_err(name, "a str")),
        }
    }
    /// An optional string (`str? norm=None`).
    pub fn opt_str(&self, name: &str) -> Result<Option<&str>> {
        match self.get(name)? {
            Value::None => Ok(None),
            Value::Str(s) => Ok(Some(s)),
            _ => Err(self.type_err(name, "a str or None")),
        }
    }
    /// A Scalar (a symbolic int passed for it is taken at its hint; see [`Args::sym_scalar`]).
    pub fn scalar(&self, name: &str) -> Result<Scalar> {
        match self.get(name)? {
            Value::Scalar(s) => Ok(*s),
            Value::Int(i) => Ok(Scalar::Int(i.hint())),
            Value::SymFloat(f) => Ok(Scalar::Float(f.hint())),
            _ => Err(self.type_err(name, "a number")),
        }
    }
    /// A Scalar that may be a symbolic int (for meta functions whose output sizes depend on it).
    pub fn sym_scalar(&self, name: &str) -> Result<SymScalar> {
        match self.get(name)? {
            Value::Scalar(s) => Ok(SymScalar::Scalar(*s)),
            Value::Int(i) => Ok(SymScalar::Int(i.clone())),
            Value::SymFloat(f) => Ok(SymScalar::Float(f.clone())),
            _ => Err(self.type_err(name, "a number")),
        }
    }
    /// An optional Scalar.
    pub fn opt_scalar(&self, name: &str) -> Result<Option<Scalar>> {
        match self.get(name)? {
            Value::None => Ok(None),
            Value::Scalar(s) => Ok(Some(*s)),
            Value::Int(i) => Ok(Some(Scalar::Int(i.hint()))),
            _ => Err(self.type_err(name, "a number or None")),
        }
    }
    /// An optional ScalarType.
    pub fn opt_dtype(&self, name: &str) -> Result<Option<DType>> {
        match self.get(name)? {
            Value::None => Ok(None),
            Value::ScalarType(d) => Ok(Some(*d)),
            _ => Err(self.type_err(name, "a dtype or None")),
        }
    }
}

fn concrete(i: &SymInt) -> Result<i64> {
    i.as_int()
        .ok_or_else(|| Error::Symbolic(format!("expected a concrete int, got symbolic {i}")))
}
