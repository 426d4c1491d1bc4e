//! `#[derive(Module)]` through the facade: PyTorch's fully-qualified names, registration order, optional
//! members and non-persistent buffers.
use oxport::export_api::{named_buffers, named_modules, named_parameters};
use oxport::nn::{Linear, ReLU};
use oxport::prelude::*;

#[derive(Module)]
struct Head {
    #[module]
    proj: Linear,
    #[param]
    scale: Tensor,
    #[param]
    shift: Option<Tensor>,
    #[buffer]
    count: Tensor,
    #[buffer(persistent = false)]
    scratch: Tensor,
}

#[derive(Module)]
#[module(type_name = "mylib.Net")]
struct Net {
    #[module]
    body: Linear,
    #[module]
    act: ReLU,
    #[module]
    head: Option<Head>,
    #[module]
    unused: Option<Linear>,
}

#[test]
fn names_follow_pytorch() {
    let mut g = Generator::new(0);
    let net = Net {
        body: Linear::new(4, 8, true, &mut g).unwrap(),
        act: ReLU { inplace: false },
        head: Some(Head {
            proj: Linear::new(8, 2, false, &mut g).unwrap(),
            scale: Tensor::ones(&[2], DType::F32).unwrap(),
            shift: None,
            count: Tensor::zeros(&[] as &[i64], DType::I64).unwrap(),
            scratch: Tensor::zeros(&[2], DType::F32).unwrap(),
        }),
        unused: None,
    };
    let params: Vec<String> = named_parameters(&net).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        params,
        ["body.weight", "body.bias", "head.scale", "head.proj.weight"]
    );
    let buffers: Vec<(String, bool)> = named_buffers(&net)
        .into_iter()
        .map(|(n, _, p)| (n, p))
        .collect();
    assert_eq!(
        buffers,
        [
            ("head.count".to_string(), true),
            ("head.scratch".to_string(), false)
        ]
    );
    let modules: Vec<(String, String)> = named_modules(&net)
        .into_iter()
        .map(|(n, t, _)| (n, t))
        .collect();
    assert_eq!(modules[0], (String::new(), "mylib.Net".to_string()));
    assert_eq!(
        modules[3],
        ("head".to_string(), "__main__.Head".to_string())
    );
}
