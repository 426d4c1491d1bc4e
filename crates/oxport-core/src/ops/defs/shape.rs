//! Views and data movement: view/reshape, permute/transpose, expand, select/slice, squeeze/unsqueeze,
//! flatten/unflatten, cat/stack/split, clone/contiguous/copy_/casts.
//!
//! View ops return tensors sharing the input's storage, exactly where PyTorch does.
use super::*;
use crate::dtype::promote_types;
use crate::tensor::contiguous_strides;

pub(super) fn register(r: &mut Builder) {
    r.op("aten.view.default", meta_view, |a, o| {
        view_kernel(a, o, false)
    });
    r.op("aten._unsafe_view.default", meta_reshape, |a, o| {
        view_kernel(a, o, true)
    });
    r.op("aten.reshape.default", meta_reshape, |a, o| {
        view_kernel(a, o, true)
    })
    .decomposition(decompositions::reshape);
    r.op("aten.flatten.using_ints", meta_flatten, |a, o| {
        view_kernel(a, o, true)
    })
    .decomposition(decompositions::flatten);
    r.op("aten.unflatten.int", meta_unflatten, |a, o| {
        view_kernel(a, o, false)
    })
    .decomposition(decompositions::unflatten);
    r.op("aten.permute.default", meta_geometry, geometry_kernel);
    r.op("aten.transpose.int", meta_geometry, geometry_kernel)
        .decomposition(decompositions::transpose);
    r.op("aten.t.default", meta_geometry, geometry_kernel);
    r.op("aten.expand.default", meta_geometry, geometry_kernel);
    r.op("aten.select.int", meta_geometry, geometry_kernel);
    r.op("aten.slice.Tensor", meta_geometry, geometry_kernel);
    // A view: `slice(self, dim, start, start + length)` (its C++ composite).
    r.decomposed("aten.narrow.default", meta_geometry, decompositions::narrow);
    r.op("aten.squeeze.default", meta_geometry, geometry_kernel);
    r.op("aten.squeeze.dim", meta_geometry, geometry_kernel)
        .decomposition(decompositions::squeeze_dim);
    r.op("aten.squeeze.dims", meta_geometry, geometry_kernel);
    r.op("aten.unsqueeze.default", meta_geometry, geometry_kernel);
    r.op("aten.alias.default", meta_geometry, geometry_kernel);
    r.op("aten.as_strided.default", meta_geometry, geometry_kernel);
    r.op("aten.flip.default", meta_flip, flip);
    // Run through PyTorch's decomposition (arange, fmod, index_select per dim).
    r.decomposed("aten.roll.default", meta_roll, decompositions::roll);
    // In place: the value written through the view.
    r.op("aten.fill_.Scalar", meta_same, |a, _| {
        let t = a.tensor("self")?;
        super::fill_pad::fill_into(t, a.scalar("value")?)?;
        out1(t.clone())
    });
    // In place: zeros written through the view.
    r.op("aten.zero_.default", meta_same, |a, _| {
        let t = a.tensor("self")?;
        super::fill_pad::fill_into(t, crate::Scalar::Int(0))?;
        out1(t.clone())
    });
    r.op("aten.clone.default", meta_copy_like, |a, _| {
        out1(materialize(a.tensor("self")?))
    });
    // Autograd is not modelled: detaching returns the tensor itself (in place) or a view of it.
    r.op("aten.detach_.default", meta_same, |a, _| {
        out1(a.tensor("self")?.clone())
    })
    .decomposition(decompositions::detach);
    r.op("aten.detach.default", meta_same, |a, _| {
        out1(a.tensor("self")?.clone())
    })
    .decomposition(decompositions::detach);
    r.op("aten.pad.default", meta_pad, pad_kernel);
    r.op("aten.lift_fresh_copy.default", meta_copy_like, |a, _| {
        out1(materialize(a.tensor("self")?))
    })
    .decomposition(decompositions::lift_fresh_copy);
    r.op("aten.contiguous.default", meta_copy_like, |a, _| {
        out1(a.tensor("self")?.contiguous_untraced())
    })
    .decomposition(decompositions::contiguous);
    r.op("aten._to_copy.default", meta_to_copy, |a, o| {
        out1(a.tensor("self")?.cast_untraced(out_dtype(o, 0)?))
    });
    // `Tensor.to(...)`: the tensor itself when nothing changes (and no copy is asked), else a converted
    // copy. Every device is the CPU here (programs exported on CUDA run on the CPU).
    for (name, d) in [
        ("aten.to.dtype", decompositions::to_dtype as DecompFn),
        ("aten.to.device", decompositions::to_device),
        ("aten.to.dtype_layout", decompositions::to_dtype_layout),
    ] {
        r.op(name, meta_to_dtype, |a, o| {
            let t = a.tensor("self")?;
            let dt = out_dtype(o, 0)?;
            out1(if dt == t.dtype() && !a.bool("copy")? {
                t.clone()
            } else {
                t.cast_untraced(dt)
            })
        })
        .decomposition(d);
    }
    r.op("aten.copy_.default", meta_copy_, |a, _| {
        let (dst, src) = (a.tensor("self")?, a.tensor("src")?);
        let st = crate::tensor::kernels::elementwise::broadcast_strides(src, dst.sizes());
        let expanded = src.restride(dst.sizes(), &st, src.storage_offset())?;
        dst.assign_untraced(&expanded)?;
        out1(dst.clone())
    });
    r.op("aten.cat.default", meta_cat, cat_kernel);
    r.op("aten.stack.default", meta_stack, stack_kernel);
    r.op("aten.split_with_sizes.default", meta_split, split_kernel);
    r.op("aten.chunk.default", meta_split, split_kernel);
    r.op("aten.split.Tensor", meta_split, split_kernel);
    r.op("aten.unbind.int", meta_split, split_kernel);
    // Views and copies move elements without computing on them: complex tensors too.
    r.complex_ops(&[
        "aten.view.default",
        "aten._unsafe_view.default",
        "aten.reshape.default",
        "aten.flatten.using_ints",
        "aten.unflatten.int",
        "aten.permute.default",
        "aten.transpose.int",
        "aten.t.default",
        "aten.expand.default",
        "aten.select.int",
        "aten.slice.Tensor",
        "aten.narrow.default",
        "aten.squeeze.default",
        "aten.squeeze.dim",
        "aten.squeeze.dims",
        "aten.unsqueeze.default",
        "aten.alias.default",
        "aten.clone.default",
        "aten.detach.default",
        "aten.contiguous.default",
        "aten._to_copy.default",
        "aten.to.dtype",
        "aten.copy_.default",
        "aten.cat.default",
        "aten.stack.default",
        "aten.split_with_sizes.default",
        "aten.split.Tensor",
        "aten.unbind.int",
        "aten.pad.default",
    ]);
}

/// A clone: always a fresh contiguous copy.
fn materialize(t: &Tensor) -> Tensor {
    Tensor::from_buffer_checked(t.to_buffer(), t.sizes())
        .expect("sizes match a copy of the same tensor")
}

// ---- view / reshape ----------------------------------------------------------------------------------

/// Resolves a single `-1` in a requested shape (PyTorch's `infer_size`).
fn infer_size(shape: &[SymInt], numel: &SymInt) -> Result<Vec<SymInt>> {
    let mut infer = None;
    let mut known = SymInt::Int(1);
    for (i, s) in shape.iter().enumerate() {
        match s.as_int() {
            Some(-1) => {
                if infer.is_some() {
                    return Err(Error::shape("only one dimension can be inferred"));
                }
                infer = Some(i);
            }
            Some(v) if v < 0 => return Err(Error::shape(format!("invalid shape dimension {v}"))),
            _ => known = known.mul(s),
        }
    }
    let bad = || {
        Error::shape(format!(
            "shape '{}' is invalid for input of size {}",
            fmt_shape(shape),
            numel
        ))
    };
    let mut out = shape.to_vec();
    if let Some(i) = infer {
        if known.guard_eq(&SymInt::Int(0)) && numel.guard_eq(&SymInt::Int(0)) {
            return Err(Error::shape(format!(
                "cannot reshape tensor of 0 elements into shape {} because the unspecified dimension size -1 can be any value and is ambiguous",
                fmt_shape(shape)
            )));
        }
        if known.guard_eq(&SymInt::Int(0)) || !numel.modulo(&known).guard_eq(&SymInt::Int(0)) {
            return Err(bad());
        }
        out[i] = numel.floor_div(&known);
    } else if !known.guard_eq(numel) {
        return Err(bad());
    }
    Ok(out)
}

/// PyTorch's `computeStride`: strides for viewing (sizes, strides) as `new`, if possible without a copy.
///
/// ```
/// use oxport_core::ops::view_strides;
/// assert_eq!(view_strides(&[2, 3], &[3, 1], &[6]), Some(vec![1]));
/// assert_eq!(view_strides(&[2, 3], &[1, 2], &[6]), None); // a transposed tensor needs a copy
/// ```
pub fn view_strides(sizes: &[usize], strides: &[usize], new: &[usize]) -> Option<Vec<usize>> {
    if sizes.is_empty() {
        // A 0-d tensor views as any shape of one element.
        return Some(vec![1; new.len()]);
    }
    let numel: usize = sizes.iter().product();
    if numel == 0 {
        return if sizes == new {
            Some(strides.to_vec())
        } else {
            Some(contiguous_strides(new))
        };
    }
    let mut out = vec![0usize; new.len()];
    let mut view_d = new.len() as isize - 1;
    let mut chunk_base_stride = *strides.last().unwrap_or(&1);
    let mut tensor_numel = 1usize;
    let mut view_numel = 1usize;
    for tensor_d in (0..sizes.len()).rev() {
        tensor_numel *= sizes[tensor_d];
        if tensor_d == 0
            || (sizes[tensor_d - 1] != 1
                && strides[tensor_d - 1] != tensor_numel * chunk_base_stride)
        {
            while view_d >= 0 && (view_numel < tensor_numel || new[view_d as usize] == 1) {
                out[view_d as usize] = view_numel * chunk_base_stride;
                view_numel *= new[view_d as usize];
                view_d -= 1;
            }
            if view_numel != tensor_numel {
                return None;
            }
            if tensor_d > 0 {
                chunk_base_stride = strides[tensor_d - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    if view_d != -1 {
        return None;
    }
    Some(out)
}

fn view_meta(t: &TensorMeta, new: Vec<SymInt>, allow_copy: bool) -> Result<Vec<Value<TensorMeta>>> {
    let (Ok(old), Ok(olds), Ok(newc)) = (
        t.concrete_sizes(),
        concrete_usizes(&t.strides),
        concrete_usizes(&new),
    ) else {
        return Ok(vec![Value::Tensor(TensorMeta::contiguous(t.dtype, new))]);
    };
    match view_strides(&old, &olds, &newc) {
        Some(st) => Ok(vec![Value::Tensor(TensorMeta {
            dtype: t.dtype,
            sizes: new,
            strides: st.into_iter().map(SymInt::from).collect(),
            offset: t.offset.clone(),
        })]),
        None if allow_copy => one(t.dtype, new),
        None => Err(Error::shape(
            "view size is not compatible with input tensor's size and stride (at least one dimension spans across two contiguous subspaces). Use .reshape(...) instead.",
        )),
    }
}

fn meta_view(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    let new = infer_size(a.symints("size")?, &t.numel())?;
    view_meta(t, new, false)
}

fn meta_reshape(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    let shape = a.symints("shape").or_else(|_| a.symints("size"))?;
    let new = infer_size(shape, &t.numel())?;
    view_meta(t, new, true)
}

fn meta_flatten(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    if t.dim() == 0 {
        return view_meta(t, vec![SymInt::Int(1)], true);
    }
    let s = wrap(a.int("start_dim")?, t)?;
    let e = wrap(a.int("end_dim")?, t)?;
    if s > e {
        return Err(Error::value(
            "flatten() has invalid args: start_dim cannot come after end_dim",
        ));
    }
    let mut new: Vec<SymInt> = t.sizes[..s].to_vec();
    new.push(t.sizes[s..=e].iter().fold(SymInt::Int(1), |x, y| x.mul(y)));
    new.extend_from_slice(&t.sizes[e + 1..]);
    view_meta(t, new, true)
}

fn meta_unflatten(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    if t.dim() == 0 {
        return Err(Error::shape(
            "unflatten: Dimension specified as 0 but tensor has no dimensions",
        ));
    }
    let d = wrap(a.int("dim")?, t)?;
    let sizes = a.symints("sizes")?;
    if sizes.is_empty() {
        return Err(Error::value("unflatten: sizes must be non-empty"));
    }
    let inner = infer_size(sizes, &t.sizes[d]).map_err(|_| {
        Error::shape(format!(
            "unflatten: Provided sizes {} don't multiply up to the size of dim {} ({}) in the input tensor",
            fmt_shape(sizes),
            a.int("dim").unwrap_or(0),
            t.sizes[d]
        ))
    })?;
    let mut new: Vec<SymInt> = t.sizes[..d].to_vec();
    new.extend(inner);
    new.extend_from_slice(&t.sizes[d + 1..]);
    view_meta(t, new, false)
}

fn view_kernel(
    a: &Args<Tensor>,
    outs: &[Value<TensorMeta>],
    allow_copy: bool,
) -> Result<Vec<Value<Tensor>>> {
    let t = a.tensor("self")?;
    let new = out_sizes(outs, 0)?;
    match view_strides(t.sizes(), t.strides(), &new) {
        Some(st) => out1(t.restride(&new, &st, t.storage_offset())?),
        None if allow_copy => out1(Tensor::from_buffer_checked(t.to_buffer(), &new)?),
        None => Err(Error::shape(
            "view size is not compatible with input tensor's size and stride",
        )),
    }
}

// ---- pure geometry views: the meta computes sizes/strides/offset, the kernel restrides ----------------

fn meta_geometry(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    let mut sizes = t.sizes.clone();
    let mut strides = t.strides.clone();
    let mut offset = t.offset.clone();
    let nd = t.dim();
    match a.schema.op_name().as_str() {
        "aten.permute.default" => {
            let dims = a.ints("dims")?;
            if dims.len() != nd {
                return Err(Error::shape(format!(
                    "permute(sparse_coo): number of dimensions in the tensor input does not match the length of the desired ordering of dimensions i.e. input.dim() = {nd} is not equal to len(dims) = {}",
                    dims.len()
                )));
            }
            let mut seen = vec![false; nd];
            for (i, &d) in dims.iter().enumerate() {
                let d = wrap_dim(d, nd)?;
                if seen[d] {
                    return Err(Error::value("permute(): duplicate dims are not allowed."));
                }
                seen[d] = true;
                sizes[i] = t.sizes[d].clone();
                strides[i] = t.strides[d].clone();
            }
        }
        "aten.transpose.int" => {
            let (d0, d1) = (wrap_dim(a.int("dim0")?, nd)?, wrap_dim(a.int("dim1")?, nd)?);
            if nd > 0 {
                sizes.swap(d0, d1);
                strides.swap(d0, d1);
            }
        }
        "aten.t.default" => {
            if nd > 2 {
                return Err(Error::shape(format!(
                    "t() expects a tensor with <= 2 dimensions, but self is {nd}D"
                )));
            }
            sizes.reverse();
            strides.reverse();
        }
        "aten.expand.default" => {
            let want = a.symints("size")?;
            if want.len() < nd {
                return Err(Error::shape(format!(
                    "expand({}{{{}}}, size=[{}]): the number of sizes provided ({}) must be greater or equal to the number of dimensions in the tensor ({nd})",
                    t.dtype.scalar_type_name().to_string() + "Type",
                    fmt_shape(&t.sizes).trim_matches(|c| c == '[' || c == ']'),
                    want.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", "),
                    want.len()
                )));
            }
            let off = want.len() - nd;
            let mut ns = Vec::with_capacity(want.len());
            let mut nst = Vec::with_capacity(want.len());
            for (i, w) in want.iter().enumerate() {
                if i < off {
                    if w.as_int() == Some(-1) {
                        return Err(Error::shape(format!(
                            "The expanded size of the tensor (-1) isn't allowed in a leading, non-existing dimension {i}"
                        )));
                    }
                    ns.push(w.clone());
                    nst.push(SymInt::Int(0));
                    continue;
                }
                let (s, st) = (&t.sizes[i - off], &t.strides[i - off]);
                if w.as_int() == Some(-1) || w.guard_eq(s) {
                    ns.push(s.clone());
                    nst.push(st.clone());
                } else if s.guard_is_one() {
                    ns.push(w.clone());
                    nst.push(SymInt::Int(0));
                } else {
                    return Err(Error::shape(format!(
                        "The expanded size of the tensor ({w}) must match the existing size ({s}) at non-singleton dimension {i}.  Target sizes: {}.  Tensor sizes: {}",
                        fmt_shape(want),
                        fmt_shape(&t.sizes)
                    )));
                }
            }
            sizes = ns;
            strides = nst;
        }
        "aten.select.int" => {
            if nd == 0 {
                return Err(Error::shape(
                    "select() cannot be applied to a 0-dim tensor.",
                ));
            }
            let d = wrap_dim(a.int("dim")?, nd)?;
            let idx = a.symint("index")?;
            let size = &t.sizes[d];
            let neg = idx.guard_lt(&SymInt::Int(0));
            let real = if neg { idx.add(size) } else { idx.clone() };
            if real.guard_lt(&SymInt::Int(0)) || !real.guard_lt(size) {
                return Err(Error::shape(format!(
                    "select(): index {idx} out of range for tensor of size {} at dimension {}",
                    fmt_shape(&t.sizes),
                    a.int("dim")?
                )));
            }
            offset = offset.add(&real.mul(&t.strides[d]));
            sizes.remove(d);
            strides.remove(d);
        }
        "aten.narrow.default" => {
            if nd == 0 {
                return Err(Error::shape(
                    "narrow() cannot be applied to a 0-dim tensor.",
                ));
            }
            let d = wrap_dim(a.int("dim")?, nd)?;
            let (mut start, length) = (a.symint("start")?.clone(), a.symint("length")?.clone());
            if length.guard_lt(&SymInt::Int(0)) {
                return Err(Error::value("narrow(): length must be non-negative."));
            }
            let size = t.sizes[d].clone();
            let neg_size = SymInt::Int(0).sub(&size);
            if start.guard_lt(&neg_size) || size.guard_lt(&start) {
                return Err(Error::value(format!(
                    "start out of range (expected to be in range of [{neg_size}, {size}], but got {start})"
                )));
            }
            if start.guard_lt(&SymInt::Int(0)) {
                start = start.add(&size);
            }
            if size.sub(&length).guard_lt(&start) {
                return Err(Error::value(format!(
                    "start ({start}) + length ({length}) exceeds dimension size ({size})."
                )));
            }
            offset = offset.add(&start.mul(&t.strides[d]));
            sizes[d] = length;
        }
        "aten.slice.Tensor" => {
            if nd == 0 {
                return Err(Error::shape("slice() cannot be applied to a 0-dim tensor."));
            }
            let d = wrap_dim(a.int("dim")?, nd)?;
            let step = a.symint("step")?.clone();
            if !SymInt::Int(0).guard_lt(&step) {
                return Err(Error::value("slice step must be positive"));
            }
            let size = t.sizes[d].clone();
            let clamp_idx = |v: Option<&SymInt>, default: SymInt| -> SymInt {
                let Some(v) = v else { return default };
                let mut v = v.clone();
                if v.guard_lt(&SymInt::Int(0)) {
                    v = v.add(&size);
                }
                if v.guard_lt(&SymInt::Int(0)) {
                    SymInt::Int(0)
                } else if size.guard_lt(&v) {
                    size.clone()
                } else {
                    v
                }
            };
            let start = clamp_idx(a.opt_symint("start")?, SymInt::Int(0));
            let mut end = clamp_idx(a.opt_symint("end")?, size.clone());
            if end.guard_lt(&start) {
                end = start.clone();
            }
            let len = end
                .sub(&start)
                .add(&step)
                .sub(&SymInt::Int(1))
                .floor_div(&step);
            offset = offset.add(&start.mul(&t.strides[d]));
            sizes[d] = len;
            strides[d] = t.strides[d].mul(&step);
        }
        "aten.squeeze.default" | "aten.squeeze.dim" | "aten.squeeze.dims" => {
            let dims: Vec<usize> = match a.schema.overload.as_str() {
                "" => (0..nd).collect(),
                "dim" => vec![wrap_dim(a.int("dim")?, nd)?],
                _ => a
                    .ints("dim")?
                    .into_iter()
                    .map(|d| wrap_dim(d, nd))
                    .collect::<Result<_>>()?,
            };
            let keep: Vec<usize> = (0..nd)
                .filter(|d| !(dims.contains(d) && t.sizes[*d].guard_is_one()))
                .collect();
            sizes = keep.iter().map(|&d| t.sizes[d].clone()).collect();
            strides = keep.iter().map(|&d| t.strides[d].clone()).collect();
        }
        "aten.unsqueeze.default" => {
            let d = wrap_dim(a.int("dim")?, nd + 1)?;
            let st = if d < nd {
                t.sizes[d].mul(&t.strides[d])
            } else {
                SymInt::Int(1)
            };
            sizes.insert(d, SymInt::Int(1));
            strides.insert(d, st);
        }
        "aten.alias.default" => {}
        "aten.as_strided.default" => {
            sizes = a.symints("size")?.to_vec();
            strides = a.symints("stride")?.to_vec();
            if let Some(o) = a.opt_symint("storage_offset")? {
                offset = o.clone();
            }
            if sizes.len() != strides.len() {
                return Err(Error::shape(format!(
                    "mismatch in length of strides and shape: {} vs {}",
                    strides.len(),
                    sizes.len()
                )));
            }
        }
        other => return Err(Error::UnknownOp(other.to_string())),
    }
    Ok(vec![Value::Tensor(TensorMeta {
        dtype: t.dtype,
        sizes,
        strides,
        offset,
    })])
}

fn geometry_kernel(a: &Args<Tensor>, outs: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    let t = a.tensor("self")?;
    let Some(Value::Tensor(m)) = outs.first() else {
        return Err(Error::value("view meta missing"));
    };
    let sizes = m.concrete_sizes()?;
    let strides = concrete_usizes(&m.strides)?;
    let off = m
        .offset
        .as_int()
        .filter(|o| *o >= 0)
        .ok_or_else(|| Error::Symbolic("symbolic storage offset".into()))?;
    out1(t.restride(&sizes, &strides, off as usize)?)
}

// ---- copies ------------------------------------------------------------------------------------------

/// The output is `self` (or a view with its exact geometry).
fn meta_same(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    Ok(vec![Value::Tensor(meta_self(a)?.clone())])
}

/// `flip(self, dims)`: a reversed copy along `dims`.
fn meta_roll(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    let (shifts, dims) = (a.ints("shifts")?, a.ints("dims")?);
    if shifts.is_empty() {
        return Err(Error::value("`shifts` required"));
    }
    if t.dim() == 0 && !dims.is_empty() {
        return Err(Error::value(format!(
            "Dimension specified as {} but tensor has no dimensions",
            dims[0]
        )));
    }
    if !(dims.is_empty() && shifts.len() == 1) && shifts.len() != dims.len() {
        return Err(Error::value(format!(
            "shifts and dimensions must align. shifts: {}, dims:{}",
            shifts.len(),
            dims.len()
        )));
    }
    for &d in &dims {
        wrap(d, t)?;
    }
    one(t.dtype, t.sizes.clone())
}

fn meta_flip(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    // A 0-d tensor takes dim 0 / -1, as PyTorch's dim wrapping allows.
    let mut seen = vec![false; t.dim().max(1)];
    for &d in &a.ints("dims")? {
        let d = wrap(d, t)?;
        if seen[d] {
            return Err(Error::value(format!(
                "dim {d} appears multiple times in the list of dims"
            )));
        }
        seen[d] = true;
    }
    one(t.dtype, t.sizes.clone())
}

fn flip(a: &Args<Tensor>, _: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    let mut cur = materialize(a.tensor("self")?);
    let sizes = cur.sizes().to_vec();
    if sizes.is_empty() {
        return out1(cur);
    }
    for d in a.ints("dims")? {
        let d = wrap_dim(d, sizes.len())?;
        let n = sizes[d];
        let out = materialize(&cur);
        let st = out.strides().to_vec();
        let mut one_slice = sizes.clone();
        one_slice[d] = 1;
        for i in 0..n {
            let dst = out.restride(&one_slice, &st, i * st[d])?;
            let src = cur.restride(
                &one_slice,
                cur.strides(),
                cur.storage_offset() + (n - 1 - i) * cur.strides()[d],
            )?;
            dst.assign_untraced(&src)?;
        }
        cur = out;
    }
    out1(cur)
}

fn meta_copy_like(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    one(t.dtype, t.sizes.clone())
}

fn meta_to_copy(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    one(a.opt_dtype("dtype")?.unwrap_or(t.dtype), t.sizes.clone())
}

fn meta_to_dtype(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    let dt = a.opt_dtype("dtype")?.unwrap_or(t.dtype);
    if dt == t.dtype && !a.bool("copy")? {
        Ok(vec![Value::Tensor(t.clone())])
    } else {
        one(dt, t.sizes.clone())
    }
}

fn meta_copy_(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let (dst, src) = (meta_self(a)?, a.tensor("src")?);
    let b = broadcast_shapes(&[&dst.sizes, &src.sizes])?;
    if b != dst.sizes {
        return Err(Error::shape(format!(
            "output with shape {} doesn't match the broadcast shape {}",
            fmt_shape(&dst.sizes),
            fmt_shape(&b)
        )));
    }
    Ok(vec![Value::Tensor(dst.clone())])
}

// ---- cat / stack / split -----------------------------------------------------------------------------

fn meta_cat(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let ts = a.tensors("tensors")?;
    if ts.is_empty() {
        return Err(Error::value(
            "torch.cat(): expected a non-empty list of Tensors",
        ));
    }
    let dtype = ts
        .iter()
        .map(|t| t.dtype)
        .reduce(promote_types)
        .expect("non-empty");
    // PyTorch's legacy rule: 1-D tensors of size 0 are skipped.
    let is_skipped = |t: &TensorMeta| t.dim() == 1 && t.sizes[0].as_int() == Some(0);
    let Some(reference) = ts.iter().find(|t| !is_skipped(t)) else {
        return one(dtype, ts[0].sizes.clone());
    };
    if reference.dim() == 0 {
        return Err(Error::shape(
            "zero-dimensional tensor (at position 0) cannot be concatenated",
        ));
    }
    let d = wrap(a.int("dim")?, reference)?;
    let mut sizes = reference.sizes.clone();
    let mut total = SymInt::Int(0);
    for (i, t) in ts.iter().enumerate() {
        if is_skipped(t) {
            continue;
        }
        if t.dim() != reference.dim() {
            return Err(Error::shape(format!(
                "Tensors must have same number of dimensions: got {} and {}",
                reference.dim(),
                t.dim()
            )));
        }
        for k in 0..t.dim() {
            if k != d && !t.sizes[k].guard_eq(&reference.sizes[k]) {
                return Err(Error::shape(format!(
                    "Sizes of tensors must match except in dimension {d}. Expected size {} but got size {} for tensor number {i} in the list.",
                    reference.sizes[k], t.sizes[k]
                )));
            }
        }
        total = total.add(&t.sizes[d]);
    }
    sizes[d] = total;
    one(dtype, sizes)
}

fn cat_kernel(a: &Args<Tensor>, outs: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    let dt = out_dtype(outs, 0)?;
    let sizes = out_sizes(outs, 0)?;
    let ts: Vec<&Tensor> = a
        .tensors("tensors")?
        .iter()
        .filter(|t| !(t.dim() == 1 && t.numel() == 0))
        .collect();
    let out = Tensor::filled(&sizes, crate::Scalar::Int(0), dt);
    if ts.is_empty() {
        return out1(out);
    }
    let d = wrap_dim(a.int("dim")?, sizes.len())?;
    let strides = out.strides().to_vec();
    let mut start = 0usize;
    for t in ts {
        let len = t.sizes()[d];
        let dst = out.restride(t.sizes(), &strides, start * strides[d])?;
        dst.assign_untraced(t)?;
        start += len;
    }
    out1(out)
}

fn meta_stack(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let ts = a.tensors("tensors")?;
    if ts.is_empty() {
        return Err(Error::value("stack expects a non-empty TensorList"));
    }
    for (i, t) in ts.iter().enumerate() {
        if t.sizes != ts[0].sizes {
            return Err(Error::shape(format!(
                "stack expects each tensor to be equal size, but got {} at entry 0 and {} at entry {i}",
                fmt_shape(&ts[0].sizes),
                fmt_shape(&t.sizes)
            )));
        }
    }
    let d = wrap_dim(a.int("dim")?, ts[0].dim() + 1)?;
    let mut sizes = ts[0].sizes.clone();
    sizes.insert(d, SymInt::from(ts.len()));
    one(
        ts.iter()
            .map(|t| t.dtype)
            .reduce(promote_types)
            .expect("non-empty"),
        sizes,
    )
}

fn stack_kernel(a: &Args<Tensor>, outs: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    let dt = out_dtype(outs, 0)?;
    let sizes = out_sizes(outs, 0)?;
    let d = wrap_dim(a.int("dim")?, sizes.len())?;
    let out = Tensor::filled(&sizes, crate::Scalar::Int(0), dt);
    let mut st = out.strides().to_vec();
    let step = st.remove(d);
    let mut inner = sizes.clone();
    inner.remove(d);
    for (i, t) in a.tensors("tensors")?.iter().enumerate() {
        out.restride(&inner, &st, i * step)?.assign_untraced(t)?;
    }
    out1(out)
}

/// Pieces of a split along `dim`, as (start, len).
fn split_pieces(a: &Args<TensorMeta>, t: &TensorMeta, d: usize) -> Result<Vec<(SymInt, SymInt)>> {
    let size = t.sizes[d].clone();
    let mut pieces = Vec::new();
    match a.schema.op_name().as_str() {
        "aten.split_with_sizes.default" => {
            let ss = a.symints("split_sizes")?;
            let total = ss.iter().fold(SymInt::Int(0), |x, y| x.add(y));
            if !total.guard_eq(&size) {
                return Err(Error::shape(format!(
                    "split_with_sizes expects split_sizes to sum exactly to {size} (input tensor's size at dimension {}), but got split_sizes={}",
                    a.int("dim")?,
                    fmt_shape(ss)
                )));
            }
            let mut start = SymInt::Int(0);
            for s in ss {
                if s.guard_lt(&SymInt::Int(0)) {
                    return Err(Error::shape(format!("split_with_sizes expects split_sizes have only non-negative entries, but got split_sizes={}", fmt_shape(ss))));
                }
                pieces.push((start.clone(), s.clone()));
                start = start.add(s);
            }
        }
        "aten.chunk.default" => {
            let chunks = a.int("chunks")?;
            if chunks <= 0 {
                return Err(Error::value(format!(
                    "chunk expects `chunks` to be greater than 0, got: {chunks}"
                )));
            }
            let n = size.as_int().ok_or_else(|| {
                Error::Symbolic("chunk of a symbolic dim is not supported yet".into())
            })?;
            // split(ceil(n / chunks)): possibly fewer pieces than asked, the last one smaller.
            let k = (n + chunks - 1) / chunks;
            let count = if k == 0 { 1 } else { ((n + k - 1) / k).max(1) };
            for i in 0..count {
                let start = i * k;
                pieces.push((SymInt::Int(start), SymInt::Int(k.min(n - start))));
            }
        }
        "aten.split.Tensor" => {
            let ss = a.symint("split_size")?.clone();
            let (Some(n), Some(k)) = (size.as_int(), ss.as_int()) else {
                return Err(Error::Symbolic(
                    "split with symbolic sizes is not supported yet".into(),
                ));
            };
            if k < 0 || (k == 0 && n != 0) {
                return Err(Error::shape(format!(
                    "split expects split_size be non-negative, but got split_size={k}"
                )));
            }
            let count = if k == 0 { 1 } else { ((n + k - 1) / k).max(1) };
            for i in 0..count {
                let start = i * k;
                pieces.push((SymInt::Int(start), SymInt::Int(k.min(n - start))));
            }
        }
        _ => {
            let n = size
                .as_int()
                .ok_or_else(|| Error::Symbolic("unbind over a symbolic dim".into()))?;
            for i in 0..n {
                pieces.push((SymInt::Int(i), SymInt::Int(-1))); // -1: select (dim removed)
            }
        }
    }
    Ok(pieces)
}

fn meta_split(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    if t.dim() == 0 {
        return Err(Error::shape(
            "split/unbind expects at least a 1-dimensional tensor",
        ));
    }
    let d = wrap(a.int("dim")?, t)?;
    let views = split_pieces(a, t, d)?
        .into_iter()
        .map(|(start, len)| {
            let mut m = t.clone();
            m.offset = t.offset.add(&start.mul(&t.strides[d]));
            if len.as_int() == Some(-1) {
                m.sizes.remove(d);
                m.strides.remove(d);
            } else {
                m.sizes[d] = len;
            }
            m
        })
        .collect();
    Ok(vec![Value::Tensors(views)])
}

fn split_kernel(a: &Args<Tensor>, outs: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    let t = a.tensor("self")?;
    let Some(Value::Tensors(ms)) = outs.first() else {
        return Err(Error::value("split meta missing"));
    };
    let mut views = Vec::with_capacity(ms.len());
    for m in ms {
        let off = m
            .offset
            .as_int()
            .ok_or_else(|| Error::Symbolic("symbolic offset".into()))? as usize;
        views.push(t.restride(&m.concrete_sizes()?, &concrete_usizes(&m.strides)?, off)?);
    }
    Ok(vec![Value::Tensors(views)])
}

// ---- pad ------------------------------------------------------------------------------------------

/// `F.pad(self, pad, mode, value)`: `pad` lists (left, right) for the last dim, then the one before, ...
fn meta_pad(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let t = meta_self(a)?;
    let pad = a.ints("pad")?;
    let mode = a.str("mode")?;
    if pad.len() % 2 != 0 {
        return Err(Error::value("Padding length must be divisible by 2"));
    }
    if pad.len() / 2 > t.dim() {
        return Err(Error::value(
            "Padding length should be less than or equal to two times the input dimension",
        ));
    }
    if !matches!(mode, "constant" | "reflect" | "replicate" | "circular") {
        return Err(Error::value(format!("Unrecognised padding mode {mode}")));
    }
    if mode != "constant" && a.opt_float("value")?.is_some() {
        return Err(Error::value(format!(
            "Padding mode \"{mode}\" doesn't take in value argument"
        )));
    }
    let mut sizes = t.sizes.clone();
    for (i, lr) in pad.chunks(2).enumerate() {
        let d = t.dim() - 1 - i;
        let n = sizes[d]
            .as_int()
            .ok_or_else(|| Error::Symbolic("pad on a symbolic dim".into()))?;
        // Negative padding crops (PyTorch narrows the input first); every mode takes it.
        if n + lr[0] + lr[1] < 0 {
            return Err(Error::value("narrow(): length must be non-negative."));
        }
        if mode == "reflect" && (lr[0] >= n || lr[1] >= n) {
            return Err(Error::value(format!(
                "Argument #4: Padding size should be less than the corresponding input dimension, but got: padding ({}, {}) at dimension {} of input {}",
                lr[0], lr[1], d, fmt_shape(&t.sizes)
            )));
        }
        if mode != "constant" && n == 0 {
            return Err(Error::value(format!(
                "{mode} padding of an empty dimension"
            )));
        }
        sizes[d] = SymInt::Int(n + lr[0] + lr[1]);
    }
    one(t.dtype, sizes)
}

fn pad_kernel(a: &Args<Tensor>, outs: &[Value<TensorMeta>]) -> Result<Vec<Value<Tensor>>> {
    let t = a.tensor("self")?;
    let pad = a.ints("pad")?;
    let mode = a.str("mode")?.to_string();
    let value = a.opt_float("value")?.unwrap_or(0.0);
    let out_sizes = concrete_usizes(&match &outs[0] {
        Value::Tensor(m) => m.sizes.clone(),
        _ => return Err(Error::value("pad: expected a tensor output")),
    })?;
    let in_sizes = t.sizes().to_vec();
    let nd = in_sizes.len();
    let mut left = vec![0i64; nd];
    for (i, lr) in pad.chunks(2).enumerate() {
        left[nd - 1 - i] = lr[0];
    }
    // Source index along one dim for an output index, or None for the constant fill.
    let src = |d: usize, o: usize| -> Option<usize> {
        let n = in_sizes[d] as i64;
        let i = o as i64 - left[d];
        let j = match mode.as_str() {
            "reflect" => {
                let period = 2 * (n - 1);
                if period == 0 {
                    0
                } else {
                    let r = i.rem_euclid(period);
                    if r < n {
                        r
                    } else {
                        period - r
                    }
                }
            }
            "replicate" => i.clamp(0, n - 1),
            "circular" => i.rem_euclid(n),
            _ => {
                if i < 0 || i >= n {
                    return None;
                }
                i
            }
        };
        Some(j as usize)
    };
    let numel: usize = out_sizes.iter().product();
    let in_strides = crate::tensor::contiguous_strides(&in_sizes);
    crate::dispatch_dtype!(t.dtype(), T => {
        let fill: T = crate::tensor::cast_element::<f64, T>(value);
        let out: Vec<T> = t.with_contiguous::<T, _>(|x| {
            let mut out = Vec::with_capacity(numel);
            let mut idx = vec![0usize; nd];
            for _ in 0..numel {
                let mut off = Some(0usize);
                for d in 0..nd {
                    off = match (off, src(d, idx[d])) {
                        (Some(o), Some(j)) => Some(o + j * in_strides[d]),
                        _ => None,
                    };
                }
                out.push(off.map_or(fill, |o| x[o]));
                for d in (0..nd).rev() {
                    idx[d] += 1;
                    if idx[d] < out_sizes[d] {
                        break;
                    }
                    idx[d] = 0;
                }
            }
            out
        })?;
        out1(Tensor::from_vec(out, &out_sizes)?)
    })
}
