//! Core ATen math families: the rest of the unary functions (trigonometric, hyperbolic, rounding, erf,
//! logs), predicates (`isnan`, `isinf`), and binary ops over promoted operands (`maximum`, `atan2`,
//! `fmod`, `remainder`, bitwise and logical ops, `pow.Scalar`, `div` with a rounding mode).
//!
//! Each family is one macro line per overload; the kernels compute in f64 for floating dtypes (rounded
//! once to the output dtype) and in i64 for integers, like PyTorch's scalar CPU paths.
use super::pointwise::{meta_binary, meta_unary_float, unary_float};
use super::*;
use crate::dtype::Scalar;
use crate::tensor::kernels::elementwise::{binary_map, unary_map};
use crate::tensor::Element;
use num_traits::Float;

pub(super) fn register(r: &mut Builder) {
    macro_rules! float_unary {
        ($($name:literal, $x:ident => $body:expr;)*) => {$({
            fn f<F: Float>($x: F) -> F {
                $body
            }
            r.op($name, meta_unary_float, |a, o| unary_float(a, o, f::<f32>, f::<f64>));
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
    r.op("aten.erf.default", meta_unary_float, |a, o| {
        unary_float(a, o, libm::erff, libm::erf)
    });

    // Rounding keeps the dtype; integers pass through unchanged (bool is refused, as in PyTorch).
    macro_rules! rounding {
        ($($name:literal, $kernel:literal, $x:ident => $body:expr;)*) => {$({
            fn f($x: f64) -> f64 {
                $body
            }
            r.op($name, |a| meta_not_bool(a, $kernel), |a, o| {
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
    r.op(
        "aten.abs.default",
        super::complex::meta_abs,
        |a, o| match super::complex::complex_abs(a)? {
            Some(r) => Ok(r),
            None => same_dtype_unary(a, o, f64::abs, i64::wrapping_abs, |x| x),
        },
    )
    .complex();
    r.op("aten.sign.default", meta_same_dtype, |a, o| {
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
    r.op(
        "aten.bitwise_not.default",
        |a| meta_integral(a, "bitwise_not_cpu"),
        |a, o| same_dtype_unary(a, o, |x| x, |x| !x, |x| !x),
    );
    r.op("aten.isnan.default", meta_predicate, |a, _| {
        predicate(a, f64::is_nan)
    });
    r.op("aten.isinf.default", meta_predicate, |a, _| {
        predicate(a, f64::is_infinite)
    });

    // Binary ops over promoted operands.
    r.op("aten.maximum.default", meta_binary, |a, o| {
        binary_by_class(a, o, nan_max, |x, y| Ok(x.max(y)), |x, y| x | y)
    });
    r.op("aten.minimum.default", meta_binary, |a, o| {
        binary_by_class(a, o, nan_min, |x, y| Ok(x.min(y)), |x, y| x & y)
    });
    r.op("aten.atan2.default", meta_binary_float, |a, o| {
        binary_by_class(a, o, f64::atan2, |_, _| Ok(0), |_, _| false)
    });
    // The out= form: computed like atan2, written into `out` (which must already have the result's shape).
    r.op("aten.atan2.out", meta_binary_float, |a, o| {
        let r = binary_by_class(a, o, f64::atan2, |_, _| Ok(0), |_, _| false)?;
        let out = a.tensor("out")?;
        let Some(Value::Tensor(t)) = r.first() else {
            return Err(Error::value("atan2 returned no tensor"));
        };
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
        r.op(
            name,
            |a| meta_binary_not_bool(a, "fmod_cpu"),
            |a, o| binary_by_class(a, o, |x, y| x % y, int_fmod, |_, _| false),
        );
    }
    for name in ["aten.remainder.Tensor", "aten.remainder.Scalar"] {
        r.op(
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
                r.op(name, |a| meta_binary_integral(a, $kernel), |a, o| {
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
            r.op($name, meta_logical, |a, o| logical(a, o, f));
        })*};
    }
    logical! {
        "aten.logical_and.default", x, y => x && y;
        "aten.logical_or.default", x, y => x || y;
        "aten.logical_xor.default", x, y => x != y;
    }
    r.op("aten.pow.Scalar", meta_pow_scalar_base, pow_scalar_base);
    for name in ["aten.div.Tensor_mode", "aten.div.Scalar_mode"] {
        r.op(name, meta_div_mode, div_mode);
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

/// A unary op that keeps the dtype: floats through `ff` (in f64), integers through `fi`, bools `fb`.
fn same_dtype_unary(
    a: &Args<Tensor>,
    outs: &[Value<TensorMeta>],
    ff: fn(f64) -> f64,
    fi: fn(i64) -> i64,
    fb: fn(bool) -> bool,
) -> Result<Vec<Value<Tensor>>> {
    let t = a.tensor("self")?;
    let dt = out_dtype(outs, 0)?;
    let r = match dt {
        DType::F64 => unary_map::<f64, f64>(t, ff),
        DType::F32 => unary_map::<f32, f32>(t, move |x| ff(x as f64) as f32),
        DType::F16 | DType::BF16 => {
            let w = unary_map::<f32, f32>(&as_dtype(t, DType::F32), move |x| ff(x as f64) as f32);
            as_dtype(&w, dt)
        }
        DType::Bool => unary_map::<bool, bool>(t, fb),
        _ => {
            crate::dispatch_dtype!(dt, T => unary_map::<T, T>(t, move |x| T::from_i64(fi(x.to_i64()))))
        }
    };
    out1(r)
}

fn predicate(a: &Args<Tensor>, f: fn(f64) -> bool) -> Result<Vec<Value<Tensor>>> {
    let t = a.tensor("self")?;
    let r = if t.dtype().is_floating_point() {
        unary_map::<f64, bool>(&as_dtype(t, DType::F64), f)
    } else {
        crate::dispatch_dtype!(t.dtype(), T => unary_map::<T, bool>(t, |_| false))
    };
    out1(r)
}

/// A binary op on the output dtype: floats through `ff` (f64, rounded once), integers through `fi`
/// (i64, wrapped to the dtype; an error such as an integer division by zero stops the op), bools `fb`.
fn binary_by_class(
    a: &Args<Tensor>,
    outs: &[Value<TensorMeta>],
    ff: fn(f64, f64) -> f64,
    fi: fn(i64, i64) -> Result<i64>,
    fb: fn(bool, bool) -> bool,
) -> Result<Vec<Value<Tensor>>> {
    let dt = out_dtype(outs, 0)?;
    let sizes = out_sizes(outs, 0)?;
    let (x, y) = (a.operand("self")?, a.operand("other")?);
    if dt.is_floating_point() {
        let (p, q) = (operand_as(&x, DType::F64), operand_as(&y, DType::F64));
        let r = binary_map::<f64, f64, f64>(&p, &q, &sizes, ff);
        return out1(as_dtype(&r, dt));
    }
    if dt == DType::Bool {
        let (p, q) = (operand_as(&x, dt), operand_as(&y, dt));
        return out1(binary_map::<bool, bool, bool>(&p, &q, &sizes, fb));
    }
    let (p, q) = (operand_as(&x, DType::I64), operand_as(&y, DType::I64));
    let mut err = std::sync::OnceLock::new();
    let r = binary_map::<i64, i64, i64>(&p, &q, &sizes, |u, v| match fi(u, v) {
        Ok(w) => w,
        Err(e) => {
            let _ = err.set(e);
            0
        }
    });
    if let Some(e) = err.take() {
        return Err(e);
    }
    out1(as_dtype(&r, dt))
}

fn logical(
    a: &Args<Tensor>,
    outs: &[Value<TensorMeta>],
    f: fn(bool, bool) -> bool,
) -> Result<Vec<Value<Tensor>>> {
    let sizes = out_sizes(outs, 0)?;
    let x = as_dtype(a.tensor("self")?, DType::Bool);
    let y = as_dtype(a.tensor("other")?, DType::Bool);
    out1(binary_map::<bool, bool, bool>(&x, &y, &sizes, f))
}

fn pow_scalar_base(a: &Args<Tensor>, outs: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    let dt = out_dtype(outs, 0)?;
    let base = a.scalar("self")?;
    let e = a.tensor("exponent")?;
    if dt.is_floating_point() {
        let b = base.to_f64();
        let r = unary_map::<f64, f64>(&as_dtype(e, DType::F64), move |p| {
            if p == 0.0 {
                1.0
            } else {
                b.powf(p)
            }
        });
        return out1(as_dtype(&r, dt));
    }
    if dt == DType::Bool {
        let b = base.to_f64() != 0.0;
        return out1(unary_map::<bool, bool>(
            &as_dtype(e, DType::Bool),
            move |p| b || !p,
        ));
    }
    let b = match base {
        Scalar::Int(i) => i,
        Scalar::Bool(v) => v as i64,
        Scalar::Float(f) => f as i64,
    };
    let r = unary_map::<i64, i64>(&as_dtype(e, DType::I64), move |p| int_pow(b, p));
    out1(as_dtype(&r, dt))
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

fn div_mode(a: &Args<Tensor>, outs: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    let mode = match a.get("rounding_mode")? {
        Value::Str(s) => s.clone(),
        _ => String::new(),
    };
    match mode.as_str() {
        "trunc" => binary_by_class(
            a,
            outs,
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
        "floor" => binary_by_class(a, outs, py_floor_div, int_floor_div, |x, _| x),
        _ => binary_by_class(a, outs, |x, y| x / y, |_, _| Ok(0), |_, _| false),
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
