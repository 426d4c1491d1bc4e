//! Typed buffers and the [`Element`] trait that maps Rust types to dtypes.
use crate::dtype::DType;
use half::{bf16, f16};
use num_complex::{Complex32, Complex64};

/// The bytes of a storage, typed by dtype (keeps alignment right and kernels safe).
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum Buffer {
    U8(Vec<u8>),
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F16(Vec<f16>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    C64(Vec<Complex32>),
    C128(Vec<Complex64>),
    Bool(Vec<bool>),
    BF16(Vec<bf16>),
}

impl Buffer {
    /// The buffer's dtype.
    pub fn dtype(&self) -> DType {
        match self {
            Buffer::U8(_) => DType::U8,
            Buffer::I8(_) => DType::I8,
            Buffer::I16(_) => DType::I16,
            Buffer::I32(_) => DType::I32,
            Buffer::I64(_) => DType::I64,
            Buffer::F16(_) => DType::F16,
            Buffer::F32(_) => DType::F32,
            Buffer::F64(_) => DType::F64,
            Buffer::C64(_) => DType::C64,
            Buffer::C128(_) => DType::C128,
            Buffer::Bool(_) => DType::Bool,
            Buffer::BF16(_) => DType::BF16,
        }
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        crate::dispatch_buffer!(self, v => v.len())
    }
    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A zero-filled buffer.
    pub fn zeros(dtype: DType, n: usize) -> Buffer {
        crate::dispatch_dtype!(dtype, T => T::into_buffer(vec![T::default(); n]))
    }

    /// A buffer from raw little-endian element bytes (PyTorch's storage layout; bool is one byte,
    /// non-zero = true). `bytes.len()` must be a multiple of the element size.
    pub fn from_le_bytes(dtype: DType, bytes: &[u8]) -> crate::Result<Buffer> {
        let size = dtype.itemsize();
        if !bytes.len().is_multiple_of(size) {
            return Err(crate::Error::Io(format!(
                "{} bytes is not a whole number of {} elements ({size} bytes each)",
                bytes.len(),
                dtype.name()
            )));
        }
        Ok(crate::dispatch_dtype!(dtype, T => T::into_buffer(
            bytes.chunks_exact(size).map(<T as LeBytes>::from_le).collect()
        )))
    }

    /// The raw little-endian element bytes (inverse of [`Buffer::from_le_bytes`]).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        crate::dispatch_buffer!(self, v => {
            let mut out = Vec::with_capacity(std::mem::size_of_val(v.as_slice()));
            for x in v {
                x.append_le(&mut out);
            }
            out
        })
    }
}

/// Runs `$body` with `$v` bound to the typed `Vec` inside a [`Buffer`] (or `&mut` when given `mut`).
#[macro_export]
#[doc(hidden)]
macro_rules! dispatch_buffer {
    ($buf:expr, $v:ident => $body:expr) => {
        match $buf {
            $crate::tensor::Buffer::U8($v) => $body,
            $crate::tensor::Buffer::I8($v) => $body,
            $crate::tensor::Buffer::I16($v) => $body,
            $crate::tensor::Buffer::I32($v) => $body,
            $crate::tensor::Buffer::I64($v) => $body,
            $crate::tensor::Buffer::F16($v) => $body,
            $crate::tensor::Buffer::F32($v) => $body,
            $crate::tensor::Buffer::F64($v) => $body,
            $crate::tensor::Buffer::C64($v) => $body,
            $crate::tensor::Buffer::C128($v) => $body,
            $crate::tensor::Buffer::Bool($v) => $body,
            $crate::tensor::Buffer::BF16($v) => $body,
        }
    };
}

/// Runs `$body` with the type alias `$T` set to the Rust element type of `$dtype` — every dtype,
/// complex ones included (their [`Element`] conversions to real numbers take the real part: use it
/// for data movement; see [`dispatch_real_dtype!`] for code that orders or does integer math).
#[macro_export]
#[doc(hidden)]
macro_rules! dispatch_dtype {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::dtype::DType::C64 => {
                type $T = $crate::num_complex::Complex32;
                $body
            }
            $crate::dtype::DType::C128 => {
                type $T = $crate::num_complex::Complex64;
                $body
            }
            d => $crate::dispatch_real_dtype!(d, $T => $body, complex => unreachable!("complex dtypes are matched above")),
        }
    };
}

/// Runs `$body` with the type alias `$T` set to the Rust element type of `$dtype` (a [`RealElement`],
/// which is ordered) for the real dtypes, and evaluates `$complex` for the complex ones — an error
/// naming the op, for code that cannot take complex numbers.
#[macro_export]
#[doc(hidden)]
macro_rules! dispatch_real_dtype {
    ($dtype:expr, $T:ident => $body:expr, complex => $complex:expr) => {
        match $dtype {
            $crate::dtype::DType::C64 | $crate::dtype::DType::C128 => $complex,
            $crate::dtype::DType::U8 => {
                type $T = u8;
                $body
            }
            $crate::dtype::DType::I8 => {
                type $T = i8;
                $body
            }
            $crate::dtype::DType::I16 => {
                type $T = i16;
                $body
            }
            $crate::dtype::DType::I32 => {
                type $T = i32;
                $body
            }
            $crate::dtype::DType::I64 => {
                type $T = i64;
                $body
            }
            $crate::dtype::DType::F16 => {
                type $T = half::f16;
                $body
            }
            $crate::dtype::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::dtype::DType::F64 => {
                type $T = f64;
                $body
            }
            $crate::dtype::DType::Bool => {
                type $T = bool;
                $body
            }
            $crate::dtype::DType::BF16 => {
                type $T = half::bf16;
                $body
            }
        }
    };
}

/// A Rust type that is a tensor element. Complex elements convert to and from real numbers by their
/// real part (PyTorch's cast from complex to real drops the imaginary part).
pub trait Element: Copy + Send + Sync + Default + std::fmt::Debug + 'static {
    /// The dtype of this element type.
    const DTYPE: DType;
    /// True for floating-point types (not complex).
    const IS_FLOAT: bool;
    /// True for complex types.
    const IS_COMPLEX: bool = false;
    /// As a complex number (real types: imaginary part 0).
    fn to_complex(self) -> Complex64 {
        Complex64::new(self.to_f64(), 0.0)
    }
    /// From a complex number (real types: the real part, converted like [`Element::from_f64`]).
    fn from_complex(v: Complex64) -> Self {
        Self::from_f64(v.re)
    }
    /// The typed data, if the buffer has this type.
    fn slice(b: &Buffer) -> Option<&[Self]>;
    /// The typed data, mutably, if the buffer has this type.
    fn slice_mut(b: &mut Buffer) -> Option<&mut [Self]>;
    /// Wraps a vector into a buffer.
    fn into_buffer(v: Vec<Self>) -> Buffer;
    /// Takes the vector back out of a buffer of this type.
    fn from_buffer(b: Buffer) -> Option<Vec<Self>>;
    /// Converts to f64 (bool → 0/1).
    fn to_f64(self) -> f64;
    /// Converts from f64 (C-style cast for integers).
    fn from_f64(v: f64) -> Self;
    /// Converts to i64 (C-style truncation for floats).
    fn to_i64(self) -> i64;
    /// Converts from i64 (wrapping for narrower integers).
    fn from_i64(v: i64) -> Self;
    /// `value != 0` (NaN is non-zero, as in C).
    fn is_nonzero(self) -> bool;
}

/// The [`Element`] methods that move between a `Vec` / slice and its `Buffer` variant.
macro_rules! buffer_access {
    ($variant:ident) => {
        fn slice(b: &Buffer) -> Option<&[Self]> {
            match b {
                Buffer::$variant(v) => Some(v),
                _ => None,
            }
        }
        fn slice_mut(b: &mut Buffer) -> Option<&mut [Self]> {
            match b {
                Buffer::$variant(v) => Some(v),
                _ => None,
            }
        }
        fn into_buffer(v: Vec<Self>) -> Buffer {
            Buffer::$variant(v)
        }
        fn from_buffer(b: Buffer) -> Option<Vec<Self>> {
            match b {
                Buffer::$variant(v) => Some(v),
                _ => None,
            }
        }
    };
}

macro_rules! impl_int_element {
    ($t:ty, $variant:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            const IS_FLOAT: bool = false;
            buffer_access!($variant);
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(v: f64) -> Self {
                // C++ static_cast<int>(double) truncates; go through i64 so narrow types wrap like C.
                (v as i64) as $t
            }
            fn to_i64(self) -> i64 {
                self as i64
            }
            fn from_i64(v: i64) -> Self {
                v as $t
            }
            fn is_nonzero(self) -> bool {
                self != 0
            }
        }
    };
}
impl_int_element!(u8, U8);
impl_int_element!(i8, I8);
impl_int_element!(i16, I16);
impl_int_element!(i32, I32);
impl_int_element!(i64, I64);

macro_rules! impl_float_element {
    ($t:ty, $variant:ident, $to:expr, $from:expr) => {
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            const IS_FLOAT: bool = true;
            buffer_access!($variant);
            fn to_f64(self) -> f64 {
                let f: fn($t) -> f64 = $to;
                f(self)
            }
            fn from_f64(v: f64) -> Self {
                let f: fn(f64) -> $t = $from;
                f(v)
            }
            fn to_i64(self) -> i64 {
                self.to_f64() as i64
            }
            fn from_i64(v: i64) -> Self {
                Self::from_f64(v as f64)
            }
            fn is_nonzero(self) -> bool {
                self.to_f64() != 0.0
            }
        }
    };
}
impl_float_element!(f32, F32, |x| x as f64, |v| v as f32);
impl_float_element!(f64, F64, |x| x, |v| v);
// PyTorch converts double -> float -> half; mirror the double rounding.
impl_float_element!(f16, F16, |x| x.to_f64(), |v| f16::from_f32(v as f32));
impl_float_element!(bf16, BF16, |x| x.to_f64(), |v| bf16::from_f32(v as f32));

impl Element for bool {
    const DTYPE: DType = DType::Bool;
    const IS_FLOAT: bool = false;
    buffer_access!(Bool);
    fn to_f64(self) -> f64 {
        self as i64 as f64
    }
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
    fn to_i64(self) -> i64 {
        self as i64
    }
    fn from_i64(v: i64) -> Self {
        v != 0
    }
    fn is_nonzero(self) -> bool {
        self
    }
}

/// An element type with an order: every dtype but the complex ones.
pub trait RealElement: Element + PartialOrd {}
impl<T: Element + PartialOrd> RealElement for T {}

macro_rules! impl_complex_element {
    ($t:ty, $variant:ident, $f:ty) => {
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            const IS_FLOAT: bool = false;
            const IS_COMPLEX: bool = true;
            fn to_complex(self) -> Complex64 {
                Complex64::new(self.re as f64, self.im as f64)
            }
            fn from_complex(v: Complex64) -> Self {
                <$t>::new(v.re as $f, v.im as $f)
            }
            buffer_access!($variant);
            fn to_f64(self) -> f64 {
                self.re as f64
            }
            fn from_f64(v: f64) -> Self {
                <$t>::new(v as $f, 0.0)
            }
            fn to_i64(self) -> i64 {
                self.re as i64
            }
            fn from_i64(v: i64) -> Self {
                <$t>::new(v as $f, 0.0)
            }
            fn is_nonzero(self) -> bool {
                self.re != 0.0 || self.im != 0.0
            }
        }
    };
}
impl_complex_element!(Complex32, C64, f32);
impl_complex_element!(Complex64, C128, f64);

/// Converts one element between types with PyTorch's cast semantics (complex to real keeps the real
/// part; real to complex has imaginary part 0).
#[inline]
pub fn cast_element<S: Element, D: Element>(v: S) -> D {
    if D::IS_COMPLEX {
        if S::IS_COMPLEX || S::IS_FLOAT {
            D::from_complex(v.to_complex())
        } else {
            D::from_complex(Complex64::new(v.to_i64() as f64, 0.0))
        }
    } else if D::DTYPE == DType::Bool {
        D::from_i64(v.is_nonzero() as i64)
    } else if S::IS_FLOAT || S::IS_COMPLEX {
        if D::IS_FLOAT {
            D::from_f64(v.to_f64())
        } else {
            D::from_i64(v.to_f64() as i64)
        }
    } else if D::IS_FLOAT {
        D::from_f64(v.to_i64() as f64)
    } else {
        D::from_i64(v.to_i64())
    }
}

/// Little-endian byte conversion of an element.
pub trait LeBytes: Sized {
    /// From exactly `size_of::<Self>()` bytes.
    fn from_le(b: &[u8]) -> Self;
    /// Appends the bytes.
    fn append_le(&self, out: &mut Vec<u8>);
}

macro_rules! impl_le_bytes {
    ($($t:ty),*) => {$(
        impl LeBytes for $t {
            fn from_le(b: &[u8]) -> Self {
                <$t>::from_le_bytes(b.try_into().expect("chunk has the element size"))
            }
            fn append_le(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes())
            }
        }
    )*};
}
impl_le_bytes!(u8, i8, i16, i32, i64, f32, f64, f16, bf16);

macro_rules! impl_le_bytes_complex {
    ($($t:ty, $f:ty, $n:literal);*) => {$(
        impl LeBytes for $t {
            fn from_le(b: &[u8]) -> Self {
                let (re, im) = b.split_at($n);
                <$t>::new(<$f>::from_le(re), <$f>::from_le(im))
            }
            fn append_le(&self, out: &mut Vec<u8>) {
                self.re.append_le(out);
                self.im.append_le(out);
            }
        }
    )*};
}
impl_le_bytes_complex!(Complex32, f32, 4; Complex64, f64, 8);

impl LeBytes for bool {
    fn from_le(b: &[u8]) -> Self {
        b[0] != 0
    }
    fn append_le(&self, out: &mut Vec<u8>) {
        out.push(*self as u8)
    }
}
