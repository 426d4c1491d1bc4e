//! Indexing: gather/scatter along a dim, advanced indexing (`index`, `index_put`), index_select,
//! select/slice/masked scatters and the `diagonal` view.
//!
//! Kernels copy their inputs to row-major vectors and compute element offsets into them; the output
//! is written once into the tensor the caller allocated.
use super::*;
use crate::tensor::kernels::elementwise::broadcast_strides;
use crate::tensor::{contiguous_strides, strided, Element};

pub(super) fn register(r: &mut Builder) {
    // Its output size depends on the data: the meta says so and the kernel sizes its own output.
    r.op("aten.nonzero.default", meta_nonzero, nonzero);
    r.out_op("aten.gather.default", meta_gather, gather_kernel);
    r.out_op(
        "aten.index_select.default",
        meta_index_select,
        index_select_kernel,
    );
    // Boolean masks make the output size data-dependent: the kernel allocates its own output.
    r.op("aten.index.Tensor", meta_index, index_kernel);
    r.out_op("aten.scatter.src", meta_scatter, |a, o| {
        scatter_kernel(a, o, Reduce::Assign, true)
    });
    r.out_op("aten.scatter.value", meta_scatter, |a, o| {
        scatter_kernel(a, o, Reduce::Assign, true)
    });
    r.out_op("aten.scatter_add.default", meta_scatter, |a, o| {
        scatter_kernel(a, o, Reduce::Sum, true)
    });
    r.out_op("aten.scatter_reduce.two", meta_scatter, |a, o| {
        scatter_kernel(
            a,
            o,
            Reduce::parse(a.str("reduce")?)?,
            a.bool("include_self")?,
        )
    });
    r.out_op("aten.index_put.default", meta_index_put, index_put_kernel);
    r.out_op("aten.index_copy.default", meta_index_copy, |a, o| {
        let out = first_out(o)?;
        out.assign_untraced(a.tensor("self")?)?;
        index_copy_into(out, a)
    })
    .decomposition(decompositions::index_copy);
    // The static KV caches of exported LLMs (transformers' StaticCache) are updated with it.
    r.op("aten.index_copy_.default", meta_index_copy_, |a, _| {
        let t = a.tensor("self")?;
        index_copy_into(t, a)?;
        out1(t.clone())
    })
    .decomposition(decompositions::index_copy_);
    r.out_op(
        "aten.select_scatter.default",
        meta_select_scatter,
        select_scatter_kernel,
    );
    r.out_op(
        "aten.slice_scatter.default",
        meta_slice_scatter,
        slice_scatter_kernel,
    );
    r.out_op(
        "aten.masked_scatter.default",
        meta_masked_scatter,
        masked_scatter_kernel,
    );
    r.op("aten.diagonal.default", meta_diagonal, diagonal_kernel);
}

// ---- helpers -----------------------------------------------------------------------------------------

/// Calls `f` with every multi-index of `sizes` in row-major order.
fn for_each_index(sizes: &[usize], mut f: impl FnMut(&[usize]) -> Result<()>) -> Result<()> {
    if sizes.contains(&0) {
        return Ok(());
    }
    let mut idx = vec![0usize; sizes.len()];
    loop {
        f(&idx)?;
        let mut d = sizes.len();
        loop {
            if d == 0 {
                return Ok(());
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < sizes[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// Storage offsets (relative to element 0) of every element of `sizes` with `strides`, row-major.
fn offsets(sizes: &[usize], strides: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(sizes.iter().product());
    let _ = for_each_index(sizes, |i| {
        out.push(i.iter().zip(strides).map(|(a, b)| a * b).sum());
        Ok(())
    });
    out
}

/// An index tensor's values (int64 or int32) in row-major order.
fn index_values(t: &Tensor) -> Result<Vec<i64>> {
    match t.dtype() {
        DType::I64 => t.to_vec::<i64>(),
        DType::I32 => Ok(t.to_vec::<i32>()?.into_iter().map(i64::from).collect()),
        other => Err(Error::DType(format!(
            "expected an int64 or int32 index, got {}",
            other.name()
        ))),
    }
}

/// `t`'s elements broadcast to `sizes`, row-major (`t` must be broadcastable to `sizes`).
fn expanded<T: Element>(t: &Tensor, sizes: &[usize]) -> Result<Vec<T>> {
    t.restride(sizes, &broadcast_strides(t, sizes), t.storage_offset())?
        .to_vec::<T>()
}

/// Writes row-major `data` into an output tensor.
fn write_out<T: Element>(out: &Tensor, data: &[T]) -> Result<()> {
    let mut buf = out.storage().write();
    let dst = T::slice_mut(&mut buf)
        .ok_or_else(|| Error::DType("output dtype does not match the kernel's".into()))?;
    strided::scatter(
        dst,
        out.sizes_untraced(),
        out.strides(),
        out.storage_offset(),
        data,
    );
    Ok(())
}

fn first_out(outs: &mut [Tensor]) -> Result<&Tensor> {
    outs.first()
        .ok_or_else(|| Error::value("meta function produced no tensor output"))
}

/// PyTorch's `ensure_nonempty_size`: a 0-d tensor counts as one dim of size 1.
fn nonempty(sizes: &[usize]) -> Vec<usize> {
    if sizes.is_empty() {
        vec![1]
    } else {
        sizes.to_vec()
    }
}

fn nonempty_sym(sizes: &[SymInt]) -> Vec<SymInt> {
    if sizes.is_empty() {
        vec![SymInt::Int(1)]
    } else {
        sizes.to_vec()
    }
}

fn out_of_bounds(v: i64, dim: usize, size: usize) -> Error {
    Error::shape(format!(
        "index {v} is out of bounds for dimension {dim} with size {size}"
    ))
}

// ---- gather / scatter --------------------------------------------------------------------------------

fn check_gather_index_dtype(op: &str, index: &TensorMeta) -> Result<()> {
    if !matches!(index.dtype, DType::I64 | DType::I32) {
        return Err(Error::DType(format!(
            "{op}(): Expected dtype int32/int64 for index"
        )));
    }
    Ok(())
}

fn meta_gather(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (t, index) = (meta_self(a)?, a.tensor("index")?);
    let d = wrap(a.int("dim")?, t)?;
    // An empty index skips PyTorch's dtype and shape checks.
    if !index.numel().guard_eq(&SymInt::Int(0)) {
        check_gather_index_dtype("gather", index)?;
        let (ts, is) = (nonempty_sym(&t.sizes), nonempty_sym(&index.sizes));
        if ts.len() != is.len() {
            return Err(Error::shape(
                "Index tensor must have the same number of dimensions as input tensor",
            ));
        }
        for i in 0..ts.len() {
            if i != d && ts[i].guard_lt(&is[i]) {
                return Err(Error::shape(format!(
                    "Size does not match at dimension {i} expected index {} to be no larger than self {} apart from dimension {d}",
                    fmt_shape(&index.sizes),
                    fmt_shape(&t.sizes)
                )));
            }
        }
    }
    one(t.dtype, index.sizes.clone())
}

fn gather_kernel(a: &Args<Tensor>, outs: &mut [Tensor]) -> Result<()> {
    let (t, index) = (a.tensor("self")?, a.tensor("index")?);
    let d = wrap_dim(a.int("dim")?, t.dim())?;
    let ts = nonempty(t.sizes_untraced());
    let is = nonempty(index.sizes_untraced());
    let st = contiguous_strides(&ts);
    let idx = index_values(index)?;
    let out = first_out(outs)?;
    crate::dispatch_dtype!(t.dtype(), T => {
        let src = t.to_vec::<T>()?;
        let mut res = Vec::with_capacity(idx.len());
        let mut k = 0;
        for_each_index(&is, |p| {
            let v = idx[k];
            k += 1;
            if v < 0 || v as usize >= ts[d] {
                return Err(out_of_bounds(v, d, ts[d]));
            }
            let off: usize = p.iter().zip(&st).enumerate()
                .map(|(j, (&i, &s))| if j == d { v as usize * s } else { i * s })
                .sum();
            res.push(src[off]);
            Ok(())
        })?;
        write_out(out, &res)
    })
}

fn meta_index_select(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (t, index) = (meta_self(a)?, a.tensor("index")?);
    let d = wrap(a.int("dim")?, t)?;
    if index.dim() > 1 {
        return Err(Error::shape(
            "index_select(): Index is supposed to be a vector",
        ));
    }
    let n = index.numel();
    if t.dim() == 0 && !n.guard_is_one() {
        return Err(Error::shape(format!(
            "index_select(): Index to scalar can have only 1 value, got {n} value(s)"
        )));
    }
    if !matches!(index.dtype, DType::I64 | DType::I32) {
        return Err(Error::DType(
            "index_select(): Expected dtype int32 or int64 for index".into(),
        ));
    }
    if t.dim() == 0 {
        return one(t.dtype, vec![]);
    }
    let mut sizes = t.sizes.clone();
    sizes[d] = n;
    one(t.dtype, sizes)
}

fn index_select_kernel(a: &Args<Tensor>, outs: &mut [Tensor]) -> Result<()> {
    let (t, index) = (a.tensor("self")?, a.tensor("index")?);
    let d = wrap_dim(a.int("dim")?, t.dim())?;
    let ts = nonempty(t.sizes_untraced());
    let idx = index_values(index)?;
    // PyTorch's CPU kernel words the bounds error by path: an empty `self` and dim 1 (its fast path)
    // of a tensor with 2+ dims say INDICES..., the others "index out of range in self".
    let empty_self = t.dim() > 1 && ts.contains(&0);
    if empty_self && ts[d] == 0 && !idx.is_empty() {
        return Err(Error::shape(
            "index_select(): self indexing axis dim should be positive",
        ));
    }
    let mut picked = Vec::with_capacity(idx.len());
    for &v in &idx {
        if v < 0 || v as usize >= ts[d] {
            return Err(Error::shape(if t.dim() > 1 && (empty_self || d == 1) {
                format!(
                    "INDICES element is out of DATA bounds, id={v} axis_dim={}",
                    ts[d]
                )
            } else {
                "index out of range in self".to_string()
            }));
        }
        picked.push(v as usize);
    }
    let (outer, inner): (usize, usize) = (ts[..d].iter().product(), ts[d + 1..].iter().product());
    let out = first_out(outs)?;
    crate::dispatch_dtype!(t.dtype(), T => {
        let src = t.to_vec::<T>()?;
        let mut res = Vec::with_capacity(outer * picked.len() * inner);
        for o in 0..outer {
            for &p in &picked {
                let base = (o * ts[d] + p) * inner;
                res.extend_from_slice(&src[base..base + inner]);
            }
        }
        write_out(out, &res)
    })
}

/// How scatter combines a source value into the output.
#[derive(Clone, Copy, PartialEq)]
enum Reduce {
    Assign,
    Sum,
    Prod,
    Mean,
    Amax,
    Amin,
}

impl Reduce {
    fn parse(s: &str) -> Result<Reduce> {
        Ok(match s {
            "sum" => Reduce::Sum,
            "prod" => Reduce::Prod,
            "mean" => Reduce::Mean,
            // PyTorch also takes (undocumented) "max" and "min".
            "amax" | "max" => Reduce::Amax,
            "amin" | "min" => Reduce::Amin,
            _ => {
                return Err(Error::value(format!(
                    "reduce argument must be either sum, prod, mean, amax or amin, got {s}"
                )))
            }
        })
    }
    /// `acc <op> v` in `T`'s arithmetic (integers wrap like C++; bool sum is `or`, prod `and`).
    fn combine<T: crate::tensor::RealElement>(self, acc: T, v: T) -> T {
        let is_nan = |x: T| x.partial_cmp(&x).is_none();
        match self {
            Reduce::Assign => v,
            Reduce::Sum | Reduce::Mean if T::IS_FLOAT => T::from_f64(acc.to_f64() + v.to_f64()),
            Reduce::Sum | Reduce::Mean => T::from_i64(acc.to_i64().wrapping_add(v.to_i64())),
            Reduce::Prod if T::IS_FLOAT => T::from_f64(acc.to_f64() * v.to_f64()),
            Reduce::Prod => T::from_i64(acc.to_i64().wrapping_mul(v.to_i64())),
            // NaN propagates, as in PyTorch's scatter_reduce.
            Reduce::Amax | Reduce::Amin if is_nan(acc) || is_nan(v) => {
                if is_nan(acc) {
                    acc
                } else {
                    v
                }
            }
            Reduce::Amax => {
                if v > acc {
                    v
                } else {
                    acc
                }
            }
            Reduce::Amin => {
                if v < acc {
                    v
                } else {
                    acc
                }
            }
        }
    }
}

fn meta_scatter(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (t, index) = (meta_self(a)?, a.tensor("index")?);
    let d = wrap(a.int("dim")?, t)?;
    let src = match a.schema.arg_index("src") {
        Some(_) => Some(a.tensor("src")?),
        None => None,
    };
    // PyTorch's scatter_gather_dtype_check, then scatter_shape_check (both skip an empty index).
    let nonempty_index = !index.numel().guard_eq(&SymInt::Int(0));
    if nonempty_index {
        check_gather_index_dtype("scatter", index)?;
    }
    if let Some(s) = src {
        if s.dtype != t.dtype {
            return Err(Error::DType(
                "scatter(): Expected self.dtype to be equal to src.dtype".into(),
            ));
        }
    }
    if nonempty_index {
        let (ts, is) = (nonempty_sym(&t.sizes), nonempty_sym(&index.sizes));
        if ts.len() != is.len() {
            return Err(Error::shape(
                "Index tensor must have the same number of dimensions as self tensor",
            ));
        }
        let mut wrong = (0..ts.len()).any(|i| i != d && ts[i].guard_lt(&is[i]));
        if let (false, Some(s)) = (wrong, src) {
            for (i, is_i) in is.iter().enumerate() {
                // PyTorch reads src.size(i) up to the first misfit: a dim error when src has
                // fewer dims.
                let s_i = if s.dim() == 0 {
                    SymInt::Int(1)
                } else {
                    s.sizes[wrap_dim(i as i64, s.dim())?].clone()
                };
                if s_i.guard_lt(is_i) {
                    wrong = true;
                    break;
                }
            }
        }
        if let Some(s) = src {
            if nonempty_sym(&s.sizes).len() != is.len() {
                return Err(Error::shape(
                    "Index tensor must have the same number of dimensions as src tensor",
                ));
            }
        }
        if wrong {
            let mut msg = format!(
                "Expected index {} to be no larger than self {} apart from dimension {d}",
                fmt_shape(&index.sizes),
                fmt_shape(&t.sizes)
            );
            if let Some(s) = src {
                msg += &format!(" and to be no larger size than src {}", fmt_shape(&s.sizes));
            }
            return Err(Error::shape(msg));
        }
    }
    if a.schema.arg_index("reduce").is_some() {
        let r = Reduce::parse(a.str("reduce")?)?;
        if r == Reduce::Mean && t.dtype == DType::Bool {
            // With an empty index PyTorch only fails at the final division.
            return Err(Error::DTypeNotSupported {
                op: if nonempty_index {
                    "scatter_gather_tensor_cpu_reduce_mean"
                } else {
                    "div_floor_cpu"
                }
                .into(),
                dtype: t.dtype,
            });
        }
    }
    one(t.dtype, t.sizes.clone())
}

fn scatter_kernel(
    a: &Args<Tensor>,
    outs: &mut [Tensor],
    reduce: Reduce,
    include_self: bool,
) -> Result<()> {
    let (t, index) = (a.tensor("self")?, a.tensor("index")?);
    let d = wrap_dim(a.int("dim")?, t.dim())?;
    let ts = nonempty(t.sizes_untraced());
    let is = nonempty(index.sizes_untraced());
    let st = contiguous_strides(&ts);
    let idx = index_values(index)?;
    let src = match a.schema.arg_index("src") {
        Some(_) => Some(a.tensor("src")?),
        None => None,
    };
    let src_st = src.map(|s| contiguous_strides(&nonempty(s.sizes_untraced())));
    let out = first_out(outs)?;
    crate::dispatch_real_dtype!(t.dtype(), T => {
        let mut res = t.to_vec::<T>()?;
        let src_vals: Vec<T> = match src {
            Some(s) => s.to_vec::<T>()?,
            None => vec![crate::tensor::scalar_to::<T>(a.scalar("value")?)],
        };
        // Per output element: how many values it received (for mean and include_self=False).
        let mut count = vec![0usize; res.len()];
        let mut k = 0;
        for_each_index(&is, |p| {
            let v = idx[k];
            k += 1;
            if v < 0 || v as usize >= ts[d] {
                return Err(out_of_bounds(v, d, ts[d]));
            }
            let mut off = 0;
            let mut soff = 0;
            for j in 0..p.len() {
                off += if j == d { v as usize } else { p[j] } * st[j];
                if let Some(sst) = &src_st {
                    soff += p[j] * sst[j];
                }
            }
            let x = src_vals[soff];
            res[off] = if count[off] == 0 && !include_self { x } else { reduce.combine(res[off], x) };
            count[off] += 1;
            Ok(())
        })?;
        if reduce == Reduce::Mean {
            for (r, &c) in res.iter_mut().zip(&count) {
                let n = c + include_self as usize;
                if c > 0 && n > 1 {
                    *r = if T::IS_FLOAT {
                        T::from_f64(r.to_f64() / n as f64)
                    } else {
                        T::from_i64(crate::sym::floor_div(r.to_i64(), n as i64))
                    };
                }
            }
        }
        write_out(out, &res)
    }, complex => Err(Error::DTypeNotSupported { op: "scatter".into(), dtype: t.dtype() }))
}

// ---- advanced indexing ---------------------------------------------------------------------------------
//
// PyTorch's order of checks: the number of index entries, their dtypes, mask shapes (a mask or index
// landing past the last dim is a dim error), broadcasting, an indexed dim of size 0, then (index_put)
// the value's shape and dtype, and last the bounds of the index values actually read. index_put
// may first take PyTorch's masked_fill shortcut (see `masked_fill_path`).

fn is_mask(dtype: DType) -> bool {
    matches!(dtype, DType::Bool | DType::U8)
}

/// The checks that need only metadata; returns the number of dims the expanded indices cover.
fn check_index_metas(t: &TensorMeta, indices: &[Option<TensorMeta>]) -> Result<usize> {
    let nd = t.dim();
    if indices.is_empty() {
        return Err(Error::shape("at least one index must be provided"));
    }
    if indices.len() > nd {
        return Err(too_many(nd, indices.len()));
    }
    let bad_dtype =
        |m: &TensorMeta| !matches!(m.dtype, DType::I64 | DType::I32) && !is_mask(m.dtype);
    if indices.iter().flatten().any(bad_dtype) {
        return Err(bad_index_dtype());
    }
    let past_end = |d: usize| Error::DimOutOfRange {
        dim: d as i64,
        min: -(nd as i64),
        max: nd as i64 - 1,
    };
    let mut d = 0;
    for ix in indices {
        match ix {
            Some(m) if is_mask(m.dtype) => {
                for (j, s) in m.sizes.iter().enumerate() {
                    if d + j >= nd {
                        return Err(past_end(d + j));
                    }
                    if !s.guard_eq(&t.sizes[d + j]) {
                        return Err(mask_mismatch(&m.sizes, j, &t.sizes, d + j));
                    }
                }
                d += m.dim();
            }
            Some(_) if d >= nd => return Err(past_end(d)),
            _ => d += 1,
        }
    }
    if d > nd {
        return Err(too_many(nd, d));
    }
    Ok(d)
}

fn too_many(nd: usize, got: usize) -> Error {
    Error::shape(format!(
        "too many indices for tensor of dimension {nd} (got {got})"
    ))
}

fn bad_index_dtype() -> Error {
    Error::DType("tensors used as indices must be long, int, byte or bool tensors".into())
}

fn mask_mismatch<S: std::fmt::Display>(mask: &[S], j: usize, sizes: &[S], d: usize) -> Error {
    Error::shape(format!(
        "The shape of the mask {} at index {j} does not match the shape of the indexed tensor {} at index {d}",
        fmt_shape(mask),
        fmt_shape(sizes)
    ))
}

fn broadcast_index_shapes(shapes: &[&[SymInt]]) -> Result<Vec<SymInt>> {
    broadcast_shapes(shapes).map_err(|_| {
        let list: Vec<String> = shapes.iter().map(|s| fmt_shape(s)).collect();
        Error::shape(format!(
            "shape mismatch: indexing tensors could not be broadcast together with shapes {}",
            list.join(", ")
        ))
    })
}

fn size0_dim() -> Error {
    Error::shape("index is out of bounds for dimension with size 0")
}

/// The result's sizes: the non-indexed dims around the broadcast index shape when the indexed dims
/// are adjacent, after it otherwise (NumPy's rule). `indexed[d]` says whether dim `d` is indexed.
fn place<S: Clone>(sizes: &[S], indexed: &[bool], b: Vec<S>) -> Vec<S> {
    let dims: Vec<usize> = (0..indexed.len()).filter(|&d| indexed[d]).collect();
    let (Some(&first), Some(&last)) = (dims.first(), dims.last()) else {
        return sizes.to_vec();
    };
    let adjacent = last - first + 1 == dims.len();
    let rest = |r: std::ops::Range<usize>| r.filter(|&d| !indexed[d]).map(|d| sizes[d].clone());
    let mut out = vec![];
    if adjacent {
        out.extend(rest(0..first));
        out.extend(b);
        out.extend(rest(last + 1..sizes.len()));
    } else {
        out.extend(b);
        out.extend(rest(0..sizes.len()));
    }
    out
}

/// The result sizes of advanced indexing from metadata, or `None` when a boolean mask makes them
/// depend on the data. Without index tensors, `index_put` (`for_put`) sees `self`'s sizes.
fn index_result_meta(
    t: &TensorMeta,
    indices: &[Option<TensorMeta>],
    for_put: bool,
) -> Result<Option<Vec<SymInt>>> {
    check_index_metas(t, indices)?;
    if indices.iter().flatten().any(|m| is_mask(m.dtype)) {
        return Ok(None);
    }
    let shapes: Vec<&[SymInt]> = indices
        .iter()
        .flatten()
        .map(|m| m.sizes.as_slice())
        .collect();
    if shapes.is_empty() {
        return if for_put {
            Ok(Some(t.sizes.clone())) // see index_plan
        } else {
            Err(Error::value(
                "advanced indexing needs at least one index tensor",
            ))
        };
    }
    let b = broadcast_index_shapes(&shapes)?;
    let mut indexed = vec![false; t.dim()];
    let empty = b.iter().any(|s| s.guard_eq(&SymInt::Int(0)));
    for (d, ix) in indices.iter().enumerate() {
        if ix.is_some() {
            if !empty && t.sizes[d].guard_eq(&SymInt::Int(0)) {
                return Err(size0_dim());
            }
            indexed[d] = true;
        }
    }
    Ok(Some(place(&t.sizes, &indexed, b)))
}

/// Where advanced indexing reads: the result's sizes and, per result element, the row-major offset
/// into `self` — or the bounds error PyTorch raises when it reads them (kept so that index_put can
/// check the value first, as PyTorch does).
struct IndexPlan {
    sizes: Vec<usize>,
    offsets: Result<Vec<usize>>,
}

fn index_plan(t: &Tensor, indices: &[Option<Tensor>]) -> Result<IndexPlan> {
    let metas: Vec<Option<TensorMeta>> = indices
        .iter()
        .map(|i| i.as_ref().map(TensorMeta::of))
        .collect();
    check_index_metas(&TensorMeta::of(t), &metas)?;
    let self_sizes = t.sizes_untraced();
    let nd = self_sizes.len();
    // Expand: masks become one position list per mask dim (PyTorch's `expandTensors`).
    let mut ix: Vec<Option<(Vec<i64>, Vec<usize>)>> = vec![];
    for i in indices {
        match i {
            None => ix.push(None),
            Some(m) if is_mask(m.dtype()) => {
                let ms = m.sizes_untraced();
                let flags: Vec<bool> = crate::dispatch_dtype!(m.dtype(), T => {
                    m.to_vec::<T>()?.into_iter().map(|x| x.is_nonzero()).collect()
                });
                let mut pos: Vec<Vec<i64>> = vec![vec![]; ms.len()];
                let mut k = 0;
                for_each_index(ms, |p| {
                    if flags[k] {
                        for (j, &i) in p.iter().enumerate() {
                            pos[j].push(i as i64);
                        }
                    }
                    k += 1;
                    Ok(())
                })?;
                let n = flags.iter().filter(|&&f| f).count();
                ix.extend(pos.into_iter().map(|p| Some((p, vec![n]))));
            }
            Some(m) => ix.push(Some((index_values(m)?, m.sizes_untraced().to_vec()))),
        }
    }
    ix.resize_with(nd, || None);
    let indexed: Vec<bool> = ix.iter().map(Option::is_some).collect();
    let shapes: Vec<Vec<SymInt>> = ix
        .iter()
        .flatten()
        .map(|(_, s)| s.iter().map(|&x| SymInt::from(x)).collect())
        .collect();
    if shapes.is_empty() {
        // Only None entries and 0-d masks (which expand to nothing): PyTorch checks index_put's
        // value against `self`'s shape, then fails an internal assert.
        return Ok(IndexPlan {
            sizes: self_sizes.to_vec(),
            offsets: Err(Error::value(
                "advanced indexing needs at least one index tensor",
            )),
        });
    }
    let refs: Vec<&[SymInt]> = shapes.iter().map(|s| s.as_slice()).collect();
    let b = concrete_usizes(&broadcast_index_shapes(&refs)?)?;
    let nb: usize = b.iter().product();
    if nb > 0 && (0..nd).any(|d| indexed[d] && self_sizes[d] == 0) {
        return Err(size0_dim());
    }
    let sizes = place(self_sizes, &indexed, b.clone());
    let st = contiguous_strides(self_sizes);
    let offsets = (|| {
        let n: usize = sizes.iter().product();
        if n == 0 {
            return Ok(vec![]); // nothing is read, so nothing is bounds-checked
        }
        // Offset contributed by the indexed dims at each broadcast position. PyTorch's message
        // numbers the index tensors, not the dims they index.
        let mut idx_off = vec![0usize; nb];
        for (k, (d, (vals, shape))) in ix
            .iter()
            .enumerate()
            .filter_map(|(d, i)| i.as_ref().map(|i| (d, i)))
            .enumerate()
        {
            let bst = crate::tensor::kernels::elementwise::broadcast_strides_of(
                shape,
                &contiguous_strides(shape),
                &b,
            );
            let size = self_sizes[d];
            for (o, src) in idx_off.iter_mut().zip(offsets(&b, &bst)) {
                let v = vals[src];
                let w = if v < 0 { v + size as i64 } else { v };
                if w < 0 || w >= size as i64 {
                    return Err(out_of_bounds(v, k, size));
                }
                *o += w as usize * st[d];
            }
        }
        // The non-indexed dims, split as `place` puts them around the broadcast dims.
        let dims: Vec<usize> = (0..nd).filter(|&d| indexed[d]).collect();
        let (first, last) = (dims[0], dims[dims.len() - 1]);
        let adjacent = last - first + 1 == dims.len();
        let rest =
            |r: std::ops::Range<usize>| -> Vec<usize> { r.filter(|&d| !indexed[d]).collect() };
        let (before, after) = if adjacent {
            (rest(0..first), rest(last + 1..nd))
        } else {
            (vec![], rest(0..nd))
        };
        let pick = |ds: &[usize], v: &[usize]| -> Vec<usize> { ds.iter().map(|&d| v[d]).collect() };
        let before_off = offsets(&pick(&before, self_sizes), &pick(&before, &st));
        let after_off = offsets(&pick(&after, self_sizes), &pick(&after, &st));
        let mut offs = Vec::with_capacity(n);
        for &x in &before_off {
            for &y in &idx_off {
                offs.extend(after_off.iter().map(|&z| x + y + z));
            }
        }
        Ok(offs)
    })();
    Ok(IndexPlan { sizes, offsets })
}

fn opt_metas<'a>(a: &'a Args<TensorMeta>) -> Result<&'a [Option<TensorMeta>]> {
    match a.get("indices")? {
        Value::OptTensors(ts) => Ok(ts),
        other => Err(Error::value(format!(
            "indices must be a Tensor?[], got a {}",
            other.kind()
        ))),
    }
}

fn opt_tensors<'a>(a: &'a Args<Tensor>) -> Result<&'a [Option<Tensor>]> {
    match a.get("indices")? {
        Value::OptTensors(ts) => Ok(ts),
        other => Err(Error::value(format!(
            "indices must be a Tensor?[], got a {}",
            other.kind()
        ))),
    }
}

fn meta_index(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    match index_result_meta(t, opt_metas(a)?, false)? {
        Some(sizes) => one(t.dtype, sizes),
        // PyTorch gives the count of true elements an unbacked symbol; oxport does not model those.
        None => Err(Error::DataDependent(
            "aten.index.Tensor with a boolean mask: the output size depends on the mask's values"
                .into(),
        )),
    }
}

fn index_kernel(a: &Args<Tensor>, _: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    let t = a.tensor("self")?;
    let plan = index_plan(t, opt_tensors(a)?)?;
    let offsets = plan.offsets?;
    crate::dispatch_dtype!(t.dtype(), T => {
        let src = t.to_vec::<T>()?;
        let res: Vec<T> = offsets.iter().map(|&o| src[o]).collect();
        out1(Tensor::from_vec(res, &plan.sizes)?)
    })
}

/// True if `from` broadcasts to `to` (one-directional, like `expand`).
fn expands_to<S: PartialEq + From<u8>>(from: &[S], to: &[S]) -> bool {
    from.len() <= to.len()
        && from
            .iter()
            .rev()
            .zip(to.iter().rev())
            .all(|(f, t)| f == t || *f == S::from(1))
}

fn check_index_put_value(result: &[SymInt], t: &TensorMeta, values: &TensorMeta) -> Result<()> {
    let (r, v) = (concrete_usizes(result), concrete_usizes(&values.sizes));
    if let (Ok(r), Ok(v)) = (r, v) {
        let (r, v): (Vec<u64>, Vec<u64>) = (
            r.iter().map(|&x| x as u64).collect(),
            v.iter().map(|&x| x as u64).collect(),
        );
        if !expands_to(&v, &r) {
            return Err(Error::shape(format!(
                "shape mismatch: value tensor of shape {} cannot be broadcast to indexing result of shape {}",
                fmt_shape(&v),
                fmt_shape(&r)
            )));
        }
    }
    if values.dtype != t.dtype {
        return Err(Error::DType(format!(
            "Index put requires the source and destination dtypes match, got {} for the destination and {} for the source.",
            t.dtype.scalar_type_name(),
            values.dtype.scalar_type_name()
        )));
    }
    Ok(())
}

/// PyTorch's `canDispatchToMaskedFill`: index_put without accumulate, a one-element value and, among
/// the entries, Nones and exactly one mask (checked here as it is scanned) becomes `masked_fill`,
/// which casts the value and ignores its shape. Returns the mask's entry and first dim.
fn masked_fill_path(
    t: &TensorMeta,
    indices: &[Option<TensorMeta>],
    values: &TensorMeta,
    accumulate: bool,
) -> Result<Option<(usize, usize)>> {
    if accumulate || !values.numel().guard_is_one() {
        return Ok(None);
    }
    let nd = t.dim();
    let (mut num_ind, mut found) = (0, None);
    for (k, ix) in indices.iter().enumerate() {
        match ix {
            None => num_ind += 1,
            Some(m) if is_mask(m.dtype) && found.is_none() => {
                for (j, s) in m.sizes.iter().enumerate() {
                    let d = num_ind + j;
                    if d >= nd {
                        return Err(Error::DimOutOfRange {
                            dim: d as i64,
                            min: -(nd as i64),
                            max: nd as i64 - 1,
                        });
                    }
                    if !s.guard_eq(&t.sizes[d]) {
                        return Err(mask_mismatch(&m.sizes, j, &t.sizes, d));
                    }
                }
                found = Some((k, num_ind));
                num_ind += m.dim();
            }
            Some(_) => return Ok(None),
        }
    }
    Ok(found)
}

fn meta_index_put(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (t, values) = (meta_self(a)?, a.tensor("values")?);
    let indices = opt_metas(a)?;
    if indices.len() > t.dim() {
        return Err(too_many(t.dim(), indices.len()));
    }
    if masked_fill_path(t, indices, values, a.bool("accumulate")?)?.is_none() {
        // With a mask the value's shape is checked by the kernel (it needs the mask's count).
        if let Some(result) = index_result_meta(t, indices, true)? {
            check_index_put_value(&result, t, values)?;
        }
    }
    one(t.dtype, t.sizes.clone())
}

fn index_put_kernel(a: &Args<Tensor>, outs: &mut [Tensor]) -> Result<()> {
    let (t, values) = (a.tensor("self")?, a.tensor("values")?);
    let accumulate = a.bool("accumulate")?;
    let indices = opt_tensors(a)?;
    let out = first_out(outs)?;
    let metas: Vec<Option<TensorMeta>> = indices
        .iter()
        .map(|i| i.as_ref().map(TensorMeta::of))
        .collect();
    if indices.len() > t.dim() {
        return Err(too_many(t.dim(), indices.len()));
    }
    let path = masked_fill_path(
        &TensorMeta::of(t),
        &metas,
        &TensorMeta::of(values),
        accumulate,
    )?;
    if let Some((k, first)) = path {
        let Some(mask) = &indices[k] else {
            return Err(Error::value("masked_fill path without a mask"));
        };
        // The mask over dims first.., broadcast over the others.
        let mask = mask.cast_untraced(DType::Bool);
        let sizes = t.sizes_untraced();
        let mut msizes = vec![1; sizes.len()];
        let mut mstrides = vec![0; sizes.len()];
        for (j, (&s, &st)) in mask.sizes_untraced().iter().zip(mask.strides()).enumerate() {
            msizes[first + j] = s;
            mstrides[first + j] = st;
        }
        let m = expanded::<bool>(
            &mask.restride(&msizes, &mstrides, mask.storage_offset())?,
            sizes,
        )?;
        return crate::dispatch_dtype!(t.dtype(), T => {
            let v = values.cast_untraced(t.dtype()).to_vec::<T>()?[0];
            let mut res = t.to_vec::<T>()?;
            for (r, &on) in res.iter_mut().zip(&m) {
                if on {
                    *r = v;
                }
            }
            write_out(out, &res)
        });
    }
    let plan = index_plan(t, indices)?;
    let result: Vec<SymInt> = plan.sizes.iter().map(|&s| SymInt::from(s)).collect();
    check_index_put_value(&result, &TensorMeta::of(t), &TensorMeta::of(values))?;
    let offsets = plan.offsets?;
    crate::dispatch_real_dtype!(t.dtype(), T => {
        let mut res = t.to_vec::<T>()?;
        let vals = expanded::<T>(values, &plan.sizes)?;
        for (&o, &v) in offsets.iter().zip(&vals) {
            res[o] = if accumulate { Reduce::Sum.combine(res[o], v) } else { v };
        }
        write_out(out, &res)
    }, complex => Err(Error::DTypeNotSupported { op: "index_put".into(), dtype: t.dtype() }))
}

// ---- index_copy ---------------------------------------------------------------------------------------

/// PyTorch's `index_copy` meta checks, in its order; returns the wrapped dim.
fn check_index_copy(a: &Args<TensorMeta>) -> Result<usize> {
    let (t, index, src) = (meta_self(a)?, a.tensor("index")?, a.tensor("source")?);
    let d = wrap(a.int("dim")?, t)?;
    if index.dim() > 1 {
        return Err(Error::shape(format!(
            "index_copy_(): Index should have dimension 1 or 0 (got {})",
            index.dim()
        )));
    }
    let n = index.numel();
    if src.dim() == 0 && !n.guard_is_one() {
        return Err(Error::shape(format!(
            "index_copy_(): When source is scalar, index should have one element (got {n})"
        )));
    }
    if src.dim() != 0 && t.dim() != 0 && src.dim() != t.dim() {
        return Err(Error::shape(format!(
            "index_copy_(): When source and destination are not scalars, their dimensionality must match. Source dimensionality ({}), destination dimensionality ({})",
            src.dim(),
            t.dim()
        )));
    }
    if index.dtype != DType::I64 {
        return Err(Error::DType(format!(
            "index_copy_(): Expected a long tensor for index, but got {}",
            index.dtype.scalar_type_name()
        )));
    }
    if t.dtype != src.dtype {
        return Err(Error::DType(format!(
            "index_copy_(): self and source expected to have the same dtype, but got (self) {} and (source) {}",
            t.dtype.scalar_type_name(),
            src.dtype.scalar_type_name()
        )));
    }
    let sliced = |s: &[SymInt]| -> Vec<SymInt> {
        let mut s = s.to_vec();
        if !s.is_empty() && d < s.len() {
            s.remove(d);
        }
        s
    };
    let (ts, ss) = (sliced(&t.sizes), sliced(&src.sizes));
    if ts.len() != ss.len() || ts.iter().zip(&ss).any(|(x, y)| !x.guard_eq(y)) {
        let words = |s: &[SymInt]| {
            s.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        return Err(Error::shape(format!(
            "index_copy_(): Source/destination tensor must have same slice shapes. Destination slice shape: {} at dimension {d} and source slice shape: {} at dimension 0.",
            words(&ts),
            words(&ss)
        )));
    }
    if src.dim() != 0 && !n.guard_eq(&src.sizes[d]) {
        return Err(Error::shape(format!(
            "index_copy_(): Number of indices ({n}) should be equal to source.size(dim) ({})",
            src.sizes[d]
        )));
    }
    Ok(d)
}

fn meta_index_copy(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    check_index_copy(a)?;
    let t = meta_self(a)?;
    one(t.dtype, t.sizes.clone())
}

fn meta_index_copy_(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    check_index_copy(a)?;
    Ok(vec![Value::Tensor(meta_self(a)?.clone())])
}

/// `t` with a 0-d tensor seen as one dim of size 1 (a view).
fn nonempty_view(t: &Tensor) -> Result<Tensor> {
    if t.dim() == 0 {
        t.restride(&[1], &[1], t.storage_offset())
    } else {
        Ok(t.clone())
    }
}

/// Slice `i` of `t` along dim `d` (a view without that dim).
fn slice_at(t: &Tensor, d: usize, i: usize) -> Result<Tensor> {
    let (mut sizes, mut strides) = (t.sizes_untraced().to_vec(), t.strides().to_vec());
    sizes.remove(d);
    let step = strides.remove(d);
    t.restride(&sizes, &strides, t.storage_offset() + i * step)
}

/// `dst.index_copy_(dim, index, source)` for checked arguments: slice `i` of `source` along `dim`
/// goes to slice `index[i]` of `dst` (a later duplicate index wins, as on PyTorch's CPU). Every index
/// is bounds-checked before anything is written.
fn index_copy_into(dst: &Tensor, a: &Args<Tensor>) -> Result<()> {
    let (t, index, src) = (a.tensor("self")?, a.tensor("index")?, a.tensor("source")?);
    let d = wrap_dim(a.int("dim")?, t.dim())?;
    let (dst, src) = (nonempty_view(dst)?, nonempty_view(src)?);
    let n = dst.sizes_untraced()[d];
    let idx = index_values(index)?;
    if let Some(&v) = idx.iter().find(|&&v| v < 0 || v as usize >= n) {
        return Err(Error::shape(format!(
            "index_copy_(): index {v} is out of bounds for dimension {d} with size {n}"
        )));
    }
    for (i, &v) in idx.iter().enumerate() {
        slice_at(&dst, d, v as usize)?.assign_untraced(&slice_at(&src, d, i)?)?;
    }
    Ok(())
}

// ---- select / slice / masked scatter -----------------------------------------------------------------

fn slice_size_mismatch(src: &[SymInt], slice: &[SymInt]) -> Error {
    Error::shape(format!(
        "expected src to have a size equal to the slice of self. src size = {}, slice size = {}",
        fmt_shape(src),
        fmt_shape(slice)
    ))
}

fn meta_select_scatter(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (t, src) = (meta_self(a)?, a.tensor("src")?);
    if t.dim() == 0 {
        return Err(Error::shape(
            "select() cannot be applied to a 0-dim tensor.",
        ));
    }
    let d = wrap(a.int("dim")?, t)?;
    let idx = a.int("index")?;
    let size = &t.sizes[d];
    let real = if idx < 0 {
        SymInt::Int(idx).add(size)
    } else {
        SymInt::Int(idx)
    };
    if real.guard_lt(&SymInt::Int(0)) || !real.guard_lt(size) {
        return Err(Error::shape(format!(
            "select(): index {idx} out of range for tensor of size {} at dimension {d}",
            fmt_shape(&t.sizes),
        )));
    }
    let mut slice = t.sizes.clone();
    slice.remove(d);
    if src.sizes.len() != slice.len() || src.sizes.iter().zip(&slice).any(|(x, y)| !x.guard_eq(y)) {
        return Err(slice_size_mismatch(&src.sizes, &slice));
    }
    one(t.dtype, t.sizes.clone())
}

fn select_scatter_kernel(a: &Args<Tensor>, outs: &mut [Tensor]) -> Result<()> {
    let (t, src) = (a.tensor("self")?, a.tensor("src")?);
    let out = first_out(outs)?;
    out.assign_untraced(t)?;
    let d = wrap_dim(a.int("dim")?, t.dim())?;
    let n = t.sizes_untraced()[d] as i64;
    let idx = a.int("index")?;
    let idx = if idx < 0 { idx + n } else { idx } as usize;
    let (mut sizes, mut strides) = (out.sizes_untraced().to_vec(), out.strides().to_vec());
    sizes.remove(d);
    let step = strides.remove(d);
    out.restride(&sizes, &strides, out.storage_offset() + idx * step)?
        .assign_untraced(src)
}

/// `slice(dim, start, end, step)` of a dim of size `n` as (start, len), clamped like PyTorch.
fn slice_range(n: i64, start: Option<i64>, end: Option<i64>, step: i64) -> Result<(i64, i64)> {
    if step <= 0 {
        return Err(Error::value("slice step must be positive"));
    }
    let clamp = |v: Option<i64>, default: i64| match v {
        None => default,
        Some(v) => {
            let v = if v < 0 { v + n } else { v };
            v.clamp(0, n)
        }
    };
    let s = clamp(start, 0);
    let e = clamp(end, n).max(s);
    // No `e - s + step - 1`: a huge step would overflow.
    Ok((s, if e > s { (e - s - 1) / step + 1 } else { 0 }))
}

fn meta_slice_scatter(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (t, src) = (meta_self(a)?, a.tensor("src")?);
    if t.dim() == 0 {
        return Err(Error::shape("slice() cannot be applied to a 0-dim tensor."));
    }
    let d = wrap(a.int("dim")?, t)?;
    // Over a symbolic dim the src shape is checked by the kernel (assign) instead.
    if let Some(n) = t.sizes[d].as_int() {
        let (_, len) = slice_range(n, a.opt_int("start")?, a.opt_int("end")?, a.int("step")?)?;
        let mut slice = t.sizes.clone();
        slice[d] = SymInt::Int(len);
        if src.sizes.len() != slice.len()
            || src.sizes.iter().zip(&slice).any(|(x, y)| !x.guard_eq(y))
        {
            return Err(slice_size_mismatch(&src.sizes, &slice));
        }
    }
    one(t.dtype, t.sizes.clone())
}

fn slice_scatter_kernel(a: &Args<Tensor>, outs: &mut [Tensor]) -> Result<()> {
    let (t, src) = (a.tensor("self")?, a.tensor("src")?);
    let out = first_out(outs)?;
    out.assign_untraced(t)?;
    let d = wrap_dim(a.int("dim")?, t.dim())?;
    let step = a.int("step")?;
    let n = t.sizes_untraced()[d] as i64;
    let (start, len) = slice_range(n, a.opt_int("start")?, a.opt_int("end")?, step)?;
    let (mut sizes, mut strides) = (out.sizes_untraced().to_vec(), out.strides().to_vec());
    sizes[d] = len as usize;
    let off = out.storage_offset() + start as usize * strides[d];
    if len == 0 {
        return Ok(());
    }
    if len > 1 {
        // len > 1 bounds step by the dim's size, so this cannot overflow.
        strides[d] *= step as usize;
    }
    out.restride(&sizes, &strides, off)?.assign_untraced(src)
}

fn meta_masked_scatter(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (t, mask, source) = (meta_self(a)?, a.tensor("mask")?, a.tensor("source")?);
    // PyTorch broadcasts (mask, self) first, then checks the dtypes.
    let sizes = broadcast_shapes(&[&mask.sizes, &t.sizes])?;
    if t.dtype != source.dtype {
        return Err(Error::DType(format!(
            "masked_scatter: expected self and source to have same dtypes but got{} and {}",
            t.dtype.scalar_type_name(),
            source.dtype.scalar_type_name()
        )));
    }
    if mask.dtype != DType::Bool {
        return Err(Error::DType(format!(
            "masked_scatter_ only supports boolean masks, but got mask with dtype {}",
            mask.dtype.scalar_type_name()
        )));
    }
    one(t.dtype, sizes)
}

fn masked_scatter_kernel(a: &Args<Tensor>, outs: &mut [Tensor]) -> Result<()> {
    let (t, mask, source) = (a.tensor("self")?, a.tensor("mask")?, a.tensor("source")?);
    let out = first_out(outs)?;
    let sizes = out.sizes_untraced().to_vec();
    let m = expanded::<bool>(mask, &sizes)?;
    crate::dispatch_dtype!(t.dtype(), T => {
        let mut res = expanded::<T>(t, &sizes)?;
        let src = source.to_vec::<T>()?;
        let mut k = 0;
        for (r, &on) in res.iter_mut().zip(&m) {
            if on {
                *r = *src.get(k).ok_or_else(|| {
                    Error::shape("Number of elements of source < number of ones in mask")
                })?;
                k += 1;
            }
        }
        write_out(out, &res)
    })
}

// ---- diagonal (a view) -------------------------------------------------------------------------------

fn meta_diagonal(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    let (o, a1, a2) = (a.int("offset")?, a.int("dim1")?, a.int("dim2")?);
    // Sizes never exceed MAX_NUMEL, so clamping keeps the result and keeps the arithmetic in range.
    let lim = crate::tensor::MAX_NUMEL as i64;
    let o = o.clamp(-lim, lim);
    let (d1, d2) = (wrap(a1, t)?, wrap(a2, t)?);
    if d1 == d2 {
        return Err(Error::shape(format!(
            "diagonal dimensions cannot be identical {a1}, {a2}"
        )));
    }
    let zero = SymInt::Int(0);
    let (s1, s2) = (&t.sizes[d1], &t.sizes[d2]);
    let len = if o >= 0 {
        s1.min(&s2.sub(&SymInt::Int(o)))
    } else {
        s1.add(&SymInt::Int(o)).min(s2)
    }
    .max(&zero);
    let mut offset = t.offset.clone();
    if !len.guard_eq(&zero) {
        offset = if o >= 0 {
            offset.add(&t.strides[d2].mul(&SymInt::Int(o)))
        } else {
            offset.add(&t.strides[d1].mul(&SymInt::Int(-o)))
        };
    }
    let keep: Vec<usize> = (0..t.dim()).filter(|&d| d != d1 && d != d2).collect();
    let mut sizes: Vec<SymInt> = keep.iter().map(|&d| t.sizes[d].clone()).collect();
    let mut strides: Vec<SymInt> = keep.iter().map(|&d| t.strides[d].clone()).collect();
    sizes.push(len);
    strides.push(t.strides[d1].add(&t.strides[d2]));
    Ok(vec![Value::Tensor(TensorMeta {
        dtype: t.dtype,
        sizes,
        strides,
        offset,
    })])
}

fn diagonal_kernel(a: &Args<Tensor>, outs: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    let t = a.tensor("self")?;
    let Some(Value::Tensor(m)) = outs.first() else {
        return Err(Error::value("view meta missing"));
    };
    let off = m
        .offset
        .as_int()
        .filter(|o| *o >= 0)
        .ok_or_else(|| Error::Symbolic("symbolic storage offset".into()))?;
    out1(t.restride(
        &m.concrete_sizes()?,
        &concrete_usizes(&m.strides)?,
        off as usize,
    )?)
}

fn meta_nonzero(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    meta_self(a)?;
    Err(Error::DataDependent(
        "aten.nonzero: the number of nonzero elements depends on the data".into(),
    ))
}

/// The indices of the nonzero elements, one row per element in row-major order (int64 `[n, ndim]`).
fn nonzero(a: &Args<Tensor>, _: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    let t = a.tensor("self")?;
    let sizes = t.sizes_untraced().to_vec();
    let nd = sizes.len();
    let flags: Vec<bool> = crate::dispatch_dtype!(t.dtype(), T => t.to_vec::<T>()?.into_iter().map(|x| x.is_nonzero()).collect());
    let mut rows = vec![];
    let mut count = 0usize;
    for (flat, &nz) in flags.iter().enumerate() {
        if !nz {
            continue;
        }
        count += 1;
        let mut rem = flat;
        let mut idx = vec![0i64; nd];
        for d in (0..nd).rev() {
            idx[d] = (rem % sizes[d].max(1)) as i64;
            rem /= sizes[d].max(1);
        }
        rows.extend(idx);
    }
    out1(Tensor::from_vec(rows, &[count, nd])?)
}

#[cfg(test)]
mod tests {
    use crate::ops::{call, Value};
    use crate::Tensor;

    #[test]
    fn a_boolean_mask_sizes_the_output_in_the_kernel_only() {
        let x = Tensor::arange_f32(4);
        let mask = Tensor::from_vec(vec![true, false, true, true], &[4]).unwrap();
        let def = crate::ops::registry().get("aten.index.Tensor").unwrap();
        let args = crate::ops::value::Args::bind(
            &def.schema,
            vec![Value::from(&x), Value::OptTensors(vec![Some(mask)])],
            vec![],
        )
        .unwrap();
        assert!(matches!(
            def.meta_of(&args),
            Err(crate::Error::DataDependent(_))
        ));
        let Value::Tensor(y) = &def.run(&args).unwrap()[0] else {
            panic!("index returns a tensor")
        };
        assert_eq!(y.to_vec::<f32>().unwrap(), vec![0.0, 2.0, 3.0]);
    }

    /// Random calls with int64 indices (the registry-wide no-panic test mostly passes float tensors,
    /// which these ops reject early): every call returns Ok or Err.
    #[test]
    fn random_index_calls_never_panic() {
        let seed = std::cell::Cell::new(0x9e37_79b9_7f4a_7c15u64);
        let next = |n: u64| {
            let mut x = seed.get();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            seed.set(x);
            x % n
        };
        let ints = [-1i64, 0, 1, 2, 3, -4, 5, i64::MAX, i64::MIN];
        for trial in 0..4000 {
            let tensor = |int: bool| {
                let rank = next(4) as usize;
                let sizes: Vec<usize> = (0..rank).map(|_| next(4) as usize).collect();
                let n: usize = sizes.iter().product();
                let t = if int {
                    Tensor::from_vec(
                        (0..n).map(|_| next(11) as i64 - 5).collect::<Vec<_>>(),
                        &sizes,
                    )
                } else {
                    Tensor::from_vec((0..n).map(|i| i as f32).collect::<Vec<_>>(), &sizes)
                };
                let t = t.unwrap();
                match next(4) {
                    0 => t.cast_untraced(crate::DType::Bool),
                    1 if int => t.cast_untraced(crate::DType::I32),
                    _ => t,
                }
            };
            let (x, i, src) = (tensor(false), tensor(true), tensor(false));
            let dim = Value::Int(ints[next(ints.len() as u64) as usize].into());
            let int2 = Value::Int(ints[next(ints.len() as u64) as usize].into());
            let opt: Vec<Option<Tensor>> = (0..next(4))
                .map(|_| (next(3) > 0).then(|| tensor(true)))
                .collect();
            let calls: Vec<(&str, Vec<Value<Tensor>>)> = vec![
                (
                    "aten.gather.default",
                    vec![Value::from(&x), dim.clone(), Value::from(&i)],
                ),
                (
                    "aten.index_select.default",
                    vec![Value::from(&x), dim.clone(), Value::from(&i)],
                ),
                (
                    "aten.index.Tensor",
                    vec![Value::from(&x), Value::OptTensors(opt.clone())],
                ),
                (
                    "aten.scatter.src",
                    vec![
                        Value::from(&x),
                        dim.clone(),
                        Value::from(&i),
                        Value::from(&src),
                    ],
                ),
                (
                    "aten.scatter_add.default",
                    vec![
                        Value::from(&x),
                        dim.clone(),
                        Value::from(&i),
                        Value::from(&src),
                    ],
                ),
                (
                    "aten.index_put.default",
                    vec![
                        Value::from(&x),
                        Value::OptTensors(opt),
                        Value::from(&src),
                        Value::Bool(trial % 2 == 0),
                    ],
                ),
                (
                    "aten.select_scatter.default",
                    vec![
                        Value::from(&x),
                        Value::from(&src),
                        dim.clone(),
                        int2.clone(),
                    ],
                ),
                (
                    "aten.slice_scatter.default",
                    vec![
                        Value::from(&x),
                        Value::from(&src),
                        dim.clone(),
                        int2.clone(),
                        Value::None,
                        int2.clone(),
                    ],
                ),
                (
                    "aten.masked_scatter.default",
                    vec![
                        Value::from(&x),
                        Value::from(&i.cast_untraced(crate::DType::Bool)),
                        Value::from(&src),
                    ],
                ),
                (
                    "aten.diagonal.default",
                    vec![
                        Value::from(&x),
                        int2.clone(),
                        dim.clone(),
                        Value::Int(0.into()),
                    ],
                ),
            ];
            for (op, args) in calls {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    call(op, args.clone(), vec![])
                }));
                assert!(r.is_ok(), "{op} panicked on {args:?}");
            }
        }
    }

    #[test]
    fn all_none_indices_are_an_error_not_a_panic() {
        let x = Tensor::arange_f32(6);
        for op in ["aten.index.Tensor", "aten.index_put.default"] {
            let mut args = vec![Value::from(&x), Value::OptTensors(vec![None])];
            if op == "aten.index_put.default" {
                args.push(Value::from(&Tensor::scalar(1.0f32)));
            }
            let e = call(op, args, vec![]).unwrap_err();
            assert_eq!(
                e.to_string(),
                "advanced indexing needs at least one index tensor"
            );
        }
    }
}
