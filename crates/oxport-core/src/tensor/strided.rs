//! Loops over strided views: gather to contiguous, scatter from contiguous, and multi-operand walks.

/// Copies the elements of a strided view into a new vector, in row-major order.
pub fn gather<T: Copy>(src: &[T], sizes: &[usize], strides: &[usize], offset: usize) -> Vec<T> {
    let n: usize = sizes.iter().product();
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    if super::is_contiguous(sizes, strides) {
        out.extend_from_slice(&src[offset..offset + n]);
        return out;
    }
    for_each_run(sizes, &[strides], &[offset], |offs, len, inner| {
        let (o, s) = (offs[0], inner[0]);
        if s == 1 {
            out.extend_from_slice(&src[o..o + len]);
        } else {
            out.extend((0..len).map(|i| src[o + i * s]));
        }
    });
    out
}

/// Writes `values` (row-major) into the elements of a strided view.
pub fn scatter<T: Copy>(
    dst: &mut [T],
    sizes: &[usize],
    strides: &[usize],
    offset: usize,
    values: &[T],
) {
    let mut k = 0;
    for_each_run(sizes, &[strides], &[offset], |offs, len, inner| {
        let (o, s) = (offs[0], inner[0]);
        for i in 0..len {
            dst[o + i * s] = values[k + i];
        }
        k += len;
    });
}

/// Walks a shape in row-major order, one innermost run at a time.
///
/// For each run calls `f(offsets, len, inner_strides)` where `offsets[j]` is operand `j`'s storage offset of
/// the run's first element. Size-1 dims are skipped and the innermost dim carries the run.
pub fn for_each_run(
    sizes: &[usize],
    strides: &[&[usize]],
    offsets: &[usize],
    mut f: impl FnMut(&[usize], usize, &[usize]),
) {
    if sizes.contains(&0) {
        return;
    }
    // Drop size-1 dims, then merge dims that are contiguous for every operand.
    let mut dims: Vec<(usize, Vec<usize>)> = Vec::with_capacity(sizes.len());
    for (d, &s) in sizes.iter().enumerate() {
        if s == 1 {
            continue;
        }
        let st: Vec<usize> = strides.iter().map(|x| x[d]).collect();
        if let Some((ps, pst)) = dims.last_mut() {
            if pst.iter().zip(&st).all(|(&p, &c)| p == c * s) {
                *ps *= s;
                *pst = st;
                continue;
            }
        }
        dims.push((s, st));
    }
    let nops = strides.len();
    if dims.is_empty() {
        f(offsets, 1, &vec![0; nops]);
        return;
    }
    let (inner_len, inner_st) = dims.pop().expect("non-empty");
    let outer = dims;
    let mut idx = vec![0usize; outer.len()];
    let mut cur: Vec<usize> = offsets.to_vec();
    loop {
        f(&cur, inner_len, &inner_st);
        let mut d = outer.len();
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            for (c, s) in cur.iter_mut().zip(&outer[d].1) {
                *c += s;
            }
            if idx[d] < outer[d].0 {
                break;
            }
            for (c, s) in cur.iter_mut().zip(&outer[d].1) {
                *c -= s * outer[d].0;
            }
            idx[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn gather_transposed() {
        let src: Vec<i32> = (0..6).collect();
        // [[0,1,2],[3,4,5]].t()
        assert_eq!(gather(&src, &[3, 2], &[1, 3], 0), vec![0, 3, 1, 4, 2, 5]);
        // expanded row
        assert_eq!(gather(&src, &[2, 3], &[0, 1], 3), vec![3, 4, 5, 3, 4, 5]);
        assert_eq!(gather(&src, &[], &[], 4), vec![4]);
    }
    #[test]
    fn scatter_into_column() {
        let mut dst = vec![0i32; 6];
        scatter(&mut dst, &[2], &[3], 1, &[7, 8]);
        assert_eq!(dst, vec![0, 7, 0, 0, 8, 0]);
    }
}
