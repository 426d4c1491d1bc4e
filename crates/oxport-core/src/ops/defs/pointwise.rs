//! Pointwise ops: unary math, activations, arithmetic with broadcasting and type promotion, comparisons,
//! `where`, `clamp`, `pow`, in-place variants and inference-mode dropout.
use super::*;
use crate::dtype::Scalar;
use crate::tensor::kernels::elementwise::{binary_map, ternary_map, unary_map};
use crate::tensor::{scalar_to, Element};
use half::{bf16, f16};
use num_traits::Float;

pub(super) fn register(r: &mut Builder) {
    macro_rules! float_unary {
        ($name:literal, $x:ident => $body:expr) => {{
            fn f<F: Float>($x: F) -> F {
                $body
            }
            r.op($name, meta_unary_float, |a, o| {
                unary_float(a, o, f::<f32>, f::<f64>)
            });
        }};
    }
    float_unary!("aten.sin.default", x => x.sin());
    float_unary!("aten.cos.default", x => x.cos());
    float_unary!("aten.exp.default", x => x.exp());
    float_unary!("aten.log.default", x => x.ln());
    float_unary!("aten.sqrt.default", x => x.sqrt());
    float_unary!("aten.rsqrt.default", x => x.sqrt().recip());
    float_unary!("aten.tanh.default", x => x.tanh());
    float_unary!("aten.sigmoid.default", x => (F::one() + (-x).exp()).recip());

    macro_rules! activation {
        ($name:literal, $name_:literal, $d:ident, $d_:ident, $x:ident => $body:expr) => {{
            fn f<F: Float>($x: F) -> F {
                $body
            }
            r.op($name, meta_float_only, |a, o| {
                unary_float(a, o, f::<f32>, f::<f64>)
            })
            .decomposition(decompositions::$d);
            r.op($name_, meta_float_only, |a, o| {
                let out = unary_float(a, o, f::<f32>, f::<f64>)?;
                write_back(a.tensor("self")?, out)
            })
            .decomposition(decompositions::$d_);
        }};
    }
    activation!("aten.hardswish.default", "aten.hardswish_.default", hardswish, hardswish_, x => x * hard_gate(x));
    activation!("aten.hardsigmoid.default", "aten.hardsigmoid_.default", hardsigmoid, hardsigmoid_, x => hard_gate(x));
    // PyTorch's CPU silu is x / (1 + exp(-x)).
    activation!("aten.silu.default", "aten.silu_.default", silu, silu_, x => x / (F::one() + (-x).exp()));
    for (name, in_place) in [
        ("aten.hardtanh.default", false),
        ("aten.hardtanh_.default", true),
    ] {
        r.op(
            name,
            meta_float_only,
            if in_place { hardtanh_inplace } else { hardtanh },
        );
    }

    r.op("aten.gelu.default", meta_gelu, |a, o| {
        if a.str("approximate")? == "tanh" {
            unary_float(a, o, gelu_tanh::<f32>, gelu_tanh::<f64>)
        } else {
            // PyTorch's CPU kernel yields NaN for ±inf (inf * 0 inside its vectorised erf); mirror it.
            unary_float(
                a,
                o,
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
    });
    r.op("aten.relu.default", meta_same_non_bool, relu);
    r.op("aten.relu_.default", meta_same_non_bool, |a, o| {
        write_back(a.tensor("self")?, relu(a, o)?)
    });
    r.op("aten.neg.default", meta_neg, |a, o| {
        arith_unary(a, o, |x: f64| -x, |x: i64| x.wrapping_neg())
    });
    r.op("aten.logical_not.default", |a| one(DType::Bool, meta_self(a)?.sizes.clone()), |a, _| {
        let t = a.tensor("self")?;
        out1(crate::dispatch_dtype!(t.dtype(), T => unary_map::<T, bool>(t, |x| !x.is_nonzero())))
    });

    r.op("aten.add.Tensor", meta_binary_alpha, |a, o| {
        binary_arith(a, o, ArithOp::Add)
    });
    r.op("aten.add.Scalar", meta_binary_alpha, |a, o| {
        binary_arith(a, o, ArithOp::Add)
    });
    r.op("aten.sub.Tensor", meta_binary_alpha, |a, o| {
        binary_arith(a, o, ArithOp::Sub)
    });
    r.op("aten.sub.Scalar", meta_binary_alpha, |a, o| {
        binary_arith(a, o, ArithOp::Sub)
    });
    r.op("aten.mul.Tensor", meta_binary, |a, o| {
        binary_arith(a, o, ArithOp::Mul)
    });
    r.op("aten.mul.Scalar", meta_binary, |a, o| {
        binary_arith(a, o, ArithOp::Mul)
    });
    r.op("aten.div.Tensor", meta_div, |a, o| {
        binary_arith(a, o, ArithOp::Div)
    });
    r.op("aten.div.Scalar", meta_div, |a, o| {
        binary_arith(a, o, ArithOp::Div)
    });
    r.op("aten.add_.Tensor", meta_inplace_alpha, |a, o| {
        inplace(a, o, ArithOp::Add)
    });
    r.op("aten.sub_.Tensor", meta_inplace_alpha, |a, o| {
        inplace(a, o, ArithOp::Sub)
    });
    r.op("aten.mul_.Tensor", meta_inplace, |a, o| {
        inplace(a, o, ArithOp::Mul)
    });
    r.op("aten.div_.Tensor", meta_inplace_div, |a, o| {
        inplace(a, o, ArithOp::Div)
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
            r.op($t, meta_compare, |a, o| {
                compare(a, o, f::<f64>, f::<i64>, f::<bool>)
            });
            r.op($s, meta_compare, |a, o| {
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

    r.op("aten.where.self", meta_where, where_self);
    r.op("aten.masked_fill.Scalar", meta_masked_fill, masked_fill);
    r.op("aten.masked_fill_.Scalar", meta_masked_fill, |a, o| {
        let s = a.tensor("self")?;
        write_back(s, masked_fill(a, o)?)
    });
    r.op("aten.clamp.default", meta_clamp, clamp);
    r.op("aten.pow.Tensor_Scalar", meta_pow_scalar, pow);
    r.op("aten.pow.Tensor_Tensor", meta_pow_tensor, pow);
    r.op("aten.dropout.default", meta_dropout, dropout)
        .decomposition(decompositions::dropout);
    r.op("aten.dropout_.default", meta_dropout, dropout)
        .decomposition(decompositions::dropout);
}

fn hard_gate<F: Float>(x: F) -> F {
    if x.is_nan() {
        return x; // Float::max/min would drop the NaN; PyTorch propagates it.
    }
    ((x + c(3.0)).max(F::zero()).min(c(6.0))) / c(6.0)
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

fn meta_float_only(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    if !t.dtype.is_floating_point() {
        // The kernel name PyTorch reports, e.g. "hardswish_cpu".
        let kernel = match a.schema.name.as_str() {
            "aten::gelu" => "GeluKernelImpl".to_string(),
            n => format!(
                "{}_cpu",
                n.trim_start_matches("aten::").trim_end_matches('_')
            ),
        };
        return Err(Error::DTypeNotSupported {
            op: kernel,
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
    meta_float_only(a)
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

fn check_alpha(a: &Args<TensorMeta>, dt: DType) -> Result<()> {
    let alpha = a.scalar("alpha")?;
    if a.schema.name.starts_with("aten::sub") {
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

fn meta_binary_alpha(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let out = meta_binary(a)?;
    let Value::Tensor(m) = &out[0] else {
        unreachable!("meta_binary returns a tensor")
    };
    check_alpha(a, m.dtype)?;
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

fn meta_inplace_alpha(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (x, y) = binary_operands(a)?;
    let dt = result_type(&[&x, &y]);
    check_alpha(a, dt)?;
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
fn meta_masked_fill(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (s, mask) = (meta_self(a)?, a.tensor("mask")?);
    let inplace = a.schema.name.ends_with('_');
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

fn masked_fill(a: &Args<Tensor>, outs: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    let dt = out_dtype(outs, 0)?;
    let sizes = out_sizes(outs, 0)?;
    let mask = a.tensor("mask")?;
    let x = as_dtype(a.tensor("self")?, dt);
    let v = Tensor::scalar_of(a.scalar("value")?, dt);
    out1(
        crate::dispatch_dtype!(dt, T => ternary_map::<bool, T, T, T>(mask, &v, &x, &sizes, |c, p, q| if c { p } else { q })),
    )
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

/// Applies a float function: f64 tensors in f64, everything else in f32, result cast to the output dtype.
pub(super) fn unary_float(
    a: &Args<Tensor>,
    outs: &[Value<TensorMeta>],
    f32f: impl Fn(f32) -> f32 + Sync + Send,
    f64f: impl Fn(f64) -> f64 + Sync + Send,
) -> Result<Vec<Value<Tensor>>> {
    let t = a.tensor("self").or_else(|_| a.tensor("input"))?;
    let out_dt = out_dtype(outs, 0)?;
    let r = if t.dtype() == DType::F64 {
        unary_map::<f64, f64>(t, f64f)
    } else {
        match t.dtype() {
            DType::F32 => unary_map::<f32, f32>(t, f32f),
            DType::F16 => unary_map::<f16, f16>(t, |x| f16::from_f32(f32f(x.to_f32()))),
            DType::BF16 => unary_map::<bf16, bf16>(t, |x| bf16::from_f32(f32f(x.to_f32()))),
            _ => unary_map::<f32, f32>(&as_dtype(t, DType::F32), f32f),
        }
    };
    out1(as_dtype(&r, out_dt))
}

/// Applies an arithmetic function: floats via f64-or-f32, integers via i64 (wrapping), keeping the dtype.
fn arith_unary(
    a: &Args<Tensor>,
    outs: &[Value<TensorMeta>],
    ff: impl Fn(f64) -> f64 + Sync + Send + Copy,
    fi: impl Fn(i64) -> i64 + Sync + Send + Copy,
) -> Result<Vec<Value<Tensor>>> {
    let t = a.tensor("self")?;
    let r = if t.dtype().is_floating_point() {
        unary_float(a, outs, move |x| ff(x as f64) as f32, ff)?.remove(0)
    } else {
        crate::dispatch_dtype!(t.dtype(), T => Value::Tensor(unary_map::<T, T>(t, move |x| T::from_i64(fi(x.to_i64())))))
    };
    Ok(vec![r])
}

fn relu(a: &Args<Tensor>, outs: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    // NaN propagates: `x > 0 ? x : 0` would drop it, PyTorch's clamp_min keeps it.
    arith_unary(
        a,
        outs,
        |x| if x.is_nan() { x } else { x.max(0.0) },
        |x| x.max(0),
    )
}

/// Writes an op's result into `dst` (an in-place variant) and returns `dst`.
/// `hardtanh(x, min_val, max_val)`: clamp, NaN propagating.
fn hardtanh(a: &Args<Tensor>, o: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    let (lo, hi) = (a.scalar("min_val")?.to_f64(), a.scalar("max_val")?.to_f64());
    let clamp64 = move |x: f64| if x.is_nan() { x } else { x.max(lo).min(hi) };
    let (lo32, hi32) = (lo as f32, hi as f32);
    let clamp32 = move |x: f32| if x.is_nan() { x } else { x.max(lo32).min(hi32) };
    unary_float(a, o, clamp32, clamp64)
}

fn hardtanh_inplace(a: &Args<Tensor>, o: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    let out = hardtanh(a, o)?;
    write_back(a.tensor("self")?, out)
}

fn write_back(dst: &Tensor, out: Vec<Value<Tensor>>) -> Result<Vec<Value<Tensor>>> {
    if let Some(Value::Tensor(r)) = out.first() {
        dst.assign_untraced(r)?;
    }
    out1(dst.clone())
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

fn arith_typed<T: Arith>(
    x: &Tensor,
    y: &Tensor,
    sizes: &[usize],
    op: ArithOp,
    alpha: Scalar,
) -> Tensor {
    let alpha: T = scalar_to(alpha);
    binary_map::<T, T, T>(x, y, sizes, move |p, q| T::arith(op, p, q, alpha))
}

fn binary_arith(
    a: &Args<Tensor>,
    outs: &[Value<TensorMeta>],
    op: ArithOp,
) -> Result<Vec<Value<Tensor>>> {
    let out_dt = out_dtype(outs, 0)?;
    let sizes = out_sizes(outs, 0)?;
    let alpha = a
        .opt_scalar("alpha")
        .ok()
        .flatten()
        .unwrap_or(Scalar::Int(1));
    let compute = out_dt.compute_dtype();
    let x = operand_as(&a.operand("self")?, compute);
    let y = operand_as(&a.operand("other")?, compute);
    let r = match compute {
        DType::F32 => arith_typed::<f32>(&x, &y, &sizes, op, alpha),
        DType::F64 => arith_typed::<f64>(&x, &y, &sizes, op, alpha),
        DType::I64 => arith_typed::<i64>(&x, &y, &sizes, op, alpha),
        DType::I32 => arith_typed::<i32>(&x, &y, &sizes, op, alpha),
        DType::I16 => arith_typed::<i16>(&x, &y, &sizes, op, alpha),
        DType::I8 => arith_typed::<i8>(&x, &y, &sizes, op, alpha),
        DType::U8 => arith_typed::<u8>(&x, &y, &sizes, op, alpha),
        DType::Bool => arith_typed::<bool>(&x, &y, &sizes, op, alpha),
        DType::C64 => arith_typed::<num_complex::Complex32>(&x, &y, &sizes, op, alpha),
        DType::C128 => arith_typed::<num_complex::Complex64>(&x, &y, &sizes, op, alpha),
        DType::F16 | DType::BF16 => unreachable!("compute dtype is never half"),
    };
    out1(as_dtype(&r, out_dt))
}

fn inplace(
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
    let meta = [Value::Tensor(TensorMeta::contiguous(
        dt,
        match &outs[0] {
            Value::Tensor(m) => m.sizes.clone(),
            _ => vec![],
        },
    ))];
    let r = binary_arith(a, &meta, op)?;
    write_back(s, r)
}

fn compare(
    a: &Args<Tensor>,
    outs: &[Value<TensorMeta>],
    ff: fn(f64, f64) -> bool,
    fi: fn(i64, i64) -> bool,
    fb: fn(bool, bool) -> bool,
) -> Result<Vec<Value<Tensor>>> {
    let sizes = out_sizes(outs, 0)?;
    let (x, y) = (a.operand("self")?, a.operand("other")?);
    let common = result_type(&[&x, &y]);
    let r = match common {
        DType::Bool => binary_map::<bool, bool, bool>(
            &operand_as(&x, common),
            &operand_as(&y, common),
            &sizes,
            fb,
        ),
        DType::F32 | DType::F16 | DType::BF16 => {
            // Compare in the common dtype's values; f16/bf16 widen exactly to f32.
            let (p, q) = (operand_as(&x, common), operand_as(&y, common));
            let (p, q) = (as_dtype(&p, DType::F32), as_dtype(&q, DType::F32));
            binary_map::<f32, f32, bool>(&p, &q, &sizes, move |u, v| ff(u as f64, v as f64))
        }
        DType::F64 => binary_map::<f64, f64, bool>(
            &operand_as(&x, common),
            &operand_as(&y, common),
            &sizes,
            ff,
        ),
        _ => {
            let (p, q) = (operand_as(&x, common), operand_as(&y, common));
            crate::dispatch_dtype!(common, T => binary_map::<T, T, bool>(&p, &q, &sizes, move |u, v| fi(u.to_i64(), v.to_i64())))
        }
    };
    out1(r)
}

fn where_self(a: &Args<Tensor>, outs: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    let dt = out_dtype(outs, 0)?;
    let sizes = out_sizes(outs, 0)?;
    let cond = as_dtype(a.tensor("condition")?, DType::Bool);
    let x = operand_as(&a.operand("self")?, dt);
    let y = operand_as(&a.operand("other")?, dt);
    out1(
        crate::dispatch_dtype!(dt, T => ternary_map::<bool, T, T, T>(&cond, &x, &y, &sizes, |c, p, q| if c { p } else { q })),
    )
}

fn clamp(a: &Args<Tensor>, outs: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    let dt = out_dtype(outs, 0)?;
    let t = as_dtype(a.tensor("self")?, dt.compute_dtype());
    let (lo, hi) = (a.opt_scalar("min")?, a.opt_scalar("max")?);
    let r = match dt.compute_dtype() {
        DType::F32 => clamp_typed::<f32>(&t, lo, hi),
        DType::F64 => clamp_typed::<f64>(&t, lo, hi),
        d => {
            crate::dispatch_real_dtype!(d, T => clamp_typed::<T>(&t, lo, hi), complex => return Err(Error::DTypeNotSupported { op: "clamp".into(), dtype: d }))
        }
    };
    out1(as_dtype(&r, dt))
}

fn clamp_typed<T: crate::tensor::RealElement>(
    t: &Tensor,
    lo: Option<Scalar>,
    hi: Option<Scalar>,
) -> Tensor {
    let lo: Option<T> = lo.map(scalar_to);
    let hi: Option<T> = hi.map(scalar_to);
    unary_map::<T, T>(t, move |x| {
        #[allow(clippy::eq_op)]
        let is_nan = x != x;
        if is_nan {
            return x;
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
        v
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

fn pow(a: &Args<Tensor>, outs: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    let dt = out_dtype(outs, 0)?;
    let sizes = out_sizes(outs, 0)?;
    let compute = dt.compute_dtype();
    let x = as_dtype(a.tensor("self")?, compute);
    let e = operand_as(&a.operand("exponent")?, compute);
    let r = match compute {
        DType::F32 => binary_map::<f32, f32, f32>(&x, &e, &sizes, powf),
        DType::F64 => binary_map::<f64, f64, f64>(&x, &e, &sizes, powf),
        DType::Bool => binary_map::<bool, bool, bool>(&x, &e, &sizes, |b, p| b || !p),
        d => {
            crate::dispatch_dtype!(d, T => binary_map::<T, T, T>(&x, &e, &sizes, |b, p| T::from_i64(ipow(b.to_i64(), p.to_i64()))))
        }
    };
    out1(as_dtype(&r, dt))
}

fn dropout(a: &Args<Tensor>, outs: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    let x = a.tensor("input").or_else(|_| a.tensor("self"))?;
    let p = a.float("p")?;
    if !a.bool("train")? || p == 0.0 {
        // PyTorch returns the input itself for dropout(train=False).
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
    if a.schema.name.ends_with('_') {
        return write_back(x, vec![Value::Tensor(y)]);
    }
    out1(y)
}
