//! Core ATen math families: the rest of the unary functions (trigonometric, hyperbolic, rounding, erf,
//! logs), predicates (`isnan`, `isinf`), and binary ops over promoted operands (`maximum`, `atan2`,
//! `fmod`, `remainder`, bitwise and logical ops, `pow.Scalar`, `div` with a rounding mode).
//!
//! Each family is one macro line per overload; the kernels compute in f64 for floating dtypes (rounded
//! once to the output dtype) and in i64 for integers, like PyTorch's scalar CPU paths.
use super::pointwise::{f64_unary_into, first, meta_binary, meta_unary_float, unary_float_into};
use super::*;
use crate::dtype::Scalar;
use crate::ops::registry::alloc_outputs;
use crate::tensor::kernels::elementwise::{binary_map_into, unary_map_into};
use crate::tensor::{cast_element, Element};
use num_traits::Float;

pub(super) fn register(r: &mut Builder) {
    macro_rules! float_unary {
        ($($name:literal, $x:ident => $body:expr;)*) => {$({
            fn f<F: Float>($x: F) -> F {
                $body
            }
            r.out_op($name, meta_unary_float, |a, o| unary_float_into(a, first(o)?, f::<f32>, f::<f64>));
        })*};
    }
    float_unary! {
        "aten.tan.default", x => x.tan();
        "aten.asin.default", x => x.asin();
        "aten.acos.default", x => x.acos();
        "aten.atan.default", x => x.atan();
        "aten.sinh.default", x => x.sinh();
        "aten.cosh.default", x => x.cosh();
        "aten.asinh.default", x => x.asinh();
        "aten.acosh.default", x => x.acosh();
        "aten.atanh.default", x => x.atanh();
        "aten.expm1.default", x => x.exp_m1();
        "aten.log1p.default", x => x.ln_1p();
        "aten.log2.default", x => x.log2();
        "aten.log10.default", x => x.log10();
        "aten.reciprocal.default", x => x.recip();
    }
    r.out_op("aten.erf.default", meta_unary_float, |a, o| {
        unary_float_into(a, first(o)?, libm::erff, libm::erf)
    });

    // Rounding keeps the dtype; integers pass through unchanged (bool is refused, as in PyTorch).
    macro_rules! rounding {
        ($($name:literal, $kernel:literal, $x:ident => $body:expr;)*) => {$({
            fn f($x: f64) -> f64 {
                $body
            }
            r.out_op($name, |a| meta_not_bool(a, $kernel), |a, o| {
                same_dtype_unary(a, o, f, |x| x, |x| x)
            });
        })*};
    }
    rounding! {
        "aten.ceil.default", "ceil_vml_cpu", x => x.ceil();
        "aten.floor.default", "floor_vml_cpu", x => x.floor();
        "aten.trunc.default", "trunc_vml_cpu", x => x.trunc();
        "aten.round.default", "round_vml_cpu", x => round_half_even(x);
    }
    r.out_op("aten.abs.default", super::complex::meta_abs, |a, o| {
        if a.tensor("self")?.dtype().is_complex() {
            super::complex::complex_abs(a, o)
        } else {
            same_dtype_unary(a, o, f64::abs, i64::wrapping_abs, |x| x)
        }
    })
    .complex();
    r.out_op("aten.sign.default", meta_same_dtype, |a, o| {
        same_dtype_unary(
            a,
            o,
            // PyTorch's sign of NaN is 0.
            |x| {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            },
            i64::signum,
            |x| x,
        )
    });
    r.out_op(
        "aten.bitwise_not.default",
        |a| meta_integral(a, "bitwise_not_cpu"),
        |a, o| same_dtype_unary(a, o, |x| x, |x| !x, |x| !x),
    );
    r.out_op("aten.isnan.default", meta_predicate, |a, o| {
        predicate(a, o, f64::is_nan)
    });
    r.out_op("aten.isinf.default", meta_predicate, |a, o| {
        predicate(a, o, f64::is_infinite)
    });

    // Binary ops over promoted operands.
    r.out_op("aten.maximum.default", meta_binary, |a, o| {
        binary_by_class(a, o, nan_max, |x, y| Ok(x.max(y)), |x, y| x | y)
    });
    r.out_op("aten.minimum.default", meta_binary, |a, o| {
        binary_by_class(a, o, nan_min, |x, y| Ok(x.min(y)), |x, y| x & y)
    });
    r.out_op("aten.atan2.default", meta_binary_float, |a, o| {
        binary_by_class(a, o, f64::atan2, |_, _| Ok(0), |_, _| false)
    });
    // The out= form: computed like atan2 (in the result dtype, then cast into `out`, which must already
    // have the result's shape). An allocating kernel: its output is the `out` argument itself.
    r.op("aten.atan2.out", meta_binary_float, |a, o| {
        let mut r = alloc_outputs(o)?;
        binary_by_class(a, &mut r, f64::atan2, |_, _| Ok(0), |_, _| false)?;
        let t = first(&r)?;
        let out = a.tensor("out")?;
        if out.sizes_untraced() != t.sizes_untraced() {
            return Err(Error::shape(format!(
                "atan2.out: out has shape {} but the result has shape {} (oxport does not resize out=)",
                fmt_shape(out.sizes_untraced()),
                fmt_shape(t.sizes_untraced())
            )));
        }
        out.assign_untraced(t)?;
        out1(out.clone())
    });
    for name in ["aten.fmod.Tensor", "aten.fmod.Scalar"] {
        r.out_op(
            name,
            |a| meta_binary_not_bool(a, "fmod_cpu"),
            |a, o| binary_by_class(a, o, |x, y| x % y, int_fmod, |_, _| false),
        );
    }
    for name in ["aten.remainder.Tensor", "aten.remainder.Scalar"] {
        r.out_op(
            name,
            |a| meta_binary_not_bool(a, "remainder_cpu"),
            |a, o| binary_by_class(a, o, py_remainder, int_remainder, |_, _| false),
        );
    }
    macro_rules! bitwise {
        ($($t:literal, $s:literal, $kernel:literal, $x:ident, $y:ident => $body:expr;)*) => {$({
            fn fi($x: i64, $y: i64) -> Result<i64> {
                Ok($body)
            }
            fn fb($x: bool, $y: bool) -> bool {
                $body
            }
            for name in [$t, $s] {
                r.out_op(name, |a| meta_binary_integral(a, $kernel), |a, o| {
                    binary_by_class(a, o, |x, _| x, fi, fb)
                });
            }
        })*};
    }
    bitwise! {
        "aten.bitwise_and.Tensor", "aten.bitwise_and.Scalar", "bitwise_and_cpu", x, y => x & y;
        "aten.bitwise_or.Tensor", "aten.bitwise_or.Scalar", "bitwise_or_cpu", x, y => x | y;
        "aten.bitwise_xor.Tensor", "aten.bitwise_xor.Scalar", "bitwise_xor_cpu", x, y => x ^ y;
    }
    macro_rules! logical {
        ($($name:literal, $x:ident, $y:ident => $body:expr;)*) => {$({
            fn f($x: bool, $y: bool) -> bool {
                $body
            }
            r.out_op($name, meta_logical, |a, o| logical(a, o, f));
        })*};
    }
    logical! {
        "aten.logical_and.default", x, y => x && y;
        "aten.logical_or.default", x, y => x || y;
        "aten.logical_xor.default", x, y => x != y;
    }
    r.out_op("aten.pow.Scalar", meta_pow_scalar_base, pow_scalar_base);
    for name in ["aten.div.Tensor_mode", "aten.div.Scalar_mode"] {
        r.out_op(name, meta_div_mode, div_mode);
    }
}

/// Python's `round`: halves to even.
fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 {
        2.0 * (x / 2.0).round()
    } else {
        r
    }
}

/// PyTorch's `maximum`: NaN wins.
fn nan_max(x: f64, y: f64) -> f64 {
    if x.is_nan() || y.is_nan() {
        f64::NAN
    } else {
        x.max(y)
    }
}

fn nan_min(x: f64, y: f64) -> f64 {
    if x.is_nan() || y.is_nan() {
        f64::NAN
    } else {
        x.min(y)
    }
}

/// Python's `%` on floats: the result takes the divisor's sign.
fn py_remainder(x: f64, y: f64) -> f64 {
    let m = x % y;
    if m != 0.0 && ((m < 0.0) != (y < 0.0)) {
        m + y
    } else {
        m
    }
}

fn zero_division() -> Error {
    Error::value("ZeroDivisionError")
}

fn int_fmod(x: i64, y: i64) -> Result<i64> {
    if y == 0 {
        return Err(zero_division());
    }
    Ok(x.wrapping_rem(y))
}

fn int_remainder(x: i64, y: i64) -> Result<i64> {
    let m = int_fmod(x, y)?;
    Ok(if m != 0 && ((m < 0) != (y < 0)) {
        m + y
    } else {
        m
    })
}

// ---- metas -------------------------------------------------------------------------------------------

fn meta_same_dtype(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    one(t.dtype, t.sizes.clone())
}

pub(super) fn meta_not_bool(a: &Args<TensorMeta>, kernel: &str) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    if t.dtype == DType::Bool {
        return Err(Error::DTypeNotSupported {
            op: kernel.into(),
            dtype: t.dtype,
        });
    }
    one(t.dtype, t.sizes.clone())
}

fn meta_integral(a: &Args<TensorMeta>, kernel: &str) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    if t.dtype.is_floating_point() {
        return Err(Error::DTypeNotSupported {
            op: kernel.into(),
            dtype: t.dtype,
        });
    }
    one(t.dtype, t.sizes.clone())
}

fn meta_predicate(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    one(DType::Bool, t.sizes.clone())
}

fn meta_binary_float(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let mut out = meta_binary(a)?;
    if let Some(Value::Tensor(m)) = out.first_mut() {
        if !m.dtype.is_floating_point() {
            m.dtype = DType::F32;
        }
    }
    Ok(out)
}

fn binary_result_dtype(out: &[Value<TensorMeta>]) -> DType {
    match out.first() {
        Some(Value::Tensor(m)) => m.dtype,
        _ => DType::F32,
    }
}

fn meta_binary_not_bool(a: &Args<TensorMeta>, kernel: &str) -> Result<Vec<Value<TensorMeta>>> {
    let out = meta_binary(a)?;
    let dtype = binary_result_dtype(&out);
    if dtype == DType::Bool {
        return Err(Error::DTypeNotSupported {
            op: kernel.into(),
            dtype,
        });
    }
    Ok(out)
}

fn meta_binary_integral(a: &Args<TensorMeta>, kernel: &str) -> Result<Vec<Value<TensorMeta>>> {
    let out = meta_binary(a)?;
    let dtype = binary_result_dtype(&out);
    if dtype.is_floating_point() {
        return Err(Error::DTypeNotSupported {
            op: kernel.into(),
            dtype,
        });
    }
    Ok(out)
}

fn meta_logical(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let x = a.tensor("self")?;
    let y = a.tensor("other")?;
    one(DType::Bool, broadcast_shapes(&[&x.sizes, &y.sizes])?)
}

/// `pow(Scalar self, Tensor exponent)`: the result type of the number and the tensor.
fn meta_pow_scalar_base(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let base = a.scalar("self")?;
    let e = a.tensor("exponent")?;
    let x = Operand::Scalar(base);
    let y = Operand::Tensor(e);
    one(result_type(&[&x, &y]), e.sizes.clone())
}

fn meta_div_mode(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let mode = match a.get("rounding_mode")? {
        Value::Str(s) => Some(s.as_str()),
        _ => None,
    };
    match mode {
        None => super::pointwise::meta_div(a),
        Some("trunc" | "floor") => meta_binary(a),
        Some(other) => Err(Error::value(format!(
            "div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '{other}'"
        ))),
    }
}

// ---- kernels -----------------------------------------------------------------------------------------

/// A unary op that keeps the dtype: floats through `ff` (in f64, rounded to f32 and then to f16/bf16),
/// integers through `fi`, bools `fb`.
fn same_dtype_unary(
    a: &Args<Tensor>,
    o: &mut [Tensor],
    ff: fn(f64) -> f64,
    fi: fn(i64) -> i64,
    fb: fn(bool) -> bool,
) -> Result<()> {
    fn half<T: Element>(t: &Tensor, out: &Tensor, ff: fn(f64) -> f64) -> Result<()> {
        unary_map_into::<T, T>(t, out, move |x| {
            cast_element::<f32, T>(ff(x.to_f64()) as f32)
        })
    }
    let t = a.tensor("self")?;
    let out = first(o)?;
    match out.dtype() {
        DType::F64 => unary_map_into::<f64, f64>(t, out, ff),
        DType::F32 => unary_map_into::<f32, f32>(t, out, move |x| ff(x as f64) as f32),
        DType::F16 => half::<half::f16>(t, out, ff),
        DType::BF16 => half::<half::bf16>(t, out, ff),
        DType::Bool => unary_map_into::<bool, bool>(t, out, fb),
        dt => {
            crate::dispatch_dtype!(dt, T => unary_map_into::<T, T>(t, out, move |x| T::from_i64(fi(x.to_i64()))))
        }
    }
}

/// `isnan` / `isinf`: `f` of float values (widened exactly to f64); false for every other dtype.
fn predicate(a: &Args<Tensor>, o: &mut [Tensor], f: fn(f64) -> bool) -> Result<()> {
    fn float<T: Element>(t: &Tensor, out: &Tensor, f: fn(f64) -> bool) -> Result<()> {
        unary_map_into::<T, bool>(t, out, move |x| f(x.to_f64()))
    }
    let t = a.tensor("self")?;
    let out = first(o)?;
    match t.dtype() {
        DType::F64 => float::<f64>(t, out, f),
        DType::F32 => float::<f32>(t, out, f),
        DType::F16 => float::<half::f16>(t, out, f),
        DType::BF16 => float::<half::bf16>(t, out, f),
        _ => super::fill_pad::fill_into(out, Scalar::Bool(false)),
    }
}

/// `out[i] = f(x[i], y[i])` over f64 tensors, each result cast to `out`'s float dtype as `as_dtype`
/// casts.
fn f64_binary_into(x: &Tensor, y: &Tensor, out: &Tensor, f: fn(f64, f64) -> f64) -> Result<()> {
    fn to<O: Element>(x: &Tensor, y: &Tensor, out: &Tensor, f: fn(f64, f64) -> f64) -> Result<()> {
        binary_map_into::<f64, f64, O>(x, y, out, move |u, v| cast_element::<f64, O>(f(u, v)))
    }
    match out.dtype() {
        DType::F64 => binary_map_into::<f64, f64, f64>(x, y, out, f),
        DType::F32 => to::<f32>(x, y, out, f),
        DType::F16 => to::<half::f16>(x, y, out, f),
        DType::BF16 => to::<half::bf16>(x, y, out, f),
        d => Err(Error::DType(format!(
            "a float kernel got an output of dtype {}",
            d.name()
        ))),
    }
}

/// `out[i] = f(x[i], y[i])` over i64 tensors (`f(x[i], 0)` without `y`), each result wrapped to
/// `out`'s integer dtype; `f`'s first error (an integer division by zero) stops the op.
fn i64_map_into(
    x: &Tensor,
    y: Option<&Tensor>,
    out: &Tensor,
    f: impl Fn(i64, i64) -> Result<i64> + Sync + Send,
) -> Result<()> {
    fn to<T: Element>(
        x: &Tensor,
        y: Option<&Tensor>,
        out: &Tensor,
        f: impl Fn(i64, i64) -> Result<i64> + Sync + Send,
    ) -> Result<()> {
        let err = std::sync::OnceLock::new();
        let store = |r: Result<i64>| match r {
            Ok(w) => T::from_i64(w),
            Err(e) => {
                let _ = err.set(e);
                T::default()
            }
        };
        match y {
            Some(y) => binary_map_into::<i64, i64, T>(x, y, out, |u, v| store(f(u, v)))?,
            None => unary_map_into::<i64, T>(x, out, |u| store(f(u, 0)))?,
        }
        match err.into_inner() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
    match out.dtype() {
        DType::I64 => to::<i64>(x, y, out, f),
        DType::I32 => to::<i32>(x, y, out, f),
        DType::I16 => to::<i16>(x, y, out, f),
        DType::I8 => to::<i8>(x, y, out, f),
        DType::U8 => to::<u8>(x, y, out, f),
        d => Err(Error::DType(format!(
            "an integer kernel got an output of dtype {}",
            d.name()
        ))),
    }
}

/// A binary op on the output dtype: floats through `ff` (f64, rounded once), integers through `fi`
/// (i64, wrapped to the dtype; an error such as an integer division by zero stops the op), bools `fb`.
fn binary_by_class(
    a: &Args<Tensor>,
    o: &mut [Tensor],
    ff: fn(f64, f64) -> f64,
    fi: fn(i64, i64) -> Result<i64>,
    fb: fn(bool, bool) -> bool,
) -> Result<()> {
    let out = first(o)?;
    let dt = out.dtype();
    let (x, y) = (a.operand("self")?, a.operand("other")?);
    if dt.is_floating_point() {
        let (p, q) = (operand_as(&x, DType::F64), operand_as(&y, DType::F64));
        return f64_binary_into(&p, &q, out, ff);
    }
    if dt == DType::Bool {
        let (p, q) = (operand_as(&x, dt), operand_as(&y, dt));
        return binary_map_into::<bool, bool, bool>(&p, &q, out, fb);
    }
    let (p, q) = (operand_as(&x, DType::I64), operand_as(&y, DType::I64));
    i64_map_into(&p, Some(&q), out, fi)
}

fn logical(a: &Args<Tensor>, o: &mut [Tensor], f: fn(bool, bool) -> bool) -> Result<()> {
    let x = as_dtype(a.tensor("self")?, DType::Bool);
    let y = as_dtype(a.tensor("other")?, DType::Bool);
    binary_map_into::<bool, bool, bool>(&x, &y, first(o)?, f)
}

fn pow_scalar_base(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let out = first(o)?;
    let dt = out.dtype();
    let base = a.scalar("self")?;
    let e = a.tensor("exponent")?;
    if dt.is_floating_point() {
        let b = base.to_f64();
        return f64_unary_into(&as_dtype(e, DType::F64), out, move |p| {
            if p == 0.0 {
                1.0
            } else {
                b.powf(p)
            }
        });
    }
    if dt == DType::Bool {
        let b = base.to_f64() != 0.0;
        return unary_map_into::<bool, bool>(&as_dtype(e, DType::Bool), out, move |p| b || !p);
    }
    let b = match base {
        Scalar::Int(i) => i,
        Scalar::Bool(v) => v as i64,
        Scalar::Float(f) => f as i64,
    };
    i64_map_into(&as_dtype(e, DType::I64), None, out, move |p, _| {
        Ok(int_pow(b, p))
    })
}

/// Integer power as PyTorch's CPU kernel computes it (negative exponents: 1 / b^-p truncated).
fn int_pow(base: i64, exp: i64) -> i64 {
    if exp < 0 {
        return match base {
            1 => 1,
            -1 => {
                if exp % 2 == 0 {
                    1
                } else {
                    -1
                }
            }
            _ => 0,
        };
    }
    super::pointwise::ipow(base, exp)
}

fn div_mode(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let mode = match a.get("rounding_mode")? {
        Value::Str(s) => s.clone(),
        _ => String::new(),
    };
    match mode.as_str() {
        "trunc" => binary_by_class(
            a,
            o,
            |x, y| (x / y).trunc(),
            |x, y| {
                if y == 0 {
                    Err(zero_division())
                } else {
                    Ok(x.wrapping_div(y))
                }
            },
            |x, _| x,
        ),
        "floor" => binary_by_class(a, o, py_floor_div, int_floor_div, |x, _| x),
        _ => binary_by_class(a, o, |x, y| x / y, |_, _| Ok(0), |_, _| false),
    }
}

/// Python's `//` on floats (PyTorch's `div_floor`): `floor(x / y)` computed from fmod, as `divmod` does.
fn py_floor_div(x: f64, y: f64) -> f64 {
    if y == 0.0 {
        return x / y;
    }
    let m = x % y;
    let mut div = (x - m) / y;
    if m != 0.0 && ((y < 0.0) != (m < 0.0)) {
        div -= 1.0;
    }
    if div == 0.0 {
        return 0.0f64.copysign(x / y);
    }
    let floor = div.floor();
    if div - floor > 0.5 {
        floor + 1.0
    } else {
        floor
    }
}

fn int_floor_div(x: i64, y: i64) -> Result<i64> {
    if y == 0 {
        return Err(zero_division());
    }
    let q = x.wrapping_div(y);
    Ok(if (x % y != 0) && ((x < 0) != (y < 0)) {
        q - 1
    } else {
        q
    })
}
