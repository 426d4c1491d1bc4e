//! Registrations: every supported ATen overload, grouped by family. Each `r.op(<overload name>, meta, kernel)`
//! line is the single declaration of an op; `tools/gen_schemas.py` reads these names to generate the
//! schema table.
use super::decompositions;
use super::registry::{Builder, DecompFn};
use super::value::{concrete_usizes, Args, Operand, TensorMeta, Value};
use crate::dtype::{DType, ResultTypeState};
use crate::error::{Error, Result};
use crate::sym::SymInt;
use crate::tensor::{fmt_shape, wrap_dim, Tensor};
pub(crate) use complex::{norm_from_string, Composite};
pub use shape::view_strides;

mod complex;
mod composite;
mod conv_transpose;
mod factory;
mod fill_pad;
mod indexing;
mod linalg;
mod math;
mod nn;
mod nn_extra;
mod norm_resample;
mod pointwise;
mod random;
mod reduce;
mod shape;
mod sort;

pub(super) fn register_all(r: &mut Builder) {
    pointwise::register(r);
    shape::register(r);
    reduce::register(r);
    linalg::register(r);
    math::register(r);
    nn::register(r);
    conv_transpose::register(r);
    nn_extra::register(r);
    norm_resample::register(r);
    factory::register(r);
    random::register(r);
    sort::register(r);
    fill_pad::register(r);
    indexing::register(r);
    composite::register(r);
    complex::register(r);
}

/// PyTorch's check on the sizes a factory creates.
pub(crate) fn check_sizes(sizes: &[SymInt]) -> Result<()> {
    for s in sizes {
        if s.guard_lt(&SymInt::Int(0)) {
            return Err(Error::shape(format!(
                "Trying to create tensor with negative dimension {s}: {}",
                fmt_shape(sizes)
            )));
        }
    }
    Ok(())
}

/// Output list with one tensor meta.
pub(crate) fn one(dtype: DType, sizes: Vec<SymInt>) -> Result<Vec<Value<TensorMeta>>> {
    Ok(vec![Value::Tensor(TensorMeta::contiguous(dtype, sizes))])
}

/// Output list with one tensor.
pub(crate) fn out1(t: Tensor) -> Result<Vec<Value<Tensor>>> {
    Ok(vec![Value::Tensor(t)])
}

/// The concrete sizes of output `i`.
pub(crate) fn out_sizes(outs: &[Value<TensorMeta>], i: usize) -> Result<Vec<usize>> {
    match outs.get(i) {
        Some(Value::Tensor(m)) => m.concrete_sizes(),
        _ => Err(Error::value(format!(
            "meta function produced no tensor output {i}"
        ))),
    }
}

/// The dtype of output `i`.
pub(crate) fn out_dtype(outs: &[Value<TensorMeta>], i: usize) -> Result<DType> {
    match outs.get(i) {
        Some(Value::Tensor(m)) => Ok(m.dtype),
        _ => Err(Error::value(format!(
            "meta function produced no tensor output {i}"
        ))),
    }
}

/// `t` in `dtype` (no copy when it already is).
pub(crate) fn as_dtype(t: &Tensor, dtype: DType) -> Tensor {
    if t.dtype() == dtype {
        t.clone()
    } else {
        t.cast_untraced(dtype)
    }
}

/// A tensor operand in `dtype`; a wrapped number becomes a 0-d tensor.
pub(crate) fn operand_as(o: &Operand<&Tensor>, dtype: DType) -> Tensor {
    match o {
        Operand::Tensor(t) => as_dtype(t, dtype),
        Operand::Scalar(s) => Tensor::scalar_of(*s, dtype),
    }
}

/// Sizes of an operand's meta (a wrapped number is 0-d).
pub(crate) fn operand_sizes<'a>(o: &Operand<&'a TensorMeta>) -> &'a [SymInt] {
    match o {
        Operand::Tensor(t) => &t.sizes,
        Operand::Scalar(_) => &[],
    }
}

/// What type promotion needs to know about a tensor operand: its dtype and rank.
pub(crate) trait PromotionInfo {
    fn dtype_and_dim(&self) -> (DType, usize);
}
impl PromotionInfo for TensorMeta {
    fn dtype_and_dim(&self) -> (DType, usize) {
        (self.dtype, self.dim())
    }
}
impl PromotionInfo for Tensor {
    fn dtype_and_dim(&self) -> (DType, usize) {
        (self.dtype(), self.dim())
    }
}

/// `torch.result_type` over operands (metas in meta functions, tensors in kernels).
pub(crate) fn result_type<T: PromotionInfo>(ops: &[&Operand<&T>]) -> DType {
    let mut st = ResultTypeState::default();
    for o in ops {
        match o {
            Operand::Tensor(t) => {
                let (dtype, dim) = t.dtype_and_dim();
                st.add_tensor(dtype, dim)
            }
            Operand::Scalar(s) => st.add_scalar(*s),
        }
    }
    st.result()
}

/// Broadcasts shapes with PyTorch's rules and message.
pub(crate) fn broadcast_shapes(shapes: &[&[SymInt]]) -> Result<Vec<SymInt>> {
    let nd = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![SymInt::Int(1); nd];
    let mut first: Vec<Option<usize>> = vec![None; nd]; // which operand set each dim
    for (k, s) in shapes.iter().enumerate() {
        let off = nd - s.len();
        // Last dim first, as PyTorch's infer_size: with several mismatches it names the last.
        for (i, d) in s.iter().enumerate().rev() {
            let o = &mut out[off + i];
            if d.guard_is_one() {
                continue;
            }
            if o.guard_is_one() {
                *o = d.clone();
                first[off + i] = Some(k);
            } else if !o.guard_eq(d) {
                let names = ["a", "b", "c", "d"];
                let j = first[off + i].unwrap_or(0);
                return Err(Error::shape(format!(
                    "The size of tensor {} ({}) must match the size of tensor {} ({}) at non-singleton dimension {}",
                    names[j.min(3)],
                    o,
                    names[k.min(3)],
                    d,
                    off + i
                )));
            }
        }
    }
    Ok(out)
}

/// Wraps a dim against a meta's rank.
pub(crate) fn wrap(dim: i64, t: &TensorMeta) -> Result<usize> {
    wrap_dim(dim, t.dim())
}

/// Meta of a tensor argument, for the common case.
pub(crate) fn meta_self<'a>(a: &'a Args<TensorMeta>) -> Result<&'a TensorMeta> {
    a.tensor("self")
}

/// Float constant in a generic float type.
#[inline]
pub(crate) fn c<F: num_traits::Float>(v: f64) -> F {
    F::from(v).unwrap_or_else(F::nan)
}
