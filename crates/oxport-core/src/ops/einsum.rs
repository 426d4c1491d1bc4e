//! `einsum` equations: parsed once per call into labels per operand dim, shared by the meta function
//! (output sizes) and the decomposition (the contraction, as permutes, sums and `bmm`s).
use crate::error::{Error, Result};
use crate::sym::SymInt;

/// A label: a subscript letter, or one of the dims an ellipsis stands for (`ELLIPSIS + k`).
pub(crate) type Label = u32;
const ELLIPSIS: Label = 1000;

/// An equation over operands of known ranks.
#[derive(Debug, Clone)]
pub(crate) struct Equation {
    /// Per operand, the label of each of its dims (repeated labels: a diagonal).
    pub inputs: Vec<Vec<Label>>,
    /// The labels of the output dims, in order.
    pub output: Vec<Label>,
}

fn err(msg: impl Into<String>) -> Error {
    Error::value(format!("einsum(): {}", msg.into()))
}

/// One side's subscripts: letters and at most one `...`, as written (ellipsis as `None`).
fn subscripts(s: &str, offset: usize, in_output: bool) -> Result<Vec<Option<char>>> {
    let mut out = Vec::new();
    let bytes: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut seen_ellipsis = false;
    while i < bytes.len() {
        let ch = bytes[i];
        if ch == '.' {
            if seen_ellipsis || bytes.get(i + 1) != Some(&'.') || bytes.get(i + 2) != Some(&'.') {
                return Err(err(if in_output {
                    "found '.' for output that is not part of any ellipsis ('...')".to_string()
                } else {
                    format!(
                        "found '.' for operand {} that is not part of any ellipsis ('...')",
                        offset
                    )
                }));
            }
            seen_ellipsis = true;
            out.push(None);
            i += 3;
            continue;
        }
        if ch == ' ' {
            i += 1;
            continue;
        }
        if !ch.is_ascii_alphabetic() {
            return Err(err(format!(
                "invalid subscript given at index {i} in the equation string, subscripts must be in [a-zA-Z]"
            )));
        }
        out.push(Some(ch));
        i += 1;
    }
    Ok(out)
}

impl Equation {
    /// Parses `equation` for operands of `ranks`, with PyTorch's checks and messages.
    pub(crate) fn parse(equation: &str, ranks: &[usize]) -> Result<Equation> {
        if ranks.is_empty() {
            return Err(err("must provide at least one operand"));
        }
        let (lhs, rhs) = match equation.split_once("->") {
            Some((l, r)) => (l, Some(r)),
            None => (equation, None),
        };
        let terms: Vec<&str> = lhs.split(',').collect();
        if terms.len() < ranks.len() {
            return Err(err(
                "more operands were provided than specified in the equation",
            ));
        }
        if terms.len() > ranks.len() {
            return Err(err(
                "fewer operands were provided than specified in the equation",
            ));
        }
        let parsed: Vec<Vec<Option<char>>> = terms
            .iter()
            .enumerate()
            .map(|(i, t)| subscripts(t, i, false))
            .collect::<Result<_>>()?;
        // Ellipsis dims line up from the right across operands (they broadcast).
        let mut ell_dims = 0usize;
        let mut ell_per_op = vec![0usize; ranks.len()];
        for (i, (subs, &rank)) in parsed.iter().zip(ranks).enumerate() {
            let letters = subs.iter().filter(|s| s.is_some()).count();
            let has_ellipsis = subs.len() != letters;
            if has_ellipsis {
                if rank < letters {
                    return Err(err(format!(
                        "the number of subscripts in the equation ({letters}) is more than the number of dimensions ({rank}) for operand {i}"
                    )));
                }
                ell_per_op[i] = rank - letters;
                ell_dims = ell_dims.max(rank - letters);
            } else if rank != letters {
                return Err(err(format!(
                    "the number of subscripts in the equation ({letters}) does not match the number of dimensions ({rank}) for operand {i} and no ellipsis was given"
                )));
            }
        }
        let label = |c: char| c as Label;
        let inputs: Vec<Vec<Label>> = parsed
            .iter()
            .zip(&ell_per_op)
            .map(|(subs, &e)| {
                let mut l = Vec::new();
                for s in subs {
                    match s {
                        Some(c) => l.push(label(*c)),
                        None => l.extend((ell_dims - e..ell_dims).map(|k| ELLIPSIS + k as Label)),
                    }
                }
                l
            })
            .collect();
        let any_ellipsis = parsed.iter().any(|s| s.contains(&None));
        let output = match rhs {
            Some(r) => {
                let subs = subscripts(r, 0, true)?;
                let mut out: Vec<Label> = Vec::new();
                for s in &subs {
                    match s {
                        Some(c) => {
                            if out.contains(&label(*c)) {
                                return Err(err(format!(
                                    "output subscript {c} appears more than once in the output"
                                )));
                            }
                            if !inputs.iter().any(|l| l.contains(&label(*c))) {
                                return Err(err(format!(
                                    "output subscript {c} does not appear in the equation for any input operand"
                                )));
                            }
                            out.push(label(*c));
                        }
                        None => out.extend((0..ell_dims).map(|k| ELLIPSIS + k as Label)),
                    }
                }
                out
            }
            None => {
                // Implicit output: the ellipsis dims, then the letters used exactly once, sorted.
                let mut out: Vec<Label> = if any_ellipsis {
                    (0..ell_dims).map(|k| ELLIPSIS + k as Label).collect()
                } else {
                    vec![]
                };
                let mut once: Vec<Label> = Vec::new();
                for c in ('A'..='Z').chain('a'..='z') {
                    let n: usize = inputs
                        .iter()
                        .map(|l| l.iter().filter(|&&x| x == label(c)).count())
                        .sum();
                    if n == 1 {
                        once.push(label(c));
                    }
                }
                out.extend(once);
                out
            }
        };
        Ok(Equation { inputs, output })
    }

    /// The size of every label (broadcasting size-1 dims), checked across operands.
    pub(crate) fn label_sizes(&self, sizes: &[Vec<SymInt>]) -> Result<Vec<(Label, SymInt)>> {
        let mut out: Vec<(Label, SymInt)> = Vec::new();
        for (i, (labels, s)) in self.inputs.iter().zip(sizes).enumerate() {
            // A label repeated within one operand (a diagonal) needs equal sizes.
            let mut own: Vec<(Label, &SymInt)> = Vec::new();
            for (l, n) in labels.iter().zip(s) {
                match own.iter().find(|(x, _)| x == l) {
                    Some((_, m)) if *m != n => {
                        return Err(err(format!(
                            "subscript {} is repeated for operand {i} but the sizes don't match, {} != {}",
                            label_name(*l),
                            n,
                            m
                        )))
                    }
                    Some(_) => {}
                    None => own.push((*l, n)),
                }
            }
            for (l, n) in own {
                match out.iter_mut().find(|(x, _)| *x == l) {
                    None => out.push((l, n.clone())),
                    Some((_, m)) if m == n => {}
                    Some((_, m)) => match (m.as_int(), n.as_int()) {
                        (Some(1), _) => *m = n.clone(),
                        (_, Some(1)) => {}
                        _ => {
                            return Err(err(format!(
                                "subscript {} has size {} for operand {i} which does not broadcast with previously seen size {}",
                                label_name(l),
                                n,
                                m
                            )))
                        }
                    },
                }
            }
        }
        Ok(out)
    }
}

impl Equation {
    /// PyTorch's common dim order for the aligned operands: the output labels as written, then the
    /// labels summed out (ellipsis dims missing from the output first, then letters in `A`-`Z`, `a`-`z`
    /// order).
    pub(crate) fn aligned_labels(&self) -> Vec<Label> {
        let mut summed: Vec<Label> = self
            .inputs
            .iter()
            .flatten()
            .copied()
            .filter(|l| !self.output.contains(l))
            .collect();
        // Ellipsis dims before letters; each group in ascending order.
        summed.sort_by_key(|&l| (l < ELLIPSIS, l));
        summed.dedup();
        self.output.iter().copied().chain(summed).collect()
    }
}

fn label_name(l: Label) -> char {
    char::from_u32(l).unwrap_or('?')
}

/// The output sizes of `equation` over operands of `sizes`.
pub(crate) fn output_sizes(equation: &str, sizes: &[Vec<SymInt>]) -> Result<Vec<SymInt>> {
    let ranks: Vec<usize> = sizes.iter().map(Vec::len).collect();
    let eq = Equation::parse(equation, &ranks)?;
    let labels = eq.label_sizes(sizes)?;
    Ok(eq
        .output
        .iter()
        .map(|l| {
            labels
                .iter()
                .find(|(x, _)| x == l)
                .map_or(SymInt::Int(1), |(_, n)| n.clone())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(v: &[&[i64]]) -> Vec<Vec<SymInt>> {
        v.iter()
            .map(|s| s.iter().map(|&x| SymInt::Int(x)).collect())
            .collect()
    }

    #[test]
    fn implicit_output_is_sorted_once_used_letters_after_ellipsis() {
        let s = output_sizes("...ij,jk", &sizes(&[&[5, 2, 3], &[3, 4]])).unwrap();
        assert_eq!(s, vec![SymInt::Int(5), SymInt::Int(2), SymInt::Int(4)]);
        let s = output_sizes("ba", &sizes(&[&[2, 3]])).unwrap();
        assert_eq!(s, vec![SymInt::Int(3), SymInt::Int(2)]);
    }
}
