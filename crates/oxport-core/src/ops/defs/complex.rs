//! Complex tensors: `view_as_real` / `view_as_complex`, `real` / `imag`, `complex`, `angle`, `abs` of
//! complex numbers, and the FFTs (`_fft_r2c`, `_fft_c2r`, `_fft_c2c` with kernels over `rustfft`;
//! `fft_fft`, `fft_ifft`, `fft_rfft`, `fft_irfft` as PyTorch's C++ composites decompose them).
//!
//! oxport's storage is typed, so the "views" between complex and real dtypes (`view_as_real`,
//! `view_as_complex`, `real`, `imag`) are copies of the storage with PyTorch's view geometry (sizes,
//! strides, offset): their values are PyTorch's, but an in-place write through one does not reach the
//! tensor it was taken from.
use super::pointwise::{f64_unary_into, first};
use super::*;
use crate::tensor::kernels::elementwise::{binary_map_into, unary_map_into};
use crate::tensor::{Buffer, Element};
use num_complex::{Complex, Complex32, Complex64};
use rustfft::{FftNum, FftPlanner};

pub(super) fn register(r: &mut Builder) {
    // Allocating kernels: these five are views in PyTorch (`Tensor(a) self -> Tensor(a)`: `real` and
    // `_conj` of a real tensor return it, and the others' outputs carry the view's strides and storage
    // offset, which an allocated output does not have).
    r.op("aten.view_as_real.default", meta_view_as_real, view_as_real)
        .complex();
    r.op(
        "aten.view_as_complex.default",
        meta_view_as_complex,
        view_as_complex,
    )
    .complex();
    r.op("aten.real.default", |a| meta_real_imag(a, 0), real)
        .decomposition(decompositions::real)
        .complex();
    r.op("aten.imag.default", |a| meta_real_imag(a, 1), imag)
        .decomposition(decompositions::imag)
        .complex();
    r.out_op("aten.complex.default", meta_complex, complex_kernel)
        .complex();
    r.out_op("aten.angle.default", meta_angle, angle).complex();
    r.op("aten._conj.default", meta_conj, conj).complex();
    r.out_op("aten._fft_r2c.default", meta_fft_r2c, |a, o| {
        in_precision(a, o, r2c::<f32>, r2c::<f64>)
    })
    .complex();
    r.out_op("aten._fft_c2r.default", meta_fft_c2r, |a, o| {
        in_precision(a, o, c2r::<f32>, c2r::<f64>)
    })
    .complex();
    r.out_op("aten._fft_c2c.default", meta_fft_c2c, |a, o| {
        in_precision(a, o, c2c::<f32>, c2c::<f64>)
    })
    .complex();
    r.decomposed(
        "aten.fft_rfft.default",
        |a| meta_fft_composite(a, Composite::Rfft),
        decompositions::fft_rfft,
    )
    .complex();
    r.decomposed(
        "aten.fft_irfft.default",
        |a| meta_fft_composite(a, Composite::Irfft),
        decompositions::fft_irfft,
    )
    .complex();
    r.decomposed(
        "aten.fft_fft.default",
        |a| meta_fft_composite(a, Composite::Fft),
        decompositions::fft_fft,
    )
    .complex();
    r.decomposed(
        "aten.fft_ifft.default",
        |a| meta_fft_composite(a, Composite::Ifft),
        decompositions::fft_ifft,
    )
    .complex();
}

// ---- abs (declared in math.rs) -------------------------------------------------------------------------

/// `abs` of a complex tensor is its real dtype.
pub(super) fn meta_abs(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    if t.dtype.is_complex() {
        return one(t.dtype.to_real(), t.sizes.clone());
    }
    super::math::meta_not_bool(a, "abs_cpu")
}

/// |z| of a complex tensor (`hypot`, as `std::abs(c10::complex)`), into its real dtype.
pub(super) fn complex_abs(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let t = a.tensor("self")?;
    let out = first(o)?;
    match t.dtype() {
        DType::C64 => unary_map_into::<Complex32, f32>(t, out, |z| z.re.hypot(z.im)),
        DType::C128 => unary_map_into::<Complex64, f64>(t, out, |z| z.re.hypot(z.im)),
        d => Err(Error::DTypeNotSupported {
            op: "complex abs".into(),
            dtype: d,
        }),
    }
}

// ---- views between complex and real dtypes ------------------------------------------------------------

fn dims_of(t: &TensorMeta) -> (Vec<SymInt>, Vec<SymInt>, SymInt) {
    (t.sizes.clone(), t.strides.clone(), t.offset.clone())
}

fn meta_view_as_real(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    if !t.dtype.is_complex() {
        return Err(Error::value(
            "view_as_real is only supported for complex tensors",
        ));
    }
    let (mut sizes, strides, offset) = dims_of(t);
    let two = SymInt::Int(2);
    let mut strides: Vec<SymInt> = strides.iter().map(|s| s.mul(&two)).collect();
    sizes.push(two.clone());
    strides.push(SymInt::Int(1));
    Ok(vec![Value::Tensor(TensorMeta {
        dtype: t.dtype.to_real(),
        sizes,
        strides,
        offset: offset.mul(&two),
    })])
}

/// The storage of complex tensor `t` as real numbers (re, im interleaved), in a new buffer.
fn storage_as_real(t: &Tensor) -> Result<Buffer> {
    let buf = t.storage().read();
    Ok(match &*buf {
        Buffer::C64(v) => Buffer::F32(v.iter().flat_map(|z| [z.re, z.im]).collect()),
        Buffer::C128(v) => Buffer::F64(v.iter().flat_map(|z| [z.re, z.im]).collect()),
        other => {
            return Err(Error::DTypeNotSupported {
                op: "view_as_real".into(),
                dtype: other.dtype(),
            })
        }
    })
}

/// A tensor with the geometry of output meta `i`, over `buf`.
fn with_meta_geometry(buf: Buffer, outs: &[Value<TensorMeta>]) -> Result<Tensor> {
    let Some(Value::Tensor(m)) = outs.first() else {
        return Err(Error::value("meta function produced no tensor output"));
    };
    let len = buf.len();
    let base = Tensor::from_buffer_checked(buf, &[len])?;
    base.restride(
        &m.concrete_sizes()?,
        &concrete_usizes(&m.strides)?,
        m.offset
            .as_int()
            .ok_or_else(|| Error::Symbolic("a symbolic storage offset at run time".into()))?
            as usize,
    )
}

fn view_as_real(a: &Args<Tensor>, outs: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    let t = a.tensor("self")?;
    out1(with_meta_geometry(storage_as_real(t)?, outs)?)
}

fn meta_view_as_complex(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    let complex = match t.dtype {
        DType::F32 => DType::C64,
        DType::F64 => DType::C128,
        DType::F16 => {
            return Err(Error::DTypeNotSupported {
                op: "view_as_complex (oxport has no ComplexHalf)".into(),
                dtype: t.dtype,
            })
        }
        d => {
            return Err(Error::value(format!(
                "view_as_complex is only supported for half, float and double tensors, but got a tensor of scalar type: {d}"
            )))
        }
    };
    let nd = t.dim();
    if nd == 0 {
        return Err(Error::value(
            "Input tensor must have one or more dimensions",
        ));
    }
    if !t.sizes[nd - 1].guard_eq(&SymInt::Int(2)) {
        return Err(Error::value("Tensor must have a last dimension of size 2"));
    }
    if !t.strides[nd - 1].guard_eq(&SymInt::Int(1)) {
        return Err(Error::value(
            "Tensor must have a last dimension with stride 1",
        ));
    }
    let two = SymInt::Int(2);
    let even = |s: &SymInt| s.modulo(&two).guard_eq(&SymInt::Int(0));
    let mut strides = vec![];
    for s in &t.strides[..nd - 1] {
        if !even(s) {
            return Err(Error::value(
                "Tensor must have a stride divisible by 2 for all but last dimension",
            ));
        }
        strides.push(s.floor_div(&two));
    }
    if !even(&t.offset) {
        return Err(Error::value(
            "Tensor must have a storage_offset divisible by 2",
        ));
    }
    Ok(vec![Value::Tensor(TensorMeta {
        dtype: complex,
        sizes: t.sizes[..nd - 1].to_vec(),
        strides,
        offset: t.offset.floor_div(&two),
    })])
}

fn view_as_complex(a: &Args<Tensor>, outs: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    let t = a.tensor("self")?;
    let buf = t.storage().read();
    let pairs = |n: usize| n / 2;
    let cbuf = match &*buf {
        Buffer::F32(v) => Buffer::C64(
            (0..pairs(v.len()))
                .map(|i| Complex32::new(v[2 * i], v[2 * i + 1]))
                .collect(),
        ),
        Buffer::F64(v) => Buffer::C128(
            (0..pairs(v.len()))
                .map(|i| Complex64::new(v[2 * i], v[2 * i + 1]))
                .collect(),
        ),
        other => {
            return Err(Error::DTypeNotSupported {
                op: "view_as_complex".into(),
                dtype: other.dtype(),
            })
        }
    };
    drop(buf);
    out1(with_meta_geometry(cbuf, outs)?)
}

/// `real` / `imag` (`part` 0 / 1): PyTorch's view `select(view_as_real(self), -1, part)`; `real` of
/// a real tensor is the tensor itself.
fn meta_real_imag(a: &Args<TensorMeta>, part: i64) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    if !t.dtype.is_complex() {
        if part == 0 {
            return Ok(vec![Value::Tensor(t.clone())]);
        }
        return Err(Error::value(
            "imag is not implemented for tensors with non-complex dtypes.",
        ));
    }
    let two = SymInt::Int(2);
    Ok(vec![Value::Tensor(TensorMeta {
        dtype: t.dtype.to_real(),
        sizes: t.sizes.clone(),
        strides: t.strides.iter().map(|s| s.mul(&two)).collect(),
        offset: t.offset.mul(&two).add(&SymInt::Int(part)),
    })])
}

fn real(a: &Args<Tensor>, outs: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    let t = a.tensor("self")?;
    if !t.dtype().is_complex() {
        return out1(t.clone());
    }
    out1(with_meta_geometry(storage_as_real(t)?, outs)?)
}

fn imag(a: &Args<Tensor>, outs: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    out1(with_meta_geometry(
        storage_as_real(a.tensor("self")?)?,
        outs,
    )?)
}

/// `_conj`: PyTorch's lazily conjugated view, materialized; a real tensor is returned as is.
fn meta_conj(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    Ok(vec![Value::Tensor(meta_self(a)?.clone())])
}

fn conj(a: &Args<Tensor>, outs: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    let t = a.tensor("self")?;
    let buf = t.storage().read();
    let conj = match &*buf {
        Buffer::C64(v) => Buffer::C64(v.iter().map(|z| z.conj()).collect()),
        Buffer::C128(v) => Buffer::C128(v.iter().map(|z| z.conj()).collect()),
        _ => {
            drop(buf);
            return out1(t.clone());
        }
    };
    drop(buf);
    out1(with_meta_geometry(conj, outs)?)
}

// ---- complex, angle ------------------------------------------------------------------------------------

fn meta_complex(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (re, im) = (a.tensor("real")?, a.tensor("imag")?);
    let floating = |d: DType| matches!(d, DType::F32 | DType::F64 | DType::F16);
    if !floating(re.dtype) || !floating(im.dtype) {
        return Err(Error::value(format!(
            "Expected both inputs to be Half, Float or Double tensors but got {} and {}",
            re.dtype, im.dtype
        )));
    }
    if re.dtype != im.dtype {
        return Err(Error::value(format!(
            "Expected object of scalar type {} but got scalar type {} for second argument",
            re.dtype, im.dtype
        )));
    }
    let dtype = re.dtype.to_complex().ok_or(Error::DTypeNotSupported {
        op: "complex (oxport has no ComplexHalf)".into(),
        dtype: re.dtype,
    })?;
    one(dtype, broadcast_shapes(&[&re.sizes, &im.sizes])?)
}

fn complex_kernel(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let (re, im) = (a.tensor("real")?, a.tensor("imag")?);
    let out = first(o)?;
    match out.dtype() {
        DType::C64 => binary_map_into::<f32, f32, Complex32>(re, im, out, Complex32::new),
        _ => binary_map_into::<f64, f64, Complex64>(
            &as_dtype(re, DType::F64),
            &as_dtype(im, DType::F64),
            out,
            Complex64::new,
        ),
    }
}

fn meta_angle(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    let dtype = if t.dtype.is_complex() {
        t.dtype.to_real()
    } else if t.dtype.is_floating_point() {
        t.dtype
    } else {
        DType::F32
    };
    one(dtype, t.sizes.clone())
}

/// `angle`: `atan2(im, re)` of complex numbers; of real ones, π for negatives, 0 otherwise, NaN kept.
fn angle(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let t = a.tensor("self")?;
    let out = first(o)?;
    let real = |x: f64| {
        if x.is_nan() {
            x
        } else if x < 0.0 {
            std::f64::consts::PI
        } else {
            0.0
        }
    };
    match t.dtype() {
        DType::C64 => unary_map_into::<Complex32, f32>(t, out, |z| z.im.atan2(z.re)),
        DType::C128 => unary_map_into::<Complex64, f64>(t, out, |z| z.im.atan2(z.re)),
        _ => f64_unary_into(&as_dtype(t, DType::F64), out, real),
    }
}

// ---- FFT kernels ---------------------------------------------------------------------------------------

/// The transformed dims of an FFT op, wrapped; PyTorch's checks.
fn fft_dims(a: &Args<TensorMeta>, t: &TensorMeta) -> Result<Vec<usize>> {
    let dims = a.ints("dim")?;
    let mut out: Vec<usize> = vec![];
    for d in dims {
        if t.dim() == 0 {
            return Err(Error::value(format!(
                "Dimension specified as {d} but tensor has no dimensions"
            )));
        }
        let d = wrap(d, t)?;
        if out.contains(&d) {
            return Err(Error::value("dims must be unique"));
        }
        out.push(d);
    }
    Ok(out)
}

fn check_norm(a: &Args<TensorMeta>) -> Result<()> {
    let n = a.int("normalization")?;
    if !(0..=2).contains(&n) {
        return Err(Error::value(format!("Invalid normalization mode: {n}")));
    }
    Ok(())
}

fn meta_fft_r2c(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    if !t.dtype.is_floating_point() {
        return Err(Error::DType(format!(
            "Only supports floating-point dtypes, but found: {}",
            t.dtype
        )));
    }
    let Some(complex) = t.dtype.to_complex() else {
        return Err(Error::DTypeNotSupported {
            op: "_fft_r2c (oxport has no ComplexHalf)".into(),
            dtype: t.dtype,
        });
    };
    let dims = fft_dims(a, t)?;
    check_norm(a)?;
    let mut sizes = t.sizes.clone();
    if a.bool("onesided")? {
        if let Some(&last) = dims.last() {
            sizes[last] = sizes[last].floor_div(&SymInt::Int(2)).add(&SymInt::Int(1));
        }
    }
    one(complex, sizes)
}

fn meta_fft_c2r(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    if !t.dtype.is_complex() {
        return Err(Error::DType(format!(
            "Only supports complex dtypes, but found: {}",
            t.dtype
        )));
    }
    let dims = fft_dims(a, t)?;
    check_norm(a)?;
    let n = a.symint("last_dim_size")?;
    if n.guard_lt(&SymInt::Int(1)) {
        return Err(Error::value(format!(
            "Invalid number of data points ({n}) specified"
        )));
    }
    let mut sizes = t.sizes.clone();
    if let Some(&last) = dims.last() {
        sizes[last] = n.clone();
    }
    one(t.dtype.to_real(), sizes)
}

fn meta_fft_c2c(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    if !t.dtype.is_complex() {
        return Err(Error::DType(format!(
            "Only supports complex dtypes, but found: {}",
            t.dtype
        )));
    }
    fft_dims(a, t)?;
    check_norm(a)?;
    one(t.dtype, t.sizes.clone())
}

/// Complex data laid out contiguously with `sizes`, the buffer FFTs work in.
struct Signal<F> {
    data: Vec<Complex<F>>,
    sizes: Vec<usize>,
}

impl<F: FftNum + num_traits::Float> Signal<F> {
    /// In-place 1-d FFTs along `dim` (unnormalized; `inverse` is e^{+i}).
    fn fft_along(&mut self, dim: usize, inverse: bool, planner: &mut FftPlanner<F>) {
        let n = self.sizes[dim];
        if n == 0 || self.data.is_empty() {
            return;
        }
        let inner: usize = self.sizes[dim + 1..].iter().product();
        let outer: usize = self.sizes[..dim].iter().product();
        let fft = if inverse {
            planner.plan_fft_inverse(n)
        } else {
            planner.plan_fft_forward(n)
        };
        let mut line = vec![Complex::new(F::zero(), F::zero()); n];
        for o in 0..outer {
            for i in 0..inner {
                let base = o * n * inner + i;
                for (k, v) in line.iter_mut().enumerate() {
                    *v = self.data[base + k * inner];
                }
                fft.process(&mut line);
                for (k, v) in line.iter().enumerate() {
                    self.data[base + k * inner] = *v;
                }
            }
        }
    }
    /// Keeps (or zero-pads to) the first `m` entries along `dim`.
    fn resize_dim(&mut self, dim: usize, m: usize) {
        let n = self.sizes[dim];
        let inner: usize = self.sizes[dim + 1..].iter().product();
        let outer: usize = self.sizes[..dim].iter().product();
        let zero = Complex::new(F::zero(), F::zero());
        let mut out = vec![zero; outer * m * inner];
        for o in 0..outer {
            for k in 0..m.min(n) {
                let src = (o * n + k) * inner;
                let dst = (o * m + k) * inner;
                out[dst..dst + inner].copy_from_slice(&self.data[src..src + inner]);
            }
        }
        self.data = out;
        self.sizes[dim] = m;
    }
    /// Extends a one-sided (Hermitian) spectrum along `dim` to `n` entries: X[n-k] = conj(X[k]).
    fn hermitian_extend(&mut self, dim: usize, n: usize) {
        let half = n / 2 + 1;
        self.resize_dim(dim, half);
        self.resize_dim(dim, n);
        let inner: usize = self.sizes[dim + 1..].iter().product();
        let outer: usize = self.sizes[..dim].iter().product();
        for o in 0..outer {
            for k in half..n {
                for i in 0..inner {
                    let v = self.data[(o * n + (n - k)) * inner + i].conj();
                    self.data[(o * n + k) * inner + i] = v;
                }
            }
        }
    }
    fn scale(&mut self, normalization: i64, signal_numel: usize) {
        let n = signal_numel as f64;
        let s = match normalization {
            1 => 1.0 / n.sqrt(),
            2 => 1.0 / n,
            _ => return,
        };
        let s = F::from(s).unwrap_or_else(F::one);
        for v in &mut self.data {
            *v = *v * s;
        }
    }
}

fn signal_of<F: FftNum + num_traits::Float>(t: &Tensor) -> Result<Signal<F>> {
    let data = crate::dispatch_dtype!(t.dtype(), T => t
        .to_vec::<T>()?
        .into_iter()
        .map(|v| {
            let z = v.to_complex();
            Complex::new(F::from(z.re).unwrap_or_else(F::nan), F::from(z.im).unwrap_or_else(F::nan))
        })
        .collect());
    Ok(Signal {
        data,
        sizes: t.sizes_untraced().to_vec(),
    })
}

/// The FFT kernels' arguments, read once.
struct FftArgs {
    dims: Vec<usize>,
    normalization: i64,
}

fn fft_args(a: &Args<Tensor>) -> Result<FftArgs> {
    let t = a.tensor("self")?;
    let dims = a
        .ints("dim")?
        .into_iter()
        .map(|d| wrap_dim(d, t.dim()))
        .collect::<Result<Vec<_>>>()?;
    Ok(FftArgs {
        dims,
        normalization: a.int("normalization")?,
    })
}

fn write_signal<F>(out: &Tensor, s: Signal<F>, real_part: bool) -> Result<()>
where
    F: FftNum + num_traits::Float + Element,
    Complex<F>: Element,
{
    let src = if real_part {
        let re: Vec<F> = s.data.iter().map(|z| z.re).collect();
        Tensor::from_vec(re, &s.sizes)?
    } else {
        Tensor::from_vec(s.data, &s.sizes)?
    };
    out.assign_untraced(&src)
}

fn r2c<F>(a: &Args<Tensor>, out: &Tensor) -> Result<()>
where
    F: FftNum + num_traits::Float + Element,
    Complex<F>: Element,
{
    let t = a.tensor("self")?;
    let FftArgs {
        dims,
        normalization,
    } = fft_args(a)?;
    let mut s = signal_of::<F>(t)?;
    let numel: usize = dims.iter().map(|&d| s.sizes[d]).product();
    let mut planner = FftPlanner::new();
    if let Some((&last, rest)) = dims.split_last() {
        s.fft_along(last, false, &mut planner);
        if a.bool("onesided")? {
            s.resize_dim(last, s.sizes[last] / 2 + 1);
        }
        for &d in rest {
            s.fft_along(d, false, &mut planner);
        }
    }
    s.scale(normalization, numel);
    write_signal(out, s, false)
}

fn c2r<F>(a: &Args<Tensor>, out: &Tensor) -> Result<()>
where
    F: FftNum + num_traits::Float + Element,
    Complex<F>: Element,
{
    let t = a.tensor("self")?;
    let FftArgs {
        dims,
        normalization,
    } = fft_args(a)?;
    let n = a.int("last_dim_size")? as usize;
    let mut s = signal_of::<F>(t)?;
    let mut planner = FftPlanner::new();
    if let Some((&last, rest)) = dims.split_last() {
        for &d in rest {
            s.fft_along(d, true, &mut planner);
        }
        s.hermitian_extend(last, n);
        s.fft_along(last, true, &mut planner);
    }
    let numel: usize = dims.iter().map(|&d| s.sizes[d]).product();
    s.scale(normalization, numel);
    write_signal(out, s, true)
}

fn c2c<F>(a: &Args<Tensor>, out: &Tensor) -> Result<()>
where
    F: FftNum + num_traits::Float + Element,
    Complex<F>: Element,
{
    let t = a.tensor("self")?;
    let FftArgs {
        dims,
        normalization,
    } = fft_args(a)?;
    let forward = a.bool("forward")?;
    let mut s = signal_of::<F>(t)?;
    let numel: usize = dims.iter().map(|&d| s.sizes[d]).product();
    let mut planner = FftPlanner::new();
    for &d in &dims {
        s.fft_along(d, !forward, &mut planner);
    }
    s.scale(normalization, numel);
    write_signal(out, s, false)
}

/// Runs an FFT kernel in the output's precision: `f64k` for complex128 / float64 outputs, else `f32k`.
fn in_precision(
    a: &Args<Tensor>,
    o: &mut [Tensor],
    f32k: fn(&Args<Tensor>, &Tensor) -> Result<()>,
    f64k: fn(&Args<Tensor>, &Tensor) -> Result<()>,
) -> Result<()> {
    let out = first(o)?;
    if out.dtype().to_real() == DType::F64 {
        f64k(a, out)
    } else {
        f32k(a, out)
    }
}

// ---- the torch.fft composites ----------------------------------------------------------------------------

/// Which `torch.fft` function.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Composite {
    Fft,
    Ifft,
    Rfft,
    Irfft,
}

impl Composite {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Composite::Fft => "fft",
            Composite::Ifft => "ifft",
            Composite::Rfft => "rfft",
            Composite::Irfft => "irfft",
        }
    }
    pub(crate) fn forward(self) -> bool {
        matches!(self, Composite::Fft | Composite::Rfft)
    }
}

/// PyTorch's `norm_from_string`: the `normalization` argument of the `_fft_*` ops.
pub(crate) fn norm_from_string(norm: Option<&str>, forward: bool) -> Result<i64> {
    Ok(match norm {
        None | Some("backward") => {
            if forward {
                0
            } else {
                2
            }
        }
        Some("forward") => {
            if forward {
                2
            } else {
                0
            }
        }
        Some("ortho") => 1,
        Some(other) => {
            return Err(Error::value(format!(
                "Invalid normalization mode: \"{other}\""
            )))
        }
    })
}

/// The output of `torch.fft.{fft, ifft, rfft, irfft}`: PyTorch's checks, then the sizes.
fn meta_fft_composite(a: &Args<TensorMeta>, c: Composite) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    let name = c.name();
    if c == Composite::Rfft && t.dtype.is_complex() {
        return Err(Error::value(format!(
            "{name} expects a real input tensor, but got {}",
            t.dtype
        )));
    }
    if t.dim() == 0 {
        return Err(Error::DimOutOfRange {
            dim: a.int("dim")?,
            min: 0,
            max: -1,
        });
    }
    let d = wrap(a.int("dim")?, t)?;
    let n = a.opt_symint("n")?.cloned();
    let two = SymInt::Int(2);
    let size = match c {
        Composite::Irfft => n
            .clone()
            .unwrap_or_else(|| t.sizes[d].sub(&SymInt::Int(1)).mul(&two)),
        _ => n.clone().unwrap_or_else(|| t.sizes[d].clone()),
    };
    if size.guard_lt(&SymInt::Int(1)) {
        return Err(Error::value(format!(
            "Invalid number of data points ({size}) specified"
        )));
    }
    norm_from_string(a.opt_str("norm")?, c.forward())?;
    let real = |d: DType| {
        if d.is_complex() {
            Ok(d.to_real())
        } else if d.is_floating_point() {
            Ok(d)
        } else if d == DType::F16 || d == DType::BF16 {
            Err(Error::DTypeNotSupported {
                op: format!("fft_{name}"),
                dtype: d,
            })
        } else {
            Ok(DType::F32)
        }
    };
    let base = real(t.dtype)?;
    let complex = base.to_complex().ok_or(Error::DTypeNotSupported {
        op: format!("fft_{name}"),
        dtype: t.dtype,
    })?;
    let mut sizes = t.sizes.clone();
    let dtype = match c {
        Composite::Fft | Composite::Ifft => {
            sizes[d] = size;
            complex
        }
        Composite::Rfft => {
            sizes[d] = size.floor_div(&two).add(&SymInt::Int(1));
            complex
        }
        Composite::Irfft => {
            sizes[d] = size;
            base
        }
    };
    one(dtype, sizes)
}

#[cfg(test)]
mod tests {
    use crate::ops::{call, Value};
    use crate::{DType, Error, Tensor};
    use num_complex::Complex32;

    #[test]
    fn ops_without_complex_kernels_refuse_complex_tensors() {
        let z = Tensor::from_vec(vec![Complex32::new(1.0, 2.0); 4], &[4]).unwrap();
        for op in ["aten.exp.default", "aten.sort.default", "aten.sum.default"] {
            let e = call(op, vec![Value::Tensor(z.clone())], vec![]).unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::DTypeNotSupported {
                        dtype: DType::C64,
                        ..
                    }
                ),
                "{op}: {e}"
            );
        }
        // A complex output is refused too (a factory asked for complex64).
        let e = call(
            "aten.zeros.default",
            vec![Value::from(&[2i64][..])],
            vec![("dtype".into(), Value::ScalarType(DType::C64))],
        )
        .unwrap_err();
        assert!(e.to_string().contains("ComplexFloat"), "{e}");
    }

    #[test]
    fn view_as_real_then_complex_round_trips() {
        let z = Tensor::from_vec(
            vec![Complex32::new(1.0, -2.0), Complex32::new(0.5, 3.0)],
            &[2],
        )
        .unwrap();
        let r = call(
            "aten.view_as_real.default",
            vec![Value::Tensor(z.clone())],
            vec![],
        )
        .unwrap();
        let Value::Tensor(r) = &r[0] else { panic!() };
        assert_eq!(r.to_vec::<f32>().unwrap(), vec![1.0, -2.0, 0.5, 3.0]);
        let c = call(
            "aten.view_as_complex.default",
            vec![Value::Tensor(r.clone())],
            vec![],
        )
        .unwrap();
        let Value::Tensor(c) = &c[0] else { panic!() };
        assert_eq!(
            c.to_vec::<Complex32>().unwrap(),
            z.to_vec::<Complex32>().unwrap()
        );
    }
}
