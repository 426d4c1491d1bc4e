//! Reductions and dim-wise normalisations (softmax) over contiguous segments.
use crate::error::{Error, Result};
use crate::tensor::{cast_element, Element, Tensor};
use rayon::prelude::*;

/// Permutes `t` so that `dims` come last (in the given order) and returns the data as contiguous
/// segments: `(data, segment_len)`; there are `data.len() / segment_len` segments, in row-major order of
/// the kept dims.
pub fn segments<T: Element>(t: &Tensor, dims: &[usize]) -> (Vec<T>, usize) {
    let nd = t.dim();
    let mut perm: Vec<usize> = (0..nd).filter(|d| !dims.contains(d)).collect();
    perm.extend_from_slice(dims);
    let sizes: Vec<usize> = perm.iter().map(|&d| t.sizes()[d]).collect();
    let strides: Vec<usize> = perm.iter().map(|&d| t.strides()[d]).collect();
    let seg: usize = dims.iter().map(|&d| t.sizes()[d]).product();
    let view = t
        .restride(&sizes, &strides, t.storage_offset())
        .expect("a permutation of a valid view is valid");
    (view.to_vec::<T>().expect("element type T"), seg)
}

/// Applies `f` to every segment, producing one output per segment (parallel when large).
pub fn reduce_segments<T: Element, O: Element>(
    data: &[T],
    seg: usize,
    n_out: usize,
    f: impl Fn(&[T]) -> O + Sync + Send,
) -> Vec<O> {
    let mut out = vec![O::default(); n_out];
    reduce_segments_into(data, seg, &mut out, f);
    out
}

/// [`reduce_segments`] writing segment `i`'s result into `out[i]` (`out.len()` outputs).
pub fn reduce_segments_into<T: Element, O: Element>(
    data: &[T],
    seg: usize,
    out: &mut [O],
    f: impl Fn(&[T]) -> O + Sync + Send,
) {
    if seg == 0 {
        let empty: [T; 0] = [];
        out.fill(f(&empty));
        return;
    }
    if data.len() >= super::elementwise::PAR_THRESHOLD && out.len() > 1 {
        out.par_iter_mut()
            .zip(data.par_chunks(seg))
            .for_each(|(o, s)| *o = f(s));
    } else {
        out.iter_mut()
            .zip(data.chunks(seg))
            .for_each(|(o, s)| *o = f(s));
    }
}

/// [`reduce_segments_into`] a contiguous output tensor of any dtype: `f` computes in `S`, each result
/// is cast to the output's element type as it is stored.
pub fn reduce_segments_to<T: Element, S: Element>(
    data: &[T],
    seg: usize,
    out: &Tensor,
    f: impl Fn(&[T]) -> S + Sync + Send,
) -> Result<()> {
    crate::dispatch_dtype!(out.dtype(), O => out.with_contiguous_mut::<O, _>(|o| {
        reduce_segments_into(data, seg, o, |s| cast_element::<S, O>(f(s)))
    }))
}

/// Applies `f` to every segment in place (softmax-style dim-wise maps).
pub fn map_segments<T: Element>(data: &mut [T], seg: usize, f: impl Fn(&mut [T]) + Sync + Send) {
    if seg == 0 {
        return;
    }
    if data.len() >= super::elementwise::PAR_THRESHOLD {
        data.par_chunks_mut(seg).for_each(f);
    } else {
        data.chunks_mut(seg).for_each(f);
    }
}

/// Computes a dim-wise map (softmax, log_softmax, cumulative ops) along `dim`, returning a contiguous tensor
/// in the original layout.
pub fn along_dim<T: Element>(t: &Tensor, dim: usize, f: impl Fn(&mut [T]) + Sync + Send) -> Tensor {
    let out = Tensor::from_buffer(T::into_buffer(vec![T::default(); t.numel()]), t.sizes());
    along_dim_into(t, dim, &out, f).expect("a fresh contiguous output of element type T");
    out
}

/// [`along_dim`] writing into `out`: contiguous, `t`'s sizes, any dtype (each element cast from `T` as
/// it is stored). `out` must not share `t`'s storage.
pub fn along_dim_into<T: Element>(
    t: &Tensor,
    dim: usize,
    out: &Tensor,
    f: impl Fn(&mut [T]) + Sync + Send,
) -> Result<()> {
    if out.sizes() != t.sizes() {
        return Err(Error::shape(format!(
            "along_dim: output shape {} does not match the input's {}",
            crate::tensor::fmt_shape(out.sizes()),
            crate::tensor::fmt_shape(t.sizes())
        )));
    }
    let nd = t.dim();
    if nd == 0 || dim + 1 == nd {
        // `dim` is already last: the segments are the output's own rows, computed in place.
        if T::DTYPE == out.dtype() {
            return out.with_contiguous_mut::<T, _>(|o| {
                t.with_contiguous::<T, _>(|src| o.copy_from_slice(src))?;
                map_segments(o, t.sizes().last().copied().unwrap_or(1), f);
                Ok(())
            })?;
        }
    }
    let dims: Vec<usize> = if nd == 0 { vec![] } else { vec![dim] };
    let (mut data, seg) = segments::<T>(t, &dims);
    map_segments(&mut data, seg, f);
    // `data` is laid out as sizes with `dim` moved last: scatter it through the output's strides
    // permuted the same way.
    let mut moved: Vec<usize> = (0..nd).filter(|&d| d != dim).collect();
    if nd > 0 {
        moved.push(dim);
    }
    let moved_sizes: Vec<usize> = moved.iter().map(|&d| t.sizes()[d]).collect();
    let out_strides = crate::tensor::contiguous_strides(t.sizes());
    let moved_strides: Vec<usize> = moved.iter().map(|&d| out_strides[d]).collect();
    crate::dispatch_dtype!(out.dtype(), O => out.with_contiguous_mut::<O, _>(|o| {
        let vals: Vec<O> = data.iter().map(|&x| cast_element::<T, O>(x)).collect();
        crate::tensor::strided::scatter(o, &moved_sizes, &moved_strides, 0, &vals);
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::DType;

    #[test]
    fn along_dim_into_writes_any_dim_and_casts() {
        // [[1, 2], [3, 4]] cumulative sum along dim 0, stored as f64 from an f32 computation.
        let t = Tensor::from_vec(vec![1f32, 2., 3., 4.], &[2, 2]).unwrap();
        let out = Tensor::zeros_strided(DType::F64, &[2, 2], &[2, 1]).unwrap();
        along_dim_into::<f32>(&t, 0, &out, |s| {
            let mut acc = 0.0;
            for x in s.iter_mut() {
                acc += *x;
                *x = acc;
            }
        })
        .unwrap();
        assert_eq!(out.to_vec::<f64>().unwrap(), vec![1., 2., 4., 6.]);
        // Last dim: computed in place in the output's buffer.
        let out = Tensor::zeros_strided(DType::F32, &[2, 2], &[2, 1]).unwrap();
        along_dim_into::<f32>(&t, 1, &out, |s| s.reverse()).unwrap();
        assert_eq!(out.to_vec::<f32>().unwrap(), vec![2., 1., 4., 3.]);
    }

    #[test]
    fn out_writes_need_a_contiguous_output_of_the_right_dtype() {
        let t = Tensor::from_vec(vec![1f32, 2., 3., 4.], &[2, 2]).unwrap();
        assert!(t
            .transpose_untraced(0, 1)
            .with_contiguous_mut::<f32, _>(|_| ())
            .is_err());
        assert!(t.with_contiguous_mut::<f64, _>(|_| ()).is_err());
        let out = Tensor::zeros_strided(DType::I32, &[2], &[1]).unwrap();
        reduce_segments_to(&[1.5f64, 2.0, 3.0, 4.0], 2, &out, |s| s.iter().sum::<f64>()).unwrap();
        assert_eq!(out.to_vec::<i32>().unwrap(), vec![3, 7]);
        assert!(out.write_contiguous(&[1i64]).is_err());
    }
}
