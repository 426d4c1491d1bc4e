//! Pointwise loops: unary maps, broadcasting binary/ternary maps, parallel where it pays.
//!
//! The `*_map_into` functions write into an output the caller allocated (an out kernel's, from
//! `alloc_outputs`), with any strides as long as no two of its elements share memory; the inputs
//! broadcast to the output's sizes and may share its storage (they are then read from a copy taken
//! first). [`unary_map`], [`binary_map`] and [`ternary_map`] allocate a contiguous output and call them.
use crate::error::{Error, Result};
use crate::tensor::strided::for_each_run;
use crate::tensor::{fmt_shape, Buffer, Element, Tensor};
use rayon::prelude::*;

/// Element counts above which pointwise loops go parallel.
pub const PAR_THRESHOLD: usize = 1 << 15;
const CHUNK: usize = 1 << 13;

/// Strides that broadcast `t` to `out_sizes` (0 on broadcast dims). `t` must be broadcastable.
pub fn broadcast_strides(t: &Tensor, out_sizes: &[usize]) -> Vec<usize> {
    broadcast_strides_of(t.sizes(), t.strides(), out_sizes)
}

/// [`broadcast_strides`] for a raw (sizes, strides) pair.
pub fn broadcast_strides_of(sizes: &[usize], strides: &[usize], out_sizes: &[usize]) -> Vec<usize> {
    let nd = out_sizes.len();
    let off = nd - sizes.len();
    (0..nd)
        .map(|d| {
            if d < off {
                0
            } else {
                let (s, st) = (sizes[d - off], strides[d - off]);
                if s == 1 && out_sizes[d] != 1 {
                    0
                } else {
                    st
                }
            }
        })
        .collect()
}

/// True when two elements of a view with these sizes and strides may share a memory location (a
/// sufficient test for the opposite: sorted by stride, each dim's stride passes everything the dims
/// of smaller strides reach). Writing such an output would keep only one of the values written there.
fn may_overlap(sizes: &[usize], strides: &[usize]) -> bool {
    if sizes.contains(&0) {
        return false;
    }
    let mut dims: Vec<(usize, usize)> = sizes
        .iter()
        .zip(strides)
        .filter(|(&s, _)| s > 1)
        .map(|(&s, &st)| (st, s))
        .collect();
    dims.sort_unstable();
    let mut reach = 0usize;
    for (st, s) in dims {
        if st <= reach {
            return true;
        }
        reach = reach.saturating_add(st.saturating_mul(s - 1));
    }
    false
}

/// Checks that a map can write `out`: a real tensor of element type `O` whose elements are distinct.
fn check_output<O: Element>(out: &Tensor) -> Result<()> {
    out.check_real()?;
    if out.dtype() != O::DTYPE {
        return Err(Error::DType(format!(
            "a pointwise kernel writing {} got an output of dtype {}",
            O::DTYPE.name(),
            out.dtype().name()
        )));
    }
    if may_overlap(out.sizes(), out.strides()) {
        return Err(Error::value(format!(
            "unsupported operation: more than one element of the written-to tensor (sizes {}, strides {}) may refer to a single memory location",
            fmt_shape(out.sizes()),
            fmt_shape(out.strides())
        )));
    }
    Ok(())
}

/// Checks that input `t` is a real tensor of element type `A` that broadcasts to `out_sizes`.
fn check_input<A: Element>(t: &Tensor, out_sizes: &[usize]) -> Result<()> {
    t.check_real()?;
    if t.dtype() != A::DTYPE {
        return Err(Error::DType(format!(
            "a pointwise kernel reading {} got an input of dtype {}",
            A::DTYPE.name(),
            t.dtype().name()
        )));
    }
    let (s, nd) = (t.sizes(), out_sizes.len());
    if s.len() > nd
        || s.iter()
            .zip(&out_sizes[nd - s.len()..])
            .any(|(&i, &o)| i != o && i != 1)
    {
        return Err(Error::shape(format!(
            "a pointwise kernel's input of shape {} does not broadcast to its output's shape {}",
            fmt_shape(s),
            fmt_shape(out_sizes)
        )));
    }
    Ok(())
}

/// `t`, or a contiguous copy of it when it shares storage with `out`: the output's storage is locked
/// for writing while the inputs are read, and an input overlapping the output must be read whole first.
fn unaliased(t: &Tensor, out: &Tensor) -> Tensor {
    if t.shares_storage(out) {
        Tensor::from_buffer(t.to_buffer(), t.sizes())
    } else {
        t.clone()
    }
}

/// `out[i] = f(a[i])`, `a` (element type `A`) broadcast to `out`'s sizes, written into `out` (element
/// type `O`, any non-overlapping strides).
pub fn unary_map_into<A: Element, O: Element>(
    a: &Tensor,
    out: &Tensor,
    f: impl Fn(A) -> O + Sync + Send,
) -> Result<()> {
    check_output::<O>(out)?;
    let out_sizes = out.sizes();
    check_input::<A>(a, out_sizes)?;
    let n = out.numel();
    if n == 0 {
        // Nothing to read: an empty view's offset may point past its storage (a slice at the end).
        return Ok(());
    }
    let a = unaliased(a, out);
    if out.is_contiguous() && a.sizes() == out_sizes {
        // Same shape into a contiguous output: one slice to another (a strided input gathered first).
        return a.with_contiguous::<A, _>(|src| {
            let mut guard = out.storage().write();
            let all = O::slice_mut(&mut guard).expect("output has element type O");
            let dst = &mut all[out.storage_offset()..out.storage_offset() + n];
            if n >= PAR_THRESHOLD {
                dst.par_chunks_mut(CHUNK)
                    .zip(src.par_chunks(CHUNK))
                    .for_each(|(o, s)| {
                        for (o, &s) in o.iter_mut().zip(s) {
                            *o = f(s);
                        }
                    });
            } else {
                for (o, &s) in dst.iter_mut().zip(src) {
                    *o = f(s);
                }
            }
        });
    }
    let ga = a.storage().read();
    let sa = A::slice(&ga).expect("a has element type A");
    let mut guard = out.storage().write();
    let dst = O::slice_mut(&mut guard).expect("output has element type O");
    let stra = broadcast_strides(&a, out_sizes);
    for_each_run(
        out_sizes,
        &[out.strides(), &stra],
        &[out.storage_offset(), a.storage_offset()],
        |offs, len, st| {
            for i in 0..len {
                dst[offs[0] + i * st[0]] = f(sa[offs[1] + i * st[1]]);
            }
        },
    );
    Ok(())
}

/// [`unary_map_into`] with a slice kernel for its common case, `out` contiguous with `a`'s sizes:
/// `fs(src, dst)` then maps whole contiguous runs (`src.len() == dst.len()`; a strided `a` gathered
/// first), in chunks of [`VEC_CHUNK`] on rayon above `par_threshold` elements. Any other layout (a
/// broadcast input, a strided output) falls back to [`unary_map_into`] with the element function `f`.
pub fn unary_slices_into<A: Element, O: Element>(
    a: &Tensor,
    out: &Tensor,
    par_threshold: usize,
    fs: impl Fn(&[A], &mut [O]) + Sync + Send,
    f: impl Fn(A) -> O + Sync + Send,
) -> Result<()> {
    check_output::<O>(out)?;
    check_input::<A>(a, out.sizes())?;
    let n = out.numel();
    if n == 0 || !out.is_contiguous() || a.sizes() != out.sizes() {
        return unary_map_into(a, out, f);
    }
    let a = unaliased(a, out);
    a.with_contiguous::<A, _>(|src| {
        let mut guard = out.storage().write();
        let all = O::slice_mut(&mut guard).expect("output has element type O");
        let dst = &mut all[out.storage_offset()..out.storage_offset() + n];
        if n >= par_threshold {
            dst.par_chunks_mut(VEC_CHUNK)
                .zip(src.par_chunks(VEC_CHUNK))
                .for_each(|(o, s)| fs(s, o));
        } else {
            fs(src, dst);
        }
    })
}

/// The chunk [`unary_slices_into`] hands each rayon task.
pub const VEC_CHUNK: usize = 1 << 14;

/// One operand of a run of a binary map: `len` consecutive elements, one value repeated, or elements
/// `stride` apart from the start of the slice.
#[derive(Clone, Copy, Debug)]
pub enum Run<'a, T> {
    /// Consecutive elements (at least the run's length).
    Slice(&'a [T]),
    /// One value for every element (a broadcast dim, a wrapped number).
    Scalar(T),
    /// Element `i` at `data[i * stride]`.
    Strided(&'a [T], usize),
}

impl<'a, T: Copy> Run<'a, T> {
    /// The operand's `i`-th element.
    #[inline(always)]
    pub fn get(&self, i: usize) -> T {
        match *self {
            Run::Slice(d) => d[i],
            Run::Scalar(v) => v,
            Run::Strided(d, st) => d[i * st],
        }
    }

    /// The run of `len` elements from offset `o` of `data` with stride `st`.
    fn of(data: &'a [T], o: usize, st: usize, len: usize) -> Self {
        match st {
            0 => Run::Scalar(data[o]),
            1 => Run::Slice(&data[o..o + len]),
            _ => Run::Strided(&data[o..], st),
        }
    }
}

/// `out[i] = f(a[i], b[i])`, `a` and `b` (element types `A`, `B`) broadcast to `out`'s sizes, written
/// into `out` (element type `O`, any non-overlapping strides).
pub fn binary_map_into<A: Element, B: Element, O: Element>(
    a: &Tensor,
    b: &Tensor,
    out: &Tensor,
    f: impl Fn(A, B) -> O + Sync + Send,
) -> Result<()> {
    binary_runs_into(a, b, out, |d: &mut [O], x: Run<A>, y: Run<B>| {
        binary_run(d, x, y, &f)
    })
}

/// [`binary_map_into`] by runs: `run(dst, a, b)` computes one run of consecutive output elements
/// from the operands' runs (a vectorised kernel: [`super::vmath::binary_f32`]).
pub fn binary_runs_into<A: Element, B: Element, O: Element>(
    a: &Tensor,
    b: &Tensor,
    out: &Tensor,
    run: impl Fn(&mut [O], Run<A>, Run<B>) + Sync + Send,
) -> Result<()> {
    check_output::<O>(out)?;
    let out_sizes = out.sizes();
    check_input::<A>(a, out_sizes)?;
    check_input::<B>(b, out_sizes)?;
    let n = out.numel();
    if n == 0 {
        return Ok(());
    }
    let (a, b) = (unaliased(a, out), unaliased(b, out));
    let ga = a.storage().read();
    let gb_owned;
    let gb = if b.shares_storage(&a) {
        &ga
    } else {
        gb_owned = b.storage().read();
        &gb_owned
    };
    let sa = A::slice(&ga).expect("a has element type A");
    let sb = B::slice(gb).expect("b has element type B");
    let mut guard = out.storage().write();
    let all = O::slice_mut(&mut guard).expect("output has element type O");
    let o0 = out.storage_offset();
    let dense = out.is_contiguous() && a.sizes() == out_sizes && a.is_contiguous();
    if dense && ((b.sizes() == out_sizes && b.is_contiguous()) || b.numel() == 1) {
        let dst = &mut all[o0..o0 + n];
        let xa = &sa[a.storage_offset()..a.storage_offset() + n];
        let yb = if b.numel() == 1 {
            Run::Scalar(sb[b.storage_offset()])
        } else {
            Run::Slice(&sb[b.storage_offset()..b.storage_offset() + n])
        };
        let part = |o: &mut [O], at: usize| {
            let y = match yb {
                Run::Slice(y) => Run::Slice(&y[at..at + o.len()]),
                y => y,
            };
            run(o, Run::Slice(&xa[at..at + o.len()]), y)
        };
        if n >= PAR_THRESHOLD {
            dst.par_chunks_mut(CHUNK)
                .enumerate()
                .for_each(|(i, o)| part(o, i * CHUNK));
        } else {
            part(dst, 0);
        }
    } else {
        let stra = broadcast_strides(&a, out_sizes);
        let strb = broadcast_strides(&b, out_sizes);
        let strides = [out.strides(), &stra[..], &strb[..]];
        let offsets = [o0, a.storage_offset(), b.storage_offset()];
        if out.is_contiguous() && n >= PAR_THRESHOLD {
            // The runs of a contiguous output tile it in order, all of one length: one task per
            // group of runs (a per-channel scale over large planes, a bias over many rows).
            let mut runs = Vec::new();
            let mut run_len = 0;
            for_each_run(out_sizes, &strides, &offsets, |offs, len, st| {
                run_len = len;
                runs.push([offs[1], st[1], offs[2], st[2]]);
            });
            let dst = &mut all[o0..o0 + n];
            let per = (CHUNK / run_len.max(1)).max(1);
            dst.par_chunks_mut(run_len * per)
                .zip(runs.par_chunks(per))
                .for_each(|(d, rs)| {
                    for (d, r) in d.chunks_exact_mut(run_len).zip(rs) {
                        let len = d.len();
                        run(
                            d,
                            Run::of(sa, r[0], r[1], len),
                            Run::of(sb, r[2], r[3], len),
                        );
                    }
                });
        } else {
            let mut scratch: Vec<O> = vec![];
            for_each_run(out_sizes, &strides, &offsets, |offs, len, st| {
                let (x, y) = (
                    Run::of(sa, offs[1], st[1], len),
                    Run::of(sb, offs[2], st[2], len),
                );
                if st[0] == 1 {
                    run(&mut all[offs[0]..offs[0] + len], x, y);
                } else {
                    // A strided output run: computed contiguously, then scattered.
                    scratch.clear();
                    scratch.resize(len, O::default());
                    run(&mut scratch, x, y);
                    for (i, &v) in scratch.iter().enumerate() {
                        all[offs[0] + i * st[0]] = v;
                    }
                }
            });
        }
    }
    Ok(())
}

/// f32 `out = a ∘ b` (broadcast, any strides) on the vectorised run kernels of
/// [`super::vmath::binary_f32`].
pub fn binary_f32_into(
    op: super::vmath::BinaryOp,
    a: &Tensor,
    b: &Tensor,
    out: &Tensor,
) -> Result<()> {
    let isa = super::simd::active();
    binary_runs_into(a, b, out, move |d: &mut [f32], x: Run<f32>, y: Run<f32>| {
        super::vmath::binary_f32(isa, op, d, x, y)
    })
}

/// One run of a broadcasting binary map into a contiguous `dst`; the usual operand forms (both
/// consecutive, one of them repeated) as plain slice loops the compiler vectorises.
#[inline(always)]
fn binary_run<A: Element, B: Element, O: Element>(
    dst: &mut [O],
    a: Run<A>,
    b: Run<B>,
    f: &impl Fn(A, B) -> O,
) {
    let len = dst.len();
    match (a, b) {
        (Run::Slice(x), Run::Slice(y)) => {
            for ((d, &x), &y) in dst.iter_mut().zip(&x[..len]).zip(&y[..len]) {
                *d = f(x, y);
            }
        }
        (Run::Slice(x), Run::Scalar(y)) => {
            for (d, &x) in dst.iter_mut().zip(&x[..len]) {
                *d = f(x, y);
            }
        }
        (Run::Scalar(x), Run::Slice(y)) => {
            for (d, &y) in dst.iter_mut().zip(&y[..len]) {
                *d = f(x, y);
            }
        }
        _ => {
            for (i, d) in dst.iter_mut().enumerate() {
                *d = f(a.get(i), b.get(i));
            }
        }
    }
}

/// `out[i] = f(a[i], b[i], c[i])`, the inputs broadcast to `out`'s sizes, written into `out` (element
/// type `O`, any non-overlapping strides). Used by `where`, `masked_fill`, `clamp` with tensor bounds.
pub fn ternary_map_into<A: Element, B: Element, C: Element, O: Element>(
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    out: &Tensor,
    f: impl Fn(A, B, C) -> O + Sync + Send,
) -> Result<()> {
    check_output::<O>(out)?;
    let out_sizes = out.sizes();
    check_input::<A>(a, out_sizes)?;
    check_input::<B>(b, out_sizes)?;
    check_input::<C>(c, out_sizes)?;
    let n = out.numel();
    if n == 0 {
        return Ok(());
    }
    let (a, b, c) = (unaliased(a, out), unaliased(b, out), unaliased(c, out));
    // One read lock per storage: the inputs may share one.
    let ga = a.storage().read();
    let gb_owned;
    let gb = if b.shares_storage(&a) {
        &ga
    } else {
        gb_owned = b.storage().read();
        &gb_owned
    };
    let gc_owned;
    let gc = if c.shares_storage(&a) {
        &ga
    } else if c.shares_storage(&b) {
        gb
    } else {
        gc_owned = c.storage().read();
        &gc_owned
    };
    let sa = A::slice(&ga).expect("a has element type A");
    let sb = B::slice(gb).expect("b has element type B");
    let sc = C::slice(gc).expect("c has element type C");
    let mut guard = out.storage().write();
    let all = O::slice_mut(&mut guard).expect("output has element type O");
    let o0 = out.storage_offset();
    let dense = |t: &Tensor| t.sizes() == out_sizes && t.is_contiguous();
    if out.is_contiguous() && dense(&a) && dense(&b) && dense(&c) {
        let dst = &mut all[o0..o0 + n];
        let xa = &sa[a.storage_offset()..a.storage_offset() + n];
        let xb = &sb[b.storage_offset()..b.storage_offset() + n];
        let xc = &sc[c.storage_offset()..c.storage_offset() + n];
        if n >= PAR_THRESHOLD {
            dst.par_chunks_mut(CHUNK)
                .zip(
                    xa.par_chunks(CHUNK)
                        .zip(xb.par_chunks(CHUNK).zip(xc.par_chunks(CHUNK))),
                )
                .for_each(|(o, (x, (y, z)))| {
                    for i in 0..o.len() {
                        o[i] = f(x[i], y[i], z[i]);
                    }
                });
        } else {
            for i in 0..n {
                dst[i] = f(xa[i], xb[i], xc[i]);
            }
        }
        return Ok(());
    }
    let stra = broadcast_strides(&a, out_sizes);
    let strb = broadcast_strides(&b, out_sizes);
    let strc = broadcast_strides(&c, out_sizes);
    for_each_run(
        out_sizes,
        &[out.strides(), &stra, &strb, &strc],
        &[
            o0,
            a.storage_offset(),
            b.storage_offset(),
            c.storage_offset(),
        ],
        |offs, len, st| {
            for i in 0..len {
                all[offs[0] + i * st[0]] = f(
                    sa[offs[1] + i * st[1]],
                    sb[offs[2] + i * st[2]],
                    sc[offs[3] + i * st[3]],
                );
            }
        },
    );
    Ok(())
}

/// A zero-filled contiguous tensor of element type `O`.
fn contiguous_output<O: Element>(sizes: &[usize]) -> Tensor {
    Tensor::from_buffer(Buffer::zeros(O::DTYPE, sizes.iter().product()), sizes)
}

/// `out[i] = f(a[i])` over a tensor of element type `A` (any strides); output contiguous with a's sizes.
/// [`unary_map_into`] a new tensor; panics if `a` is not of element type `A`.
pub fn unary_map<A: Element, O: Element>(a: &Tensor, f: impl Fn(A) -> O + Sync + Send) -> Tensor {
    let out = contiguous_output::<O>(a.sizes());
    unary_map_into(a, &out, f).expect("caller passes a real tensor of element type A");
    out
}

/// `out[i] = f(a[i], b[i])` with broadcasting to `out_sizes`; `a`, `b` have element types `A`, `B`.
/// [`binary_map_into`] a new contiguous tensor; panics on other element types or shapes that do not
/// broadcast to `out_sizes`.
pub fn binary_map<A: Element, B: Element, O: Element>(
    a: &Tensor,
    b: &Tensor,
    out_sizes: &[usize],
    f: impl Fn(A, B) -> O + Sync + Send,
) -> Tensor {
    let out = contiguous_output::<O>(out_sizes);
    binary_map_into(a, b, &out, f).expect("caller passes tensors of element types A, B");
    out
}

/// `out[i] = f(a[i], b[i], c[i])` with broadcasting to `out_sizes`: [`ternary_map_into`] a new
/// contiguous tensor; panics on other element types or shapes that do not broadcast to `out_sizes`.
pub fn ternary_map<A: Element, B: Element, C: Element, O: Element>(
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    out_sizes: &[usize],
    f: impl Fn(A, B, C) -> O + Sync + Send,
) -> Tensor {
    let out = contiguous_output::<O>(out_sizes);
    ternary_map_into(a, b, c, &out, f).expect("caller passes tensors of element types A, B, C");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectorised f32 path gives the scalar closure's results (IEEE, bit for bit) on every
    /// operand form: same shape, a scalar either side, row and column broadcasts, a transposed
    /// input, a strided output, and sizes over the parallel threshold; on every ISA.
    #[test]
    fn binary_f32_matches_the_scalar_map_on_every_form() {
        use super::super::simd::{with_isa, Isa};
        use super::super::vmath::BinaryOp;
        let vals = |n: usize, s: usize| -> Vec<f32> {
            (0..n)
                .map(|i| (((i + s) * 7919 % 997) as f32 - 498.0) / 37.0)
                .collect()
        };
        let big = PAR_THRESHOLD + 77;
        let cases: Vec<(Tensor, Tensor, Vec<usize>)> = vec![
            (
                t32(vals(35, 1), &[5, 7]),
                t32(vals(35, 2), &[5, 7]),
                vec![5, 7],
            ),
            (t32(vals(35, 1), &[5, 7]), t32(vec![0.75], &[]), vec![5, 7]),
            (t32(vec![-3.5], &[]), t32(vals(35, 2), &[5, 7]), vec![5, 7]),
            (t32(vals(35, 1), &[5, 7]), t32(vals(7, 2), &[7]), vec![5, 7]),
            (
                t32(vals(35, 1), &[5, 7]),
                t32(vals(5, 2), &[5, 1]),
                vec![5, 7],
            ),
            (
                t32(vals(35, 1), &[7, 5]).transpose_untraced(0, 1),
                t32(vals(35, 2), &[5, 7]),
                vec![5, 7],
            ),
            (
                t32(vals(big, 1), &[big]),
                t32(vals(big, 3), &[big]),
                vec![big],
            ),
            (
                t32(vals(2 * big, 1), &[2, big]),
                t32(vals(2, 3), &[2, 1]),
                vec![2, big],
            ),
        ];
        let isas = [Isa::Avx512, Isa::Avx2, Isa::Portable];
        for (ci, (a, b, sizes)) in cases.iter().enumerate() {
            for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div] {
                let f = move |x: f32, y: f32| match op {
                    BinaryOp::Add => x + y,
                    BinaryOp::Sub => x - y,
                    BinaryOp::Mul => x * y,
                    BinaryOp::Div => x / y,
                };
                let want = Tensor::zeros_strided(
                    crate::DType::F32,
                    sizes,
                    &crate::tensor::contiguous_strides(sizes),
                )
                .unwrap();
                binary_map_into::<f32, f32, f32>(a, b, &want, f).unwrap();
                let want = want.to_vec::<f32>().unwrap();
                for isa in isas {
                    // Contiguous, and (2-d) column-major outputs.
                    let mut outs = vec![Tensor::zeros_strided(
                        crate::DType::F32,
                        sizes,
                        &crate::tensor::contiguous_strides(sizes),
                    )
                    .unwrap()];
                    if sizes.len() == 2 {
                        outs.push(column_major(crate::DType::F32, sizes[0], sizes[1]));
                    }
                    for out in outs {
                        with_isa(isa, || binary_f32_into(op, a, b, &out)).unwrap();
                        let got = out.to_vec::<f32>().unwrap();
                        let same = got
                            .iter()
                            .zip(&want)
                            .all(|(g, w)| g.to_bits() == w.to_bits());
                        assert!(same, "case {ci} {op:?} {isa:?} strides {:?}", out.strides());
                    }
                }
            }
        }
    }

    fn t32(v: Vec<f32>, sizes: &[usize]) -> Tensor {
        Tensor::from_vec(v, sizes).unwrap()
    }

    /// A zero-filled [rows, cols] output laid out column-major (the transpose of a contiguous
    /// [cols, rows]), as `alloc_outputs` makes for a meta with those strides.
    fn column_major(dtype: crate::DType, rows: usize, cols: usize) -> Tensor {
        Tensor::zeros_strided(dtype, &[rows, cols], &[1, rows]).unwrap()
    }

    #[test]
    fn maps_write_into_a_transposed_output() {
        let a = t32((0..6).map(|i| i as f32).collect(), &[2, 3]);
        let out = column_major(crate::DType::F32, 2, 3);
        assert!(!out.is_contiguous());
        unary_map_into::<f32, f32>(&a, &out, |x| x * 10.0).unwrap();
        assert_eq!(
            out.to_vec::<f32>().unwrap(),
            vec![0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
        );
        // The storage holds the values column by column.
        let stored = out
            .restride(&[6], &[1], 0)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        assert_eq!(stored, vec![0.0, 30.0, 10.0, 40.0, 20.0, 50.0]);

        // Broadcasting a row and a column into the transposed output.
        let row = t32(vec![1.0, 2.0, 3.0], &[3]);
        let col = t32(vec![10.0, 20.0], &[2, 1]);
        let out = column_major(crate::DType::F32, 2, 3);
        binary_map_into::<f32, f32, f32>(&col, &row, &out, |x, y| x + y).unwrap();
        assert_eq!(
            out.to_vec::<f32>().unwrap(),
            vec![11.0, 12.0, 13.0, 21.0, 22.0, 23.0]
        );

        // A same-shape contiguous input with a scalar (the fast paths' shapes) into it.
        let out = column_major(crate::DType::F32, 2, 3);
        binary_map_into::<f32, f32, f32>(&a, &Tensor::scalar(1.0f32), &out, |x, y| x - y).unwrap();
        assert_eq!(
            out.to_vec::<f32>().unwrap(),
            vec![-1.0, 0.0, 1.0, 2.0, 3.0, 4.0]
        );

        let cond = Tensor::from_vec(vec![true, false, true, false, true, false], &[2, 3]).unwrap();
        let out = column_major(crate::DType::F32, 2, 3);
        ternary_map_into::<bool, f32, f32, f32>(
            &cond,
            &a,
            &Tensor::scalar(-1.0f32),
            &out,
            |c, x, y| {
                if c {
                    x
                } else {
                    y
                }
            },
        )
        .unwrap();
        assert_eq!(
            out.to_vec::<f32>().unwrap(),
            vec![0.0, -1.0, 2.0, -1.0, 4.0, -1.0]
        );
    }

    #[test]
    fn maps_into_an_output_sharing_an_input_storage() {
        // out = a.t() written from a: every element must be read before it is overwritten.
        let a = t32((0..4).map(|i| i as f32).collect(), &[2, 2]);
        let out = a.transpose_untraced(0, 1);
        binary_map_into::<f32, f32, f32>(&a, &a, &out, |x, y| x + y).unwrap();
        // out[i][j] = 2 * a_old[i][j], stored transposed: a now holds 2 * a_old transposed.
        assert_eq!(a.to_vec::<f32>().unwrap(), vec![0.0, 4.0, 2.0, 6.0]);
        let b = t32(vec![1.0, 2.0], &[2]);
        unary_map_into::<f32, f32>(&b, &b, |x| -x).unwrap();
        assert_eq!(b.to_vec::<f32>().unwrap(), vec![-1.0, -2.0]);
    }

    #[test]
    fn maps_refuse_outputs_they_cannot_write() {
        let a = t32(vec![1.0, 2.0], &[2]);
        // Two elements at one location (an expanded view).
        let base = t32(vec![0.0], &[1]);
        let expanded = base.restride(&[2], &[0], 0).unwrap();
        let e = unary_map_into::<f32, f32>(&a, &expanded, |x| x).unwrap_err();
        assert!(e.to_string().contains("single memory location"), "{e}");
        // Another element type than the kernel writes.
        let wrong = Tensor::zeros_strided(crate::DType::F64, &[2], &[1]).unwrap();
        assert!(unary_map_into::<f32, f32>(&a, &wrong, |x| x).is_err());
        // An input that does not broadcast to the output.
        let out = Tensor::zeros_strided(crate::DType::F32, &[3], &[1]).unwrap();
        let e = binary_map_into::<f32, f32, f32>(&a, &a, &out, |x, y| x + y).unwrap_err();
        assert!(e.to_string().contains("does not broadcast"), "{e}");
    }

    #[test]
    fn maps_handle_empty_and_zero_dim_outputs() {
        let empty = Tensor::zeros_strided(crate::DType::F32, &[0, 3], &[3, 1]).unwrap();
        unary_map_into::<f32, f32>(&empty, &empty.clone(), |x| x).unwrap();
        let s = Tensor::scalar(2.0f32);
        let out = Tensor::zeros_strided(crate::DType::F64, &[], &[]).unwrap();
        binary_map_into::<f32, f32, f64>(&s, &s, &out, |x, y| (x * y) as f64).unwrap();
        assert_eq!(out.to_vec::<f64>().unwrap(), vec![4.0]);
    }

    #[test]
    fn slice_maps_take_the_slice_kernel_only_for_contiguous_outputs() {
        // The slice kernel adds 1, the element fallback 2: which one ran shows in the output.
        let run = |a: &Tensor, out: &Tensor, par: usize| {
            unary_slices_into::<f32, f32>(
                a,
                out,
                par,
                |s, d| {
                    assert_eq!(s.len(), d.len());
                    d.iter_mut().zip(s).for_each(|(d, s)| *d = s + 1.0);
                },
                |x| x + 2.0,
            )
            .unwrap();
            out.to_vec::<f32>().unwrap()
        };
        let a = t32((0..6).map(|i| i as f32).collect(), &[2, 3]);
        let out = Tensor::zeros_strided(crate::DType::F32, &[2, 3], &[3, 1]).unwrap();
        assert_eq!(
            run(&a, &out, PAR_THRESHOLD),
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        );
        // A transposed (strided) input is gathered first: still the slice kernel.
        let at = t32((0..6).map(|i| i as f32).collect(), &[3, 2]).transpose_untraced(0, 1);
        assert_eq!(
            run(&at, &out, PAR_THRESHOLD),
            vec![1.0, 3.0, 5.0, 2.0, 4.0, 6.0]
        );
        // A strided output or a broadcast input: the element function.
        let out_t = column_major(crate::DType::F32, 2, 3);
        assert_eq!(
            run(&a, &out_t, PAR_THRESHOLD),
            vec![2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
        );
        let row = t32(vec![1.0, 2.0, 3.0], &[3]);
        assert_eq!(
            run(&row, &out, PAR_THRESHOLD),
            vec![3.0, 4.0, 5.0, 3.0, 4.0, 5.0]
        );
        // In place (the input is the output) and in parallel chunks.
        let n = 3 * VEC_CHUNK + 5;
        let big = t32((0..n).map(|i| i as f32).collect(), &[n]);
        let want: Vec<f32> = (0..n).map(|i| i as f32 + 1.0).collect();
        assert_eq!(run(&big, &big.clone(), 1), want);
        let fresh = Tensor::zeros_strided(crate::DType::F32, &[n], &[1]).unwrap();
        let src = t32((0..n).map(|i| i as f32).collect(), &[n]);
        assert_eq!(run(&src, &fresh, 1), want);
        // Wrong dtypes are refused as by unary_map_into.
        let wrong = Tensor::zeros_strided(crate::DType::F64, &[2, 3], &[3, 1]).unwrap();
        assert!(unary_slices_into::<f32, f32>(&a, &wrong, 1, |_, _| (), |x| x).is_err());
    }

    /// Broadcasting binary maps (per-channel scale, row bias, scalar-like column, an input with a
    /// stride) below and above the parallel threshold, both operand orders, against indexing.
    #[test]
    fn broadcast_runs_match_indexing() {
        let full = |sizes: &[usize]| {
            let n: usize = sizes.iter().product();
            t32((0..n).map(|i| (i % 97) as f32 * 0.5 - 7.0).collect(), sizes)
        };
        for sizes in [[2, 3, 5, 7], [2, 3, 70, 80]] {
            let x = full(&sizes);
            let [n0, c, h, w] = sizes;
            let chan = t32((0..c).map(|i| i as f32 + 1.5).collect(), &[1, c, 1, 1]);
            let row = t32((0..w).map(|i| 0.25 * i as f32).collect(), &[w]);
            let col = t32((0..h).map(|i| i as f32 - 3.0).collect(), &[h, 1]);
            // x transposed in its last two dims: a strided input of the same shape.
            let xt = full(&[n0, c, w, h]).transpose(2, 3).unwrap();
            let xv = x.to_vec::<f32>().unwrap();
            let xtv = xt.to_vec::<f32>().unwrap();
            let at = |i: usize| {
                let (wi, hi, ci) = (i % w, (i / w) % h, (i / (w * h)) % c);
                (ci, hi, wi)
            };
            let n = xv.len();
            type Want<'a> = Box<dyn Fn(usize) -> f32 + 'a>;
            let cases: Vec<(&Tensor, &Tensor, Want)> = vec![
                (&x, &chan, Box::new(|i| xv[i] * (at(i).0 as f32 + 1.5))),
                (&chan, &x, Box::new(|i| (at(i).0 as f32 + 1.5) * xv[i])),
                (&x, &row, Box::new(|i| xv[i] * (0.25 * at(i).2 as f32))),
                (&col, &x, Box::new(|i| (at(i).1 as f32 - 3.0) * xv[i])),
                (&xt, &chan, Box::new(|i| xtv[i] * (at(i).0 as f32 + 1.5))),
            ];
            for (k, (a, b, want)) in cases.into_iter().enumerate() {
                let out =
                    Tensor::zeros_strided(crate::DType::F32, &sizes, &[c * h * w, h * w, w, 1])
                        .unwrap();
                binary_map_into::<f32, f32, f32>(a, b, &out, |p, q| p * q).unwrap();
                let got = out.to_vec::<f32>().unwrap();
                for (i, g) in got.iter().enumerate().take(n) {
                    assert_eq!(*g, want(i), "case {k} at {sizes:?}, element {i}");
                }
            }
        }
    }

    #[test]
    fn large_maps_match_the_sequential_loop() {
        let n = PAR_THRESHOLD + 17;
        let a = t32((0..n).map(|i| i as f32).collect(), &[n]);
        let b = t32((0..n).map(|i| (i % 7) as f32).collect(), &[n]);
        let y = binary_map::<f32, f32, f32>(&a, &b, &[n], |x, y| x * 2.0 + y);
        let want: Vec<f32> = (0..n).map(|i| i as f32 * 2.0 + (i % 7) as f32).collect();
        assert_eq!(y.to_vec::<f32>().unwrap(), want);
        let cond = unary_map::<f32, bool>(&b, |x| x > 3.0);
        let w = ternary_map::<bool, f32, f32, f32>(
            &cond,
            &a,
            &b,
            &[n],
            |c, x, y| if c { x } else { y },
        );
        let want: Vec<f32> = (0..n)
            .map(|i| if i % 7 > 3 { i as f32 } else { (i % 7) as f32 })
            .collect();
        assert_eq!(w.to_vec::<f32>().unwrap(), want);
    }
}
