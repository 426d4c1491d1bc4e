//! PyTorch's memory model and bad-input behaviour, checked through the public API. Expected values are
//! what PyTorch 2.15 prints for the same Python (given in each comment).
use oxport_core::prelude::*;
use proptest::prelude::*;

fn f32s(t: &Tensor) -> Vec<f32> {
    t.to_vec::<f32>().unwrap()
}

#[test]
fn views_share_storage_and_see_in_place_writes() -> Result<()> {
    // x = torch.arange(6.).view(2, 3); v = x.t(); s = x[:, 1]; x.add_(10); s.mul_(2)
    let x = Tensor::arange(0.0, 6.0, 1.0, None)?.view(&[2, 3])?;
    let v = x.t()?;
    let s = x.select(1, 1)?;
    assert!(v.shares_storage(&x) && s.shares_storage(&x));
    assert_eq!(
        (v.strides(), s.strides(), s.storage_offset()),
        (&[1usize, 3][..], &[3usize][..], 1)
    );
    x.add_(10.0)?;
    s.mul_(2.0)?;
    // x == [[10, 22, 12], [13, 28, 15]]
    assert_eq!(f32s(&x), vec![10.0, 22.0, 12.0, 13.0, 28.0, 15.0]);
    assert_eq!(f32s(&v), vec![10.0, 13.0, 22.0, 28.0, 12.0, 15.0]);
    // relu_ on a strided view writes only the view's elements.
    let y = Tensor::from_vec(vec![-1.0f32, -2.0, -3.0, -4.0], &[2, 2])?;
    y.select(0, 0)?.relu_()?;
    assert_eq!(f32s(&y), vec![0.0, 0.0, -3.0, -4.0]);
    Ok(())
}

#[test]
fn aliasing_in_place_ops_read_before_writing() -> Result<()> {
    // a = torch.arange(4.); a.add_(a.as_strided([4], [1], 0)) -> [0, 2, 4, 6]
    let a = Tensor::arange(0.0, 4.0, 1.0, None)?;
    let rev = a.as_strided(&[4], &[1], Some(0))?; // same storage
    a.add_(&rev)?;
    assert_eq!(f32s(&a), vec![0.0, 2.0, 4.0, 6.0]);
    let b = Tensor::arange(0.0, 4.0, 1.0, None)?;
    b.slice(0, 1, None, 1)?.copy_(&b.slice(0, None, 3, 1)?)?; // overlapping shift
    assert_eq!(f32s(&b), vec![0.0, 0.0, 1.0, 2.0]);
    Ok(())
}

#[test]
fn views_and_copies() -> Result<()> {
    let x = Tensor::arange(0.0, 24.0, 1.0, None)?.view(&[2, 3, 4])?;
    let p = x.permute(&[2, 0, 1])?;
    assert!(!p.is_contiguous());
    assert!(p.view(&[4, 6])?.shares_storage(&x)); // dims 1, 2 stay contiguous together
    assert!(p.view(&[8, 3]).is_err()); // dims 0, 1 do not: view on incompatible strides
    let r = p.reshape(&[8, 3])?; // reshape copies instead
    assert!(!r.shares_storage(&x));
    assert_eq!(f32s(&r)[..6], [0.0, 4.0, 8.0, 12.0, 16.0, 20.0]);
    let f = x.flatten(1, 2)?;
    assert!(f.shares_storage(&x));
    assert_eq!(f.sizes(), &[2, 12]);
    let e = Tensor::from_vec(vec![1i64, 2, 3], &[3, 1])?.expand(&[2, 3, 4])?;
    assert_eq!(
        (e.sizes(), e.strides()),
        (&[2usize, 3, 4][..], &[0usize, 1, 0][..])
    );
    assert_eq!(x.unsqueeze(-1)?.sizes(), &[2, 3, 4, 1]);
    assert_eq!(x.unflatten(2, &[2, -1])?.sizes(), &[2, 3, 2, 2]);
    let parts = x.split_with_sizes(&[1, 3], 2)?;
    assert_eq!(parts[1].sizes(), &[2, 3, 3]);
    assert!(parts[1].shares_storage(&x));
    assert_eq!(x.contiguous()?.storage_offset(), 0);
    Ok(())
}

#[test]
fn type_promotion_with_wrapped_numbers() -> Result<()> {
    let i = Tensor::from_vec(vec![1i32, 2, 3], &[3])?;
    assert_eq!(i.add(2)?.dtype(), DType::I32); // int tensor + int → int32
    assert_eq!(i.add(2.5)?.dtype(), DType::F32); // int tensor + float → default float
    assert_eq!(i.div(2)?.dtype(), DType::F32); // true division
    let h = Tensor::from_vec(vec![half::f16::from_f32(1.0)], &[1])?;
    assert_eq!(h.mul(3.0)?.dtype(), DType::F16);
    let b = Tensor::from_vec(vec![true, false], &[2])?;
    assert_eq!(b.add(1)?.dtype(), DType::I64);
    let d0 = Tensor::scalar(2.0f64);
    assert_eq!(
        Tensor::from_vec(vec![1.0f32], &[1])?.mul(&d0)?.dtype(),
        DType::F32
    ); // 0-d does not win
    let e = i.add_(0.5).unwrap_err();
    assert_eq!(
        e.to_string(),
        "result type Float can't be cast to the desired output type Int"
    );
    Ok(())
}

#[test]
fn bad_input_is_an_error_not_a_panic() -> Result<()> {
    let x = Tensor::zeros(&[4, 4], DType::F32)?;
    let msg = |r: Result<Tensor>| r.unwrap_err().to_string();
    assert_eq!(
        msg(x.view(&[3, 5])),
        "shape '[3, 5]' is invalid for input of size 16"
    );
    assert_eq!(
        msg(x.sum(&[2], false)),
        "Dimension out of range (expected to be in range of [-2, 1], but got 2)"
    );
    assert_eq!(
        msg(x.select(0, 4)),
        "select(): index 4 out of range for tensor of size [4, 4] at dimension 0"
    );
    assert_eq!(
        msg(x.add(&Tensor::zeros(&[3], DType::F32)?)),
        "The size of tensor a (4) must match the size of tensor b (3) at non-singleton dimension 1"
    );
    assert_eq!(
        msg(x.mm(&Tensor::zeros(&[3, 2], DType::F32)?)),
        "mat1 and mat2 shapes cannot be multiplied (4x4 and 3x2)"
    );
    // Out-of-bounds and absurd geometry.
    assert!(x.as_strided(&[4, 4], &[5, 1], Some(0)).is_err());
    assert!(x.restride(&[1 << 62, 4], &[0, 1], 0).is_err());
    assert!(Tensor::zeros(&[1 << 40, 1 << 40], DType::F32).is_err());
    assert!(Tensor::from_vec(vec![1.0f32; 3], &[2, 2]).is_err());
    assert!(Tensor::from_npy_bytes(b"\x93NUMPY\x01\x00garbage").is_err());
    assert!(Tensor::arange(0, 10, 0, None).is_err());
    Ok(())
}

#[test]
fn seeded_randn_is_reproducible() -> Result<()> {
    let a = Tensor::randn(&[3, 4], &mut Generator::new(42))?;
    let b = Tensor::randn(&[3, 4], &mut Generator::new(42))?;
    assert_eq!(f32s(&a), f32s(&b));
    assert_ne!(
        f32s(&a),
        f32s(&Tensor::randn(&[3, 4], &mut Generator::new(43))?)
    );
    Ok(())
}

fn shape_strategy() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..5, 1..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Broadcasting a size-1 dim gives the same numbers as adding an explicitly expanded copy.
    #[test]
    fn broadcast_add_equals_expanded_add(shape in shape_strategy(), pick in 0usize..8, seed in 0u64..1000) {
        let mut g = Generator::new(seed);
        let a = Tensor::randn(&shape, &mut g).unwrap();
        let mut bshape = shape.clone();
        let d = pick % shape.len();
        bshape[d] = 1;
        let b = Tensor::randn(&bshape, &mut g).unwrap();
        let want: Vec<i64> = shape.iter().map(|&s| s as i64).collect();
        let expanded = b.expand(&want).unwrap().contiguous().unwrap();
        prop_assert_eq!(f32s(&a.add(&b).unwrap()), f32s(&a.add(&expanded).unwrap()));
    }

    /// Any permutation followed by its inverse is the identity, and reshape of a permuted tensor keeps
    /// the logical order.
    #[test]
    fn permute_roundtrip(shape in shape_strategy(), seed in 0u64..1000) {
        let mut g = Generator::new(seed);
        let x = Tensor::randn(&shape, &mut g).unwrap();
        let n = shape.len() as i64;
        let perm: Vec<i64> = (0..n).rev().collect();
        let back = x.permute(&perm).unwrap().permute(&perm).unwrap();
        prop_assert_eq!(f32s(&back), f32s(&x));
        let flat = x.permute(&perm).unwrap().reshape(&[-1]).unwrap();
        prop_assert_eq!(flat.numel(), x.numel());
    }
}

#[test]
fn restride_far_out_of_bounds_is_an_error_not_an_overflow() {
    // Regression: the out-of-bounds message computed (last + 1) * itemsize in usize and overflowed.
    let t = Tensor::from_vec(vec![0f32; 20], &[20]).unwrap();
    let e = t.restride(&[4], &[1], i64::MAX as usize).unwrap_err();
    assert!(e.to_string().contains("out of bounds"), "{e}");
}
