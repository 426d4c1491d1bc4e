//! Tensors to and from `.npy` (the byte format itself is in [`super::npy_format`]).
use super::npy_format::{read_npy, write_npy, NpyArray, NpyDtype};
use super::{Buffer, Element, Tensor};
use crate::dtype::DType;
use crate::error::{Error, Result};
use half::{bf16, f16};

fn le_vec<T: Element>(data: &[u8], size: usize, conv: impl Fn(&[u8]) -> T) -> Vec<T> {
    data.chunks_exact(size).map(conv).collect()
}

/// Reads `.npy` bytes into a contiguous tensor.
pub fn tensor_from_npy(bytes: &[u8]) -> Result<Tensor> {
    let arr = read_npy(bytes).map_err(|e| Error::Io(e.to_string()))?;
    let d = &arr.data;
    let buf = match arr.dtype {
        NpyDtype::F16 => Buffer::F16(le_vec(d, 2, |b| f16::from_le_bytes([b[0], b[1]]))),
        NpyDtype::F32 => Buffer::F32(le_vec(d, 4, |b| {
            f32::from_le_bytes(b.try_into().expect("4 bytes"))
        })),
        NpyDtype::F64 => Buffer::F64(le_vec(d, 8, |b| {
            f64::from_le_bytes(b.try_into().expect("8 bytes"))
        })),
        NpyDtype::C64 => Buffer::from_le_bytes(DType::C64, d)?,
        NpyDtype::C128 => Buffer::from_le_bytes(DType::C128, d)?,
        NpyDtype::I8 => Buffer::I8(d.iter().map(|&b| b as i8).collect()),
        NpyDtype::I16 => Buffer::I16(le_vec(d, 2, |b| i16::from_le_bytes([b[0], b[1]]))),
        NpyDtype::I32 => Buffer::I32(le_vec(d, 4, |b| {
            i32::from_le_bytes(b.try_into().expect("4 bytes"))
        })),
        NpyDtype::I64 => Buffer::I64(le_vec(d, 8, |b| {
            i64::from_le_bytes(b.try_into().expect("8 bytes"))
        })),
        NpyDtype::U8 => Buffer::U8(d.clone()),
        NpyDtype::Bool => Buffer::Bool(d.iter().map(|&b| b != 0).collect()),
    };
    Tensor::from_buffer_checked(buf, &arr.shape)
}

/// Writes a tensor as `.npy` bytes (bf16, which NumPy lacks, is written as exact f32 values).
pub fn tensor_to_npy(t: &Tensor) -> Vec<u8> {
    let (dtype, data): (NpyDtype, Vec<u8>) = match t.dtype() {
        DType::F16 => (
            NpyDtype::F16,
            bytes_of(&t.to_vec::<f16>().expect("dtype"), |x| {
                x.to_le_bytes().to_vec()
            }),
        ),
        DType::BF16 => (
            NpyDtype::F32,
            bytes_of(&t.to_vec::<bf16>().expect("dtype"), |x| {
                x.to_f32().to_le_bytes().to_vec()
            }),
        ),
        DType::F32 => (
            NpyDtype::F32,
            bytes_of(&t.to_vec::<f32>().expect("dtype"), |x| {
                x.to_le_bytes().to_vec()
            }),
        ),
        DType::F64 => (
            NpyDtype::F64,
            bytes_of(&t.to_vec::<f64>().expect("dtype"), |x| {
                x.to_le_bytes().to_vec()
            }),
        ),
        DType::C64 => (NpyDtype::C64, t.to_buffer().to_le_bytes()),
        DType::C128 => (NpyDtype::C128, t.to_buffer().to_le_bytes()),
        DType::I8 => (
            NpyDtype::I8,
            bytes_of(&t.to_vec::<i8>().expect("dtype"), |x| {
                x.to_le_bytes().to_vec()
            }),
        ),
        DType::I16 => (
            NpyDtype::I16,
            bytes_of(&t.to_vec::<i16>().expect("dtype"), |x| {
                x.to_le_bytes().to_vec()
            }),
        ),
        DType::I32 => (
            NpyDtype::I32,
            bytes_of(&t.to_vec::<i32>().expect("dtype"), |x| {
                x.to_le_bytes().to_vec()
            }),
        ),
        DType::I64 => (
            NpyDtype::I64,
            bytes_of(&t.to_vec::<i64>().expect("dtype"), |x| {
                x.to_le_bytes().to_vec()
            }),
        ),
        DType::U8 => (NpyDtype::U8, t.to_vec::<u8>().expect("dtype")),
        DType::Bool => (
            NpyDtype::Bool,
            t.to_vec::<bool>()
                .expect("dtype")
                .into_iter()
                .map(u8::from)
                .collect(),
        ),
    };
    write_npy(&NpyArray {
        dtype,
        shape: t.sizes().to_vec(),
        data,
    })
}

fn bytes_of<T: Copy>(v: &[T], f: impl Fn(T) -> Vec<u8>) -> Vec<u8> {
    v.iter().flat_map(|&x| f(x)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn roundtrip_every_dtype() {
        for &dt in crate::dtype::ALL_DTYPES.iter() {
            let t = Tensor::arange_f32(6)
                .cast_untraced(dt)
                .restride(&[2, 3], &[3, 1], 0)
                .unwrap();
            let back = tensor_from_npy(&tensor_to_npy(&t)).unwrap();
            let expect_dt = if dt == DType::BF16 { DType::F32 } else { dt };
            assert_eq!(back.dtype(), expect_dt);
            assert_eq!(back.sizes(), &[2, 3]);
            assert_eq!(back.to_vec_f64(), t.to_vec_f64());
        }
    }
    #[test]
    fn complex_roundtrip_keeps_both_parts() {
        use num_complex::Complex32;
        let v = vec![Complex32::new(1.5, -2.0), Complex32::new(0.0, 3.25)];
        let t = Tensor::from_vec(v.clone(), &[2]).unwrap();
        let bytes = tensor_to_npy(&t);
        assert!(bytes.windows(5).any(|w| w == b"'<c8'"));
        let back = tensor_from_npy(&bytes).unwrap();
        assert_eq!(back.dtype(), DType::C64);
        assert_eq!(back.to_vec::<Complex32>().unwrap(), v);
        let wide = t.cast_untraced(DType::C128);
        let back = tensor_from_npy(&tensor_to_npy(&wide)).unwrap();
        assert_eq!(
            back.to_vec::<num_complex::Complex64>().unwrap()[1],
            num_complex::Complex64::new(0.0, 3.25)
        );
    }
}
