//! Random factories and dropout: `rand`, `randn`, `randperm`, `native_dropout`. They draw from this
//! thread's default generator (`tensor::manual_seed`): reproducible for a seed, but not PyTorch's mt19937
//! stream, so their oracle cases check errors only and their values are checked by distribution tests.
use super::*;
use crate::tensor::random::with_default_generator;

pub(super) fn register(r: &mut Builder) {
    r.out_op(
        "aten.rand.default",
        |a| meta_random(a, "check_uniform_bounds"),
        |_, o| fill_random(&o[0], |g| g.uniform()),
    );
    r.out_op(
        "aten.randn.default",
        |a| meta_random(a, "normal_kernel_cpu"),
        |_, o| fill_random(&o[0], |g| g.normal()),
    );
    r.out_op("aten.randperm.default", meta_randperm, randperm);
    r.out_op(
        "aten.native_dropout.default",
        meta_native_dropout,
        native_dropout,
    );
}

fn meta_random(a: &Args<TensorMeta>, kernel: &str) -> Result<Vec<Value<TensorMeta>>> {
    let sizes = a.symints("size")?.to_vec();
    check_sizes(&sizes)?;
    let dtype = a.opt_dtype("dtype")?.unwrap_or(DType::F32);
    if !dtype.is_floating_point() {
        return Err(Error::DTypeNotSupported {
            op: kernel.into(),
            dtype,
        });
    }
    one(dtype, sizes)
}

fn fill_random(out: &Tensor, f: impl Fn(&mut crate::tensor::Generator) -> f64) -> Result<()> {
    let n = out.numel();
    let v: Vec<f64> = with_default_generator(|g| (0..n).map(|_| f(g)).collect());
    let t = Tensor::from_vec(v, out.sizes_untraced())?;
    out.assign_untraced(&as_dtype(&t, out.dtype()))
}

fn meta_randperm(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let n = a.symint("n")?.clone();
    check_sizes(std::slice::from_ref(&n))?;
    let dtype = a.opt_dtype("dtype")?.unwrap_or(DType::I64);
    if dtype == DType::Bool {
        return Err(Error::DTypeNotSupported {
            op: "randperm".into(),
            dtype,
        });
    }
    one(dtype, vec![n])
}

/// A uniformly random permutation of `0..n` (Fisher–Yates).
fn randperm(_: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let n = o[0].numel();
    let mut perm: Vec<i64> = (0..n as i64).collect();
    with_default_generator(|g| {
        for i in (1..n).rev() {
            let j = (g.next_u64() % (i as u64 + 1)) as usize;
            perm.swap(i, j);
        }
    });
    let t = Tensor::from_vec(perm, &[n])?;
    o[0].assign_untraced(&as_dtype(&t, o[0].dtype()))
}

fn meta_native_dropout(a: &Args<TensorMeta>) -> Result<Vec<Value<TensorMeta>>> {
    let x = a.tensor("input")?;
    let p = a.float("p")?;
    let train = a.opt_bool("train")?.unwrap_or(true);
    if train && !(0.0..=1.0).contains(&(1.0 - p)) {
        return Err(Error::value(format!(
            "bernoulli_ expects p to be in [0, 1], but got p={}",
            crate::dtype::format_python_float(1.0 - p)
        )));
    }
    Ok(vec![
        Value::Tensor(TensorMeta::contiguous(x.dtype, x.sizes.clone())),
        Value::Tensor(TensorMeta::contiguous(DType::Bool, x.sizes.clone())),
    ])
}

/// Inverted dropout: each element kept with probability `1 - p` and scaled by `1 / (1 - p)`; the mask
/// says which were kept. Outside training the input comes back unchanged with an all-true mask.
fn native_dropout(a: &Args<Tensor>, o: &mut [Tensor]) -> Result<()> {
    let x = a.tensor("input")?;
    let p = a.float("p")?;
    let train = a.opt_bool("train")?.unwrap_or(true);
    let n = x.numel();
    let sizes = x.sizes_untraced().to_vec();
    if !train {
        o[0].assign_untraced(x)?;
        return o[1].assign_untraced(&Tensor::from_vec(vec![true; n], &sizes)?);
    }
    let scale = crate::tensor::dropout_mask(n, p);
    let keep: Vec<bool> = scale.iter().map(|&s| s != 0.0).collect();
    let values: Vec<f64> = x
        .to_vec_f64()
        .iter()
        .zip(&scale)
        .map(|(v, s)| v * s)
        .collect();
    o[0].assign_untraced(&as_dtype(&Tensor::from_vec(values, &sizes)?, x.dtype()))?;
    o[1].assign_untraced(&Tensor::from_vec(keep, &sizes)?)
}

#[cfg(test)]
mod tests {
    use crate::ops::{call, Value};
    use crate::tensor::manual_seed;
    use crate::Tensor;

    fn one(op: &str, pos: Vec<Value<Tensor>>) -> Vec<Value<Tensor>> {
        call(op, pos, vec![]).expect("the op runs")
    }

    fn tensor(v: &Value<Tensor>) -> &Tensor {
        match v {
            Value::Tensor(t) => t,
            _ => panic!("expected a tensor"),
        }
    }

    #[test]
    fn rand_and_randn_have_their_distributions_and_follow_the_seed() {
        manual_seed(7);
        let u = one("aten.rand.default", vec![Value::from(vec![100i64, 100])]);
        let u = tensor(&u[0]).to_vec::<f32>().unwrap();
        assert!(u.iter().all(|&x| (0.0..1.0).contains(&x)));
        let mean = u.iter().sum::<f32>() / u.len() as f32;
        assert!((mean - 0.5).abs() < 0.02, "uniform mean {mean}");
        let z = one("aten.randn.default", vec![Value::from(vec![10_000i64])]);
        let z = tensor(&z[0]).to_vec::<f32>().unwrap();
        let m = z.iter().sum::<f32>() / z.len() as f32;
        let var = z.iter().map(|x| (x - m) * (x - m)).sum::<f32>() / z.len() as f32;
        assert!(
            m.abs() < 0.05 && (var - 1.0).abs() < 0.05,
            "normal {m} {var}"
        );
        manual_seed(7);
        let again = one("aten.rand.default", vec![Value::from(vec![100i64, 100])]);
        assert_eq!(tensor(&again[0]).to_vec::<f32>().unwrap(), u);
    }

    #[test]
    fn randperm_is_a_permutation() {
        let p = one("aten.randperm.default", vec![Value::from(50i64)]);
        let mut v = tensor(&p[0]).to_vec::<i64>().unwrap();
        assert_ne!(v, (0..50).collect::<Vec<_>>(), "shuffled");
        v.sort_unstable();
        assert_eq!(v, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn native_dropout_scales_the_kept_elements_and_masks_the_rest() {
        let x = Tensor::from_vec(vec![1.0f32; 10_000], &[10_000]).unwrap();
        let outs = one(
            "aten.native_dropout.default",
            vec![Value::from(&x), Value::from(0.25), Value::from(true)],
        );
        let (y, mask) = (tensor(&outs[0]), tensor(&outs[1]));
        let y = y.to_vec::<f32>().unwrap();
        let mask = mask.to_vec::<bool>().unwrap();
        for (v, m) in y.iter().zip(&mask) {
            assert_eq!(*v, if *m { 1.0 / 0.75 } else { 0.0 });
        }
        let kept = mask.iter().filter(|&&m| m).count() as f64 / 10_000.0;
        assert!((kept - 0.75).abs() < 0.02, "kept {kept}");
        let eval = one(
            "aten.native_dropout.default",
            vec![Value::from(&x), Value::from(0.25), Value::from(false)],
        );
        assert_eq!(tensor(&eval[0]).to_vec::<f32>().unwrap(), vec![1.0; 10_000]);
        assert!(tensor(&eval[1])
            .to_vec::<bool>()
            .unwrap()
            .iter()
            .all(|&m| m));
    }
}
