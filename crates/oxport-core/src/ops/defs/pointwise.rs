//! Pointwise ops: unary math, activations, arithmetic with broadcasting and type promotion, comparisons,
//! `where`, `clamp`, `pow`, in-place variants and inference-mode dropout.
use super::*;
use crate::dtype::Scalar;
use crate::ops::registry::alloc_outputs;
use crate::tensor::kernels::elementwise::{
    binary_map, binary_map_into, ternary_map_into, unary_map_into, unary_slices_into,
};
use crate::tensor::kernels::simd;
use crate::tensor::kernels::vmath::{self, Unary};
use crate::tensor::{cast_element, scalar_to, Element};
use half::{bf16, f16};
use num_traits::Float;

pub(super) fn register(r: &mut Builder) {
    macro_rules! float_unary {
        ($name:literal, $x:ident => $body:expr) => {{
            fn f<F: Float>($x: F) -> F {
                $body
            }
            r.out_op($name, meta_unary_float, |a, o| {
                unary_float_into(a, first(o)?, f::<f32>, f::<f64>)
            });
        }};
    }
    float_unary!("aten.sin.default", x => x.sin());
    float_unary!("aten.cos.default", x => x.cos());
    // A float function with a vectorised f32 kernel.
    macro_rules! vec_unary {
        ($name:literal, $op:expr, $x:ident => $body:expr) => {{
            fn f<F: Float>($x: F) -> F {
                $body
            }
            r.out_op($name, meta_unary_float, |a, o| {
                unary_vec_into(a, first(o)?, $op, f::<f32>, f::<f64>)
            });
        }};
    }
    vec_unary!("aten.exp.default", Unary::Exp, x => x.exp());
    float_unary!("aten.log.default", x => x.ln());
    float_unary!("aten.sqrt.default", x => x.sqrt());
    float_unary!("aten.rsqrt.default", x => x.sqrt().recip());
    vec_unary!("aten.tanh.default", Unary::Tanh, x => x.tanh());
    vec_unary!("aten.sigmoid.default", Unary::Sigmoid, x => (F::one() + (-x).exp()).recip());

    // An activation and its in-place form; `$kernel` is the CPU kernel PyTorch names in its dtype error.
    macro_rules! activation {
        ($name:literal, $name_:literal, $kernel:literal, $d:ident, $d_:ident, $op:expr, $x:ident => $body:expr) => {{
            fn f<F: Float>($x: F) -> F {
                $body
            }
            fn k(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
                unary_vec_into(a, first(o)?, $op, f::<f32>, f::<f64>)
            }
            r.out_op($name, |a| meta_float_only(a, $kernel), k)
                .decomposition(decompositions::$d);
            r.op(
                $name_,
                |a| meta_float_only(a, $kernel),
                |a, o| in_place(a, o, k),
            )
            .decomposition(decompositions::$d_);
        }};
    }
    // PyTorch's CPU hardswish is x * clamp(x + 3, 0, 6) / 6, in that order.
    activation!("aten.hardswish.default", "aten.hardswish_.default", "hardswish_cpu", hardswish, hardswish_, Unary::Hardswish, x => x * hard_clamp(x) / c(6.0));
    activation!("aten.hardsigmoid.default", "aten.hardsigmoid_.default", "hardsigmoid_cpu", hardsigmoid, hardsigmoid_, Unary::Hardsigmoid, x => hard_clamp(x) / c(6.0));
    // PyTorch's CPU silu is x / (1 + exp(-x)).
    activation!("aten.silu.default", "aten.silu_.default", "silu_cpu", silu, silu_, Unary::Silu, x => x / (F::one() + (-x).exp()));
    r.out_op(
        "aten.hardtanh.default",
        |a| meta_float_only(a, "hardtanh_cpu"),
        hardtanh,
    );
    r.op(
        "aten.hardtanh_.default",
        |a| meta_float_only(a, "hardtanh_cpu"),
        |a, o| in_place(a, o, hardtanh),
    );

    r.out_op("aten.gelu.default", meta_gelu, gelu);
    r.out_op("aten.relu.default", meta_same_non_bool, relu);
    r.op("aten.relu_.default", meta_same_non_bool, |a, o| {
        in_place(a, o, relu)
    });
    r.out_op("aten.neg.default", meta_neg, |a, o| {
        arith_unary(a, first(o)?, |x: f64| -x, |x: i64| x.wrapping_neg())
    });
    r.out_op(
        "aten.logical_not.default",
        |a| one(DType::Bool, meta_self(a)?.sizes.clone()),
        |a, o| {
            let t = a.tensor("self")?;
            crate::dispatch_dtype!(t.dtype(), T => unary_map_into::<T, bool>(t, first(o)?, |x| !x.is_nonzero()))
        },
    );

    r.out_op(
        "aten.add.Tensor",
        |a| meta_binary_alpha(a, ArithOp::Add),
        |a, o| binary_arith(a, o, ArithOp::Add),
    );
    r.out_op(
        "aten.add.Scalar",
        |a| meta_binary_alpha(a, ArithOp::Add),
        |a, o| binary_arith(a, o, ArithOp::Add),
    );
    r.out_op(
        "aten.sub.Tensor",
        |a| meta_binary_alpha(a, ArithOp::Sub),
        |a, o| binary_arith(a, o, ArithOp::Sub),
    );
    r.out_op(
        "aten.sub.Scalar",
        |a| meta_binary_alpha(a, ArithOp::Sub),
        |a, o| binary_arith(a, o, ArithOp::Sub),
    );
    r.out_op("aten.mul.Tensor", meta_binary, |a, o| {
        binary_arith(a, o, ArithOp::Mul)
    });
    r.out_op("aten.mul.Scalar", meta_binary, |a, o| {
        binary_arith(a, o, ArithOp::Mul)
    });
    r.out_op("aten.div.Tensor", meta_div, |a, o| {
        binary_arith(a, o, ArithOp::Div)
    });
    r.out_op("aten.div.Scalar", meta_div, |a, o| {
        binary_arith(a, o, ArithOp::Div)
    });
    r.op(
        "aten.add_.Tensor",
        |a| meta_inplace_alpha(a, ArithOp::Add),
        |a, o| binary_in_place(a, o, ArithOp::Add),
    );
    r.op(
        "aten.sub_.Tensor",
        |a| meta_inplace_alpha(a, ArithOp::Sub),
        |a, o| binary_in_place(a, o, ArithOp::Sub),
    );
    r.op("aten.mul_.Tensor", meta_inplace, |a, o| {
        binary_in_place(a, o, ArithOp::Mul)
    });
    r.op("aten.div_.Tensor", meta_inplace_div, |a, o| {
        binary_in_place(a, o, ArithOp::Div)
    });
    r.complex_ops(&[
        "aten.add.Tensor",
        "aten.sub.Tensor",
        "aten.mul.Tensor",
        "aten.mul.Scalar",
    ]);

    macro_rules! compare {
        ($t:literal, $s:literal, $x:ident, $y:ident => $body:expr) => {{
            fn f<T: PartialOrd>($x: T, $y: T) -> bool {
                $body
            }
            r.out_op($t, meta_compare, |a, o| {
                compare(a, o, f::<f64>, f::<i64>, f::<bool>)
            });
            r.out_op($s, meta_compare, |a, o| {
                compare(a, o, f::<f64>, f::<i64>, f::<bool>)
            });
        }};
    }
    compare!("aten.eq.Tensor", "aten.eq.Scalar", x, y => x == y);
    compare!("aten.ne.Tensor", "aten.ne.Scalar", x, y => x != y);
    compare!("aten.lt.Tensor", "aten.lt.Scalar", x, y => x < y);
    compare!("aten.gt.Tensor", "aten.gt.Scalar", x, y => x > y);
    compare!("aten.le.Tensor", "aten.le.Scalar", x, y => x <= y);
    compare!("aten.ge.Tensor", "aten.ge.Scalar", x, y => x >= y);

    r.out_op("aten.where.self", meta_where, where_self);
    r.out_op(
        "aten.masked_fill.Scalar",
        |a| meta_masked_fill(a, false),
        masked_fill,
    );
    r.op(
        "aten.masked_fill_.Scalar",
        |a| meta_masked_fill(a, true),
        |a, o| in_place(a, o, masked_fill),
    );
    r.out_op("aten.clamp.default", meta_clamp, clamp);
    r.out_op("aten.pow.Tensor_Scalar", meta_pow_scalar, pow);
    r.out_op("aten.pow.Tensor_Tensor", meta_pow_tensor, pow);
    // Allocating: PyTorch returns the input itself (an alias, not a copy) for train=False or p=0.
    r.op("aten.dropout.default", meta_dropout, |a, o| {
        dropout(a, o, false)
    })
    .decomposition(decompositions::dropout);
    r.op("aten.dropout_.default", meta_dropout, |a, o| {
        dropout(a, o, true)
    })
    .decomposition(decompositions::dropout);
}

/// `clamp(x + 3, 0, 6)`.
fn hard_clamp<F: Float>(x: F) -> F {
    if x.is_nan() {
        return x; // Float::max/min would drop the NaN; PyTorch propagates it.
    }
    (x + c(3.0)).max(F::zero()).min(c(6.0))
}

fn gelu_tanh<F: Float>(x: F) -> F {
    let k: F = c(0.797_884_560_802_865_4); // sqrt(2/pi)
    let inner = k * (x + c::<F>(0.044715) * x * x * x);
    c::<F>(0.5) * x * (F::one() + inner.tanh())
}

// ---- metas -------------------------------------------------------------------------------------------

/// sin, exp, ...: floats keep their dtype, integers and bool compute in the default dtype (f32).
pub(super) fn meta_unary_float(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    let dt = if t.dtype.is_floating_point() {
        t.dtype
    } else {
        DType::F32
    };
    one(dt, t.sizes.clone())
}

/// A float-only activation; `kernel` is the CPU kernel PyTorch names refusing other dtypes
/// (`hardswish_cpu`).
fn meta_float_only(a: &Args<TensorMeta>, kernel: &str) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    if !t.dtype.is_floating_point() {
        return Err(Error::DTypeNotSupported {
            op: kernel.into(),
            dtype: t.dtype,
        });
    }
    one(t.dtype, t.sizes.clone())
}

fn meta_gelu(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    if !matches!(a.str("approximate")?, "none" | "tanh") {
        return Err(Error::value(
            "approximate argument must be either none or tanh.",
        ));
    }
    meta_float_only(a, "GeluKernelImpl")
}

fn meta_same_non_bool(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    if t.dtype == DType::Bool {
        return Err(Error::value("Boolean inputs not supported for relu"));
    }
    one(t.dtype, t.sizes.clone())
}

fn meta_neg(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    if t.dtype == DType::Bool {
        return Err(Error::value(
            "Negation, the `-` operator, on a bool tensor is not supported. If you are trying to invert a mask, use the `~` or `logical_not()` operator instead.",
        ));
    }
    one(t.dtype, t.sizes.clone())
}

fn binary_operands<'a>(
    a: &'a Args<TensorMeta>,
) -> Result<(Operand<&'a TensorMeta>, Operand<&'a TensorMeta>)> {
    Ok((a.operand("self")?, a.operand("other")?))
}

pub(super) fn meta_binary(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (x, y) = binary_operands(a)?;
    let sizes = broadcast_shapes(&[operand_sizes(&x), operand_sizes(&y)])?;
    one(result_type(&[&x, &y]), sizes)
}

fn check_alpha(a: &Args<TensorMeta>, dt: DType, op: ArithOp) -> Result<()> {
    let alpha = a.scalar("alpha")?;
    if matches!(op, ArithOp::Sub) {
        let is_bool = |o: Operand<&TensorMeta>| match o {
            Operand::Tensor(t) => t.dtype == DType::Bool,
            Operand::Scalar(s) => matches!(s, Scalar::Bool(_)),
        };
        let (x, y) = (is_bool(a.operand("self")?), is_bool(a.operand("other")?));
        if x && y {
            return Err(Error::value("Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` or `logical_xor()` operator instead."));
        }
        if x || y {
            return Err(Error::value("Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying to invert a mask, use the `~` or `logical_not()` operator instead."));
        }
    }
    if !dt.is_floating_point() && !dt.is_complex() && alpha.is_float() {
        return Err(Error::value(
            "For integral input tensors, argument alpha must not be a floating point number.",
        ));
    }
    Ok(())
}

fn meta_binary_alpha(a: &Args<TensorMeta>, op: ArithOp) -> Result<Vec<Value<TensorMeta>>> {
    let out = meta_binary(a)?;
    let Value::Tensor(m) = &out[0] else {
        unreachable!("meta_binary returns a tensor")
    };
    check_alpha(a, m.dtype, op)?;
    Ok(out)
}

pub(super) fn meta_div(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (x, y) = binary_operands(a)?;
    let sizes = broadcast_shapes(&[operand_sizes(&x), operand_sizes(&y)])?;
    let dt = result_type(&[&x, &y]);
    one(
        if dt.is_floating_point() {
            dt
        } else {
            DType::F32
        },
        sizes,
    )
}

fn check_inplace(a: &Args<TensorMeta>, result: DType) -> Result<Vec<Value<TensorMeta>>> {
    let s = meta_self(a)?;
    let other = a.operand("other")?;
    let sizes = broadcast_shapes(&[&s.sizes, operand_sizes(&other)])?;
    if sizes != s.sizes {
        return Err(Error::shape(format!(
            "output with shape {} doesn't match the broadcast shape {}",
            fmt_shape(&s.sizes),
            fmt_shape(&sizes)
        )));
    }
    if !can_cast(result, s.dtype) {
        return Err(Error::DType(format!(
            "result type {} can't be cast to the desired output type {}",
            result, s.dtype
        )));
    }
    Ok(vec![Value::Tensor(s.clone())])
}

fn meta_inplace(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (x, y) = binary_operands(a)?;
    check_inplace(a, result_type(&[&x, &y]))
}

fn meta_inplace_alpha(a: &Args<TensorMeta>, op: ArithOp) -> Result<Vec<Value<TensorMeta>>> {
    let (x, y) = binary_operands(a)?;
    let dt = result_type(&[&x, &y]);
    check_alpha(a, dt, op)?;
    check_inplace(a, dt)
}

fn meta_inplace_div(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (x, y) = binary_operands(a)?;
    let dt = result_type(&[&x, &y]);
    check_inplace(
        a,
        if dt.is_floating_point() {
            dt
        } else {
            DType::F32
        },
    )
}

/// `torch.can_cast`: no float → integral, no non-bool → bool.
pub(crate) fn can_cast(from: DType, to: DType) -> bool {
    !(from.is_floating_point() && !to.is_floating_point()
        || from != DType::Bool && to == DType::Bool)
}

fn meta_compare(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (x, y) = binary_operands(a)?;
    one(
        DType::Bool,
        broadcast_shapes(&[operand_sizes(&x), operand_sizes(&y)])?,
    )
}

pub(super) fn meta_where(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let cond = a.tensor("condition")?;
    if cond.dtype != DType::Bool && cond.dtype != DType::U8 {
        return Err(Error::DType(format!(
            "where expected condition to be a boolean tensor, but got a tensor with dtype {}",
            cond.dtype
        )));
    }
    let (x, y) = binary_operands(a)?;
    let sizes = broadcast_shapes(&[&cond.sizes, operand_sizes(&x), operand_sizes(&y)])?;
    one(result_type(&[&x, &y]), sizes)
}

/// `self` where `mask` is false, `value` where it is true; the in-place form keeps `self`'s shape.
fn meta_masked_fill(a: &Args<TensorMeta>, inplace: bool) -> Result<Vec<Value<TensorMeta>>> {
    let (s, mask) = (meta_self(a)?, a.tensor("mask")?);
    if mask.dtype != DType::Bool {
        return Err(Error::DType(format!(
            "masked_fill_ only supports boolean masks, but got mask with dtype {}",
            mask.dtype.cpp_type_name()
        )));
    }
    let sizes = broadcast_shapes(&[&s.sizes, &mask.sizes])?;
    if inplace
        && (sizes.len() != s.dim() || !sizes.iter().zip(&s.sizes).all(|(p, q)| p.guard_eq(q)))
    {
        return Err(Error::shape(format!(
            "output with shape {} doesn't match the broadcast shape {}",
            fmt_shape(&s.sizes),
            fmt_shape(&sizes)
        )));
    }
    let value = a.scalar("value")?;
    if !s.dtype.is_floating_point()
        && matches!(value, Scalar::Float(f) if !f.is_finite() || f.fract() != 0.0)
        && s.dtype != DType::Bool
    {
        return Err(Error::value(format!(
            "value cannot be converted to type {} without overflow",
            s.dtype.cpp_type_name()
        )));
    }
    one(s.dtype, sizes)
}

fn meta_clamp(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    let (lo, hi) = (a.opt_scalar("min")?, a.opt_scalar("max")?);
    if lo.is_none() && hi.is_none() {
        return Err(Error::value(
            "torch.clamp: At least one of 'min' or 'max' must not be None",
        ));
    }
    let mut operands = vec![Operand::Tensor(t)];
    operands.extend([lo, hi].into_iter().flatten().map(Operand::Scalar));
    let ops: Vec<&Operand<&TensorMeta>> = operands.iter().collect();
    let dt = result_type(&ops);
    // PyTorch checks the promoted dtype: clamp(bool, 1) is an int64 clamp, clamp(bool, True) fails.
    if dt == DType::Bool {
        return Err(Error::DTypeNotSupported {
            op: match (lo, hi) {
                (Some(_), None) => "clamp_min_scalar_cpu",
                (None, Some(_)) => "clamp_max_scalar_cpu",
                _ => "clamp_scalar_cpu",
            }
            .into(),
            dtype: t.dtype,
        });
    }
    one(dt, t.sizes.clone())
}

fn meta_pow_scalar(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    let e = a.scalar("exponent")?;
    let dt = result_type(&[&Operand::Tensor(t), &Operand::Scalar(e)]);
    if dt.is_integral() && e.to_f64() < 0.0 {
        return Err(Error::value(
            "Integers to negative integer powers are not allowed.",
        ));
    }
    one(dt, t.sizes.clone())
}

fn meta_pow_tensor(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (t, e) = (a.operand("self")?, a.operand("exponent")?);
    one(
        result_type(&[&t, &e]),
        broadcast_shapes(&[operand_sizes(&t), operand_sizes(&e)])?,
    )
}

fn meta_dropout(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = a.tensor("input").or_else(|_| a.tensor("self"))?;
    let p = a.float("p")?;
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::value(format!(
            "dropout probability has to be between 0 and 1, but got {p}"
        )));
    }
    one(t.dtype, t.sizes.clone())
}

// ---- kernels -----------------------------------------------------------------------------------------

/// The first output of an out kernel (every op here has one).
pub(super) fn first(o: &[Tensor]) -> Result<&Tensor> {
    o.first()
        .ok_or_else(|| Error::value("an out kernel was given no output"))
}

/// An in-place variant (`relu_`): out kernel `k` writes a fresh output shaped by the meta (the op's
/// result dtype), which is then written through `self` (cast to its dtype; `self` may be any view).
/// Such ops keep an allocating kernel: their output *is* `self`.
fn in_place(
    a: &Args<Tensor>,
    o: &[Value<TensorMeta>],
    k: fn(&Args<Tensor>, &mut [Tensor]) -> Result<()>,
) -> Result<Vec<Value<Tensor>>> {
    let mut ts = alloc_outputs(o)?;
    k(a, &mut ts)?;
    let dst = a.tensor("self")?;
    dst.assign_untraced(first(&ts)?)?;
    out1(dst.clone())
}

/// Applies a float function: f64 tensors in f64, f16/bf16 through f32 (rounded once), everything else
/// in f32 (the output is the input's float dtype, or f32 for integers and bool).
pub(super) fn unary_float_into(
    a: &Args<Tensor>,
    out: &Tensor,
    f32f: impl Fn(f32) -> f32 + Sync + Send,
    f64f: impl Fn(f64) -> f64 + Sync + Send,
) -> Result<()> {
    let t = a.tensor("self").or_else(|_| a.tensor("input"))?;
    match t.dtype() {
        DType::F64 => unary_map_into::<f64, f64>(t, out, f64f),
        DType::F32 => unary_map_into::<f32, f32>(t, out, f32f),
        DType::F16 => unary_map_into::<f16, f16>(t, out, |x| f16::from_f32(f32f(x.to_f32()))),
        DType::BF16 => unary_map_into::<bf16, bf16>(t, out, |x| bf16::from_f32(f32f(x.to_f32()))),
        _ => unary_map_into::<f32, f32>(&as_dtype(t, DType::F32), out, f32f),
    }
}

/// [`unary_float_into`], with `op`'s vectorised kernel ([`vmath`]) for an f32 input written to a
/// contiguous output of its sizes (parallel above [`Unary::par_threshold`]); other layouts and dtypes
/// take the element functions.
fn unary_vec_into(
    a: &Args<Tensor>,
    out: &Tensor,
    op: Unary,
    f32f: impl Fn(f32) -> f32 + Sync + Send,
    f64f: impl Fn(f64) -> f64 + Sync + Send,
) -> Result<()> {
    let t = a.tensor("self").or_else(|_| a.tensor("input"))?;
    if t.dtype() == DType::F32 && out.dtype() == DType::F32 {
        // Read once here: rayon's workers do not see a thread's forced ISA.
        let isa = simd::active();
        return unary_slices_into::<f32, f32>(
            t,
            out,
            op.par_threshold(),
            move |s, d| vmath::unary_slice(isa, op, s, d),
            f32f,
        );
    }
    unary_float_into(a, out, f32f, f64f)
}

/// Applies a function computed in f64 to `x` (an f64 tensor), each result cast to `out`'s float dtype
/// as `as_dtype` casts (f16/bf16 through f32).
pub(super) fn f64_unary_into(
    x: &Tensor,
    out: &Tensor,
    f: impl Fn(f64) -> f64 + Sync + Send,
) -> Result<()> {
    fn to<O: Element>(
        x: &Tensor,
        out: &Tensor,
        f: impl Fn(f64) -> f64 + Sync + Send,
    ) -> Result<()> {
        unary_map_into::<f64, O>(x, out, |v| cast_element::<f64, O>(f(v)))
    }
    match out.dtype() {
        DType::F64 => unary_map_into::<f64, f64>(x, out, f),
        DType::F32 => to::<f32>(x, out, f),
        DType::F16 => to::<f16>(x, out, f),
        DType::BF16 => to::<bf16>(x, out, f),
        d => Err(Error::DType(format!(
            "a float kernel got an output of dtype {}",
            d.name()
        ))),
    }
}

/// Applies an arithmetic function: floats via f64-or-f32, integers via i64 (wrapping), keeping the dtype.
fn arith_unary(
    a: &Args<Tensor>,
    out: &Tensor,
    ff: impl Fn(f64) -> f64 + Sync + Send + Copy,
    fi: impl Fn(i64) -> i64 + Sync + Send + Copy,
) -> Result<()> {
    let t = a.tensor("self")?;
    if t.dtype().is_floating_point() {
        unary_float_into(a, out, move |x| ff(x as f64) as f32, ff)
    } else {
        crate::dispatch_dtype!(t.dtype(), T => unary_map_into::<T, T>(t, out, move |x| T::from_i64(fi(x.to_i64()))))
    }
}

fn relu(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    // NaN propagates: `x > 0 ? x : 0` would drop it, PyTorch's clamp_min keeps it.
    let ff = |x: f64| if x.is_nan() { x } else { x.max(0.0) };
    if a.tensor("self")?.dtype() == DType::F32 {
        return unary_vec_into(a, first(o)?, Unary::Relu, move |x| ff(x as f64) as f32, ff);
    }
    arith_unary(a, first(o)?, ff, |x| x.max(0))
}

/// `hardtanh(x, min_val, max_val)`: clamp, NaN propagating.
fn hardtanh(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let (lo, hi) = (a.scalar("min_val")?.to_f64(), a.scalar("max_val")?.to_f64());
    let clamp64 = move |x: f64| if x.is_nan() { x } else { x.max(lo).min(hi) };
    let (lo32, hi32) = (lo as f32, hi as f32);
    let clamp32 = move |x: f32| if x.is_nan() { x } else { x.max(lo32).min(hi32) };
    let op = Unary::Hardtanh { lo: lo32, hi: hi32 };
    unary_vec_into(a, first(o)?, op, clamp32, clamp64)
}

fn gelu(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let out = first(o)?;
    if a.str("approximate")? == "tanh" {
        return unary_vec_into(a, out, Unary::GeluTanh, gelu_tanh::<f32>, gelu_tanh::<f64>);
    }
    // PyTorch's CPU kernel yields NaN for ±inf (inf * 0 inside its vectorised erf); mirror it.
    unary_vec_into(
        a,
        out,
        Unary::Gelu,
        |x| {
            if x.is_infinite() {
                f32::NAN
            } else {
                x * 0.5 * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2))
            }
        },
        |x| {
            if x.is_infinite() {
                f64::NAN
            } else {
                x * 0.5 * (1.0 + libm::erf(x * std::f64::consts::FRAC_1_SQRT_2))
            }
        },
    )
}

#[derive(Clone, Copy)]
enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// Integer/float arithmetic on one compute type.
trait Arith: Element {
    fn arith(op: ArithOp, x: Self, y: Self, alpha: Self) -> Self;
}
macro_rules! impl_arith_int {
    ($($t:ty),*) => {$(
        impl Arith for $t {
            #[inline]
            fn arith(op: ArithOp, x: Self, y: Self, alpha: Self) -> Self {
                match op {
                    ArithOp::Add => x.wrapping_add(y.wrapping_mul(alpha)),
                    ArithOp::Sub => x.wrapping_sub(y.wrapping_mul(alpha)),
                    ArithOp::Mul => x.wrapping_mul(y),
                    ArithOp::Div => x.checked_div(y).unwrap_or(0), // only reached for floor/trunc modes
                }
            }
        }
    )*};
}
impl_arith_int!(u8, i8, i16, i32, i64);
macro_rules! impl_arith_float {
    ($($t:ty),*) => {$(
        impl Arith for $t {
            #[inline]
            fn arith(op: ArithOp, x: Self, y: Self, alpha: Self) -> Self {
                match op {
                    ArithOp::Add => if alpha == 1.0 { x + y } else { x + alpha * y },
                    ArithOp::Sub => if alpha == 1.0 { x - y } else { x - alpha * y },
                    ArithOp::Mul => x * y,
                    ArithOp::Div => x / y,
                }
            }
        }
    )*};
}
impl_arith_float!(f32, f64);
macro_rules! impl_arith_complex {
    ($($t:ty),*) => {$(
        impl Arith for $t {
            #[inline]
            fn arith(op: ArithOp, x: Self, y: Self, alpha: Self) -> Self {
                let one = <$t>::new(1.0, 0.0);
                match op {
                    ArithOp::Add => if alpha == one { x + y } else { x + alpha * y },
                    ArithOp::Sub => if alpha == one { x - y } else { x - alpha * y },
                    ArithOp::Mul => x * y,
                    ArithOp::Div => x / y,
                }
            }
        }
    )*};
}
impl_arith_complex!(num_complex::Complex32, num_complex::Complex64);
impl Arith for bool {
    fn arith(op: ArithOp, x: Self, y: Self, alpha: Self) -> Self {
        match op {
            ArithOp::Add | ArithOp::Sub => x || (y && alpha),
            ArithOp::Mul | ArithOp::Div => x && y,
        }
    }
}

/// `out = x op alpha * y` computed in `T`, each result stored through `store` (f16/bf16 outputs round
/// the f32 result once).
fn arith_into<T: Arith, O: Element>(
    x: &Tensor,
    y: &Tensor,
    out: &Tensor,
    op: ArithOp,
    alpha: Scalar,
    store: impl Fn(T) -> O + Sync + Send,
) -> Result<()> {
    let alpha: T = scalar_to(alpha);
    binary_map_into::<T, T, O>(x, y, out, move |p, q| store(T::arith(op, p, q, alpha)))
}

/// `add` / `sub` / `mul` / `div` (Tensor and Scalar overloads) into the output's dtype.
fn binary_arith(a: &Args<Tensor>, o: &mut [Tensor], op: ArithOp) -> Result<()> {
    let out = first(o)?;
    let out_dt = out.dtype();
    let alpha = a
        .opt_scalar("alpha")
        .ok()
        .flatten()
        .unwrap_or(Scalar::Int(1));
    let compute = out_dt.compute_dtype();
    let x = operand_as(&a.operand("self")?, compute);
    let y = operand_as(&a.operand("other")?, compute);
    let (x, y) = (&x, &y);
    match out_dt {
        DType::F32 if alpha.to_f64() == 1.0 => {
            use crate::tensor::kernels::vmath::BinaryOp;
            let op = match op {
                ArithOp::Add => BinaryOp::Add,
                ArithOp::Sub => BinaryOp::Sub,
                ArithOp::Mul => BinaryOp::Mul,
                ArithOp::Div => BinaryOp::Div,
            };
            crate::tensor::kernels::elementwise::binary_f32_into(op, x, y, out)
        }
        DType::F32 => arith_into::<f32, _>(x, y, out, op, alpha, |v| v),
        DType::F64 => arith_into::<f64, _>(x, y, out, op, alpha, |v| v),
        DType::F16 => arith_into::<f32, _>(x, y, out, op, alpha, f16::from_f32),
        DType::BF16 => arith_into::<f32, _>(x, y, out, op, alpha, bf16::from_f32),
        DType::I64 => arith_into::<i64, _>(x, y, out, op, alpha, |v| v),
        DType::I32 => arith_into::<i32, _>(x, y, out, op, alpha, |v| v),
        DType::I16 => arith_into::<i16, _>(x, y, out, op, alpha, |v| v),
        DType::I8 => arith_into::<i8, _>(x, y, out, op, alpha, |v| v),
        DType::U8 => arith_into::<u8, _>(x, y, out, op, alpha, |v| v),
        DType::Bool => arith_into::<bool, _>(x, y, out, op, alpha, |v| v),
        DType::C64 => arith_into::<num_complex::Complex32, _>(x, y, out, op, alpha, |v| v),
        DType::C128 => arith_into::<num_complex::Complex64, _>(x, y, out, op, alpha, |v| v),
    }
}

/// `add_` / `sub_` / `mul_` / `div_`: computed in the promoted dtype (`add_(f32, f64)` in f64), then
/// written through `self` in its dtype.
fn binary_in_place(
    a: &Args<Tensor>,
    outs: &[Value<TensorMeta>],
    op: ArithOp,
) -> Result<Vec<Value<Tensor>>> {
    let s = a.tensor("self")?;
    let x = Operand::Tensor(s);
    let y = a.operand("other")?;
    let mut dt = result_type(&[&x, &y]);
    if matches!(op, ArithOp::Div) && !dt.is_floating_point() {
        dt = DType::F32;
    }
    let sizes = out_sizes(outs, 0)?;
    let mut r = [Tensor::zeros_strided(
        dt,
        &sizes,
        &crate::tensor::contiguous_strides(&sizes),
    )?];
    binary_arith(a, &mut r, op)?;
    s.assign_untraced(&r[0])?;
    out1(s.clone())
}

fn compare(
    a: &Args<Tensor>,
    o: &mut [Tensor],
    ff: fn(f64, f64) -> bool,
    fi: fn(i64, i64) -> bool,
    fb: fn(bool, bool) -> bool,
) -> Result<()> {
    let out = first(o)?;
    let (x, y) = (a.operand("self")?, a.operand("other")?);
    let common = result_type(&[&x, &y]);
    let (p, q) = (operand_as(&x, common), operand_as(&y, common));
    match common {
        DType::Bool => binary_map_into::<bool, bool, bool>(&p, &q, out, fb),
        DType::F32 | DType::F16 | DType::BF16 => {
            // Compare in the common dtype's values; f16/bf16 widen exactly to f32.
            let (p, q) = (as_dtype(&p, DType::F32), as_dtype(&q, DType::F32));
            binary_map_into::<f32, f32, bool>(&p, &q, out, move |u, v| ff(u as f64, v as f64))
        }
        DType::F64 => binary_map_into::<f64, f64, bool>(&p, &q, out, ff),
        _ => {
            crate::dispatch_dtype!(common, T => binary_map_into::<T, T, bool>(&p, &q, out, move |u, v| fi(u.to_i64(), v.to_i64())))
        }
    }
}

fn where_self(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let out = first(o)?;
    let dt = out.dtype();
    let cond = as_dtype(a.tensor("condition")?, DType::Bool);
    let x = operand_as(&a.operand("self")?, dt);
    let y = operand_as(&a.operand("other")?, dt);
    crate::dispatch_dtype!(dt, T => ternary_map_into::<bool, T, T, T>(&cond, &x, &y, out, |c, p, q| if c { p } else { q }))
}

fn masked_fill(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let out = first(o)?;
    let dt = out.dtype();
    let mask = a.tensor("mask")?;
    let x = as_dtype(a.tensor("self")?, dt);
    let v = Tensor::scalar_of(a.scalar("value")?, dt);
    crate::dispatch_dtype!(dt, T => ternary_map_into::<bool, T, T, T>(mask, &v, &x, out, |c, p, q| if c { p } else { q }))
}

fn clamp(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let out = first(o)?;
    let dt = out.dtype();
    let t = as_dtype(a.tensor("self")?, dt.compute_dtype());
    let (lo, hi) = (a.opt_scalar("min")?, a.opt_scalar("max")?);
    match dt {
        DType::F16 => clamp_typed::<f32, _>(&t, out, lo, hi, f16::from_f32),
        DType::BF16 => clamp_typed::<f32, _>(&t, out, lo, hi, bf16::from_f32),
        d => {
            crate::dispatch_real_dtype!(d, T => clamp_typed::<T, T>(&t, out, lo, hi, |v| v), complex => Err(Error::DTypeNotSupported { op: "clamp".into(), dtype: d }))
        }
    }
}

/// `clamp` of `t` (element type `T`, the compute type) with bounds in `T`, stored through `store`.
fn clamp_typed<T: crate::tensor::RealElement, O: Element>(
    t: &Tensor,
    out: &Tensor,
    lo: Option<Scalar>,
    hi: Option<Scalar>,
    store: impl Fn(T) -> O + Sync + Send,
) -> Result<()> {
    let lo: Option<T> = lo.map(scalar_to);
    let hi: Option<T> = hi.map(scalar_to);
    unary_map_into::<T, O>(t, out, move |x| {
        #[allow(clippy::eq_op)]
        let is_nan = x != x;
        if is_nan {
            return store(x);
        }
        let mut v = x;
        if let Some(l) = lo {
            if v < l {
                v = l;
            }
        }
        if let Some(h) = hi {
            if v > h {
                v = h;
            }
        }
        store(v)
    })
}

pub(super) fn ipow(mut base: i64, mut exp: i64) -> i64 {
    let mut acc: i64 = 1;
    while exp > 0 {
        if exp & 1 == 1 {
            acc = acc.wrapping_mul(base);
        }
        base = base.wrapping_mul(base);
        exp >>= 1;
    }
    acc
}

fn powf<F: Float>(b: F, p: F) -> F {
    if p == c(2.0) {
        b * b
    } else {
        b.powf(p)
    }
}

fn pow(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let out = first(o)?;
    let dt = out.dtype();
    let compute = dt.compute_dtype();
    let x = as_dtype(a.tensor("self")?, compute);
    let e = operand_as(&a.operand("exponent")?, compute);
    match dt {
        DType::F32 => binary_map_into::<f32, f32, f32>(&x, &e, out, powf),
        DType::F64 => binary_map_into::<f64, f64, f64>(&x, &e, out, powf),
        DType::F16 => {
            binary_map_into::<f32, f32, f16>(&x, &e, out, |b, p| f16::from_f32(powf(b, p)))
        }
        DType::BF16 => {
            binary_map_into::<f32, f32, bf16>(&x, &e, out, |b, p| bf16::from_f32(powf(b, p)))
        }
        DType::Bool => binary_map_into::<bool, bool, bool>(&x, &e, out, |b, p| b || !p),
        d => {
            crate::dispatch_dtype!(d, T => binary_map_into::<T, T, T>(&x, &e, out, |b, p| T::from_i64(ipow(b.to_i64(), p.to_i64()))))
        }
    }
}

/// `dropout` / `dropout_` (`in_place`). An allocating kernel: for train=False or p=0 PyTorch returns
/// the input itself (an alias, not a copy).
fn dropout(
    a: &Args<Tensor>,
    outs: &[Value<TensorMeta>],
    in_place: bool,
) -> Result<Vec<Value<Tensor>>> {
    let x = a.tensor("input").or_else(|_| a.tensor("self"))?;
    let p = a.float("p")?;
    if !a.bool("train")? || p == 0.0 {
        return out1(x.clone());
    }
    // Inverted dropout with this thread's default generator (see `tensor::manual_seed`).
    let dt = out_dtype(outs, 0)?;
    let mask = Tensor::from_vec(crate::tensor::dropout_mask(x.numel(), p), x.sizes())?;
    let y = if dt == DType::F64 {
        binary_map::<f64, f64, f64>(x, &mask, x.sizes(), |u, m| u * m)
    } else {
        let xf = as_dtype(x, DType::F32);
        binary_map::<f32, f64, f32>(&xf, &mask, x.sizes(), |u, m| u * m as f32)
    };
    let y = as_dtype(&y, dt);
    if in_place {
        x.assign_untraced(&y)?;
        return out1(x.clone());
    }
    out1(y)
}
