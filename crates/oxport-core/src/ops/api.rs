//! The user-facing tensor API. Every method is one call into the op registry, named after the ATen
//! overload it records (so `x.add(&y)` is `aten.add.Tensor`, `x.relu_()` is `aten.relu_.default`).
//!
//! ```
//! use oxport_core::prelude::*;
//! let x = Tensor::from_vec(vec![1.0f32, -2.0, 3.0, -4.0], &[2, 2])?;
//! let y = x.mul(2.0)?.relu()?.add(&x)?;
//! assert_eq!(y.to_vec::<f32>()?, vec![3.0, -2.0, 9.0, -4.0]);
//! let bad = x.view(&[3, 5]).unwrap_err();
//! assert_eq!(bad.to_string(), "shape '[3, 5]' is invalid for input of size 4");
//! # Ok::<(), oxport_core::Error>(())
//! ```
use super::registry::call;
use super::value::{SymScalar, Value};
use crate::dtype::{DType, Scalar};
use crate::error::{Error, Result};
use crate::sym::SymInt;
use crate::sym_ops::{IntoOptSymInt, IntoSymInts};
use crate::tensor::{Element, Generator, Tensor};

/// A tensor, or a number where ops take a tensor or a Python number (a "wrapped number" for type
/// promotion): `x.add(&y)`, `x.mul(2.0)`, and `x.mul(x.sym_size(1)?)` (a size, symbolic under export).
#[derive(Debug, Clone)]
pub enum Operand {
    /// A tensor.
    Tensor(Tensor),
    /// A number, possibly a symbolic int.
    Scalar(SymScalar),
}

impl From<&Tensor> for Operand {
    fn from(t: &Tensor) -> Self {
        Operand::Tensor(t.clone())
    }
}
impl From<Tensor> for Operand {
    fn from(t: Tensor) -> Self {
        Operand::Tensor(t)
    }
}
macro_rules! operand_from_number {
    ($($t:ty),*) => {$(
        impl From<$t> for Operand {
            fn from(v: $t) -> Self {
                Operand::Scalar(SymScalar::from(v))
            }
        }
    )*};
}
operand_from_number!(
    f64,
    f32,
    i64,
    i32,
    bool,
    Scalar,
    SymInt,
    &SymInt,
    SymScalar,
    crate::SymFloat,
    &crate::SymFloat
);

impl From<Operand> for Value<Tensor> {
    fn from(o: Operand) -> Self {
        match o {
            Operand::Tensor(t) => Value::Tensor(t),
            Operand::Scalar(s) => s.into(),
        }
    }
}

/// The keyword arguments of a tensor factory (`torch.zeros(size, dtype=..., device=...)`), recorded as a
/// Python call records them: PyTorch's export always records `device` and `pin_memory` (`cpu`, `False`
/// unless given) and `dtype` when given. [`TensorOptions::default`] is a call without keywords.
///
/// ```
/// use oxport_core::prelude::*;
/// let n = SymInt::from(3);
/// let z = Tensor::zeros_with([n, 2.into()], TensorOptions::default())?;
/// assert_eq!(z.sizes(), &[3, 2]);
/// let i = Tensor::ones_with(&[2], TensorOptions::default().dtype(DType::I64))?;
/// assert_eq!(i.to_vec::<i64>()?, vec![1, 1]);
/// # Ok::<(), oxport_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TensorOptions {
    /// `dtype=` (`None`: not passed, the op's default).
    pub dtype: Option<DType>,
    /// `device=` (`cpu` by default; oxport computes on the CPU whatever it says).
    pub device: String,
    /// `pin_memory=`.
    pub pin_memory: bool,
}

impl Default for TensorOptions {
    fn default() -> Self {
        TensorOptions {
            dtype: None,
            device: "cpu".into(),
            pin_memory: false,
        }
    }
}

impl TensorOptions {
    /// With `dtype=dtype`.
    pub fn dtype(mut self, dtype: DType) -> Self {
        self.dtype = Some(dtype);
        self
    }
    /// With `device=device` (`"cpu"`, `"cuda:0"`).
    pub fn device(mut self, device: &str) -> Self {
        self.device = device.into();
        self
    }
    fn kwargs(&self) -> Kw {
        let mut kw = vec![];
        if let Some(d) = self.dtype {
            kw.push(("dtype", Value::ScalarType(d)));
        }
        kw.push(("device", Value::Device(self.device.clone())));
        kw.push(("pin_memory", Value::Bool(self.pin_memory)));
        kw
    }
}

/// The positional arguments of `torch.arange`, which pick its overload as Python's do: `end`
/// (`arange.default`), `(start, end)` (`arange.start`) or `(start, end, step)` (`arange.start_step`);
/// each a number or a [`SymInt`].
pub trait ArangeArgs {
    /// The overload and its positional arguments.
    fn arange_args(self) -> (&'static str, Vec<SymScalar>);
}
impl<E: Into<SymScalar>> ArangeArgs for E {
    fn arange_args(self) -> (&'static str, Vec<SymScalar>) {
        ("aten.arange.default", vec![self.into()])
    }
}
impl<S: Into<SymScalar>, E: Into<SymScalar>> ArangeArgs for (S, E) {
    fn arange_args(self) -> (&'static str, Vec<SymScalar>) {
        ("aten.arange.start", vec![self.0.into(), self.1.into()])
    }
}
impl<S: Into<SymScalar>, E: Into<SymScalar>, P: Into<SymScalar>> ArangeArgs for (S, E, P) {
    fn arange_args(self) -> (&'static str, Vec<SymScalar>) {
        (
            "aten.arange.start_step",
            vec![self.0.into(), self.1.into(), self.2.into()],
        )
    }
}

type Kw = Vec<(&'static str, Value<Tensor>)>;

#[track_caller]
fn run(op: &str, pos: Vec<Value<Tensor>>, kw: Kw) -> Result<Vec<Value<Tensor>>> {
    call(
        op,
        pos,
        kw.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    )
}

fn first(op: &str, outs: Vec<Value<Tensor>>) -> Result<Tensor> {
    match outs.into_iter().next() {
        Some(Value::Tensor(t)) => Ok(t),
        _ => Err(Error::value(format!("{op} did not return a tensor"))),
    }
}

#[track_caller]
fn op1(op: &str, pos: Vec<Value<Tensor>>, kw: Kw) -> Result<Tensor> {
    first(op, run(op, pos, kw)?)
}

fn tensors(op: &str, outs: Vec<Value<Tensor>>) -> Result<Vec<Tensor>> {
    match outs.into_iter().next() {
        Some(Value::Tensors(ts)) => Ok(ts),
        _ => Err(Error::value(format!(
            "{op} did not return a list of tensors"
        ))),
    }
}

fn pair(op: &str, outs: Vec<Value<Tensor>>) -> Result<(Tensor, Tensor)> {
    let mut it = outs.into_iter();
    match (it.next(), it.next()) {
        (Some(Value::Tensor(a)), Some(Value::Tensor(b))) => Ok((a, b)),
        _ => Err(Error::value(format!("{op} did not return two tensors"))),
    }
}

fn t(x: &Tensor) -> Value<Tensor> {
    Value::Tensor(x.clone())
}
fn i(v: i64) -> Value<Tensor> {
    Value::Int(v.into())
}
fn il(v: &[i64]) -> Value<Tensor> {
    Value::from(v)
}
fn sl(v: impl IntoSymInts) -> Value<Tensor> {
    Value::Ints(v.into_sym_ints())
}
fn opt_t(x: Option<&Tensor>) -> Value<Tensor> {
    x.map(t).unwrap_or(Value::None)
}

macro_rules! unary_methods {
    ($($(#[$m:meta])* $name:ident => $op:literal;)*) => {$(
        $(#[$m])*
        #[track_caller]
        pub fn $name(&self) -> Result<Tensor> {
            op1($op, vec![t(self)], vec![])
        }
    )*};
}

macro_rules! binary_methods {
    ($($(#[$m:meta])* $name:ident => $op:literal;)*) => {$(
        $(#[$m])*
        #[track_caller]
        pub fn $name(&self, other: impl Into<Operand>) -> Result<Tensor> {
            op1($op, vec![t(self), other.into().into()], vec![])
        }
    )*};
}

impl Tensor {
    unary_methods! {
        /// `torch.view_as_real`: a complex tensor as real pairs (a copy in oxport; see `ops::defs::complex`).
        view_as_real => "aten.view_as_real.default";
        /// `torch.view_as_complex`: a real tensor whose last dim is 2 as complex numbers.
        view_as_complex => "aten.view_as_complex.default";
        /// `x.real`.
        real => "aten.real.default";
        /// `x.imag` (complex tensors only).
        imag => "aten.imag.default";
        /// `torch.angle`.
        angle => "aten.angle.default";
        /// `torch.sin` (`aten.sin.default`).
        sin => "aten.sin.default";
        /// `torch.cos`.
        cos => "aten.cos.default";
        /// `torch.exp`.
        exp => "aten.exp.default";
        /// `torch.log`.
        log => "aten.log.default";
        /// `torch.sqrt`.
        sqrt => "aten.sqrt.default";
        /// `torch.rsqrt`.
        rsqrt => "aten.rsqrt.default";
        /// `torch.neg`.
        neg => "aten.neg.default";
        /// `torch.tanh`.
        tanh => "aten.tanh.default";
        /// `torch.sigmoid`.
        sigmoid => "aten.sigmoid.default";
        /// `torch.relu`.
        relu => "aten.relu.default";
        /// In-place `relu_`.
        relu_ => "aten.relu_.default";
        /// `F.hardswish`.
        hardswish => "aten.hardswish.default";
        /// In-place `hardswish_`.
        hardswish_ => "aten.hardswish_.default";
        /// In-place `hardsigmoid_`.
        hardsigmoid_ => "aten.hardsigmoid_.default";
        /// `F.silu`.
        silu => "aten.silu.default";
        /// In-place `silu_`.
        silu_ => "aten.silu_.default";
        /// `F.hardsigmoid`.
        hardsigmoid => "aten.hardsigmoid.default";
        /// `torch.logical_not`.
        logical_not => "aten.logical_not.default";
        /// `Tensor.t()` (2-D transpose).
        t => "aten.t.default";
        /// `Tensor.clone()`.
        clone_tensor => "aten.clone.default";
        /// `Tensor.contiguous()`.
        contiguous => "aten.contiguous.default";
        /// `Tensor.squeeze()` (all size-1 dims).
        squeeze => "aten.squeeze.default";
        /// `Tensor.sum()` over all elements.
        sum_all => "aten.sum.default";
        /// `Tensor.mean()` over all elements.
        mean_all => "aten.mean.default";
        /// `Tensor.any()`.
        any_all => "aten.any.default";
    }

    binary_methods! {
        /// `self + other` (`aten.add.Tensor`; a number is a wrapped-number operand).
        add => "aten.add.Tensor";
        /// `self - other`.
        sub => "aten.sub.Tensor";
        /// `self * other`.
        mul => "aten.mul.Tensor";
        /// `self / other` (true division).
        div => "aten.div.Tensor";
        /// In-place `add_`.
        add_ => "aten.add_.Tensor";
        /// In-place `sub_`.
        sub_ => "aten.sub_.Tensor";
        /// In-place `mul_`.
        mul_ => "aten.mul_.Tensor";
        /// In-place `div_`.
        div_ => "aten.div_.Tensor";
    }

    /// `self == other` elementwise (a number uses the `.Scalar` overload).
    #[track_caller]
    pub fn eq(&self, other: impl Into<Operand>) -> Result<Tensor> {
        self.compare("eq", other.into())
    }
    /// `self != other`.
    #[track_caller]
    pub fn ne(&self, other: impl Into<Operand>) -> Result<Tensor> {
        self.compare("ne", other.into())
    }
    /// `self < other`.
    #[track_caller]
    pub fn lt(&self, other: impl Into<Operand>) -> Result<Tensor> {
        self.compare("lt", other.into())
    }
    /// `self > other`.
    #[track_caller]
    pub fn gt(&self, other: impl Into<Operand>) -> Result<Tensor> {
        self.compare("gt", other.into())
    }
    /// `self <= other`.
    #[track_caller]
    pub fn le(&self, other: impl Into<Operand>) -> Result<Tensor> {
        self.compare("le", other.into())
    }
    /// `self >= other`.
    #[track_caller]
    pub fn ge(&self, other: impl Into<Operand>) -> Result<Tensor> {
        self.compare("ge", other.into())
    }
    #[track_caller]
    fn compare(&self, name: &str, other: Operand) -> Result<Tensor> {
        let op = match other {
            Operand::Tensor(_) => format!("aten.{name}.Tensor"),
            Operand::Scalar(_) => format!("aten.{name}.Scalar"),
        };
        op1(&op, vec![t(self), other.into()], vec![])
    }

    /// `self + alpha * other`.
    #[track_caller]
    pub fn add_scaled(
        &self,
        other: impl Into<Operand>,
        alpha: impl Into<SymScalar>,
    ) -> Result<Tensor> {
        op1(
            "aten.add.Tensor",
            vec![t(self), other.into().into()],
            vec![("alpha", alpha.into().into())],
        )
    }
    /// `self ** exponent` (number → `pow.Tensor_Scalar`, tensor → `pow.Tensor_Tensor`).
    #[track_caller]
    pub fn pow(&self, exponent: impl Into<Operand>) -> Result<Tensor> {
        match exponent.into() {
            Operand::Scalar(s) => op1("aten.pow.Tensor_Scalar", vec![t(self), s.into()], vec![]),
            Operand::Tensor(e) => op1(
                "aten.pow.Tensor_Tensor",
                vec![t(self), Value::Tensor(e)],
                vec![],
            ),
        }
    }
    /// `torch.clamp(self, min, max)`.
    #[track_caller]
    pub fn clamp(&self, min: Option<f64>, max: Option<f64>) -> Result<Tensor> {
        let s = |v: Option<f64>| {
            v.map(|x| Value::Scalar(Scalar::Float(x)))
                .unwrap_or(Value::None)
        };
        op1("aten.clamp.default", vec![t(self), s(min), s(max)], vec![])
    }
    /// `F.gelu(self, approximate=...)` with `"none"` or `"tanh"`.
    #[track_caller]
    pub fn gelu(&self, approximate: &str) -> Result<Tensor> {
        op1(
            "aten.gelu.default",
            vec![t(self)],
            vec![("approximate", Value::from(approximate))],
        )
    }
    /// `torch.where(condition, self, other)`.
    #[track_caller]
    pub fn where_cond(condition: &Tensor, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        op1("aten.where.self", vec![t(condition), t(x), t(y)], vec![])
    }
    /// `self.masked_fill(mask, value)`: `value` where the bool `mask` is true.
    #[track_caller]
    pub fn masked_fill(&self, mask: &Tensor, value: impl Into<SymScalar>) -> Result<Tensor> {
        op1(
            "aten.masked_fill.Scalar",
            vec![t(self), t(mask), value.into().into()],
            vec![],
        )
    }
    /// In-place `masked_fill_`.
    #[track_caller]
    pub fn masked_fill_(&self, mask: &Tensor, value: impl Into<SymScalar>) -> Result<Tensor> {
        op1(
            "aten.masked_fill_.Scalar",
            vec![t(self), t(mask), value.into().into()],
            vec![],
        )
    }
    /// `F.dropout(self, p, train)`; oxport supports `train=false` (identity).
    #[track_caller]
    pub fn dropout(&self, p: f64, train: bool) -> Result<Tensor> {
        op1(
            "aten.dropout.default",
            vec![t(self), Value::Float(p), Value::Bool(train)],
            vec![],
        )
    }
    /// In-place `dropout_` (the identity in eval mode).
    #[track_caller]
    pub fn dropout_(&self, p: f64, train: bool) -> Result<Tensor> {
        op1(
            "aten.dropout_.default",
            vec![t(self), Value::Float(p), Value::Bool(train)],
            vec![],
        )
    }

    // ---- views and copies ----

    /// `Tensor.view(size)`: a view sharing storage; `-1` infers one size.
    #[track_caller]
    pub fn view(&self, size: impl IntoSymInts) -> Result<Tensor> {
        op1("aten.view.default", vec![t(self), sl(size)], vec![])
    }
    /// `Tensor.reshape(shape)`: a view when possible, else a copy.
    #[track_caller]
    pub fn reshape(&self, shape: impl IntoSymInts) -> Result<Tensor> {
        op1("aten.reshape.default", vec![t(self), sl(shape)], vec![])
    }
    /// `Tensor.permute(dims)`.
    #[track_caller]
    pub fn permute(&self, dims: &[i64]) -> Result<Tensor> {
        op1("aten.permute.default", vec![t(self), il(dims)], vec![])
    }
    /// `Tensor.transpose(dim0, dim1)`.
    #[track_caller]
    pub fn transpose(&self, dim0: i64, dim1: i64) -> Result<Tensor> {
        op1(
            "aten.transpose.int",
            vec![t(self), i(dim0), i(dim1)],
            vec![],
        )
    }
    /// `Tensor.expand(size)` (`-1` keeps a size).
    #[track_caller]
    pub fn expand(&self, size: impl IntoSymInts) -> Result<Tensor> {
        op1("aten.expand.default", vec![t(self), sl(size)], vec![])
    }
    /// `Tensor.select(dim, index)`.
    #[track_caller]
    pub fn select(&self, dim: i64, index: i64) -> Result<Tensor> {
        op1("aten.select.int", vec![t(self), i(dim), i(index)], vec![])
    }
    /// `self[start:end:step]` along `dim`; `start`/`end` are ints, [`SymInt`]s (bounds computed from
    /// sizes) or `None` for an open end.
    ///
    /// ```
    /// use oxport_core::prelude::*;
    /// let x = Tensor::arange_f32(6);
    /// let n = x.sym_size(0)?;
    /// assert_eq!(x.slice(0, 1, n - 1, 1)?.to_vec::<f32>()?, vec![1.0, 2.0, 3.0, 4.0]);
    /// assert_eq!(x.slice(0, None, 2, 1)?.to_vec::<f32>()?, vec![0.0, 1.0]);
    /// # Ok::<(), oxport_core::Error>(())
    /// ```
    #[track_caller]
    pub fn slice(
        &self,
        dim: i64,
        start: impl IntoOptSymInt,
        end: impl IntoOptSymInt,
        step: impl Into<SymInt>,
    ) -> Result<Tensor> {
        let o = |v: Option<SymInt>| v.map(Value::Int).unwrap_or(Value::None);
        op1(
            "aten.slice.Tensor",
            vec![
                t(self),
                i(dim),
                o(start.into_opt_sym_int()),
                o(end.into_opt_sym_int()),
                Value::Int(step.into()),
            ],
            vec![],
        )
    }
    /// `Tensor.narrow(dim, start, length)`: `length` elements from `start` along `dim` (a view).
    ///
    /// ```
    /// use oxport_core::prelude::*;
    /// let x = Tensor::arange_f32(6).view(&[2, 3])?;
    /// let n = x.sym_size(1)?;
    /// assert_eq!(x.narrow(1, 1, n - 1)?.to_vec::<f32>()?, vec![1.0, 2.0, 4.0, 5.0]);
    /// # Ok::<(), oxport_core::Error>(())
    /// ```
    #[track_caller]
    pub fn narrow(
        &self,
        dim: i64,
        start: impl Into<SymInt>,
        length: impl Into<SymInt>,
    ) -> Result<Tensor> {
        op1(
            "aten.narrow.default",
            vec![
                t(self),
                i(dim),
                Value::Int(start.into()),
                Value::Int(length.into()),
            ],
            vec![],
        )
    }
    /// `Tensor.repeat(repeats)`: the tensor tiled `repeats[i]` times along each dim.
    ///
    /// ```
    /// use oxport_core::prelude::*;
    /// let x = Tensor::arange_f32(2);
    /// assert_eq!(x.repeat(&[2, 1])?.to_vec::<f32>()?, vec![0.0, 1.0, 0.0, 1.0]);
    /// # Ok::<(), oxport_core::Error>(())
    /// ```
    #[track_caller]
    pub fn repeat(&self, repeats: impl IntoSymInts) -> Result<Tensor> {
        op1("aten.repeat.default", vec![t(self), sl(repeats)], vec![])
    }
    /// `Tensor.squeeze(dim)`.
    #[track_caller]
    pub fn squeeze_dim(&self, dim: i64) -> Result<Tensor> {
        op1("aten.squeeze.dim", vec![t(self), i(dim)], vec![])
    }
    /// `Tensor.squeeze(dims)`.
    #[track_caller]
    pub fn squeeze_dims(&self, dims: &[i64]) -> Result<Tensor> {
        op1("aten.squeeze.dims", vec![t(self), il(dims)], vec![])
    }
    /// `Tensor.unsqueeze(dim)`.
    #[track_caller]
    pub fn unsqueeze(&self, dim: i64) -> Result<Tensor> {
        op1("aten.unsqueeze.default", vec![t(self), i(dim)], vec![])
    }
    /// `Tensor.flatten(start_dim, end_dim)`.
    #[track_caller]
    pub fn flatten(&self, start_dim: i64, end_dim: i64) -> Result<Tensor> {
        op1(
            "aten.flatten.using_ints",
            vec![t(self), i(start_dim), i(end_dim)],
            vec![],
        )
    }
    /// `Tensor.unflatten(dim, sizes)`.
    #[track_caller]
    pub fn unflatten(&self, dim: i64, sizes: impl IntoSymInts) -> Result<Tensor> {
        op1(
            "aten.unflatten.int",
            vec![t(self), i(dim), sl(sizes)],
            vec![],
        )
    }
    /// `torch.as_strided(self, size, stride, storage_offset)`.
    #[track_caller]
    pub fn as_strided(
        &self,
        size: &[i64],
        stride: &[i64],
        storage_offset: Option<i64>,
    ) -> Result<Tensor> {
        op1(
            "aten.as_strided.default",
            vec![
                t(self),
                il(size),
                il(stride),
                storage_offset.map(i).unwrap_or(Value::None),
            ],
            vec![],
        )
    }
    /// `Tensor.to(dtype)` (returns `self` when the dtype already matches).
    #[track_caller]
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        op1(
            "aten.to.dtype",
            vec![t(self), Value::ScalarType(dtype)],
            vec![],
        )
    }
    /// In-place `copy_(src)` (broadcasts and casts `src`).
    #[track_caller]
    pub fn copy_(&self, src: &Tensor) -> Result<Tensor> {
        op1("aten.copy_.default", vec![t(self), t(src)], vec![])
    }
    /// `torch.split(self, split_size, dim)`.
    #[track_caller]
    pub fn split(&self, split_size: i64, dim: i64) -> Result<Vec<Tensor>> {
        tensors(
            "aten.split.Tensor",
            run(
                "aten.split.Tensor",
                vec![t(self), i(split_size), i(dim)],
                vec![],
            )?,
        )
    }
    /// `torch.split(self, [sizes], dim)`.
    #[track_caller]
    pub fn split_with_sizes(&self, sizes: impl IntoSymInts, dim: i64) -> Result<Vec<Tensor>> {
        let op = "aten.split_with_sizes.default";
        tensors(op, run(op, vec![t(self), sl(sizes), i(dim)], vec![])?)
    }
    /// `torch.chunk(self, chunks, dim)`: `ceil(n / chunks)`-sized views (possibly fewer than `chunks`).
    #[track_caller]
    pub fn chunk(&self, chunks: i64, dim: i64) -> Result<Vec<Tensor>> {
        let op = "aten.chunk.default";
        let mut args = vec![t(self), i(chunks)];
        if dim != 0 {
            args.push(i(dim));
        }
        tensors(op, run(op, args, vec![])?)
    }
    /// `torch.unbind(self, dim)`.
    #[track_caller]
    pub fn unbind(&self, dim: i64) -> Result<Vec<Tensor>> {
        tensors(
            "aten.unbind.int",
            run("aten.unbind.int", vec![t(self), i(dim)], vec![])?,
        )
    }

    // ---- reductions ----

    /// `Tensor.sum(dims, keepdim)`.
    #[track_caller]
    pub fn sum(&self, dims: &[i64], keepdim: bool) -> Result<Tensor> {
        op1(
            "aten.sum.dim_IntList",
            vec![t(self), il(dims), Value::Bool(keepdim)],
            vec![],
        )
    }
    /// `Tensor.mean(dims, keepdim)`.
    #[track_caller]
    pub fn mean(&self, dims: &[i64], keepdim: bool) -> Result<Tensor> {
        op1(
            "aten.mean.dim",
            vec![t(self), il(dims), Value::Bool(keepdim)],
            vec![],
        )
    }
    /// `Tensor.amax(dims, keepdim)`.
    #[track_caller]
    pub fn amax(&self, dims: &[i64], keepdim: bool) -> Result<Tensor> {
        op1(
            "aten.amax.default",
            vec![t(self), il(dims), Value::Bool(keepdim)],
            vec![],
        )
    }
    /// `Tensor.any(dim, keepdim)`.
    #[track_caller]
    pub fn any(&self, dim: i64, keepdim: bool) -> Result<Tensor> {
        op1(
            "aten.any.dim",
            vec![t(self), i(dim), Value::Bool(keepdim)],
            vec![],
        )
    }
    /// `Tensor.max(dim, keepdim)` → (values, indices).
    #[track_caller]
    pub fn max_dim(&self, dim: i64, keepdim: bool) -> Result<(Tensor, Tensor)> {
        pair(
            "aten.max.dim",
            run(
                "aten.max.dim",
                vec![t(self), i(dim), Value::Bool(keepdim)],
                vec![],
            )?,
        )
    }
    /// `Tensor.argmax(dim, keepdim)`.
    #[track_caller]
    pub fn argmax(&self, dim: Option<i64>, keepdim: bool) -> Result<Tensor> {
        op1(
            "aten.argmax.default",
            vec![
                t(self),
                dim.map(i).unwrap_or(Value::None),
                Value::Bool(keepdim),
            ],
            vec![],
        )
    }
    /// `Tensor.softmax(dim)`.
    #[track_caller]
    pub fn softmax(&self, dim: i64) -> Result<Tensor> {
        op1("aten.softmax.int", vec![t(self), i(dim)], vec![])
    }
    /// `Tensor.log_softmax(dim)`.
    #[track_caller]
    pub fn log_softmax(&self, dim: i64) -> Result<Tensor> {
        op1("aten.log_softmax.int", vec![t(self), i(dim)], vec![])
    }

    // ---- linear algebra and nn ----

    /// `torch.matmul`.
    #[track_caller]
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        op1("aten.matmul.default", vec![t(self), t(other)], vec![])
    }
    /// `torch.mm`.
    #[track_caller]
    pub fn mm(&self, other: &Tensor) -> Result<Tensor> {
        op1("aten.mm.default", vec![t(self), t(other)], vec![])
    }
    /// `torch.bmm`.
    #[track_caller]
    pub fn bmm(&self, other: &Tensor) -> Result<Tensor> {
        op1("aten.bmm.default", vec![t(self), t(other)], vec![])
    }
    /// `torch.baddbmm(self, batch1, batch2)`: `self + batch1 @ batch2`.
    #[track_caller]
    pub fn baddbmm(&self, batch1: &Tensor, batch2: &Tensor) -> Result<Tensor> {
        op1(
            "aten.baddbmm.default",
            vec![t(self), t(batch1), t(batch2)],
            vec![],
        )
    }
    /// `torch.addmm(self, mat1, mat2)`.
    #[track_caller]
    pub fn addmm(&self, mat1: &Tensor, mat2: &Tensor) -> Result<Tensor> {
        op1(
            "aten.addmm.default",
            vec![t(self), t(mat1), t(mat2)],
            vec![],
        )
    }
    /// `F.linear(self, weight, bias)`.
    #[track_caller]
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        op1(
            "aten.linear.default",
            vec![t(self), t(weight), opt_t(bias)],
            vec![],
        )
    }
    /// `F.conv2d(self, weight, bias, stride, padding, dilation, groups)`.
    #[track_caller]
    pub fn conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: &[i64],
        padding: &[i64],
        dilation: &[i64],
        groups: i64,
    ) -> Result<Tensor> {
        op1(
            "aten.conv2d.default",
            vec![
                t(self),
                t(weight),
                opt_t(bias),
                il(stride),
                il(padding),
                il(dilation),
                i(groups),
            ],
            vec![],
        )
    }
    /// `F.pad(self, pad, mode)` (`aten.pad.default`): `constant` (zeros), `reflect`, `replicate` or
    /// `circular`; `pad` is (left, right) for the last dim, then the one before, ...
    #[track_caller]
    pub fn pad(&self, pad: &[i64], mode: &str) -> Result<Tensor> {
        op1(
            "aten.pad.default",
            vec![t(self), il(pad), Value::Str(mode.to_string())],
            vec![],
        )
    }
    /// `F.conv1d(self, weight, bias, stride, padding, dilation, groups)`.
    #[track_caller]
    #[allow(clippy::too_many_arguments)]
    pub fn conv1d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: i64,
        padding: i64,
        dilation: i64,
        groups: i64,
    ) -> Result<Tensor> {
        op1(
            "aten.conv1d.default",
            vec![
                t(self),
                t(weight),
                opt_t(bias),
                il(&[stride]),
                il(&[padding]),
                il(&[dilation]),
                i(groups),
            ],
            vec![],
        )
    }
    /// `F.max_pool2d(self, kernel_size, stride, padding, dilation, ceil_mode)`; empty stride = kernel size.
    #[track_caller]
    pub fn max_pool2d(
        &self,
        kernel: &[i64],
        stride: &[i64],
        padding: &[i64],
        dilation: &[i64],
        ceil_mode: bool,
    ) -> Result<Tensor> {
        op1(
            "aten.max_pool2d.default",
            vec![
                t(self),
                il(kernel),
                il(stride),
                il(padding),
                il(dilation),
                Value::Bool(ceil_mode),
            ],
            vec![],
        )
    }
    /// `F.avg_pool2d(self, kernel_size, stride, padding, ceil_mode, count_include_pad)`.
    #[track_caller]
    pub fn avg_pool2d(
        &self,
        kernel: &[i64],
        stride: &[i64],
        padding: &[i64],
        ceil_mode: bool,
        count_include_pad: bool,
    ) -> Result<Tensor> {
        op1(
            "aten.avg_pool2d.default",
            vec![
                t(self),
                il(kernel),
                il(stride),
                il(padding),
                Value::Bool(ceil_mode),
                Value::Bool(count_include_pad),
            ],
            vec![],
        )
    }
    /// `F.adaptive_avg_pool2d(self, output_size)`.
    #[track_caller]
    pub fn adaptive_avg_pool2d(&self, output_size: &[i64]) -> Result<Tensor> {
        op1(
            "aten.adaptive_avg_pool2d.default",
            vec![t(self), il(output_size)],
            vec![],
        )
    }
    /// `F.batch_norm` in inference mode (running statistics).
    #[track_caller]
    pub fn batch_norm(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        running_mean: &Tensor,
        running_var: &Tensor,
        eps: f64,
    ) -> Result<Tensor> {
        self.batch_norm_with(
            weight,
            bias,
            Some(running_mean),
            Some(running_var),
            false,
            0.1,
            eps,
        )
    }
    /// `F.batch_norm(self, running_mean, running_var, weight, bias, training, momentum, eps)`
    /// (`aten.batch_norm.default`, cudnn disabled as on CPU).
    #[track_caller]
    #[allow(clippy::too_many_arguments)]
    pub fn batch_norm_with(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        running_mean: Option<&Tensor>,
        running_var: Option<&Tensor>,
        training: bool,
        momentum: f64,
        eps: f64,
    ) -> Result<Tensor> {
        op1(
            "aten.batch_norm.default",
            vec![
                t(self),
                opt_t(weight),
                opt_t(bias),
                opt_t(running_mean),
                opt_t(running_var),
                Value::Bool(training),
                Value::Float(momentum),
                Value::Float(eps),
                Value::Bool(false),
            ],
            vec![],
        )
    }
    /// `F.hardtanh(self, min_val, max_val)` (`ReLU6` is `hardtanh(0, 6)`).
    #[track_caller]
    pub fn hardtanh(&self, min_val: f64, max_val: f64) -> Result<Tensor> {
        op1(
            "aten.hardtanh.default",
            vec![t(self), Value::Float(min_val), Value::Float(max_val)],
            vec![],
        )
    }
    /// In-place `hardtanh_`.
    #[track_caller]
    pub fn hardtanh_(&self, min_val: f64, max_val: f64) -> Result<Tensor> {
        op1(
            "aten.hardtanh_.default",
            vec![t(self), Value::Float(min_val), Value::Float(max_val)],
            vec![],
        )
    }
    /// `_VF.lstm(input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first)`
    /// (`aten.lstm.input`): `(output, h_n, c_n)`.
    #[track_caller]
    #[allow(clippy::too_many_arguments)]
    pub fn lstm(
        &self,
        hx: &[Tensor],
        params: &[Tensor],
        has_biases: bool,
        num_layers: i64,
        dropout: f64,
        train: bool,
        bidirectional: bool,
        batch_first: bool,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let outs = run(
            "aten.lstm.input",
            vec![
                t(self),
                Value::Tensors(hx.to_vec()),
                Value::Tensors(params.to_vec()),
                Value::Bool(has_biases),
                i(num_layers),
                Value::Float(dropout),
                Value::Bool(train),
                Value::Bool(bidirectional),
                Value::Bool(batch_first),
            ],
            vec![],
        )?;
        let mut it = outs.into_iter();
        match (it.next(), it.next(), it.next()) {
            (Some(Value::Tensor(a)), Some(Value::Tensor(b)), Some(Value::Tensor(c))) => {
                Ok((a, b, c))
            }
            _ => Err(Error::value("aten.lstm.input did not return three tensors")),
        }
    }
    /// `F.layer_norm(self, normalized_shape, weight, bias, eps)`.
    #[track_caller]
    pub fn layer_norm(
        &self,
        normalized_shape: &[i64],
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f64,
    ) -> Result<Tensor> {
        op1(
            "aten.layer_norm.default",
            vec![
                t(self),
                il(normalized_shape),
                opt_t(weight),
                opt_t(bias),
                Value::Float(eps),
                // F.layer_norm passes cudnn_enable=False on the CPU.
                Value::Bool(false),
            ],
            vec![],
        )
    }
    /// `F.scaled_dot_product_attention(q, k, v, attn_mask, is_causal=...)`.
    #[track_caller]
    pub fn scaled_dot_product_attention(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        attn_mask: Option<&Tensor>,
        is_causal: bool,
    ) -> Result<Tensor> {
        Tensor::scaled_dot_product_attention_with(q, k, v, attn_mask, 0.0, is_causal)
    }
    /// `F.scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal)` (dropout on the
    /// attention weights with the default generator).
    #[track_caller]
    pub fn scaled_dot_product_attention_with(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        attn_mask: Option<&Tensor>,
        dropout_p: f64,
        is_causal: bool,
    ) -> Result<Tensor> {
        op1(
            "aten.scaled_dot_product_attention.default",
            vec![
                t(q),
                t(k),
                t(v),
                opt_t(attn_mask),
                Value::Float(dropout_p),
                Value::Bool(is_causal),
            ],
            vec![],
        )
    }
    /// `F.embedding(indices, weight)` written as `weight.embedding(indices)`.
    #[track_caller]
    pub fn embedding(&self, indices: &Tensor) -> Result<Tensor> {
        op1("aten.embedding.default", vec![t(self), t(indices)], vec![])
    }

    // ---- constructors (registry ops, so they are recorded under export) ----

    /// `torch.full(size, value, dtype)`; `dtype=None` infers it from the value like PyTorch.
    #[track_caller]
    pub fn full(
        size: impl IntoSymInts,
        value: impl Into<SymScalar>,
        dtype: Option<DType>,
    ) -> Result<Tensor> {
        op1(
            "aten.full.default",
            vec![sl(size), value.into().into()],
            vec![("dtype", dtype.map(Value::ScalarType).unwrap_or(Value::None))],
        )
    }
    /// `torch.zeros(size, dtype)`.
    #[track_caller]
    pub fn zeros(size: impl IntoSymInts, dtype: DType) -> Result<Tensor> {
        op1(
            "aten.zeros.default",
            vec![sl(size)],
            vec![("dtype", Value::ScalarType(dtype))],
        )
    }
    /// `torch.zeros(size, dtype=dtype, device=device)` as nn layers call it (records `dtype`, `device` and
    /// `pin_memory=False`).
    #[track_caller]
    pub fn zeros_on(size: impl IntoSymInts, dtype: DType, device: &str) -> Result<Tensor> {
        op1(
            "aten.zeros.default",
            vec![sl(size)],
            vec![
                ("dtype", Value::ScalarType(dtype)),
                ("device", Value::Device(device.to_string())),
                ("pin_memory", Value::Bool(false)),
            ],
        )
    }
    /// `torch.ones(size, dtype)`.
    #[track_caller]
    pub fn ones(size: impl IntoSymInts, dtype: DType) -> Result<Tensor> {
        op1(
            "aten.ones.default",
            vec![sl(size)],
            vec![("dtype", Value::ScalarType(dtype))],
        )
    }
    /// `torch.zeros_like(self)`.
    #[track_caller]
    pub fn zeros_like(&self) -> Result<Tensor> {
        op1("aten.zeros_like.default", vec![t(self)], vec![])
    }
    /// `torch.zeros_like(self, dtype=dtype)` (records `dtype` and `pin_memory=False`, as the Python call does).
    #[track_caller]
    pub fn zeros_like_dtype(&self, dtype: DType) -> Result<Tensor> {
        op1(
            "aten.zeros_like.default",
            vec![t(self)],
            vec![
                ("dtype", Value::ScalarType(dtype)),
                ("pin_memory", Value::Bool(false)),
            ],
        )
    }
    /// `torch.full_like(self, value)`.
    #[track_caller]
    pub fn full_like(&self, value: impl Into<SymScalar>) -> Result<Tensor> {
        op1(
            "aten.full_like.default",
            vec![t(self), value.into().into()],
            vec![],
        )
    }
    /// `torch.arange(start, end, step, dtype)` (records `arange.start_step` with `dtype` only); dtype `None`
    /// infers i64 or f32 like PyTorch. [`Tensor::arange_with`] records what Python's `torch.arange` does.
    #[track_caller]
    pub fn arange(
        start: impl Into<SymScalar>,
        end: impl Into<SymScalar>,
        step: impl Into<SymScalar>,
        dtype: Option<DType>,
    ) -> Result<Tensor> {
        op1(
            "aten.arange.start_step",
            vec![start.into().into(), end.into().into(), step.into().into()],
            vec![("dtype", dtype.map(Value::ScalarType).unwrap_or(Value::None))],
        )
    }
    /// `torch.arange(end)`, `torch.arange(start, end)` or `torch.arange(start, end, step)` with keyword
    /// arguments `options`, recorded as the Python call is (the overload by argument count, `device` and
    /// `pin_memory`); bounds may be [`SymInt`]s computed from sizes.
    ///
    /// ```
    /// use oxport_core::prelude::*;
    /// let x = Tensor::zeros(&[3], DType::F32)?;
    /// let n = x.sym_size(0)?;
    /// let opts = TensorOptions::default();
    /// assert_eq!(Tensor::arange_with(n.clone(), opts.clone())?.to_vec::<i64>()?, vec![0, 1, 2]);
    /// assert_eq!(Tensor::arange_with((1, n.clone() + 1), opts.clone())?.to_vec::<i64>()?, vec![1, 2, 3]);
    /// let halves = Tensor::arange_with((0, n, 0.5), opts)?;
    /// assert_eq!(halves.to_vec::<f32>()?, vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5]);
    /// # Ok::<(), oxport_core::Error>(())
    /// ```
    #[track_caller]
    pub fn arange_with(args: impl ArangeArgs, options: TensorOptions) -> Result<Tensor> {
        let (op, args) = args.arange_args();
        op1(
            op,
            args.into_iter().map(Value::from).collect(),
            options.kwargs(),
        )
    }
    /// `torch.full(size, value, **options)` as Python records it (`device`, `pin_memory`).
    #[track_caller]
    pub fn full_with(
        size: impl IntoSymInts,
        value: impl Into<SymScalar>,
        options: TensorOptions,
    ) -> Result<Tensor> {
        op1(
            "aten.full.default",
            vec![sl(size), value.into().into()],
            options.kwargs(),
        )
    }
    /// `torch.zeros(size, **options)` as Python records it.
    #[track_caller]
    pub fn zeros_with(size: impl IntoSymInts, options: TensorOptions) -> Result<Tensor> {
        op1("aten.zeros.default", vec![sl(size)], options.kwargs())
    }
    /// `torch.ones(size, **options)` as Python records it.
    #[track_caller]
    pub fn ones_with(size: impl IntoSymInts, options: TensorOptions) -> Result<Tensor> {
        op1("aten.ones.default", vec![sl(size)], options.kwargs())
    }
    /// `self.new_zeros(size)`: zeros of `self`'s dtype (records `pin_memory=False`, as Python's does).
    ///
    /// ```
    /// use oxport_core::prelude::*;
    /// let x = Tensor::from_vec(vec![1i64, 2], &[2])?;
    /// let z = x.new_zeros([x.sym_size(0)?, 3.into()])?;
    /// assert_eq!((z.sizes(), z.dtype()), (&[2, 3][..], DType::I64));
    /// assert_eq!(x.new_ones(&[2])?.to_vec::<i64>()?, vec![1, 1]);
    /// # Ok::<(), oxport_core::Error>(())
    /// ```
    #[track_caller]
    pub fn new_zeros(&self, size: impl IntoSymInts) -> Result<Tensor> {
        op1(
            "aten.new_zeros.default",
            vec![t(self), sl(size)],
            vec![("pin_memory", Value::Bool(false))],
        )
    }
    /// `self.new_ones(size)`: ones of `self`'s dtype (records `pin_memory=False`, as Python's does).
    #[track_caller]
    pub fn new_ones(&self, size: impl IntoSymInts) -> Result<Tensor> {
        op1(
            "aten.new_ones.default",
            vec![t(self), sl(size)],
            vec![("pin_memory", Value::Bool(false))],
        )
    }
    /// `torch.cat(tensors, dim)`.
    #[track_caller]
    pub fn cat(tensors: &[&Tensor], dim: i64) -> Result<Tensor> {
        op1(
            "aten.cat.default",
            vec![
                Value::Tensors(tensors.iter().map(|x| (*x).clone()).collect()),
                i(dim),
            ],
            vec![],
        )
    }
    /// `torch.einsum(equation, *operands)`: `Tensor::einsum("bhqd,bhkd->bhqk", &[&q, &k])`.
    #[track_caller]
    pub fn einsum(equation: &str, operands: &[&Tensor]) -> Result<Tensor> {
        op1(
            "aten.einsum.default",
            vec![
                Value::Str(equation.to_string()),
                Value::Tensors(operands.iter().map(|x| (*x).clone()).collect()),
            ],
            vec![],
        )
    }
    /// `torch.stack(tensors, dim)`.
    #[track_caller]
    pub fn stack(tensors: &[&Tensor], dim: i64) -> Result<Tensor> {
        op1(
            "aten.stack.default",
            vec![
                Value::Tensors(tensors.iter().map(|x| (*x).clone()).collect()),
                i(dim),
            ],
            vec![],
        )
    }
    /// `torch.randn(size, generator=g)` as f32. Not an ATen op: a constant under export, like a weight.
    #[track_caller]
    pub fn randn(size: &[usize], g: &mut Generator) -> Result<Tensor> {
        let n = crate::tensor::checked_numel(size)?;
        Tensor::from_vec(
            (0..n).map(|_| g.normal() as f32).collect::<Vec<f32>>(),
            size,
        )
    }
    /// `torch.rand(size, generator=g)` (uniform in [0, 1)) as f32.
    #[track_caller]
    pub fn rand(size: &[usize], g: &mut Generator) -> Result<Tensor> {
        let n = crate::tensor::checked_numel(size)?;
        Tensor::from_vec(
            (0..n).map(|_| g.uniform() as f32).collect::<Vec<f32>>(),
            size,
        )
    }
    /// A one-element tensor's value as `T` (reads data: not traceable).
    #[track_caller]
    pub fn item_as<T: Element>(&self) -> Result<T> {
        Ok(crate::tensor::cast_element::<f64, T>(self.item_f64()?))
    }
}

/// The `torch.fft` functions and complex construction.
///
/// ```
/// use oxport_core::prelude::*;
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[4])?;
/// let spec = x.fft_rfft(None, -1, None)?;
/// assert_eq!(spec.dtype(), DType::C64);
/// let back = spec.fft_irfft(Some(4), -1, None)?;
/// let v = back.to_vec::<f32>()?;
/// assert!((v[3] - 4.0).abs() < 1e-6);
/// # Ok::<(), oxport_core::Error>(())
/// ```
impl Tensor {
    #[track_caller]
    fn fft_op(&self, op: &str, n: Option<i64>, dim: i64, norm: Option<&str>) -> Result<Tensor> {
        let n = n.map(i).unwrap_or(Value::None);
        let norm = norm
            .map(|s| Value::Str(s.to_string()))
            .unwrap_or(Value::None);
        op1(op, vec![t(self), n, i(dim), norm], vec![])
    }
    /// `torch.fft.fft(self, n, dim, norm)`.
    #[track_caller]
    pub fn fft_fft(&self, n: Option<i64>, dim: i64, norm: Option<&str>) -> Result<Tensor> {
        self.fft_op("aten.fft_fft.default", n, dim, norm)
    }
    /// `torch.fft.ifft(self, n, dim, norm)`.
    #[track_caller]
    pub fn fft_ifft(&self, n: Option<i64>, dim: i64, norm: Option<&str>) -> Result<Tensor> {
        self.fft_op("aten.fft_ifft.default", n, dim, norm)
    }
    /// `torch.fft.rfft(self, n, dim, norm)`.
    #[track_caller]
    pub fn fft_rfft(&self, n: Option<i64>, dim: i64, norm: Option<&str>) -> Result<Tensor> {
        self.fft_op("aten.fft_rfft.default", n, dim, norm)
    }
    /// `torch.fft.irfft(self, n, dim, norm)`.
    #[track_caller]
    pub fn fft_irfft(&self, n: Option<i64>, dim: i64, norm: Option<&str>) -> Result<Tensor> {
        self.fft_op("aten.fft_irfft.default", n, dim, norm)
    }
    /// `torch.complex(real, imag)`.
    #[track_caller]
    pub fn complex(real: &Tensor, imag: &Tensor) -> Result<Tensor> {
        op1("aten.complex.default", vec![t(real), t(imag)], vec![])
    }
}
