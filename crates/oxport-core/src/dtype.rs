//! PyTorch dtypes, scalars and type promotion.
use std::fmt;

/// A tensor element type. The discriminants are PyTorch's serialized `ScalarType` codes
/// (`torch/_export/serde/schema.yaml`), so `DType::F32 as i32 == 7`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i32)]
pub enum DType {
    /// `torch.uint8` (BYTE)
    U8 = 1,
    /// `torch.int8` (CHAR)
    I8 = 2,
    /// `torch.int16` (SHORT)
    I16 = 3,
    /// `torch.int32` (INT)
    I32 = 4,
    /// `torch.int64` (LONG)
    I64 = 5,
    /// `torch.float16` (HALF)
    F16 = 6,
    /// `torch.float32` (FLOAT)
    F32 = 7,
    /// `torch.float64` (DOUBLE)
    F64 = 8,
    /// `torch.complex64` (COMPLEXFLOAT): two f32s, real then imaginary.
    C64 = 10,
    /// `torch.complex128` (COMPLEXDOUBLE): two f64s, real then imaginary.
    C128 = 11,
    /// `torch.bool` (BOOL)
    Bool = 12,
    /// `torch.bfloat16` (BFLOAT16)
    BF16 = 13,
}

/// All supported dtypes, in serialized-code order.
pub const ALL_DTYPES: [DType; 12] = [
    DType::U8,
    DType::I8,
    DType::I16,
    DType::I32,
    DType::I64,
    DType::F16,
    DType::F32,
    DType::F64,
    DType::C64,
    DType::C128,
    DType::Bool,
    DType::BF16,
];

impl DType {
    /// The serialized `ScalarType` code (schema.yaml).
    pub fn code(self) -> i32 {
        self as i32
    }
    /// The dtype for a serialized `ScalarType` code.
    pub fn from_code(code: i64) -> Option<DType> {
        ALL_DTYPES.iter().copied().find(|d| d.code() as i64 == code)
    }
    /// The dtype for a `c10::ScalarType` code, as schema defaults write them (`ScalarType? dtype=4` is
    /// `torch.long`); these differ from the serialized codes of [`DType::code`].
    ///
    /// ```
    /// use oxport_core::DType;
    /// assert_eq!(DType::from_c10_code(4), Some(DType::I64));
    /// assert_eq!(DType::from_c10_code(6), Some(DType::F32));
    /// ```
    pub fn from_c10_code(code: i64) -> Option<DType> {
        Some(match code {
            0 => DType::U8,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::I64,
            5 => DType::F16,
            6 => DType::F32,
            7 => DType::F64,
            9 => DType::C64,
            10 => DType::C128,
            11 => DType::Bool,
            15 => DType::BF16,
            _ => return None,
        })
    }
    /// Bytes per element.
    pub fn itemsize(self) -> usize {
        match self {
            DType::U8 | DType::I8 | DType::Bool => 1,
            DType::I16 | DType::F16 | DType::BF16 => 2,
            DType::I32 | DType::F32 => 4,
            DType::I64 | DType::F64 | DType::C64 => 8,
            DType::C128 => 16,
        }
    }
    /// True for f16, bf16, f32, f64.
    pub fn is_floating_point(self) -> bool {
        matches!(self, DType::F16 | DType::BF16 | DType::F32 | DType::F64)
    }
    /// True for complex64 and complex128.
    pub fn is_complex(self) -> bool {
        matches!(self, DType::C64 | DType::C128)
    }
    /// The real dtype of a complex one (`complex64` -> `float32`, PyTorch's `toRealValueType`); other
    /// dtypes are their own.
    pub fn to_real(self) -> DType {
        match self {
            DType::C64 => DType::F32,
            DType::C128 => DType::F64,
            d => d,
        }
    }
    /// The complex dtype of a floating one (`float32` -> `complex64`, `float64` -> `complex128`;
    /// complex dtypes are their own). f16/bf16 (whose complex twins oxport lacks) and non-float dtypes
    /// have none.
    pub fn to_complex(self) -> Option<DType> {
        match self {
            DType::F32 | DType::C64 => Some(DType::C64),
            DType::F64 | DType::C128 => Some(DType::C128),
            _ => None,
        }
    }
    /// True for the integer types (not bool).
    pub fn is_integral(self) -> bool {
        matches!(
            self,
            DType::U8 | DType::I8 | DType::I16 | DType::I32 | DType::I64
        )
    }
    /// The name PyTorch prints (`torch.float32` without the `torch.` prefix).
    pub fn name(self) -> &'static str {
        match self {
            DType::U8 => "uint8",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::F16 => "float16",
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::C64 => "complex64",
            DType::C128 => "complex128",
            DType::Bool => "bool",
            DType::BF16 => "bfloat16",
        }
    }
    /// The C++ ScalarType name used in PyTorch's error messages (`Float`, `Long`, ...).
    pub fn scalar_type_name(self) -> &'static str {
        match self {
            DType::U8 => "Byte",
            DType::I8 => "Char",
            DType::I16 => "Short",
            DType::I32 => "Int",
            DType::I64 => "Long",
            DType::F16 => "Half",
            DType::F32 => "Float",
            DType::F64 => "Double",
            DType::C64 => "ComplexFloat",
            DType::C128 => "ComplexDouble",
            DType::Bool => "Bool",
            DType::BF16 => "BFloat16",
        }
    }
    /// The C++ type name PyTorch prints in some messages (`float`, `double`, `long int`, `c10::Half`).
    pub fn cpp_type_name(self) -> &'static str {
        match self {
            DType::U8 => "unsigned char",
            DType::I8 => "signed char",
            DType::I16 => "short int",
            DType::I32 => "int",
            DType::I64 => "long int",
            DType::F16 => "c10::Half",
            DType::F32 => "float",
            DType::F64 => "double",
            DType::C64 => "c10::complex<float>",
            DType::C128 => "c10::complex<double>",
            DType::Bool => "bool",
            DType::BF16 => "c10::BFloat16",
        }
    }
    /// Parses `float32`, `torch.float32`, `float`, `long`, ... .
    pub fn from_name(name: &str) -> Option<DType> {
        let n = name.strip_prefix("torch.").unwrap_or(name);
        Some(match n {
            "uint8" => DType::U8,
            "int8" => DType::I8,
            "int16" | "short" => DType::I16,
            "int32" | "int" => DType::I32,
            "int64" | "long" => DType::I64,
            "float16" | "half" => DType::F16,
            "float32" | "float" => DType::F32,
            "float64" | "double" => DType::F64,
            "complex64" | "cfloat" => DType::C64,
            "complex128" | "cdouble" => DType::C128,
            "bool" => DType::Bool,
            "bfloat16" => DType::BF16,
            _ => return None,
        })
    }
    /// The short name used in printed graphs: `f32`, `i64`, `b8`, `bf16`, `u8`.
    pub fn short_name(self) -> &'static str {
        match self {
            DType::U8 => "u8",
            DType::I8 => "i8",
            DType::I16 => "i16",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::F16 => "f16",
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::C64 => "c64",
            DType::C128 => "c128",
            DType::Bool => "b8",
            DType::BF16 => "bf16",
        }
    }
    /// The dtype kernels compute in: f16/bf16 compute in f32 (as PyTorch's CPU kernels do), others in themselves.
    pub fn compute_dtype(self) -> DType {
        match self {
            DType::F16 | DType::BF16 => DType::F32,
            d => d,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scalar_type_name())
    }
}

/// `torch.promote_types(a, b)` for the supported dtypes.
pub fn promote_types(a: DType, b: DType) -> DType {
    use DType::*;
    if a == b {
        return a;
    }
    if a.is_complex() || b.is_complex() {
        // c10's table: the complex type of the promoted value types (c64 + f64 = c128, c64 + i64 = c64).
        let value = promote_types(a.to_real(), b.to_real());
        return if value == F64 { C128 } else { C64 };
    }
    match (a, b) {
        (Bool, x) | (x, Bool) => x,
        (F16, BF16) | (BF16, F16) => F32,
        (x, y) if x.is_floating_point() && y.is_floating_point() => {
            if x.itemsize() >= y.itemsize() {
                x
            } else {
                y
            }
        }
        (x, y) if x.is_floating_point() => {
            let _ = y;
            x
        }
        (x, y) if y.is_floating_point() => {
            let _ = x;
            y
        }
        // Both integral.
        (U8, I8) | (I8, U8) => I16,
        (U8, x) | (x, U8) => x,
        (x, y) => {
            if x.itemsize() >= y.itemsize() {
                x
            } else {
                y
            }
        }
    }
}

/// A Python number passed to an op: PyTorch's `Scalar`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar {
    /// A Python `bool`.
    Bool(bool),
    /// A Python `int`.
    Int(i64),
    /// A Python `float`.
    Float(f64),
}

impl Scalar {
    /// The dtype PyTorch gives this number when it is wrapped into a tensor (`float` → default dtype f32).
    pub fn wrapped_dtype(self) -> DType {
        match self {
            Scalar::Bool(_) => DType::Bool,
            Scalar::Int(_) => DType::I64,
            Scalar::Float(_) => DType::F32,
        }
    }
    /// The dtype of `torch.tensor(number)`: Python floats become f32 (the default dtype).
    pub fn natural_dtype(self) -> DType {
        self.wrapped_dtype()
    }
    /// As f64.
    pub fn to_f64(self) -> f64 {
        match self {
            Scalar::Bool(b) => b as i64 as f64,
            Scalar::Int(i) => i as f64,
            Scalar::Float(f) => f,
        }
    }
    /// As i64 (floats truncate toward zero, like a C cast).
    pub fn to_i64(self) -> i64 {
        match self {
            Scalar::Bool(b) => b as i64,
            Scalar::Int(i) => i,
            Scalar::Float(f) => f as i64,
        }
    }
    /// True if this is a float.
    pub fn is_float(self) -> bool {
        matches!(self, Scalar::Float(_))
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{}", if *b { "True" } else { "False" }),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Float(x) => write!(f, "{}", crate::dtype::format_python_float(*x)),
        }
    }
}

impl From<f64> for Scalar {
    fn from(v: f64) -> Self {
        Scalar::Float(v)
    }
}
impl From<f32> for Scalar {
    fn from(v: f32) -> Self {
        Scalar::Float(v as f64)
    }
}
impl From<i64> for Scalar {
    fn from(v: i64) -> Self {
        Scalar::Int(v)
    }
}
impl From<i32> for Scalar {
    fn from(v: i32) -> Self {
        Scalar::Int(v as i64)
    }
}
impl From<bool> for Scalar {
    fn from(v: bool) -> Self {
        Scalar::Bool(v)
    }
}

/// Formats a float the way Python's `repr(float)` does (`1.0`, `0.1`, `1e-05`, `inf`, `nan`).
pub fn format_python_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // Shortest round-trip digits, then Python's choice between fixed and scientific notation.
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("exponent is an integer");
    if (-4..16).contains(&exp) {
        let s = format!("{x}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// Which operands decide the result dtype, following `c10::ResultTypeState`.
#[derive(Debug, Default, Clone, Copy)]
pub struct ResultTypeState {
    dim_result: Option<DType>,
    zero_result: Option<DType>,
    wrapped_result: Option<DType>,
}

fn promote_opt(a: Option<DType>, b: DType) -> Option<DType> {
    Some(match a {
        None => b,
        Some(a) => promote_types(a, b),
    })
}

fn combine_categories(higher: Option<DType>, lower: Option<DType>) -> Option<DType> {
    let Some(h) = higher else { return lower };
    if h.is_complex() {
        return Some(h);
    }
    if let Some(l) = lower.filter(|l| l.is_complex()) {
        // A floating higher category keeps its value type (f64 tensor * complex64 0-d = complex128);
        // an integral one takes the complex type. (PyTorch gives f16/bf16 its ComplexHalf twins, which
        // oxport lacks: they promote through f32 to complex64 here.)
        return Some(if h.is_floating_point() {
            if h == DType::F64 {
                DType::C128
            } else {
                DType::C64
            }
        } else {
            l
        });
    }
    if h.is_floating_point() {
        return Some(h);
    }
    match lower {
        Some(l) if h == DType::Bool || l.is_floating_point() => Some(promote_types(h, l)),
        _ => Some(h),
    }
}

impl ResultTypeState {
    /// Adds a tensor operand of rank `dim`.
    pub fn add_tensor(&mut self, dtype: DType, dim: usize) {
        if dim > 0 {
            self.dim_result = promote_opt(self.dim_result, dtype);
        } else {
            self.zero_result = promote_opt(self.zero_result, dtype);
        }
    }
    /// Adds a Python number ("wrapped number") operand.
    pub fn add_scalar(&mut self, s: Scalar) {
        self.wrapped_result = promote_opt(self.wrapped_result, s.wrapped_dtype());
    }
    /// The result dtype (`torch.result_type`).
    pub fn result(&self) -> DType {
        combine_categories(
            self.dim_result,
            combine_categories(self.zero_result, self.wrapped_result),
        )
        .unwrap_or(DType::F32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn codes_match_schema_yaml() {
        assert_eq!(DType::F32.code(), 7);
        assert_eq!(DType::I64.code(), 5);
        assert_eq!(DType::Bool.code(), 12);
        assert_eq!(DType::from_code(13), Some(DType::BF16));
    }
    #[test]
    fn promotion() {
        use DType::*;
        assert_eq!(promote_types(U8, I8), I16);
        assert_eq!(promote_types(F16, BF16), F32);
        assert_eq!(promote_types(I64, F16), F16);
        assert_eq!(promote_types(Bool, U8), U8);
        let mut s = ResultTypeState::default();
        s.add_tensor(I32, 2);
        s.add_scalar(Scalar::Float(2.5));
        assert_eq!(s.result(), F32);
        let mut s = ResultTypeState::default();
        s.add_tensor(F16, 2);
        s.add_tensor(F64, 0);
        assert_eq!(s.result(), F16);
        let mut s = ResultTypeState::default();
        s.add_tensor(Bool, 1);
        s.add_scalar(Scalar::Int(2));
        assert_eq!(s.result(), I64);
    }
    #[test]
    fn complex_promotion() {
        use DType::*;
        // Expected values from torch.promote_types / torch.result_type (torch 2.15).
        assert_eq!(promote_types(C64, F64), C128);
        assert_eq!(promote_types(C64, I64), C64);
        assert_eq!(promote_types(F16, C64), C64);
        assert_eq!(promote_types(BF16, C128), C128);
        assert_eq!(promote_types(Bool, C64), C64);
        let mut s = ResultTypeState::default();
        s.add_tensor(F64, 1);
        s.add_tensor(C64, 0);
        assert_eq!(s.result(), C128);
        let mut s = ResultTypeState::default();
        s.add_tensor(C64, 1);
        s.add_tensor(F64, 0);
        assert_eq!(s.result(), C64);
        let mut s = ResultTypeState::default();
        s.add_tensor(I64, 1);
        s.add_tensor(C128, 0);
        assert_eq!(s.result(), C128);
        let mut s = ResultTypeState::default();
        s.add_tensor(C64, 1);
        s.add_tensor(F64, 1);
        assert_eq!(s.result(), C128);
        assert_eq!(DType::from_code(10), Some(C64));
        assert_eq!(DType::from_c10_code(9), Some(C64));
        assert_eq!(C128.itemsize(), 16);
    }
    #[test]
    fn python_float_repr() {
        assert_eq!(format_python_float(1.0), "1.0");
        assert_eq!(format_python_float(1e-5), "1e-05");
        assert_eq!(format_python_float(0.1), "0.1");
        assert_eq!(format_python_float(1e16), "1e+16");
        assert_eq!(format_python_float(-2.5), "-2.5");
    }
}
