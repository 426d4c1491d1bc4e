//! Ops whose training mode draws random numbers (no PyTorch oracle can match the stream): checked for
//! their distribution and invariants instead.
use oxport_core::prelude::*;
use oxport_core::tensor::manual_seed;

#[test]
fn training_dropout_zeroes_p_and_scales_the_rest() {
    manual_seed(1);
    let x = Tensor::full(&[200, 100], 2.0, Some(DType::F32)).unwrap();
    let y = x.dropout(0.3, true).unwrap().to_vec::<f32>().unwrap();
    let zeros = y.iter().filter(|&&v| v == 0.0).count() as f64 / y.len() as f64;
    assert!((zeros - 0.3).abs() < 0.02, "dropped {zeros}");
    assert!(y.iter().all(|&v| v == 0.0 || (v - 2.0 / 0.7).abs() < 1e-6));
    // Reproducible after reseeding; p = 1 drops everything; eval mode is the identity.
    manual_seed(1);
    assert_eq!(x.dropout(0.3, true).unwrap().to_vec::<f32>().unwrap(), y);
    assert!(x
        .dropout(1.0, true)
        .unwrap()
        .to_vec::<f32>()
        .unwrap()
        .iter()
        .all(|&v| v == 0.0));
    assert_eq!(
        x.dropout(0.3, false).unwrap().to_vec::<f32>().unwrap(),
        vec![2.0; 20000]
    );
}

#[test]
fn training_dropout_in_place_writes_the_input() {
    let x = Tensor::full(&[1000], 1.0, Some(DType::F64)).unwrap();
    let y = x.dropout_(0.5, true).unwrap();
    let v = x.to_vec::<f64>().unwrap();
    assert_eq!(v, y.to_vec::<f64>().unwrap());
    assert!(v.iter().all(|&e| e == 0.0 || e == 2.0));
    assert!(v.contains(&0.0) && v.contains(&2.0));
}
