//! Reading and writing NumPy `.npy` files (format versions 1.0, 2.0 and 3.0).
//!
//! This module is self-contained: it depends only on `std` and `thiserror`.
//!
//! # Supported arrays
//!
//! Only C-ordered arrays of the element types in [`NpyDtype`] are supported.
//! Array data in an [`NpyArray`] is always little-endian and in C (row-major)
//! order, regardless of how it was stored in the file.
//!
//! # Reading
//!
//! [`read_npy`] accepts versions 1.0, 2.0 and 3.0. The header dictionary is
//! parsed by a small hand-written parser for the Python-literal subset that
//! NumPy writes (`{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`):
//! keys may appear in any order, whitespace is free-form, strings may use
//! single or double quotes, the trailing comma is optional and Python 2 style
//! `L` suffixes on shape integers are accepted. The dictionary must contain
//! exactly the keys `descr`, `fortran_order` and `shape` (as NumPy requires),
//! each once.
//!
//! Accepted `descr` strings are `<f2 <f4 <f8 <c8 <c16 |i1 <i2 <i4 <i8 |u1 |b1`, plus
//! the equivalent spellings `<u1`, `<i1`, `?`, `b1` etc. (any byte-order
//! character is accepted for one-byte types). **Big-endian** descrs such as
//! `>f4` or `>i8` are accepted and the data is byte-swapped to little-endian on
//! read. `=`, `|` or no byte-order character mean the host's native order, as in
//! NumPy. Everything else (complex256, unsigned wider than one byte, strings,
//! structured dtypes, ...) is rejected with [`NpyError::UnsupportedDtype`].
//!
//! The header must be pure ASCII in every version. NumPy only writes non-ASCII
//! header bytes for structured dtypes with non-ASCII field names, which are
//! unsupported anyway.
//!
//! Reading never panics and never allocates memory in proportion to sizes
//! claimed by the header: the claimed header length and the shape are checked
//! against the actual input length before anything is allocated, and the data
//! length must match the shape exactly (trailing bytes are an error too).
//! As in NumPy, the product of the non-zero dimensions times the item size must
//! not exceed `isize::MAX`, so code using a returned shape can multiply
//! dimensions without overflow.
//!
//! # Writing
//!
//! [`write_npy`] reproduces the exact byte layout of `numpy.save`: format
//! version 1.0, keys sorted, the extra "growth axis" spaces NumPy appends, and
//! space padding so that magic + header length field + header is a multiple of
//! 64 bytes, terminated by `'\n'`. Like NumPy, it falls back to version 2.0 only
//! if the header would not fit in version 1.0's 16-bit length field (which
//! takes thousands of dimensions).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The magic string every `.npy` file starts with.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Alignment of the start of the data, as used by NumPy.
const ARRAY_ALIGN: usize = 64;

/// NumPy appends `GROWTH_AXIS_MAX_DIGITS - len(repr(shape[0]))` spaces to the
/// header dict so the first dimension can be rewritten in place.
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

/// Maximum nesting depth of tuples/lists accepted in a header.
const MAX_NESTING: usize = 32;

/// Element type of an .npy array, as named by NumPy descr strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpyDtype {
    /// IEEE 754 half precision float (`<f2`).
    F16,
    /// IEEE 754 single precision float (`<f4`).
    F32,
    /// IEEE 754 double precision float (`<f8`).
    F64,
    /// Complex of two single precision floats, real then imaginary (`<c8`).
    C64,
    /// Complex of two double precision floats, real then imaginary (`<c16`).
    C128,
    /// Signed 8-bit integer (`|i1`).
    I8,
    /// Signed 16-bit integer (`<i2`).
    I16,
    /// Signed 32-bit integer (`<i4`).
    I32,
    /// Signed 64-bit integer (`<i8`).
    I64,
    /// Unsigned 8-bit integer (`|u1`).
    U8,
    /// Boolean, one byte per element, 0 or 1 (`|b1`).
    Bool,
}

impl NpyDtype {
    /// The NumPy descr string `numpy.save` writes for this type, e.g. `"<f4"`,
    /// `"|u1"` or `"|b1"`.
    pub fn descr(&self) -> &'static str {
        match self {
            NpyDtype::F16 => "<f2",
            NpyDtype::F32 => "<f4",
            NpyDtype::F64 => "<f8",
            NpyDtype::C64 => "<c8",
            NpyDtype::C128 => "<c16",
            NpyDtype::I8 => "|i1",
            NpyDtype::I16 => "<i2",
            NpyDtype::I32 => "<i4",
            NpyDtype::I64 => "<i8",
            NpyDtype::U8 => "|u1",
            NpyDtype::Bool => "|b1",
        }
    }

    /// Size of one element in bytes.
    pub fn itemsize(&self) -> usize {
        match self {
            NpyDtype::I8 | NpyDtype::U8 | NpyDtype::Bool => 1,
            NpyDtype::F16 | NpyDtype::I16 => 2,
            NpyDtype::F32 | NpyDtype::I32 => 4,
            NpyDtype::F64 | NpyDtype::I64 | NpyDtype::C64 => 8,
            NpyDtype::C128 => 16,
        }
    }

    /// The size of the scalars whose bytes a big-endian file swaps: a complex number is two floats,
    /// each swapped on its own.
    fn swap_unit(&self) -> usize {
        match self {
            NpyDtype::C64 => 4,
            NpyDtype::C128 => 8,
            d => d.itemsize(),
        }
    }

    /// Parses a descr string. Returns the dtype and whether the data on disk
    /// is big-endian (and so needs byte-swapping), or `None` if unsupported.
    fn from_descr(descr: &str) -> Option<(NpyDtype, bool)> {
        let (order, body) = match descr.as_bytes().first() {
            Some(&c @ (b'<' | b'>' | b'|' | b'=')) => (Some(c), &descr[1..]),
            _ => (None, descr),
        };
        let dtype = match body {
            "f2" => NpyDtype::F16,
            "f4" => NpyDtype::F32,
            "f8" => NpyDtype::F64,
            "c8" => NpyDtype::C64,
            "c16" => NpyDtype::C128,
            "i1" => NpyDtype::I8,
            "i2" => NpyDtype::I16,
            "i4" => NpyDtype::I32,
            "i8" => NpyDtype::I64,
            "u1" => NpyDtype::U8,
            "b1" | "?" => NpyDtype::Bool,
            _ => return None,
        };
        let big_endian = match order {
            Some(b'<') => false,
            Some(b'>') => true,
            // '=', '|' and no prefix mean native order in NumPy.
            _ => cfg!(target_endian = "big"),
        };
        Some((dtype, big_endian && dtype.itemsize() > 1))
    }
}

/// An n-dimensional array as stored in an `.npy` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyArray {
    /// Element type.
    pub dtype: NpyDtype,
    /// Dimensions; empty for a 0-d (scalar) array.
    pub shape: Vec<usize>,
    /// Raw element bytes, little-endian, in C (row-major) order. Its length
    /// must be `shape.iter().product() * dtype.itemsize()`.
    pub data: Vec<u8>,
}

impl NpyArray {
    /// Checks that `data.len()` matches `shape` and `dtype` exactly.
    ///
    /// Returns [`NpyError::ShapeOverflow`] or [`NpyError::DataLength`]
    /// otherwise.
    pub fn validate(&self) -> Result<(), NpyError> {
        let expected =
            byte_size(self.dtype, &self.shape).ok_or_else(|| NpyError::ShapeOverflow {
                shape: format!("{:?}", self.shape),
                descr: self.dtype.descr().to_string(),
            })?;
        if expected != self.data.len() {
            return Err(NpyError::DataLength {
                actual: self.data.len(),
                shape: self.shape.clone(),
                descr: self.dtype.descr().to_string(),
                expected,
            });
        }
        Ok(())
    }
}

/// Errors from reading or writing `.npy` files.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    /// Reading or writing the file failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The input does not start with `\x93NUMPY`.
    #[error("not a .npy file: bad magic string (expected b\"\\x93NUMPY\")")]
    BadMagic,
    /// The input ends before the end of the header.
    #[error(
        "truncated .npy header: need at least {needed} bytes but input is only {actual} bytes"
    )]
    TruncatedHeader {
        /// Bytes needed to read the header (so far as known).
        needed: usize,
        /// Length of the input.
        actual: usize,
    },
    /// The format version is not 1.0, 2.0 or 3.0.
    #[error("unsupported .npy format version {major}.{minor} (supported: 1.0, 2.0, 3.0)")]
    UnsupportedVersion {
        /// Major version byte.
        major: u8,
        /// Minor version byte.
        minor: u8,
    },
    /// The header's `descr` names an element type that is not supported.
    /// Holds the descr as written (its Python source text if not a string).
    #[error("unsupported .npy dtype '{0}'")]
    UnsupportedDtype(String),
    /// The header has `'fortran_order': True`.
    #[error("fortran-ordered .npy is not supported: save with np.ascontiguousarray")]
    FortranOrder,
    /// The size in bytes described by the shape exceeds `isize::MAX` (the
    /// largest possible allocation), counting only non-zero dimensions as
    /// NumPy does; this includes dimensions that do not fit in `usize`.
    #[error(".npy shape {shape} of {descr} is too large: its size in bytes exceeds isize::MAX")]
    ShapeOverflow {
        /// The shape, as written in the header.
        shape: String,
        /// The descr, as written in the header.
        descr: String,
    },
    /// The data length does not match the shape exactly.
    #[error("data is {actual} bytes but shape {shape:?} of {descr} needs {expected} bytes")]
    DataLength {
        /// Actual number of data bytes.
        actual: usize,
        /// The array shape.
        shape: Vec<usize>,
        /// The descr, as written in the header.
        descr: String,
        /// Number of bytes the shape and dtype require.
        expected: usize,
    },
    /// The header contains a non-ASCII byte.
    #[error(".npy header is not ASCII: byte 0x{byte:02x} at header offset {offset}")]
    NonAsciiHeader {
        /// The offending byte.
        byte: u8,
        /// Its offset within the header dict.
        offset: usize,
    },
    /// The header dict could not be parsed or has invalid contents.
    #[error("invalid .npy header: {0}")]
    InvalidHeader(String),
}

/// `product(shape) * itemsize`, or `None` if too large.
///
/// Like NumPy, the product of the *non-zero* dimensions times the item size
/// must not exceed `isize::MAX` even when some dimension is zero, so callers
/// can compute strides and sub-products without overflow.
fn byte_size(dtype: NpyDtype, shape: &[usize]) -> Option<usize> {
    let nonzero = shape
        .iter()
        .filter(|&&d| d != 0)
        .try_fold(dtype.itemsize(), |acc, &d| acc.checked_mul(d))?;
    if nonzero > isize::MAX as usize {
        return None;
    }
    Some(if shape.contains(&0) { 0 } else { nonzero })
}

/// The result of parsing everything but the data.
struct Parsed {
    dtype: NpyDtype,
    shape: Vec<usize>,
    /// Offset of the first data byte.
    data_offset: usize,
    /// Whether the data is big-endian and must be swapped.
    swap: bool,
}

/// Parses and validates the preamble and header, including the check that the
/// data length matches the shape exactly.
fn parse(bytes: &[u8]) -> Result<Parsed, NpyError> {
    let truncated = |needed: usize| NpyError::TruncatedHeader {
        needed,
        actual: bytes.len(),
    };
    if bytes.len() < MAGIC.len() {
        return Err(if MAGIC.starts_with(bytes) {
            truncated(MAGIC.len() + 2)
        } else {
            NpyError::BadMagic
        });
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err(NpyError::BadMagic);
    }
    let (major, minor) = match bytes.get(6..8) {
        Some(v) => (v[0], v[1]),
        None => return Err(truncated(8)),
    };
    let len_size = match (major, minor) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        _ => return Err(NpyError::UnsupportedVersion { major, minor }),
    };
    let header_start = 8 + len_size;
    let len_bytes = bytes.get(8..header_start).ok_or(truncated(header_start))?;
    let header_len = if len_size == 2 {
        u16::from_le_bytes([len_bytes[0], len_bytes[1]]) as usize
    } else {
        let n = u32::from_le_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
        usize::try_from(n).map_err(|_| truncated(usize::MAX))?
    };
    let data_offset = header_start
        .checked_add(header_len)
        .ok_or(truncated(usize::MAX))?;
    let header = bytes
        .get(header_start..data_offset)
        .ok_or(truncated(data_offset))?;
    if let Some(offset) = header.iter().position(|b| !b.is_ascii()) {
        return Err(NpyError::NonAsciiHeader {
            byte: header[offset],
            offset,
        });
    }
    // All bytes are ASCII, so this cannot fail.
    let header = std::str::from_utf8(header)
        .map_err(|_| NpyError::InvalidHeader("header is not valid text".into()))?;
    let dict = parse_header_dict(header)?;

    let (dtype, swap) = NpyDtype::from_descr(&dict.descr)
        .ok_or_else(|| NpyError::UnsupportedDtype(dict.descr.clone()))?;
    if dict.fortran_order {
        return Err(NpyError::FortranOrder);
    }
    let overflow = || NpyError::ShapeOverflow {
        shape: dict.shape_text.clone(),
        descr: dict.descr.clone(),
    };
    let shape = dict
        .shape
        .iter()
        .map(|d| d.ok_or_else(overflow))
        .collect::<Result<Vec<usize>, _>>()?;
    let expected = byte_size(dtype, &shape).ok_or_else(overflow)?;
    let actual = bytes.len() - data_offset;
    if actual != expected {
        return Err(NpyError::DataLength {
            actual,
            shape,
            descr: dict.descr,
            expected,
        });
    }
    Ok(Parsed {
        dtype,
        shape,
        data_offset,
        swap,
    })
}

/// Reverses the bytes of every element in place.
fn swap_bytes(data: &mut [u8], itemsize: usize) {
    if itemsize > 1 {
        for item in data.chunks_exact_mut(itemsize) {
            item.reverse();
        }
    }
}

/// Parses an in-memory `.npy` file (version 1.0, 2.0 or 3.0).
///
/// See the [module documentation](self) for the accepted dtypes and header
/// syntax. The returned data is little-endian (big-endian input is swapped).
pub fn read_npy(bytes: &[u8]) -> Result<NpyArray, NpyError> {
    let p = parse(bytes)?;
    let mut data = bytes[p.data_offset..].to_vec();
    if p.swap {
        swap_bytes(&mut data, p.dtype.swap_unit());
    }
    Ok(NpyArray {
        dtype: p.dtype,
        shape: p.shape,
        data,
    })
}

/// Reads and parses a `.npy` file from disk. See [`read_npy`].
pub fn read_npy_file(path: &Path) -> Result<NpyArray, NpyError> {
    let mut bytes = std::fs::read(path).map_err(|source| NpyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let p = parse(&bytes)?;
    // Reuse the file buffer instead of copying the data.
    bytes.drain(..p.data_offset);
    if p.swap {
        swap_bytes(&mut bytes, p.dtype.swap_unit());
    }
    Ok(NpyArray {
        dtype: p.dtype,
        shape: p.shape,
        data: bytes,
    })
}

/// Builds the magic string, version, header length and header dict exactly as
/// `numpy.save` does.
fn encode_header(dtype: NpyDtype, shape: &[usize]) -> Vec<u8> {
    let mut dict = String::new();
    // Python's repr of a tuple: (), (5,), (2, 3).
    let shape_repr = match shape {
        [] => "()".to_string(),
        [d] => format!("({d},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", parts.join(", "))
        }
    };
    // Infallible: writing to a String.
    let _ = write!(
        dict,
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        dtype.descr(),
        shape_repr
    );
    if let Some(first) = shape.first() {
        let digits = first.to_string().len();
        dict.push_str(&" ".repeat(GROWTH_AXIS_MAX_DIGITS.saturating_sub(digits)));
    }
    // +1 for the terminating newline. NumPy always adds 1..=64 pad bytes
    // (64 when already aligned), which we reproduce.
    let hlen = dict.len() + 1;
    let encode = |major: u8, len_size: usize| -> Option<Vec<u8>> {
        let prefix = MAGIC.len() + 2 + len_size;
        let padlen = ARRAY_ALIGN - (prefix + hlen) % ARRAY_ALIGN;
        let total = hlen + padlen;
        let mut out = Vec::with_capacity(prefix + total);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[major, 0]);
        if len_size == 2 {
            out.extend_from_slice(&u16::try_from(total).ok()?.to_le_bytes());
        } else {
            out.extend_from_slice(&u32::try_from(total).ok()?.to_le_bytes());
        }
        out.extend_from_slice(dict.as_bytes());
        out.resize(out.len() + padlen, b' ');
        out.push(b'\n');
        Some(out)
    };
    encode(1, 2)
        .or_else(|| encode(2, 4))
        // A header over 4 GiB would need billions of dimensions; a Vec that
        // large cannot exist alongside it, so this is unreachable in practice.
        .unwrap_or_default()
}

/// Serializes an array to `.npy` bytes exactly as `numpy.save` would
/// (format version 1.0; 2.0 only if the header exceeds 65535 bytes).
///
/// The data is written as-is: if `arr.data.len()` does not match the shape
/// (see [`NpyArray::validate`]) the result will be rejected by readers.
pub fn write_npy(arr: &NpyArray) -> Vec<u8> {
    let mut out = encode_header(arr.dtype, &arr.shape);
    out.extend_from_slice(&arr.data);
    out
}

/// Writes an array to a `.npy` file (see [`write_npy`]), after checking with
/// [`NpyArray::validate`] that its data length matches its shape.
pub fn write_npy_file(path: &Path, arr: &NpyArray) -> Result<(), NpyError> {
    arr.validate()?;
    let io_err = |source| NpyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::create(path).map_err(io_err)?;
    file.write_all(&encode_header(arr.dtype, &arr.shape))
        .map_err(io_err)?;
    file.write_all(&arr.data).map_err(io_err)?;
    file.flush().map_err(io_err)
}

// ---------------------------------------------------------------------------
// Header dict parser
// ---------------------------------------------------------------------------

/// The validated contents of a header dict.
struct HeaderDict {
    /// The descr string, or the Python source text of a non-string descr.
    descr: String,
    fortran_order: bool,
    /// Dimensions; `None` where a dimension does not fit in `usize`.
    shape: Vec<Option<usize>>,
    /// The shape's Python source text, for error messages.
    shape_text: String,
}

/// A Python literal value, as far as `.npy` headers need them.
enum Value {
    Str(String),
    Bool(bool),
    None,
    /// An integer: `negative`, and the magnitude or `None` if > `usize::MAX`.
    Int(bool, Option<usize>),
    Tuple(Vec<Value>),
    /// A list; its items are parsed but not needed.
    List,
}

/// A recursive-descent parser over an ASCII header string.
struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
}

fn invalid(msg: impl Into<String>) -> NpyError {
    NpyError::InvalidHeader(msg.into())
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c') = self.peek() {
            self.pos += 1;
        }
    }

    /// Error describing what was found at the current position.
    fn unexpected(&self, expected: &str) -> NpyError {
        match self.peek() {
            None => invalid(format!("expected {expected} but the header ended")),
            Some(c) => invalid(format!(
                "expected {expected} at offset {} but found {:?}",
                self.pos, c as char
            )),
        }
    }

    /// Consumes `c` (after whitespace) or fails.
    fn expect(&mut self, c: u8, what: &str) -> Result<(), NpyError> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    /// Parses a value and returns it with its source text.
    fn value(&mut self) -> Result<(Value, &'a str), NpyError> {
        self.skip_ws();
        let start = self.pos;
        let value = match self.peek() {
            Some(q @ (b'\'' | b'"')) => Value::Str(self.string(q)?),
            Some(b'(') => self.sequence(b')')?,
            Some(b'[') => self.sequence(b']')?,
            Some(b'-' | b'+' | b'0'..=b'9') => self.int()?,
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                let ident = self.take_while(|c| c.is_ascii_alphanumeric() || c == b'_');
                match ident {
                    "True" => Value::Bool(true),
                    "False" => Value::Bool(false),
                    "None" => Value::None,
                    _ => {
                        return Err(invalid(format!(
                            "unexpected name '{ident}' at offset {start}"
                        )));
                    }
                }
            }
            _ => return Err(self.unexpected("a value")),
        };
        Ok((value, &self.src[start..self.pos]))
    }

    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&pred) {
            self.pos += 1;
        }
        &self.src[start..self.pos]
    }

    /// Parses a quoted string starting at the opening quote `q`.
    fn string(&mut self, q: u8) -> Result<String, NpyError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None | Some(b'\n') => {
                    return Err(invalid(format!("unterminated string at offset {start}")));
                }
                Some(c) if c == q => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = self
                        .peek()
                        .ok_or_else(|| invalid(format!("unterminated string at offset {start}")))?;
                    self.pos += 1;
                    match c {
                        b'\\' | b'\'' | b'"' => out.push(c as char),
                        b'n' => out.push('\n'),
                        b't' => out.push('\t'),
                        // Python keeps unknown escapes verbatim.
                        _ => {
                            out.push('\\');
                            out.push(c as char);
                        }
                    }
                }
                Some(c) => {
                    self.pos += 1;
                    out.push(c as char);
                }
            }
        }
    }

    /// Parses an integer literal (optional sign, digits, optional `L`).
    fn int(&mut self) -> Result<Value, NpyError> {
        let start = self.pos;
        let negative = match self.peek() {
            Some(b'-') => {
                self.pos += 1;
                true
            }
            Some(b'+') => {
                self.pos += 1;
                false
            }
            _ => false,
        };
        self.skip_ws();
        let digits = self.take_while(|c| c.is_ascii_digit());
        if digits.is_empty() {
            return Err(invalid(format!("malformed number at offset {start}")));
        }
        if matches!(self.peek(), Some(b'L' | b'l')) {
            self.pos += 1; // Python 2 long suffix
        }
        if self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_')
        {
            return Err(invalid(format!("malformed number at offset {start}")));
        }
        // Only ASCII digits remain, so the only possible error is overflow.
        Ok(Value::Int(negative, digits.parse::<usize>().ok()))
    }

    /// Parses a tuple or list starting at its opening bracket. A parenthesized
    /// single value without a trailing comma is that value, as in Python.
    fn sequence(&mut self, close: u8) -> Result<Value, NpyError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(invalid("values are nested too deeply"));
        }
        self.pos += 1;
        let mut items = Vec::new();
        let mut trailing_comma = false;
        loop {
            self.skip_ws();
            if self.peek() == Some(close) {
                self.pos += 1;
                break;
            }
            items.push(self.value()?.0);
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    trailing_comma = true;
                }
                Some(c) if c == close => {
                    self.pos += 1;
                    trailing_comma = false;
                    break;
                }
                _ => return Err(self.unexpected(&format!("',' or '{}'", close as char))),
            }
        }
        self.depth -= 1;
        Ok(match close {
            b')' if items.len() == 1 && !trailing_comma => items.pop().unwrap_or(Value::None),
            b')' => Value::Tuple(items),
            _ => Value::List,
        })
    }
}

/// Parses and validates the header dict.
fn parse_header_dict(src: &str) -> Result<HeaderDict, NpyError> {
    let mut p = Parser {
        src,
        pos: 0,
        depth: 0,
    };
    p.expect(b'{', "'{'")?;
    let mut descr: Option<(Value, &str)> = None;
    let mut fortran: Option<(Value, &str)> = None;
    let mut shape: Option<(Value, &str)> = None;
    loop {
        p.skip_ws();
        if p.peek() == Some(b'}') {
            p.pos += 1;
            break;
        }
        let key_pos = p.pos;
        let key = match p.value()? {
            (Value::Str(s), _) => s,
            (_, text) => return Err(invalid(format!("dict key {text} is not a string"))),
        };
        p.expect(b':', "':'")?;
        let (value, text) = p.value()?;
        let duplicate = match key.as_str() {
            "descr" => descr.replace((value, text)).is_some(),
            "fortran_order" => fortran.replace((value, text)).is_some(),
            "shape" => shape.replace((value, text)).is_some(),
            _ => {
                return Err(invalid(format!(
                    "unexpected key '{key}' at offset {key_pos}"
                )));
            }
        };
        if duplicate {
            return Err(invalid(format!(
                "duplicate key '{key}' at offset {key_pos}"
            )));
        }
        p.skip_ws();
        match p.peek() {
            Some(b',') => p.pos += 1,
            Some(b'}') => {
                p.pos += 1;
                break;
            }
            _ => return Err(p.unexpected("',' or '}'")),
        }
    }
    p.skip_ws();
    if p.pos != src.len() {
        return Err(p.unexpected("end of header after '}'"));
    }

    let missing = |k: &str| invalid(format!("missing key '{k}'"));
    let descr = match descr.ok_or_else(|| missing("descr"))? {
        (Value::Str(s), _) => s,
        (_, text) => text.to_string(),
    };
    let fortran_order = match fortran.ok_or_else(|| missing("fortran_order"))? {
        (Value::Bool(b), _) => b,
        (_, text) => {
            return Err(invalid(format!(
                "'fortran_order' must be True or False, got {text}"
            )));
        }
    };
    let (shape, shape_text) = shape.ok_or_else(|| missing("shape"))?;
    let not_shape = || {
        invalid(format!(
            "'shape' must be a tuple of non-negative ints, got {shape_text}"
        ))
    };
    let dims = match shape {
        Value::Tuple(items) => items
            .into_iter()
            .map(|v| match v {
                Value::Int(false, d) | Value::Int(true, d @ Some(0)) => Ok(d),
                _ => Err(not_shape()),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(not_shape()),
    };
    Ok(HeaderDict {
        descr,
        fortran_order,
        shape: dims,
        shape_text: shape_text.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Files written by `numpy.save` (numpy 2.4.6), embedded byte-for-byte.
    // Generated with e.g.
    //   np.save(f, np.arange(6, dtype='<f4').reshape(2, 3))
    // and, for the v2/v3 ones, np.lib.format.write_array(f, a, version=(2, 0)).
    /// 152 bytes
    const F32_2X3: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }                                                          \n\x00\x00\x00\x00\x00\x00\x80?\x00\x00\x00@\x00\x00@@\x00\x00\x80@\x00\x00\xa0@";
    /// 132 bytes
    const F16_2: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }                                                            \n\x00<\x00\xc1";
    /// 136 bytes
    const F64_SCALAR: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (), }                                                              \n\x18-DT\xfb!\x09@";
    /// 131 bytes
    const I8_3: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '|i1', 'fortran_order': False, 'shape': (3,), }                                                            \n\x80\x00\x7f";
    /// 128 bytes
    const I16_EMPTY: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<i2', 'fortran_order': False, 'shape': (0,), }                                                            \n";
    /// 136 bytes
    const I32_2X1: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<i4', 'fortran_order': False, 'shape': (2, 1), }                                                          \n\xff\xff\xff\xff\x00\x00\x01\x00";
    /// 144 bytes
    const I64_1X2: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<i8', 'fortran_order': False, 'shape': (1, 2), }                                                          \n\xfe\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x01\x00\x00";
    /// 133 bytes
    const U8_5: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }                                                            \n\x00\x01\x02\xfe\xff";
    /// 129 bytes
    const BOOL_SCALAR: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '|b1', 'fortran_order': False, 'shape': (), }                                                              \n\x01";
    /// 128 bytes
    const BOOL_2X0X3: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '|b1', 'fortran_order': False, 'shape': (2, 0, 3), }                                                       \n";
    /// 136 bytes
    const F32_BE_2: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }                                                            \n?\xc0\x00\x00\xc0@\x00\x00";
    /// 144 bytes
    const F32_FORTRAN: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }                                                           \n\x00\x00\x00\x00\x00\x00\x00@\x00\x00\x80?\x00\x00@@";
    /// 134 bytes
    const I16_3_V2: &[u8] = b"\x93NUMPY\x02\x00t\x00\x00\x00{'descr': '<i2', 'fortran_order': False, 'shape': (3,), }                                                          \n\x00\x00\x01\x00\x02\x00";
    /// 134 bytes
    const I16_3_V3: &[u8] = b"\x93NUMPY\x03\x00t\x00\x00\x00{'descr': '<i2', 'fortran_order': False, 'shape': (3,), }                                                          \n\x00\x00\x01\x00\x02\x00";

    /// 192 bytes
    const U8_ALIGNED_QUIRK: &[u8] = b"\x93NUMPY\x01\x00\xb6\x00{'descr': '|u1', 'fortran_order': False, 'shape': (0, 10, 10, 10, 10, 10, 10, 10, 10, 10, 100), }                                                                                    \n";

    const ALL_DTYPES: [NpyDtype; 11] = [
        NpyDtype::F16,
        NpyDtype::F32,
        NpyDtype::F64,
        NpyDtype::C64,
        NpyDtype::C128,
        NpyDtype::I8,
        NpyDtype::I16,
        NpyDtype::I32,
        NpyDtype::I64,
        NpyDtype::U8,
        NpyDtype::Bool,
    ];

    fn arr(dtype: NpyDtype, shape: &[usize], data: Vec<u8>) -> NpyArray {
        NpyArray {
            dtype,
            shape: shape.to_vec(),
            data,
        }
    }

    fn le_bytes<const N: usize, T>(values: &[T], f: impl Fn(&T) -> [u8; N]) -> Vec<u8> {
        values.iter().flat_map(f).collect()
    }

    /// A version 1.0 file with an arbitrary header dict (padded like numpy).
    fn v1_file(dict: &str, data: &[u8]) -> Vec<u8> {
        let hlen = dict.len() + 1;
        let pad = (64 - (10 + hlen) % 64) % 64;
        let total = hlen + pad;
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(total as u16).to_le_bytes());
        out.extend_from_slice(dict.as_bytes());
        out.resize(out.len() + pad, b' ');
        out.push(b'\n');
        out.extend_from_slice(data);
        out
    }

    fn err_of(bytes: &[u8]) -> NpyError {
        match read_npy(bytes) {
            Ok(a) => panic!("expected an error, got {a:?}"),
            Err(e) => e,
        }
    }

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("oxport-npy-test-{}-{name}", std::process::id()))
    }

    // ----- numpy-produced files -------------------------------------------

    /// Every little-endian C-order v1.0 fixture with its expected array.
    fn numpy_fixtures() -> Vec<(&'static str, &'static [u8], NpyArray)> {
        vec![
            (
                "F32_2X3",
                F32_2X3,
                arr(
                    NpyDtype::F32,
                    &[2, 3],
                    le_bytes(&[0f32, 1., 2., 3., 4., 5.], |v| v.to_le_bytes()),
                ),
            ),
            (
                "F16_2",
                F16_2,
                // 1.0 = 0x3c00, -2.5 = 0xc100 in IEEE half precision.
                arr(
                    NpyDtype::F16,
                    &[2],
                    le_bytes(&[0x3c00u16, 0xc100], |v| v.to_le_bytes()),
                ),
            ),
            (
                "F64_SCALAR",
                F64_SCALAR,
                arr(
                    NpyDtype::F64,
                    &[],
                    std::f64::consts::PI.to_le_bytes().to_vec(),
                ),
            ),
            (
                "I8_3",
                I8_3,
                arr(
                    NpyDtype::I8,
                    &[3],
                    le_bytes(&[-128i8, 0, 127], |v| v.to_le_bytes()),
                ),
            ),
            ("I16_EMPTY", I16_EMPTY, arr(NpyDtype::I16, &[0], vec![])),
            (
                "I32_2X1",
                I32_2X1,
                arr(
                    NpyDtype::I32,
                    &[2, 1],
                    le_bytes(&[-1i32, 65536], |v| v.to_le_bytes()),
                ),
            ),
            (
                "I64_1X2",
                I64_1X2,
                arr(
                    NpyDtype::I64,
                    &[1, 2],
                    le_bytes(&[-2i64, 1 << 40], |v| v.to_le_bytes()),
                ),
            ),
            (
                "U8_5",
                U8_5,
                arr(NpyDtype::U8, &[5], vec![0, 1, 2, 254, 255]),
            ),
            (
                "BOOL_SCALAR",
                BOOL_SCALAR,
                arr(NpyDtype::Bool, &[], vec![1]),
            ),
            (
                "BOOL_2X0X3",
                BOOL_2X0X3,
                arr(NpyDtype::Bool, &[2, 0, 3], vec![]),
            ),
            (
                "U8_ALIGNED_QUIRK",
                U8_ALIGNED_QUIRK,
                arr(
                    NpyDtype::U8,
                    &[0, 10, 10, 10, 10, 10, 10, 10, 10, 10, 100],
                    vec![],
                ),
            ),
        ]
    }

    #[test]
    fn reads_numpy_files() {
        for (name, bytes, expected) in numpy_fixtures() {
            let got = read_npy(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn writes_numpy_files_byte_for_byte() {
        for (name, bytes, array) in numpy_fixtures() {
            assert_eq!(write_npy(&array), bytes, "{name}");
        }
    }

    #[test]
    fn aligned_header_gets_a_full_64_byte_pad_like_numpy() {
        // The dict plus growth spaces plus '\n' ends exactly on a 64-byte
        // boundary here; numpy still appends 64 spaces.
        assert_eq!(U8_ALIGNED_QUIRK.len(), 192);
        let ours = write_npy(&read_npy(U8_ALIGNED_QUIRK).unwrap());
        assert_eq!(ours, U8_ALIGNED_QUIRK);
    }

    #[test]
    fn reads_big_endian_by_swapping() {
        let a = read_npy(F32_BE_2).unwrap();
        assert_eq!(
            a,
            arr(
                NpyDtype::F32,
                &[2],
                le_bytes(&[1.5f32, -3.0], |v| v.to_le_bytes())
            )
        );
        // Re-writing produces the little-endian form.
        let again = read_npy(&write_npy(&a)).unwrap();
        assert_eq!(again, a);
        assert!(write_npy(&a).windows(5).any(|w| w == b"'<f4'"));

        for (descr, v) in [(">i8", -5i64), (">i2", -300), (">i4", 70000)] {
            let dtype = NpyDtype::from_descr(descr).unwrap().0;
            let n = dtype.itemsize();
            let be = v.to_be_bytes()[8 - n..].to_vec();
            let le = v.to_le_bytes()[..n].to_vec();
            let file = v1_file(
                &format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (1,), }}"),
                &be,
            );
            assert_eq!(read_npy(&file).unwrap(), arr(dtype, &[1], le), "{descr}");
        }

        // A big-endian complex number is two big-endian floats, each swapped on its own.
        let be: Vec<u8> = [1.5f32.to_be_bytes(), (-2.0f32).to_be_bytes()].concat();
        let le: Vec<u8> = [1.5f32.to_le_bytes(), (-2.0f32).to_le_bytes()].concat();
        let file = v1_file(
            "{'descr': '>c8', 'fortran_order': False, 'shape': (1,), }",
            &be,
        );
        assert_eq!(read_npy(&file).unwrap(), arr(NpyDtype::C64, &[1], le));
        let be: Vec<u8> = [0.25f64.to_be_bytes(), 3.0f64.to_be_bytes()].concat();
        let le: Vec<u8> = [0.25f64.to_le_bytes(), 3.0f64.to_le_bytes()].concat();
        let file = v1_file(
            "{'descr': '>c16', 'fortran_order': False, 'shape': (1,), }",
            &be,
        );
        assert_eq!(read_npy(&file).unwrap(), arr(NpyDtype::C128, &[1], le));
    }

    #[test]
    fn reads_versions_2_and_3() {
        let expected = arr(
            NpyDtype::I16,
            &[3],
            le_bytes(&[0i16, 1, 2], |v| v.to_le_bytes()),
        );
        assert_eq!(read_npy(I16_3_V2).unwrap(), expected);
        assert_eq!(read_npy(I16_3_V3).unwrap(), expected);
    }

    #[test]
    fn rejects_numpy_fortran_file() {
        let e = err_of(F32_FORTRAN);
        assert!(matches!(e, NpyError::FortranOrder), "{e:?}");
        assert_eq!(
            e.to_string(),
            "fortran-ordered .npy is not supported: save with np.ascontiguousarray"
        );
    }

    // ----- round trips ------------------------------------------------------

    #[test]
    fn round_trips_every_dtype_and_shape() {
        let shapes: [&[usize]; 7] = [&[], &[1], &[5], &[0], &[2, 3], &[3, 0, 2], &[2, 1, 2, 1]];
        for dtype in ALL_DTYPES {
            for shape in shapes {
                let n: usize = shape.iter().product::<usize>() * dtype.itemsize();
                let data: Vec<u8> = if dtype == NpyDtype::Bool {
                    (0..n).map(|i| (i % 2) as u8).collect()
                } else {
                    (0..n).map(|i| (i * 37 + 11) as u8).collect()
                };
                let a = arr(dtype, shape, data);
                let bytes = write_npy(&a);
                let header_len = bytes.len() - a.data.len();
                assert_eq!(header_len % 64, 0, "{dtype:?} {shape:?}");
                assert_eq!(bytes[header_len - 1], b'\n');
                assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
                assert_eq!(read_npy(&bytes).unwrap(), a, "{dtype:?} {shape:?}");
            }
        }
    }

    #[test]
    fn descr_and_itemsize() {
        let expected = [
            ("<f2", 2),
            ("<f4", 4),
            ("<f8", 8),
            ("<c8", 8),
            ("<c16", 16),
            ("|i1", 1),
            ("<i2", 2),
            ("<i4", 4),
            ("<i8", 8),
            ("|u1", 1),
            ("|b1", 1),
        ];
        for (dtype, (descr, size)) in ALL_DTYPES.into_iter().zip(expected) {
            assert_eq!(dtype.descr(), descr);
            assert_eq!(dtype.itemsize(), size);
            assert_eq!(NpyDtype::from_descr(descr), Some((dtype, false)));
        }
    }

    #[test]
    fn accepts_alternative_descr_spellings() {
        for (descr, dtype) in [
            ("<u1", NpyDtype::U8),
            ("|u1", NpyDtype::U8),
            (">u1", NpyDtype::U8),
            ("u1", NpyDtype::U8),
            ("<i1", NpyDtype::I8),
            ("|b1", NpyDtype::Bool),
            ("?", NpyDtype::Bool),
            ("|?", NpyDtype::Bool),
            ("b1", NpyDtype::Bool),
            (">b1", NpyDtype::Bool),
        ] {
            let file = v1_file(
                &format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (2,), }}"),
                &[1, 0],
            );
            assert_eq!(
                read_npy(&file).unwrap(),
                arr(dtype, &[2], vec![1, 0]),
                "{descr}"
            );
        }
    }

    #[test]
    fn file_round_trip() {
        let path = temp_path("round-trip.npy");
        let a = arr(
            NpyDtype::I32,
            &[2, 2],
            le_bytes(&[1i32, -2, 3, -4], |v| v.to_le_bytes()),
        );
        write_npy_file(&path, &a).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), write_npy(&a));
        assert_eq!(read_npy_file(&path).unwrap(), a);

        // Big-endian files are swapped on the file path too.
        std::fs::write(&path, F32_BE_2).unwrap();
        assert_eq!(read_npy_file(&path).unwrap(), read_npy(F32_BE_2).unwrap());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn file_errors() {
        let missing = temp_path("does-not-exist.npy");
        let e = read_npy_file(&missing).unwrap_err();
        assert!(matches!(e, NpyError::Io { .. }), "{e:?}");
        assert!(e.to_string().contains("does-not-exist.npy"), "{e}");

        let path = temp_path("mismatch.npy");
        let bad = arr(NpyDtype::F32, &[2, 3], vec![0; 20]);
        let e = write_npy_file(&path, &bad).unwrap_err();
        assert_eq!(
            e.to_string(),
            "data is 20 bytes but shape [2, 3] of <f4 needs 24 bytes"
        );
        assert!(!path.exists());

        std::fs::write(&path, b"not numpy").unwrap();
        assert!(matches!(read_npy_file(&path), Err(NpyError::BadMagic)));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn huge_header_falls_back_to_version_2() {
        // 30000 dimensions of 1 make a header over 65535 bytes.
        let a = arr(NpyDtype::U8, &vec![1; 30000], vec![7]);
        let bytes = write_npy(&a);
        assert_eq!(&bytes[..8], b"\x93NUMPY\x02\x00");
        let hlen = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
        assert!(hlen > 65535);
        assert_eq!((12 + hlen) % 64, 0);
        assert_eq!(bytes.len(), 12 + hlen + 1);
        assert_eq!(read_npy(&bytes).unwrap(), a);
    }

    // ----- header parsing ---------------------------------------------------

    #[test]
    fn parses_header_variants() {
        let data = le_bytes(&[1f32, 2., 3., 4., 5., 6.], |v| v.to_le_bytes());
        let expected = arr(NpyDtype::F32, &[2, 3], data.clone());
        for dict in [
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
            "{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}",
            "{'fortran_order': False, 'descr': '<f4', 'shape': (2,3)}",
            "  {  'descr' :'<f4' ,\t'fortran_order':False,\n 'shape' : ( 2 , 3 , ) , }  ",
            "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2, 3)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (+2, 3), }",
        ] {
            let got = read_npy(&v1_file(dict, &data)).unwrap_or_else(|e| panic!("{dict}: {e}"));
            assert_eq!(got, expected, "{dict}");
        }
        let scalar = v1_file("{'descr':'<i2','fortran_order':False,'shape':()}", &[1, 2]);
        assert_eq!(
            read_npy(&scalar).unwrap(),
            arr(NpyDtype::I16, &[], vec![1, 2])
        );
        let one_d = v1_file(
            "{'descr':'<i2','fortran_order':False,'shape':(1,)}",
            &[1, 2],
        );
        assert_eq!(
            read_npy(&one_d).unwrap(),
            arr(NpyDtype::I16, &[1], vec![1, 2])
        );
    }

    // ----- errors -----------------------------------------------------------

    #[test]
    fn bad_magic() {
        for bytes in [
            &b"\x93NUMPX\x01\x00"[..],
            b"PK\x03\x04 this is a zip",
            b"\x00",
            b"hello world, this is long enough",
        ] {
            let e = err_of(bytes);
            assert!(matches!(e, NpyError::BadMagic), "{bytes:?}: {e:?}");
        }
        assert!(err_of(b"").to_string().contains("truncated"));
    }

    #[test]
    fn truncated_header() {
        let header_end = F32_2X3.len() - 24;
        for cut in 0..header_end {
            let e = err_of(&F32_2X3[..cut]);
            assert!(
                matches!(e, NpyError::TruncatedHeader { .. }),
                "cut {cut}: {e:?}"
            );
        }
        // Header length claims more than the input holds: no allocation, error.
        let mut lying = F32_2X3.to_vec();
        lying[8..10].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(matches!(
            err_of(&lying),
            NpyError::TruncatedHeader { needed: 65545, .. }
        ));
        let mut lying = I16_3_V2.to_vec();
        lying[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(err_of(&lying), NpyError::TruncatedHeader { .. }));
    }

    #[test]
    fn unsupported_version() {
        for (major, minor) in [(0, 0), (1, 1), (2, 1), (4, 0), (255, 255)] {
            let mut bytes = F32_2X3.to_vec();
            bytes[6] = major;
            bytes[7] = minor;
            let e = err_of(&bytes);
            assert!(
                matches!(e, NpyError::UnsupportedVersion { major: a, minor: b } if a == major && b == minor),
                "{e:?}"
            );
            assert!(e.to_string().contains(&format!("{major}.{minor}")), "{e}");
        }
    }

    #[test]
    fn unsupported_dtype() {
        for descr in [
            "<c32", ">c4", "<u2", "<u8", "|S5", "<U3", "|O", "<m8[s]", "f4x", "", "<",
        ] {
            let file = v1_file(
                &format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (1,), }}"),
                &[0; 8],
            );
            let e = err_of(&file);
            assert!(
                matches!(&e, NpyError::UnsupportedDtype(d) if d == descr),
                "{e:?}"
            );
            assert_eq!(e.to_string(), format!("unsupported .npy dtype '{descr}'"));
        }
        // Structured dtypes are named by their source text.
        let file = v1_file(
            "{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (1,), }",
            &[0; 8],
        );
        assert_eq!(
            err_of(&file).to_string(),
            "unsupported .npy dtype '[('a', '<f4'), ('b', '<i4')]'"
        );
    }

    #[test]
    fn fortran_order_true() {
        let file = v1_file(
            "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
            &[0; 16],
        );
        let e = err_of(&file);
        assert!(matches!(e, NpyError::FortranOrder));
        assert_eq!(
            e.to_string(),
            "fortran-ordered .npy is not supported: save with np.ascontiguousarray"
        );
    }

    #[test]
    fn shape_overflow() {
        let big = usize::MAX.to_string();
        for shape in [
            format!("({big}, 2)"),
            format!("({big}0,)"),
            "(99999999999999999999999999999999999999,)".to_string(),
            "(4294967296, 4294967296, 4294967296)".to_string(),
            format!("({},)", usize::MAX / 2 + 1), // elements fit, bytes do not
        ] {
            let file = v1_file(
                &format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}"),
                &[0; 4],
            );
            let e = err_of(&file);
            assert!(
                matches!(e, NpyError::ShapeOverflow { .. }),
                "{shape}: {e:?}"
            );
            assert!(e.to_string().contains(&shape), "{e}");
        }
        // A zero dimension does not rescue a dimension that does not fit.
        let file = v1_file(
            "{'descr': '|u1', 'fortran_order': False, 'shape': (0, 99999999999999999999999), }",
            &[],
        );
        assert!(matches!(err_of(&file), NpyError::ShapeOverflow { .. }));
        // Like numpy, a zero dimension does not excuse an overflowing product
        // of the other dimensions...
        let file = v1_file(
            &format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({big}, 0, {big}), }}"),
            &[],
        );
        assert!(matches!(err_of(&file), NpyError::ShapeOverflow { .. }));
        // ... but large dimensions are fine next to a zero if they fit.
        let half = (isize::MAX as usize) / 8;
        let file = v1_file(
            &format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({half}, 0), }}"),
            &[],
        );
        assert_eq!(read_npy(&file).unwrap().shape, vec![half, 0]);
        // Byte sizes between isize::MAX and usize::MAX are rejected too.
        let file = v1_file(
            &format!(
                "{{'descr': '|u1', 'fortran_order': False, 'shape': ({},), }}",
                isize::MAX as usize + 1
            ),
            &[],
        );
        assert!(matches!(err_of(&file), NpyError::ShapeOverflow { .. }));
    }

    #[test]
    fn data_length_mismatch() {
        let short = &F32_2X3[..F32_2X3.len() - 4];
        let e = err_of(short);
        assert!(
            matches!(
                e,
                NpyError::DataLength {
                    actual: 20,
                    expected: 24,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "data is 20 bytes but shape [2, 3] of <f4 needs 24 bytes"
        );

        let mut long = F32_2X3.to_vec();
        long.push(0);
        assert_eq!(
            err_of(&long).to_string(),
            "data is 25 bytes but shape [2, 3] of <f4 needs 24 bytes"
        );

        // Missing data entirely, with a huge (but non-overflowing) shape.
        let file = v1_file(
            "{'descr': '<i8', 'fortran_order': False, 'shape': (1000000000000,), }",
            &[],
        );
        assert_eq!(
            err_of(&file).to_string(),
            "data is 0 bytes but shape [1000000000000] of <i8 needs 8000000000000 bytes"
        );
        // The descr is named as written.
        let file = v1_file(
            "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }",
            &[0; 4],
        );
        assert_eq!(
            err_of(&file).to_string(),
            "data is 4 bytes but shape [2] of >f4 needs 8 bytes"
        );
    }

    #[test]
    fn non_ascii_header() {
        let mut bytes = F32_2X3.to_vec();
        bytes[12] = 0xe9; // inside 'descr'
        let e = err_of(&bytes);
        assert!(
            matches!(
                e,
                NpyError::NonAsciiHeader {
                    byte: 0xe9,
                    offset: 2
                }
            ),
            "{e:?}"
        );
        let v3 = {
            let mut b = I16_3_V3.to_vec();
            let i = b.len() - 7; // a padding space before '\n'
            b[i - 1] = 0xc3;
            b[i] = 0xa9;
            b
        };
        assert!(matches!(
            err_of(&v3),
            NpyError::NonAsciiHeader { byte: 0xc3, .. }
        ));
    }

    #[test]
    fn unparseable_headers() {
        let deep = format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': {}1{}, }}",
            "(".repeat(1000),
            ",)".repeat(1000)
        );
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "expected '{'"),
            ("   ".into(), "expected '{'"),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), ".into(),
                "ended",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)".into(),
                "ended",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3}".into(),
                "',' or ')'",
            ),
            (
                "{'descr': '<f4, 'fortran_order': False, 'shape': (2, 3)}".into(),
                "expected ','",
            ),
            (
                "{'descr: '<f4', 'fortran_order': False, 'shape': (2, 3)}".into(),
                "expected ':'",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False}".into(),
                "missing key 'shape'",
            ),
            (
                "{'shape': (2, 3), 'fortran_order': False}".into(),
                "missing key 'descr'",
            ),
            (
                "{'descr': '<f4', 'shape': (2, 3)}".into(),
                "missing key 'fortran_order'",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}".into(),
                "unexpected key 'x'",
            ),
            (
                "{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': (2, 3)}".into(),
                "duplicate key 'descr'",
            ),
            (
                "{'descr': '<f4', 'fortran_order': 0, 'shape': (6,)}".into(),
                "True or False",
            ),
            (
                "{'descr': '<f4', 'fortran_order': false, 'shape': (6,)}".into(),
                "'false'",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (-6,)}".into(),
                "tuple of non-negative",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': [6]}".into(),
                "tuple of non-negative",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (6)}".into(),
                "tuple of non-negative",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': 6}".into(),
                "tuple of non-negative",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (6.0,)}".into(),
                "malformed number",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (0x6,)}".into(),
                "malformed number",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': ('6',)}".into(),
                "tuple of non-negative",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (None,)}".into(),
                "tuple of non-negative",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (-,)}".into(),
                "malformed number",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)} x".into(),
                "end of header",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)}}".into(),
                "end of header",
            ),
            (
                "{'descr': '<f4' 'fortran_order': False, 'shape': (6,)}".into(),
                "',' or '}'",
            ),
            (
                "{1: '<f4', 'fortran_order': False, 'shape': (6,)}".into(),
                "not a string",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (6,,)}".into(),
                "a value",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)\0}".into(),
                "'\\0'",
            ),
            (deep, "nested too deeply"),
        ];
        for (dict, needle) in cases {
            let e = err_of(&v1_file(&dict, &[0; 24]));
            assert!(matches!(e, NpyError::InvalidHeader(_)), "{dict}: {e:?}");
            let msg = e.to_string();
            assert!(msg.starts_with("invalid .npy header: "), "{msg}");
            assert!(msg.contains(needle), "{dict:?}: {msg:?} lacks {needle:?}");
        }
    }

    #[test]
    fn never_panics_on_mutated_or_truncated_input() {
        // Deterministic xorshift fuzzing of every fixture.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let fixtures: [&[u8]; 6] = [
            F32_2X3, F64_SCALAR, BOOL_2X0X3, F32_BE_2, I16_3_V2, I16_3_V3,
        ];
        let alphabet = b"(){}[],:'\" 0123456789-+LTrueFalsNo<>|?fiub\n\x00\xff";
        for fixture in fixtures {
            for cut in 0..=fixture.len() {
                let _ = read_npy(&fixture[..cut]);
            }
            for _ in 0..3000 {
                let mut bytes = fixture.to_vec();
                for _ in 0..(next() % 4 + 1) {
                    let i = (next() as usize) % bytes.len();
                    bytes[i] = if next() % 2 == 0 {
                        alphabet[(next() as usize) % alphabet.len()]
                    } else {
                        next() as u8
                    };
                }
                if let Ok(a) = read_npy(&bytes) {
                    // Anything accepted must be self-consistent.
                    a.validate().unwrap();
                }
            }
        }
    }

    #[test]
    fn validate() {
        assert!(arr(NpyDtype::I64, &[2], vec![0; 16]).validate().is_ok());
        assert!(arr(NpyDtype::I64, &[], vec![0; 8]).validate().is_ok());
        assert!(matches!(
            arr(NpyDtype::I64, &[2], vec![0; 15]).validate(),
            Err(NpyError::DataLength { .. })
        ));
        assert!(matches!(
            arr(NpyDtype::I64, &[usize::MAX, 2], vec![]).validate(),
            Err(NpyError::ShapeOverflow { .. })
        ));
    }
}
