//! Indexing: gather/scatter along a dim, advanced indexing (`index`, `index_put`), index_select,
//! select/slice/masked scatters and the `diagonal` view.
//!
//! Kernels copy their inputs to row-major vectors and compute element offsets into them; the output
//! is written once into the tensor the caller allocated.
use super::*;
use crate::tensor::kernels::elementwise::broadcast_strides;
use crate::tensor::{contiguous_strides, strided, Element};

pub(super) fn register(r: &mut Builder) {
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
    check_gather_index_dtype("gather", index)?;
    let (ts, is) = (nonempty_sym(&t.sizes), nonempty_sym(&index.sizes));
    if ts.len() != is.len() {
        return Err(Error::shape(
            "Index tensor must have the same number of dimensions as input tensor",
        ));
    }
    if !index.numel().guard_eq(&SymInt::Int(0)) {
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
    if !matches!(index.dtype, DType::I64 | DType::I32) {
        return Err(Error::DType(
            "index_select(): Expected dtype int32 or int64 for index".into(),
        ));
    }
    let n = index.numel();
    if t.dim() == 0 {
        if !n.guard_is_one() {
            return Err(Error::shape(format!(
                "index_select(): Index to scalar can have only 1 value, got {n} value(s)"
            )));
        }
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
    let mut picked = Vec::with_capacity(idx.len());
    for &v in &idx {
        if v < 0 || v as usize >= ts[d] {
            return Err(Error::shape("index out of range in self"));
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
            "amax" => Reduce::Amax,
            "amin" => Reduce::Amin,
            _ => {
                return Err(Error::value(format!(
                    "reduce argument must be either sum, prod, mean, amax or amin, got {s}"
                )))
            }
        })
    }
    /// `acc <op> v` in `T`'s arithmetic (integers wrap like C++; bool sum is `or`, prod `and`).
    fn combine<T: Element>(self, acc: T, v: T) -> T {
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
    check_gather_index_dtype("scatter", index)?;
    let src = match a.schema.arg_index("src") {
        Some(_) => Some(a.tensor("src")?),
        None => None,
    };
    if let Some(s) = src {
        if s.dtype != t.dtype {
            return Err(Error::DType(
                "scatter(): Expected self.dtype to be equal to src.dtype".into(),
            ));
        }
    }
    if a.schema.arg_index("reduce").is_some() {
        let r = Reduce::parse(a.str("reduce")?)?;
        if r == Reduce::Mean && t.dtype == DType::Bool {
            return Err(Error::DTypeNotSupported {
                op: "scatter_gather_tensor_cpu_reduce_mean".into(),
                dtype: t.dtype,
            });
        }
    }
    let (ts, is) = (nonempty_sym(&t.sizes), nonempty_sym(&index.sizes));
    if ts.len() != is.len() {
        return Err(Error::shape(
            "Index tensor must have the same number of dimensions as self tensor",
        ));
    }
    if let Some(s) = src {
        if nonempty_sym(&s.sizes).len() != is.len() {
            return Err(Error::shape(
                "Index tensor must have the same number of dimensions as src tensor",
            ));
        }
    }
    if !index.numel().guard_eq(&SymInt::Int(0)) {
        let ss = src.map(|s| nonempty_sym(&s.sizes));
        for i in 0..ts.len() {
            let too_big_self = i != d && ts[i].guard_lt(&is[i]);
            let too_big_src = ss.as_ref().is_some_and(|ss| ss[i].guard_lt(&is[i]));
            if too_big_self || too_big_src {
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
    crate::dispatch_dtype!(t.dtype(), T => {
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
    })
}

// ---- advanced indexing ---------------------------------------------------------------------------------

/// One entry of an expanded index list: a dim left alone, or int64 positions with their shape.
enum Ix {
    Full,
    Pos(Vec<i64>, Vec<usize>),
}

/// Expands `Tensor?[]` indices (boolean masks become one position list per mask dim, like PyTorch's
/// `expandTensors`), validating as PyTorch does.
fn expand_indices(self_sizes: &[usize], indices: &[Option<Tensor>]) -> Result<Vec<Ix>> {
    let nd = self_sizes.len();
    if indices.is_empty() {
        return Err(Error::shape("at least one index must be provided"));
    }
    let mut out = Vec::new();
    for ix in indices {
        let Some(t) = ix else {
            out.push(Ix::Full);
            continue;
        };
        match t.dtype() {
            DType::Bool | DType::U8 => {
                let ms = t.sizes_untraced();
                let start = out.len();
                for (j, &m) in ms.iter().enumerate() {
                    if start + j >= nd {
                        return Err(too_many(nd, start + ms.len()));
                    }
                    if m != self_sizes[start + j] {
                        return Err(mask_mismatch(ms, j, self_sizes, start + j));
                    }
                }
                let flags: Vec<bool> = crate::dispatch_dtype!(t.dtype(), T => {
                    t.to_vec::<T>()?.into_iter().map(|x| x.is_nonzero()).collect()
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
                out.extend(pos.into_iter().map(|p| Ix::Pos(p, vec![n])));
            }
            DType::I64 | DType::I32 => {
                out.push(Ix::Pos(index_values(t)?, t.sizes_untraced().to_vec()))
            }
            _ => return Err(bad_index_dtype()),
        }
    }
    if out.len() > nd {
        return Err(too_many(nd, out.len()));
    }
    while out.len() < nd {
        out.push(Ix::Full);
    }
    Ok(out)
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

fn broadcast_indices(shapes: &[&[usize]]) -> Result<Vec<usize>> {
    let sym: Vec<Vec<SymInt>> = shapes
        .iter()
        .map(|s| s.iter().map(|&x| SymInt::from(x)).collect())
        .collect();
    let refs: Vec<&[SymInt]> = sym.iter().map(|s| s.as_slice()).collect();
    let b = broadcast_shapes(&refs).map_err(|_| {
        let list: Vec<String> = shapes.iter().map(|s| fmt_shape(s)).collect();
        Error::shape(format!(
            "shape mismatch: indexing tensors could not be broadcast together with shapes {}",
            list.join(", ")
        ))
    })?;
    concrete_usizes(&b)
}

/// Where advanced indexing reads: the result's sizes and, per result element, the row-major offset
/// into `self`.
struct IndexPlan {
    sizes: Vec<usize>,
    offsets: Vec<usize>,
}

fn index_plan(self_sizes: &[usize], indices: &[Option<Tensor>]) -> Result<IndexPlan> {
    let ix = expand_indices(self_sizes, indices)?;
    let st = contiguous_strides(self_sizes);
    let indexed: Vec<usize> = (0..ix.len())
        .filter(|&d| matches!(ix[d], Ix::Pos(..)))
        .collect();
    let shapes: Vec<&[usize]> = ix
        .iter()
        .filter_map(|i| match i {
            Ix::Pos(_, s) => Some(s.as_slice()),
            Ix::Full => None,
        })
        .collect();
    if indexed.is_empty() {
        // PyTorch fails an internal assert here.
        return Err(Error::value(
            "advanced indexing needs at least one index tensor",
        ));
    }
    let b = broadcast_indices(&shapes)?;
    let nb: usize = b.iter().product();
    // Offset contributed by the indexed dims at each broadcast position.
    let mut idx_off = vec![0usize; nb];
    // PyTorch's message numbers the index tensors, not the dims they index.
    for (k, &d) in indexed.iter().enumerate() {
        let Ix::Pos(vals, shape) = &ix[d] else {
            continue;
        };
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
    // Adjacent indexed dims keep their place; otherwise the broadcast dims go first (NumPy's rule).
    let (first, last) = (indexed[0], indexed[indexed.len() - 1]);
    let adjacent = last - first + 1 == indexed.len();
    let rest =
        |r: std::ops::Range<usize>| -> Vec<usize> { r.filter(|d| !indexed.contains(d)).collect() };
    let (before, after) = if adjacent {
        (rest(0..first), rest(last + 1..self_sizes.len()))
    } else {
        (vec![], rest(0..self_sizes.len()))
    };
    let pick = |ds: &[usize], v: &[usize]| -> Vec<usize> { ds.iter().map(|&d| v[d]).collect() };
    let before_off = offsets(&pick(&before, self_sizes), &pick(&before, &st));
    let after_off = offsets(&pick(&after, self_sizes), &pick(&after, &st));
    let mut sizes = pick(&before, self_sizes);
    sizes.extend_from_slice(&b);
    sizes.extend(pick(&after, self_sizes));
    let mut offs = Vec::with_capacity(before_off.len() * nb * after_off.len());
    for &x in &before_off {
        for &y in &idx_off {
            offs.extend(after_off.iter().map(|&z| x + y + z));
        }
    }
    Ok(IndexPlan {
        sizes,
        offsets: offs,
    })
}

/// Checks index dtypes, count and mask shapes on metadata (what can be known without data).
fn check_index_metas(t: &TensorMeta, indices: &[Option<TensorMeta>]) -> Result<()> {
    if indices.is_empty() {
        return Err(Error::shape("at least one index must be provided"));
    }
    let mut d = 0;
    for m in indices.iter().flatten() {
        if !matches!(m.dtype, DType::I64 | DType::I32 | DType::Bool | DType::U8) {
            return Err(bad_index_dtype());
        }
    }
    for ix in indices {
        match ix {
            Some(m) if matches!(m.dtype, DType::Bool | DType::U8) => {
                for (j, s) in m.sizes.iter().enumerate() {
                    if d + j >= t.dim() {
                        break;
                    }
                    if !s.guard_eq(&t.sizes[d + j]) {
                        return Err(mask_mismatch(&m.sizes, j, &t.sizes, d + j));
                    }
                }
                d += m.dim();
            }
            _ => d += 1,
        }
    }
    if d > t.dim() {
        return Err(too_many(t.dim(), d));
    }
    Ok(())
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
    let indices = opt_metas(a)?;
    check_index_metas(t, indices)?;
    let mut ix: Vec<Option<&TensorMeta>> = vec![];
    let mut has_mask = false;
    for i in indices {
        match i {
            Some(m) if matches!(m.dtype, DType::Bool | DType::U8) => {
                has_mask = true;
                ix.extend(std::iter::repeat_n(Some(m), m.dim()));
            }
            other => ix.push(other.as_ref()),
        }
    }
    ix.resize(t.dim(), None);
    let indexed: Vec<usize> = (0..ix.len()).filter(|&d| ix[d].is_some()).collect();
    let Some((&first, &last)) = indexed.first().zip(indexed.last()) else {
        return Err(Error::value(
            "advanced indexing needs at least one index tensor",
        ));
    };
    if has_mask {
        // PyTorch gives the count of true elements an unbacked symbol; oxport does not model those.
        return Err(Error::DataDependent(
            "aten.index.Tensor with a boolean mask: the output size depends on the mask's values"
                .into(),
        ));
    }
    let b = {
        let shapes: Vec<&[SymInt]> = indices
            .iter()
            .flatten()
            .map(|m| m.sizes.as_slice())
            .collect();
        broadcast_shapes(&shapes).map_err(|_| {
            let list: Vec<String> = shapes.iter().map(|s| fmt_shape(s)).collect();
            Error::shape(format!(
                "shape mismatch: indexing tensors could not be broadcast together with shapes {}",
                list.join(", ")
            ))
        })?
    };
    let adjacent = last - first + 1 == indexed.len();
    let mut sizes = vec![];
    if adjacent {
        sizes.extend((0..first).map(|d| t.sizes[d].clone()));
        sizes.extend(b);
        sizes.extend((last + 1..t.dim()).map(|d| t.sizes[d].clone()));
    } else {
        sizes.extend(b);
        sizes.extend(
            (0..t.dim())
                .filter(|&d| ix[d].is_none())
                .map(|d| t.sizes[d].clone()),
        );
    }
    one(t.dtype, sizes)
}

fn index_kernel(a: &Args<Tensor>, _: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    let t = a.tensor("self")?;
    let plan = index_plan(t.sizes_untraced(), opt_tensors(a)?)?;
    crate::dispatch_dtype!(t.dtype(), T => {
        let src = t.to_vec::<T>()?;
        let res: Vec<T> = plan.offsets.iter().map(|&o| src[o]).collect();
        out1(Tensor::from_vec(res, &plan.sizes)?)
    })
}

fn meta_index_put(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (t, values) = (meta_self(a)?, a.tensor("values")?);
    check_index_metas(t, opt_metas(a)?)?;
    if values.dtype != t.dtype {
        return Err(Error::DType(format!(
            "Index put requires the source and destination dtypes match, got {} for the destination and {} for the source.",
            t.dtype.scalar_type_name(),
            values.dtype.scalar_type_name()
        )));
    }
    one(t.dtype, t.sizes.clone())
}

/// True if `from` broadcasts to `to` (one-directional, like `expand`).
fn expands_to(from: &[usize], to: &[usize]) -> bool {
    from.len() <= to.len()
        && from
            .iter()
            .rev()
            .zip(to.iter().rev())
            .all(|(&f, &t)| f == t || f == 1)
}

fn index_put_kernel(a: &Args<Tensor>, outs: &mut [Tensor]) -> Result<()> {
    let (t, values) = (a.tensor("self")?, a.tensor("values")?);
    let accumulate = a.bool("accumulate")?;
    let plan = index_plan(t.sizes_untraced(), opt_tensors(a)?)?;
    if !expands_to(values.sizes_untraced(), &plan.sizes) {
        return Err(Error::shape(format!(
            "shape mismatch: value tensor of shape {} cannot be broadcast to indexing result of shape {}",
            fmt_shape(values.sizes_untraced()),
            fmt_shape(&plan.sizes)
        )));
    }
    let out = first_out(outs)?;
    crate::dispatch_dtype!(t.dtype(), T => {
        let mut res = t.to_vec::<T>()?;
        let vals = expanded::<T>(values, &plan.sizes)?;
        for (&o, &v) in plan.offsets.iter().zip(&vals) {
            res[o] = if accumulate { Reduce::Sum.combine(res[o], v) } else { v };
        }
        write_out(out, &res)
    })
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
            "select(): index {idx} out of range for tensor of size {} at dimension {}",
            fmt_shape(&t.sizes),
            a.int("dim")?
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
    if mask.dtype != DType::Bool {
        return Err(Error::DType(format!(
            "masked_scatter_ only supports boolean masks, but got mask with dtype {}",
            mask.dtype.scalar_type_name()
        )));
    }
    if t.dtype != source.dtype {
        return Err(Error::DType(format!(
            "masked_scatter: expected self and source to have same dtypes but got{} and {}",
            t.dtype.scalar_type_name(),
            source.dtype.scalar_type_name()
        )));
    }
    one(t.dtype, broadcast_shapes(&[&t.sizes, &mask.sizes])?)
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
