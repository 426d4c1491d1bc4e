//! Reductions and dim-wise normalisations (softmax) over contiguous segments.
use crate::tensor::{Element, Tensor};
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
    if seg == 0 {
        let empty: [T; 0] = [];
        return vec![f(&empty); n_out];
    }
    if data.len() >= super::elementwise::PAR_THRESHOLD && n_out > 1 {
        data.par_chunks(seg).map(&f).collect()
    } else {
        data.chunks(seg).map(f).collect()
    }
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
    let (mut data, seg) = segments::<T>(t, &[dim]);
    map_segments(&mut data, seg, f);
    // `data` is laid out as sizes with `dim` moved last; view it back with the inverse permutation.
    let nd = t.dim();
    let mut moved: Vec<usize> = (0..nd).filter(|&d| d != dim).collect();
    moved.push(dim);
    let moved_sizes: Vec<usize> = moved.iter().map(|&d| t.sizes()[d]).collect();
    let moved_strides = crate::tensor::contiguous_strides(&moved_sizes);
    let mut strides = vec![0; nd];
    for (i, &d) in moved.iter().enumerate() {
        strides[d] = moved_strides[i];
    }
    let tmp = Tensor::from_buffer(T::into_buffer(data), &moved_sizes);
    tmp.restride(t.sizes(), &strides, 0)
        .expect("inverse permutation is valid")
        .contiguous_untraced()
}
