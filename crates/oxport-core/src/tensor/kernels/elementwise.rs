//! Pointwise loops: unary maps, broadcasting binary/ternary maps, parallel where it pays.
use crate::tensor::strided::for_each_run;
use crate::tensor::{contiguous_strides, Element, Tensor};
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

/// `out[i] = f(a[i])` over a tensor of element type `A` (any strides); output contiguous with a's sizes.
pub fn unary_map<A: Element, O: Element>(a: &Tensor, f: impl Fn(A) -> O + Sync + Send) -> Tensor {
    let out: Vec<O> = a
        .with_contiguous::<A, _>(|src| {
            if src.len() >= PAR_THRESHOLD {
                let mut out = vec![O::default(); src.len()];
                out.par_chunks_mut(CHUNK)
                    .zip(src.par_chunks(CHUNK))
                    .for_each(|(o, s)| {
                        for (o, &s) in o.iter_mut().zip(s) {
                            *o = f(s);
                        }
                    });
                out
            } else {
                src.iter().map(|&x| f(x)).collect()
            }
        })
        .expect("caller passes a tensor of element type A");
    Tensor::from_buffer(O::into_buffer(out), a.sizes())
}

/// `out[i] = f(a[i], b[i])` with broadcasting to `out_sizes`; `a`, `b` have element types `A`, `B`.
pub fn binary_map<A: Element, B: Element, O: Element>(
    a: &Tensor,
    b: &Tensor,
    out_sizes: &[usize],
    f: impl Fn(A, B) -> O + Sync + Send,
) -> Tensor {
    let n: usize = out_sizes.iter().product();
    let mut out = vec![O::default(); n];
    let ga = a.storage().read();
    let gb_owned;
    let gb = if b.shares_storage(a) {
        &ga
    } else {
        gb_owned = b.storage().read();
        &gb_owned
    };
    let sa = A::slice(&ga).expect("a has element type A");
    let sb = B::slice(gb).expect("b has element type B");
    let same_shape = a.sizes() == out_sizes && b.sizes() == out_sizes;
    if n == 0 {
        // Nothing to read: an empty view's offset may point past its storage (a slice at the end).
    } else if same_shape && a.is_contiguous() && b.is_contiguous() {
        let xa = &sa[a.storage_offset()..a.storage_offset() + n];
        let xb = &sb[b.storage_offset()..b.storage_offset() + n];
        if n >= PAR_THRESHOLD {
            out.par_chunks_mut(CHUNK)
                .zip(xa.par_chunks(CHUNK).zip(xb.par_chunks(CHUNK)))
                .for_each(|(o, (x, y))| {
                    for i in 0..o.len() {
                        o[i] = f(x[i], y[i]);
                    }
                });
        } else {
            for i in 0..n {
                out[i] = f(xa[i], xb[i]);
            }
        }
    } else if b.numel() == 1 && a.sizes() == out_sizes && a.is_contiguous() {
        let y = sb[b.storage_offset()];
        let xa = &sa[a.storage_offset()..a.storage_offset() + n];
        if n >= PAR_THRESHOLD {
            out.par_chunks_mut(CHUNK)
                .zip(xa.par_chunks(CHUNK))
                .for_each(|(o, x)| {
                    for i in 0..o.len() {
                        o[i] = f(x[i], y);
                    }
                });
        } else {
            for i in 0..n {
                out[i] = f(xa[i], y);
            }
        }
    } else {
        let os = contiguous_strides(out_sizes);
        let stra = broadcast_strides(a, out_sizes);
        let strb = broadcast_strides(b, out_sizes);
        for_each_run(
            out_sizes,
            &[&os, &stra, &strb],
            &[0, a.storage_offset(), b.storage_offset()],
            |offs, len, st| {
                let (o0, a0, b0) = (offs[0], offs[1], offs[2]);
                let (sa_, sb_) = (st[1], st[2]);
                let dst = &mut out[o0..o0 + len];
                for (i, d) in dst.iter_mut().enumerate() {
                    *d = f(sa[a0 + i * sa_], sb[b0 + i * sb_]);
                }
            },
        );
    }
    Tensor::from_buffer(O::into_buffer(out), out_sizes)
}

/// `out[i] = f(a[i], b[i], c[i])` with broadcasting (used by `where`, `clamp` with tensor bounds, `addcmul`-likes).
pub fn ternary_map<A: Element, B: Element, C: Element, O: Element>(
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    out_sizes: &[usize],
    f: impl Fn(A, B, C) -> O,
) -> Tensor {
    let n: usize = out_sizes.iter().product();
    let mut out = vec![O::default(); n];
    // Operands are gathered to contiguous order first (where() is not a hot path), then walked with
    // broadcast strides over those copies.
    let va = a.to_vec::<A>().expect("element type A");
    let vb = b.to_vec::<B>().expect("element type B");
    let vc = c.to_vec::<C>().expect("element type C");
    let os = contiguous_strides(out_sizes);
    let bs =
        |t: &Tensor| broadcast_strides_of(t.sizes(), &contiguous_strides(t.sizes()), out_sizes);
    let (stra, strb, strc) = (bs(a), bs(b), bs(c));
    for_each_run(
        out_sizes,
        &[&os, &stra, &strb, &strc],
        &[0, 0, 0, 0],
        |offs, len, st| {
            for i in 0..len {
                out[offs[0] + i] = f(
                    va[offs[1] + i * st[1]],
                    vb[offs[2] + i * st[2]],
                    vc[offs[3] + i * st[3]],
                );
            }
        },
    );
    Tensor::from_buffer(O::into_buffer(out), out_sizes)
}
