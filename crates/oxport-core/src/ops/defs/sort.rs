//! Sorting along a dim: `sort` (stable; NaN sorts as the largest value, as in PyTorch) and `topk`.
use super::*;
use crate::tensor::kernels::reduce::segments;
use std::cmp::Ordering;

pub(super) fn register(r: &mut Builder) {
    r.out_op("aten.sort.default", meta_sort, sort);
    r.out_op("aten.topk.default", meta_topk, topk);
}

fn meta_sort(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    wrap(a.int("dim")?, t)?;
    Ok(vec![
        Value::Tensor(TensorMeta::contiguous(t.dtype, t.sizes.clone())),
        Value::Tensor(TensorMeta::contiguous(DType::I64, t.sizes.clone())),
    ])
}

fn meta_topk(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    let d = wrap(a.int("dim")?, t)?;
    let k = a.int("k")?;
    let n = if t.dim() == 0 {
        1
    } else {
        t.sizes[d]
            .as_int()
            .ok_or_else(|| Error::Symbolic("topk over a symbolic dim".into()))?
    };
    if k < 0 || k > n {
        return Err(Error::shape("selected index k out of range"));
    }
    let mut sizes = t.sizes.clone();
    if t.dim() > 0 {
        sizes[d] = SymInt::Int(k);
    }
    Ok(vec![
        Value::Tensor(TensorMeta::contiguous(t.dtype, sizes.clone())),
        Value::Tensor(TensorMeta::contiguous(DType::I64, sizes)),
    ])
}

/// Ascending order with NaN last (PyTorch's comparator); exact for every dtype (no f64 round trip).
fn ascending<T: crate::tensor::RealElement>(x: T, y: T) -> Ordering {
    #[allow(clippy::eq_op)] // x != x is the NaN test for any element type
    let (xn, yn) = (x != x, y != y);
    match (xn, yn) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
    }
}

/// The first `take` elements of each segment in sorted order (stable), and their indices.
fn order_segments<T: crate::tensor::RealElement>(
    t: &Tensor,
    dims: &[usize],
    descending: bool,
    take: usize,
) -> (Vec<T>, Vec<i64>) {
    let (data, seg) = segments::<T>(t, dims);
    let mut vals = Vec::with_capacity(data.len() / seg.max(1) * take);
    let mut idxs = Vec::with_capacity(vals.capacity());
    if seg > 0 {
        for s in data.chunks(seg) {
            let mut order: Vec<usize> = (0..seg).collect();
            order.sort_by(|&i, &j| {
                let o = ascending(s[i], s[j]);
                if descending {
                    o.reverse()
                } else {
                    o
                }
            });
            for &i in order.iter().take(take) {
                vals.push(s[i]);
                idxs.push(i as i64);
            }
        }
    }
    (vals, idxs)
}

/// For each segment along `dim`, the order of its elements (stable), then `take` of them, written as
/// values and int64 indices laid out like the input with `dim` resized to `take`.
fn sorted_along(
    t: &Tensor,
    dim: Option<usize>,
    descending: bool,
    take: usize,
    values: &Tensor,
    indices: &Tensor,
) -> Result<()> {
    let nd = t.dim();
    let dims: Vec<usize> = dim.into_iter().collect();
    // The segments are laid out with `dim` last: view them back in the input's dim order.
    let mut moved_sizes: Vec<usize> = (0..nd)
        .filter(|d| Some(*d) != dim)
        .map(|d| t.sizes_untraced()[d])
        .collect();
    if dim.is_some() {
        moved_sizes.push(take);
    }
    let (v, i) = crate::dispatch_real_dtype!(t.dtype(), T => {
        let (vals, idxs) = order_segments::<T>(t, &dims, descending, take);
        (Tensor::from_vec(vals, &moved_sizes)?, Tensor::from_vec(idxs, &moved_sizes)?)
    }, complex => return Err(Error::DTypeNotSupported { op: "sort".into(), dtype: t.dtype() }));
    let back = |x: &Tensor| -> Result<Tensor> {
        let Some(d) = dim else { return Ok(x.clone()) };
        let mut sizes = vec![0; nd];
        let mut strides = vec![0; nd];
        let ms = crate::tensor::contiguous_strides(&moved_sizes);
        let others: Vec<usize> = (0..nd).filter(|&e| e != d).collect();
        for (k, &e) in others.iter().enumerate() {
            sizes[e] = moved_sizes[k];
            strides[e] = ms[k];
        }
        sizes[d] = take;
        strides[d] = ms[nd - 1];
        x.restride(&sizes, &strides, 0)
    };
    values.assign_untraced(&back(&v)?)?;
    indices.assign_untraced(&back(&i)?)
}

fn sort(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let t = a.tensor("self")?;
    let dim = if t.dim() == 0 {
        None
    } else {
        Some(wrap_dim(a.int("dim")?, t.dim())?)
    };
    let n = dim.map_or(1, |d| t.sizes_untraced()[d]);
    sorted_along(t, dim, a.bool("descending")?, n, &o[0], &o[1])
}

fn topk(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let t = a.tensor("self")?;
    let dim = if t.dim() == 0 {
        None
    } else {
        Some(wrap_dim(a.int("dim")?, t.dim())?)
    };
    // Sorted or not, oxport returns the k elements in order (PyTorch's unsorted order is unspecified).
    sorted_along(
        t,
        dim,
        a.bool("largest")?,
        a.int("k")? as usize,
        &o[0],
        &o[1],
    )
}
