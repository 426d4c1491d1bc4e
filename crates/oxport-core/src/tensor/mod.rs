//! Strided tensors with PyTorch's memory model.
//!
//! A [`Tensor`] is a view — sizes, strides (in elements) and a storage offset — onto a [`Storage`] that
//! views share. Writing through one view (`add_`, `copy_`, ...) is visible through every other view of the
//! same storage. This module knows nothing about ops or tracing; the user-facing operations
//! (`x.add(&y)`, `x.view(..)`) live in [`crate::ops`] and dispatch through the op registry.
mod element;
pub mod kernels;
pub mod npy;
pub mod npy_format;
pub(crate) mod random;
pub mod strided;

pub use element::{cast_element, Buffer, Element, RealElement};
pub(crate) use random::dropout_mask;
pub use random::{manual_seed, Generator};

use crate::dtype::{DType, Scalar};
use crate::error::{Error, Result};
use std::fmt;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The largest element count a tensor may have (guards against absurd sizes from untrusted input).
pub const MAX_NUMEL: usize = 1 << 40;

/// Memory shared by a tensor and its views.
#[derive(Debug)]
pub struct Storage {
    buf: RwLock<Buffer>,
    /// A fake storage has no data: it backs the fake tensors export traces with.
    fake: bool,
}

impl Storage {
    /// Wraps a buffer.
    pub fn new(buf: Buffer) -> Self {
        Storage {
            buf: RwLock::new(buf),
            fake: false,
        }
    }
    /// Locks the buffer for reading. (Lock poisoning cannot leave the data half-typed, so it is ignored.)
    pub fn read(&self) -> RwLockReadGuard<'_, Buffer> {
        self.buf.read().unwrap_or_else(|e| e.into_inner())
    }
    /// Locks the buffer for writing.
    pub fn write(&self) -> RwLockWriteGuard<'_, Buffer> {
        self.buf.write().unwrap_or_else(|e| e.into_inner())
    }
    /// Number of elements in the storage.
    pub fn len(&self) -> usize {
        self.read().len()
    }
    /// True if the storage holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A strided view onto shared storage.
#[derive(Clone)]
pub struct Tensor {
    storage: Arc<Storage>,
    sizes: Vec<usize>,
    strides: Vec<usize>,
    offset: usize,
    dtype: DType,
}

/// Element count of a shape, or an error when it overflows or exceeds [`MAX_NUMEL`].
pub fn checked_numel(sizes: &[usize]) -> Result<usize> {
    let mut n: usize = 1;
    for &s in sizes {
        n = n
            .checked_mul(s)
            .ok_or_else(|| Error::shape(format!("size {sizes:?} overflows")))?;
    }
    if n > MAX_NUMEL {
        return Err(Error::shape(format!(
            "size {sizes:?} has {n} elements, more than oxport allows ({MAX_NUMEL})"
        )));
    }
    Ok(n)
}

/// Row-major (contiguous) strides for `sizes`.
pub fn contiguous_strides(sizes: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; sizes.len()];
    let mut acc = 1usize;
    for i in (0..sizes.len()).rev() {
        strides[i] = acc;
        acc = acc.saturating_mul(sizes[i].max(1));
    }
    strides
}

/// PyTorch's `is_contiguous` (dims of size 1 may have any stride; empty tensors are contiguous).
pub fn is_contiguous(sizes: &[usize], strides: &[usize]) -> bool {
    let mut expected = 1usize;
    for i in (0..sizes.len()).rev() {
        if sizes[i] == 0 {
            return true;
        }
        if sizes[i] != 1 {
            if strides[i] != expected {
                return false;
            }
            expected *= sizes[i];
        }
    }
    true
}

impl Tensor {
    /// Builds a tensor from a typed vector and a shape.
    ///
    /// ```
    /// use oxport_core::Tensor;
    /// let t = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
    /// assert_eq!(t.sizes(), &[2, 2]);
    /// # Ok::<(), oxport_core::Error>(())
    /// ```
    pub fn from_vec<T: Element>(data: Vec<T>, sizes: &[usize]) -> Result<Tensor> {
        let n = checked_numel(sizes)?;
        if n != data.len() {
            return Err(Error::shape(format!(
                "shape '{}' is invalid for input of size {}",
                fmt_shape(sizes),
                data.len()
            )));
        }
        Ok(Tensor::from_buffer(T::into_buffer(data), sizes))
    }

    /// A contiguous tensor over a buffer whose length must equal the shape's element count.
    pub(crate) fn from_buffer(buf: Buffer, sizes: &[usize]) -> Tensor {
        debug_assert_eq!(buf.len(), sizes.iter().product::<usize>());
        let dtype = buf.dtype();
        Tensor {
            storage: Arc::new(Storage::new(buf)),
            sizes: sizes.to_vec(),
            strides: contiguous_strides(sizes),
            offset: 0,
            dtype,
        }
    }

    /// A contiguous tensor from a buffer, checking the length.
    pub fn from_buffer_checked(buf: Buffer, sizes: &[usize]) -> Result<Tensor> {
        let n = checked_numel(sizes)?;
        if n != buf.len() {
            return Err(Error::shape(format!(
                "shape '{}' is invalid for input of size {}",
                fmt_shape(sizes),
                buf.len()
            )));
        }
        Ok(Tensor::from_buffer(buf, sizes))
    }

    /// A zero-filled tensor of `dtype` with the given geometry over a fresh storage just large enough
    /// for it (what an out kernel writes into).
    pub fn zeros_strided(dtype: DType, sizes: &[usize], strides: &[usize]) -> Result<Tensor> {
        checked_numel(sizes)?;
        let mut len = 1usize;
        for (&s, &st) in sizes.iter().zip(strides) {
            if s == 0 {
                len = 0;
                break;
            }
            len = (s - 1)
                .checked_mul(st)
                .and_then(|x| x.checked_add(len))
                .ok_or_else(|| Error::shape("tensor extends beyond addressable memory"))?;
        }
        checked_numel(&[len])?;
        let base = Tensor::from_buffer(Buffer::zeros(dtype, len), &[len]);
        base.restride(sizes, strides, 0)
    }

    /// A 0-d tensor holding one value.
    pub fn scalar<T: Element>(v: T) -> Tensor {
        Tensor::from_buffer(T::into_buffer(vec![v]), &[])
    }

    /// A 0-d tensor of `dtype` holding `s` (cast like `torch.tensor(s, dtype=dtype)`).
    pub fn scalar_of(s: Scalar, dtype: DType) -> Tensor {
        Tensor::filled(&[], s, dtype)
    }

    /// A contiguous tensor of `dtype` filled with `s` (no dispatch: see `ops::full` for the traced op).
    pub fn filled(sizes: &[usize], s: Scalar, dtype: DType) -> Tensor {
        let n = sizes.iter().product::<usize>();
        let buf = crate::dispatch_dtype!(dtype, T => T::into_buffer(vec![scalar_to::<T>(s); n]));
        Tensor::from_buffer(buf, sizes)
    }

    /// `torch.arange(n, dtype=float32)` without dispatch — handy in docs and tests.
    pub fn arange_f32(n: usize) -> Tensor {
        Tensor::from_buffer(Buffer::F32((0..n).map(|i| i as f32).collect()), &[n])
    }

    /// Sizes.
    ///
    /// During export with dynamic shapes, reading a dynamic dim as a plain integer would fix it to the
    /// example's size, so export fails naming this line; use [`Tensor::sym_size`] there.
    #[track_caller]
    pub fn sizes(&self) -> &[usize] {
        if self.storage.fake {
            self.observe_size_read(&(0..self.sizes.len()).collect::<Vec<_>>());
        }
        &self.sizes
    }
    /// Sizes, without telling export that the caller read them (for oxport's own bookkeeping).
    pub fn sizes_untraced(&self) -> &[usize] {
        &self.sizes
    }
    #[track_caller]
    fn observe_size_read(&self, dims: &[usize]) {
        if let Some(hook) = crate::ops::registry::current_hook() {
            hook.size_read(self, dims, std::panic::Location::caller());
        }
    }
    /// PyTorch's `x.shape[d]`: the size of dim `d` as a [`SymInt`](crate::SymInt) — during export with
    /// dynamic shapes, symbolic for a dynamic dim (computing with it records `_operator` nodes, passing it
    /// to `view`/`reshape`/... records it as an argument); otherwise the plain size.
    ///
    /// ```
    /// use oxport_core::prelude::*;
    /// let x = Tensor::zeros(&[4, 6], DType::F32)?;
    /// let b = x.sym_size(0)?;
    /// assert_eq!(x.reshape(&[b * 2, SymInt::from(-1)])?.sizes(), &[8, 3]);
    /// # Ok::<(), oxport_core::Error>(())
    /// ```
    #[track_caller]
    pub fn sym_size(&self, d: i64) -> Result<crate::SymInt> {
        let d = wrap_dim(d, self.dim())?;
        if self.storage.fake {
            if let Some(hook) = crate::ops::registry::current_hook() {
                if let Some(s) = hook.sym_size(self, d, std::panic::Location::caller()) {
                    return Ok(s);
                }
            }
        }
        Ok(crate::SymInt::from(self.sizes[d]))
    }
    /// [`Tensor::sym_size`] of every dim.
    #[track_caller]
    pub fn sym_sizes(&self) -> Vec<crate::SymInt> {
        (0..self.dim())
            .map(|d| self.sym_size(d as i64).unwrap_or(crate::SymInt::Int(0)))
            .collect()
    }
    /// Strides, in elements.
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }
    /// Offset of element `[0, ..., 0]` in the storage, in elements.
    pub fn storage_offset(&self) -> usize {
        self.offset
    }
    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// Number of dimensions.
    pub fn dim(&self) -> usize {
        self.sizes.len()
    }
    /// Number of elements (a plain read of every size: see [`Tensor::sizes`]).
    #[track_caller]
    pub fn numel(&self) -> usize {
        self.sizes().iter().product()
    }
    /// Size of dim `d` (negative counts from the end), as a plain integer: see [`Tensor::sizes`].
    #[track_caller]
    pub fn size(&self, d: i64) -> Result<usize> {
        let d = wrap_dim(d, self.dim())?;
        if self.storage.fake {
            self.observe_size_read(&[d]);
        }
        Ok(self.sizes[d])
    }
    /// PyTorch's `is_contiguous()`.
    pub fn is_contiguous(&self) -> bool {
        is_contiguous(&self.sizes, &self.strides)
    }
    /// The shared storage.
    pub fn storage(&self) -> &Arc<Storage> {
        &self.storage
    }
    /// A tensor with metadata but no data (export traces with these). Reading its values is an error.
    pub fn fake(dtype: DType, sizes: &[usize], strides: &[usize], offset: usize) -> Tensor {
        Tensor {
            storage: Arc::new(Storage {
                buf: RwLock::new(Buffer::zeros(dtype, 0)),
                fake: true,
            }),
            sizes: sizes.to_vec(),
            strides: strides.to_vec(),
            offset,
            dtype,
        }
    }
    /// True for the data-less tensors of [`Tensor::fake`].
    pub fn is_fake(&self) -> bool {
        self.storage.fake
    }
    #[track_caller]
    fn check_real(&self) -> Result<()> {
        if self.storage.fake {
            let at = std::panic::Location::caller();
            return Err(Error::DataDependent(format!(
                "{}:{}: cannot read a tensor's values during export: the graph would depend on this example's data. \
                 Compute with tensor ops instead (e.g. `Tensor::where_cond`); to branch on data, use \
                 `oxport::cond(&pred, |ops| ..., |ops| ..., &operands)`, PyTorch's torch.cond",
                at.file(),
                at.line()
            )));
        }
        Ok(())
    }
    /// True if both tensors view the same storage.
    pub fn shares_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage)
    }

    /// A view with new geometry on the same storage, checked against the storage bounds.
    /// This is the primitive under every view op; it records nothing (see `ops` for `aten.as_strided`).
    pub fn restride(&self, sizes: &[usize], strides: &[usize], offset: usize) -> Result<Tensor> {
        if sizes.len() != strides.len() {
            return Err(Error::shape(format!(
                "mismatch in length of strides and shape: {} vs {}",
                strides.len(),
                sizes.len()
            )));
        }
        let n = checked_numel(sizes)?;
        if n > 0 {
            let mut last = offset;
            for (&s, &st) in sizes.iter().zip(strides) {
                last = (s - 1)
                    .checked_mul(st)
                    .and_then(|x| x.checked_add(last))
                    .ok_or_else(|| Error::shape("view extends beyond addressable memory"))?;
            }
            let len = self.storage.len();
            if last >= len && !self.storage.fake {
                return Err(Error::shape(format!(
                    "setStorage: sizes {}, strides {}, storage offset {offset}, and itemsize {} requiring a storage size of {} are out of bounds for storage of size {}",
                    fmt_shape(sizes),
                    fmt_shape(strides),
                    self.dtype.itemsize(),
                    (last as u128 + 1) * self.dtype.itemsize() as u128,
                    len as u128 * self.dtype.itemsize() as u128
                )));
            }
        }
        Ok(Tensor {
            storage: self.storage.clone(),
            sizes: sizes.to_vec(),
            strides: strides.to_vec(),
            offset,
            dtype: self.dtype,
        })
    }

    /// A view with dims `d0` and `d1` swapped (no dispatch; kernels use it). Dims must be in range.
    pub fn transpose_untraced(&self, d0: usize, d1: usize) -> Tensor {
        let mut t = self.clone();
        t.sizes.swap(d0, d1);
        t.strides.swap(d0, d1);
        t
    }

    /// A view with a size-1 dim inserted at `d` (no dispatch; kernels use it). `d <= dim()`.
    pub fn unsqueeze_untraced(&self, d: usize) -> Tensor {
        let mut t = self.clone();
        t.sizes.insert(d, 1);
        t.strides.insert(d, 1);
        t
    }

    /// The elements in logical (row-major) order, as `T` (which must be this tensor's dtype).
    #[track_caller]
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        self.check_real()?;
        if T::DTYPE != self.dtype {
            return Err(Error::DType(format!(
                "to_vec::<{}>() called on a tensor of dtype {}",
                T::DTYPE.name(),
                self.dtype.name()
            )));
        }
        let buf = self.storage.read();
        let src = T::slice(&buf).expect("storage dtype matches tensor dtype");
        Ok(strided::gather(
            src,
            &self.sizes,
            &self.strides,
            self.offset,
        ))
    }

    /// The elements in logical order converted to f64 (the real parts of complex numbers: see
    /// [`Tensor::to_vec_complex`]).
    #[track_caller]
    pub fn to_vec_f64(&self) -> Vec<f64> {
        crate::dispatch_dtype!(self.dtype, T => self
            .to_vec::<T>()
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.to_f64())
            .collect())
    }

    /// The elements in logical order as complex numbers (real dtypes: imaginary part 0).
    #[track_caller]
    pub fn to_vec_complex(&self) -> Result<Vec<num_complex::Complex64>> {
        crate::dispatch_dtype!(self.dtype, T => Ok(self
            .to_vec::<T>()?
            .into_iter()
            .map(|v| v.to_complex())
            .collect()))
    }

    /// The single value of a one-element tensor, as f64 (`Tensor.item()`; reads data, so not traceable).
    #[track_caller]
    pub fn item_f64(&self) -> Result<f64> {
        self.check_real()?;
        if self.numel() != 1 {
            return Err(Error::value(format!(
                "a Tensor with {} elements cannot be converted to Scalar",
                self.numel()
            )));
        }
        Ok(self.to_vec_f64()[0])
    }

    /// The single value as a [`Scalar`] of the matching kind.
    #[track_caller]
    pub fn item(&self) -> Result<Scalar> {
        if self.dtype.is_complex() {
            return Err(Error::DTypeNotSupported {
                op: "item (oxport has no complex Scalar)".into(),
                dtype: self.dtype,
            });
        }
        let v = self.item_f64()?;
        Ok(if self.dtype.is_floating_point() {
            Scalar::Float(v)
        } else if self.dtype == DType::Bool {
            Scalar::Bool(v != 0.0)
        } else {
            let i = crate::dispatch_dtype!(self.dtype, T => self.to_vec::<T>()?[0].to_i64());
            Scalar::Int(i)
        })
    }

    /// A contiguous buffer with this tensor's elements (copied).
    pub fn to_buffer(&self) -> Buffer {
        crate::dispatch_dtype!(self.dtype, T => T::into_buffer(self.to_vec::<T>().unwrap_or_default()))
    }

    /// This tensor if already contiguous, else a contiguous copy (no dispatch).
    pub fn contiguous_untraced(&self) -> Tensor {
        if self.is_contiguous() {
            self.clone()
        } else {
            Tensor::from_buffer(self.to_buffer(), &self.sizes)
        }
    }

    /// A contiguous copy in `dtype` (the same tensor when nothing changes; no dispatch).
    pub fn cast_untraced(&self, dtype: DType) -> Tensor {
        if dtype == self.dtype {
            return self.contiguous_untraced();
        }
        let buf = crate::dispatch_dtype!(self.dtype, S => {
            let src = self.to_vec::<S>().expect("dtype matches");
            crate::dispatch_dtype!(dtype, D => D::into_buffer(src.into_iter().map(cast_element::<S, D>).collect()))
        });
        Tensor::from_buffer(buf, &self.sizes)
    }

    /// Writes `src` (same shape, any dtype) into this view's elements, casting.
    /// `src` may alias `self`: it is read completely before writing.
    pub fn assign_untraced(&self, src: &Tensor) -> Result<()> {
        if src.sizes != self.sizes {
            return Err(Error::shape(format!(
                "assign: shape {} does not match {}",
                fmt_shape(&src.sizes),
                fmt_shape(&self.sizes)
            )));
        }
        let values = src.cast_untraced(self.dtype).to_buffer();
        let mut buf = self.storage.write();
        crate::dispatch_dtype!(self.dtype, T => {
            let dst = T::slice_mut(&mut buf).expect("storage dtype matches tensor dtype");
            let vals = T::slice(&values).expect("cast to our dtype");
            strided::scatter(dst, &self.sizes, &self.strides, self.offset, vals);
        });
        Ok(())
    }

    /// Reads a typed contiguous slice of this tensor's elements without copying when possible.
    #[track_caller]
    pub fn with_contiguous<T: Element, R>(&self, f: impl FnOnce(&[T]) -> R) -> Result<R> {
        self.check_real()?;
        if T::DTYPE != self.dtype {
            return Err(Error::DType(format!(
                "expected {} but got {}",
                T::DTYPE.name(),
                self.dtype.name()
            )));
        }
        if self.is_contiguous() {
            let buf = self.storage.read();
            let s = T::slice(&buf).expect("dtype matches");
            Ok(f(&s[self.offset..self.offset + self.numel()]))
        } else {
            Ok(f(&self.to_vec::<T>()?))
        }
    }

    /// Writes this tensor's elements through a typed mutable slice, in row-major order: the output side
    /// of an out kernel. The tensor must be real, contiguous and of element type `T` (outputs from
    /// `alloc_outputs` or a memory planner are). The storage is locked for writing during `f`, so `f`
    /// must not read a tensor sharing this one's storage (read inputs before, or outside, `f`).
    #[track_caller]
    pub fn with_contiguous_mut<T: Element, R>(&self, f: impl FnOnce(&mut [T]) -> R) -> Result<R> {
        self.check_real()?;
        if T::DTYPE != self.dtype {
            return Err(Error::DType(format!(
                "expected {} but got {}",
                T::DTYPE.name(),
                self.dtype.name()
            )));
        }
        if !self.is_contiguous() {
            return Err(Error::value(
                "an out kernel's output must be contiguous".to_string(),
            ));
        }
        let n = self.numel();
        let mut buf = self.storage.write();
        let s = T::slice_mut(&mut buf).expect("dtype matches");
        if n == 0 {
            return Ok(f(&mut []));
        }
        Ok(f(&mut s[self.offset..self.offset + n]))
    }

    /// Writes row-major `src` into this contiguous tensor, casting each element from `S` to its dtype
    /// (the store of an out kernel that computes in a wider type).
    #[track_caller]
    pub fn write_contiguous<S: Element>(&self, src: &[S]) -> Result<()> {
        if src.len() != self.numel() {
            return Err(Error::shape(format!(
                "write: {} values for a tensor of {} elements",
                src.len(),
                self.numel()
            )));
        }
        crate::dispatch_dtype!(self.dtype, T => self.with_contiguous_mut::<T, _>(|o| {
            for (o, &x) in o.iter_mut().zip(src) {
                *o = cast_element::<S, T>(x);
            }
        }))
    }

    /// Loads a tensor from `.npy` bytes.
    pub fn from_npy_bytes(bytes: &[u8]) -> Result<Tensor> {
        npy::tensor_from_npy(bytes)
    }
    /// Loads a tensor from an `.npy` file.
    pub fn read_npy(path: impl AsRef<std::path::Path>) -> Result<Tensor> {
        let p = path.as_ref();
        let bytes = std::fs::read(p).map_err(|e| Error::Io(format!("{}: {e}", p.display())))?;
        npy::tensor_from_npy(&bytes).map_err(|e| Error::Io(format!("{}: {e}", p.display())))
    }
    /// `.npy` bytes of this tensor (bf16 has no NumPy dtype and is written as f32 values).
    pub fn to_npy_bytes(&self) -> Vec<u8> {
        npy::tensor_to_npy(self)
    }
    /// Writes this tensor to an `.npy` file.
    pub fn write_npy(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let p = path.as_ref();
        std::fs::write(p, self.to_npy_bytes())
            .map_err(|e| Error::Io(format!("{}: {e}", p.display())))
    }
}

/// Converts a Python number to an element type (`torch.full(.., s, dtype)` semantics).
pub fn scalar_to<T: Element>(s: Scalar) -> T {
    match s {
        Scalar::Bool(b) => T::from_i64(b as i64),
        Scalar::Int(i) => cast_element::<i64, T>(i),
        Scalar::Float(f) => cast_element::<f64, T>(f),
    }
}

/// Normalises a possibly negative dim against rank `ndim` (rank 0 accepts -1 and 0, like PyTorch).
pub fn wrap_dim(dim: i64, ndim: usize) -> Result<usize> {
    let n = ndim.max(1) as i64;
    if dim < -n || dim >= n {
        return Err(Error::DimOutOfRange {
            dim,
            min: -n,
            max: n - 1,
        });
    }
    Ok(if dim < 0 {
        (dim + n) as usize
    } else {
        dim as usize
    })
}

/// `[2, 3]` formatting used in PyTorch's messages.
pub fn fmt_shape<T: fmt::Display>(s: &[T]) -> String {
    let parts: Vec<String> = s.iter().map(|x| x.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tensor(dtype={}, sizes={:?}, strides={:?}, offset={})",
            self.dtype.name(),
            self.sizes,
            self.strides,
            self.offset
        )?;
        if !self.storage.fake && self.sizes.iter().product::<usize>() <= 16 {
            if self.dtype.is_complex() {
                write!(f, " {:?}", self.to_vec_complex().unwrap_or_default())?;
            } else {
                write!(f, " {:?}", self.to_vec_f64())?;
            }
        }
        Ok(())
    }
}
