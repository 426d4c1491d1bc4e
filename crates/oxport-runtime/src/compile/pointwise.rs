//! Pointwise chains: `x + 3 → clamp(0, 6) → / 6 → * x` (a decomposed hardswish), `a * b + c`, ... —
//! consecutive f32 pointwise steps whose intermediate values have no other reader — become one step
//! that reads each input once and writes the output once, computing block by block (1024 elements,
//! in cache) instead of one full pass per op.
//!
//! The chain is a list of operations on an accumulator: the first step's first operand is loaded, and
//! each step combines it with a scalar or an input (broadcast to the output's shape). Formulas are the
//! pointwise kernels' own, in f32, so the results are those of the unfused ops.
use super::fuse::{activation, Activation};
use super::rewrite::{apply, only_reader, op_at, out_slot, quiet_between, Uses};
use super::{Prepared, PreparedKernel};
use crate::plan::{GraphPlan, Slot};
use oxport_core::ops::value::TensorMeta;
use oxport_core::ops::Args;
use oxport_core::tensor::kernels::elementwise::{broadcast_strides, Run};
use oxport_core::tensor::kernels::simd;
use oxport_core::tensor::kernels::vmath::{self, BinaryOp};
use oxport_core::{DType, Tensor};
use rayon::prelude::*;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Operand {
    /// One of the step's inputs, broadcast to the output.
    Input(usize),
    Scalar(f32),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    /// `acc = acc ∘ operand` (or `operand ∘ acc` when `swapped`).
    Binary {
        op: BinaryOp,
        rhs: Operand,
        swapped: bool,
    },
    Act(Activation),
    Neg,
    Exp,
    Sqrt,
    Rsqrt,
    Reciprocal,
}

/// A fused chain: load `first`, apply `ops`.
#[derive(Debug)]
struct PointwiseChain {
    first: Operand,
    ops: Vec<Op>,
    out_shape: Vec<usize>,
}

const BLOCK: usize = 1024;
const PAR_MIN: usize = 1 << 15;

/// An input as the chain reads it: its storage's elements, its offset, whether it is laid out as the
/// output (contiguous, same sizes), and its strides broadcast to the output.
pub(crate) struct Input<'a> {
    pub data: &'a [f32],
    pub offset: usize,
    pub dense: bool,
    pub strides: Vec<usize>,
}

impl Input<'_> {
    /// Where element `i` (row-major over `shape`, the broadcast shape) is in `data`.
    pub fn offset_of(&self, shape: &[usize], i: usize) -> usize {
        let (mut rem, mut off) = (i, self.offset);
        for d in (0..shape.len()).rev() {
            off += (rem % shape[d].max(1)) * self.strides[d];
            rem /= shape[d].max(1);
        }
        off
    }
}

/// Runs `f` on f32 views of `inputs`, each broadcast to `shape`, holding one read lock per storage
/// (two inputs may view the same one). `what` names the kernel in errors.
pub(crate) fn with_broadcast_inputs<R>(
    what: &str,
    inputs: &[&Tensor],
    shape: &[usize],
    f: impl FnOnce(&[Input<'_>]) -> R,
) -> oxport_core::Result<R> {
    use oxport_core::tensor::Element;
    let bad = |why: String| {
        Err(oxport_core::Error::Value(format!(
            "internal: {what}: {why}"
        )))
    };
    let mut locks: Vec<(&std::sync::Arc<oxport_core::tensor::Storage>, _)> = vec![];
    let mut which = vec![];
    for t in inputs {
        let broadcasts = t.dim() <= shape.len()
            && t.sizes()
                .iter()
                .rev()
                .zip(shape.iter().rev())
                .all(|(&a, &b)| a == b || a == 1);
        if t.dtype() != DType::F32 || t.is_fake() || !broadcasts {
            return bad(format!(
                "planned for f32 inputs broadcasting to {shape:?}, got {} {:?}",
                t.dtype().name(),
                t.sizes()
            ));
        }
        let st = t.storage();
        let k = match locks
            .iter()
            .position(|(s, _)| std::sync::Arc::ptr_eq(s, st))
        {
            Some(k) => k,
            None => {
                locks.push((st, st.read()));
                locks.len() - 1
            }
        };
        which.push(k);
    }
    let mut data = vec![];
    for (t, &k) in inputs.iter().zip(&which) {
        let Some(all) = f32::slice(&locks[k].1) else {
            return bad("an input's storage is not f32".into());
        };
        data.push(Input {
            data: all,
            offset: t.storage_offset(),
            dense: t.is_contiguous() && t.sizes() == shape,
            strides: broadcast_strides(t, shape),
        });
    }
    Ok(f(&data))
}

impl PreparedKernel for PointwiseChain {
    fn run(&self, inputs: &[&Tensor], out: &Tensor) -> oxport_core::Result<()> {
        with_broadcast_inputs("pointwise chain", inputs, &self.out_shape, |data| {
            self.run_on(data, out)
        })?
    }
}

impl PointwiseChain {
    fn run_on(&self, data: &[Input<'_>], out: &Tensor) -> oxport_core::Result<()> {
        // Read once here: rayon's workers do not see a thread's forced ISA.
        let isa = simd::active();
        out.with_contiguous_mut::<f32, _>(|od| {
            let run = |(b, dst): (usize, &mut [f32])| {
                let start = b * BLOCK;
                let mut scratch = Vec::new();
                let load = |o: Operand, buf: &mut [f32]| match o {
                    Operand::Scalar(s) => buf.fill(s),
                    Operand::Input(i) => gather(&data[i], &self.out_shape, start, buf),
                };
                load(self.first, dst);
                for op in &self.ops {
                    match *op {
                        Op::Binary { op, rhs, swapped } => {
                            let rhs_vals = match rhs {
                                Operand::Scalar(s) => Run::Scalar(s),
                                Operand::Input(i) if data[i].dense => {
                                    let at = data[i].offset + start;
                                    Run::Slice(&data[i].data[at..at + dst.len()])
                                }
                                Operand::Input(_) => {
                                    scratch.resize(dst.len(), 0.0);
                                    load(rhs, &mut scratch);
                                    Run::Slice(&scratch)
                                }
                            };
                            vmath::binary_f32_inplace(isa, op, dst, rhs_vals, swapped);
                        }
                        Op::Act(a) => a.apply_f32(dst),
                        Op::Neg => dst.iter_mut().for_each(|v| *v = -*v),
                        Op::Exp => dst.iter_mut().for_each(|v| *v = v.exp()),
                        Op::Sqrt => dst.iter_mut().for_each(|v| *v = v.sqrt()),
                        Op::Rsqrt => dst.iter_mut().for_each(|v| *v = 1.0 / v.sqrt()),
                        Op::Reciprocal => dst.iter_mut().for_each(|v| *v = 1.0 / *v),
                    }
                }
            };
            if od.len() >= PAR_MIN {
                od.par_chunks_mut(BLOCK).enumerate().for_each(run);
            } else {
                od.chunks_mut(BLOCK).enumerate().for_each(run);
            }
        })
    }
}

/// Elements `start..start + dst.len()` (row-major over `shape`) of a broadcast input, copied a row
/// (a run along the last dim) at a time.
fn gather(input: &Input, shape: &[usize], start: usize, dst: &mut [f32]) {
    if input.dense {
        let at = input.offset + start;
        dst.copy_from_slice(&input.data[at..at + dst.len()]);
        return;
    }
    let nd = shape.len();
    if nd == 0 {
        dst.fill(input.data[input.offset]);
        return;
    }
    let (row, last_st) = (shape[nd - 1].max(1), input.strides[nd - 1]);
    let mut i = start;
    let mut done = 0;
    while done < dst.len() {
        let off = input.offset_of(shape, i);
        let len = (row - i % row).min(dst.len() - done);
        let seg = &mut dst[done..done + len];
        match last_st {
            0 => seg.fill(input.data[off]),
            1 => seg.copy_from_slice(&input.data[off..off + len]),
            st => seg
                .iter_mut()
                .enumerate()
                .for_each(|(j, v)| *v = input.data[off + j * st]),
        }
        done += len;
        i += len;
    }
}

fn f32_sizes(m: Option<&TensorMeta>) -> Option<Vec<usize>> {
    let m = m?;
    (m.dtype == DType::F32)
        .then(|| m.concrete_sizes().ok())
        .flatten()
}

/// One step as a chain link reading `acc`: the op, and the tensor operand it adds (if any).
/// `acc` is `None` for the chain's first step (its first operand becomes the accumulator).
fn link(name: &str, a: &Args<Slot>, acc: Option<Slot>) -> Option<(Option<Slot>, Op, Option<Slot>)> {
    let base = name.trim_start_matches("aten.");
    let tensor = |n: &str| a.opt_tensor(n).ok().flatten().copied();
    let scalar = |n: &str| a.scalar(n).ok().map(|s| s.to_f64() as f32);
    let alpha_one = || a.scalar("alpha").map(|s| s.to_f64() == 1.0).unwrap_or(true);
    let bin = |op: BinaryOp| -> Option<(Option<Slot>, Op, Option<Slot>)> {
        let s = tensor("self")?;
        match (tensor("other"), scalar("other")) {
            (Some(o), _) => {
                let (head, other, swapped) = match acc {
                    None => (s, o, false),
                    Some(x) if x == s && x != o => (s, o, false),
                    Some(x) if x == o && x != s => (o, s, true),
                    _ => return None,
                };
                Some((
                    Some(head),
                    Op::Binary {
                        op,
                        rhs: Operand::Input(usize::MAX),
                        swapped,
                    },
                    Some(other),
                ))
            }
            (None, Some(v)) => Some((
                Some(s),
                Op::Binary {
                    op,
                    rhs: Operand::Scalar(v),
                    swapped: false,
                },
                None,
            )),
            _ => None,
        }
    };
    let unary = |op: Op| Some((tensor("self"), op, None));
    // An in-place op joins a chain only writing the chain's own value (never the first step).
    let in_place = base.split('.').next().is_some_and(|n| n.ends_with('_'));
    if in_place && (acc.is_none() || tensor("self") != acc) {
        return None;
    }
    let base = match base.split_once("_.") {
        Some((n, overload)) if in_place => format!("{n}.{overload}"),
        _ => base.to_string(),
    };
    match base.as_str() {
        "add.Tensor" | "add.Scalar" if alpha_one() => bin(BinaryOp::Add),
        "sub.Tensor" | "sub.Scalar" if alpha_one() => bin(BinaryOp::Sub),
        "mul.Tensor" | "mul.Scalar" => bin(BinaryOp::Mul),
        "div.Tensor" | "div.Scalar" => bin(BinaryOp::Div),
        "neg.default" => unary(Op::Neg),
        "exp.default" => unary(Op::Exp),
        "sqrt.default" => unary(Op::Sqrt),
        "rsqrt.default" => unary(Op::Rsqrt),
        "reciprocal.default" => unary(Op::Reciprocal),
        "clamp.default" => {
            let lo = a
                .opt_scalar("min")
                .ok()?
                .map_or(f32::NEG_INFINITY, |s| s.to_f64() as f32);
            let hi = a
                .opt_scalar("max")
                .ok()?
                .map_or(f32::INFINITY, |s| s.to_f64() as f32);
            unary(Op::Act(Activation::Clamp { min: lo, max: hi }))
        }
        "clamp_min.default" => unary(Op::Act(Activation::Clamp {
            min: scalar("min")?,
            max: f32::INFINITY,
        })),
        _ => activation(&format!("aten.{base}"), a).and_then(|f| unary(Op::Act(f))),
    }
}

/// Fuses the chains it finds. Returns the number of chains.
pub(crate) fn fuse_pointwise(plan: &mut GraphPlan, metas: &[Option<TensorMeta>]) -> usize {
    let u = Uses::of(plan);
    let mut removed = vec![false; plan.steps.len()];
    let mut patch = HashMap::new();
    for i in 0..plan.steps.len() {
        if removed[i] {
            continue;
        }
        let Some(chain) = match_chain(plan, &u, metas, &removed, i) else {
            continue;
        };
        let (prepared, nodes, steps) = chain;
        for &j in &steps {
            removed[j] = true;
        }
        patch.insert(
            *steps.last().expect("non-empty"),
            (prepared, nodes, "oxport.fused.pointwise"),
        );
    }
    let n = patch.len();
    apply(plan, patch, &removed);
    n
}

fn match_chain(
    plan: &GraphPlan,
    u: &Uses,
    metas: &[Option<TensorMeta>],
    claimed: &[bool],
    i: usize,
) -> Option<(Prepared, Vec<String>, Vec<usize>)> {
    let (name, a, outs) = op_at(plan, i)?;
    let (head, op, other) = link(name, &a, None)?;
    let head = head?;
    let mut cur = out_slot(&outs, 0)?;
    let shape = f32_sizes(metas[cur].as_ref())?;
    let mut inputs: Vec<Slot> = vec![];
    let input_of = |s: Slot, inputs: &mut Vec<Slot>| -> Option<usize> {
        f32_sizes(metas[s].as_ref())?;
        Some(match inputs.iter().position(|&x| x == s) {
            Some(k) => k,
            None => {
                inputs.push(s);
                inputs.len() - 1
            }
        })
    };
    // The first step's output must have the chain's shape: its operands broadcast into it.
    f32_sizes(metas[head].as_ref())?;
    let first = Operand::Input(input_of(head, &mut inputs)?);
    let with_other = |op: Op, other: Option<Slot>, inputs: &mut Vec<Slot>| -> Option<Op> {
        Some(match (op, other) {
            (Op::Binary { op, swapped, .. }, Some(o)) => Op::Binary {
                op,
                rhs: Operand::Input(input_of(o, inputs)?),
                swapped,
            },
            (op, _) => op,
        })
    };
    let mut ops = vec![with_other(op, other, &mut inputs)?];
    let mut steps = vec![i];
    let mut nodes = vec![plan.steps[i].node.clone()];
    while let Some(j) = only_reader(plan, u, cur).filter(|&j| !claimed[j]) {
        // The fused step runs at the chain's last step: nothing in between may write in place.
        let from = *steps.last().expect("non-empty");
        let quiet = quiet_between(plan, from, j, &[]);
        let Some((name, a, outs)) = op_at(plan, j).filter(|_| quiet) else {
            break;
        };
        let Some((Some(head), op, other)) = link(name, &a, Some(cur)) else {
            break;
        };
        if head != cur {
            break;
        }
        let Some(out) = out_slot(&outs, 0) else {
            break;
        };
        if f32_sizes(metas[out].as_ref()).as_deref() != Some(&shape) {
            break; // broadcasting to a larger shape ends the chain
        }
        let Some(op) = with_other(op, other, &mut inputs) else {
            break;
        };
        ops.push(op);
        steps.push(j);
        nodes.push(plan.steps[j].node.clone());
        cur = out;
    }
    if steps.len() < 2 {
        return None;
    }
    let kernel = PointwiseChain {
        first,
        ops,
        out_shape: shape.clone(),
    };
    Some((
        Prepared {
            inputs,
            out: cur,
            out_shape: shape,
            dtype: DType::F32,
            kernel: Box::new(kernel),
            buf: None,
        },
        nodes,
        steps,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_with_broadcast_and_swapped_operands_matches_the_ops_one_by_one() {
        // out = 2 / relu(b - a), a: [2, 3, 700] (more than one block), b: [3, 1] broadcast, a
        // non-contiguous view of b's storage.
        let shape = vec![2, 3, 700];
        let n: usize = shape.iter().product();
        let a: Vec<f32> = (0..n)
            .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let ta = Tensor::from_vec(a.clone(), &shape).unwrap();
        let tb = Tensor::from_vec(vec![0.5f32, -0.25, 1.5, 9.0, 9.0, 9.0], &[2, 3])
            .unwrap()
            .select(0, 0)
            .unwrap()
            .restride(&[3, 1], &[1, 0], 0)
            .unwrap();
        let chain = PointwiseChain {
            first: Operand::Input(0),
            ops: vec![
                Op::Binary {
                    op: BinaryOp::Sub,
                    rhs: Operand::Input(1),
                    swapped: true,
                },
                Op::Act(Activation::Relu),
                Op::Binary {
                    op: BinaryOp::Div,
                    rhs: Operand::Scalar(2.0),
                    swapped: true,
                },
            ],
            out_shape: shape.clone(),
        };
        let out = Tensor::zeros_strided(DType::F32, &shape, &[2100, 700, 1]).unwrap();
        chain.run(&[&ta, &tb], &out).unwrap();
        let got = out.to_vec::<f32>().unwrap();
        let b = [0.5f32, -0.25, 1.5];
        for (i, (&g, &x)) in got.iter().zip(&a).enumerate() {
            let want = 2.0 / (b[(i / 700) % 3] - x).max(0.0);
            assert!(
                g == want || (g.is_nan() && want.is_nan()),
                "{i}: {g} vs {want}"
            );
        }
    }

    #[test]
    fn an_input_that_does_not_broadcast_is_an_error() {
        let chain = PointwiseChain {
            first: Operand::Input(0),
            ops: vec![Op::Neg],
            out_shape: vec![4],
        };
        let out = Tensor::zeros_strided(DType::F32, &[4], &[1]).unwrap();
        let x = Tensor::from_vec(vec![1f32; 5], &[5]).unwrap();
        assert!(chain.run(&[&x], &out).is_err());
    }
}
