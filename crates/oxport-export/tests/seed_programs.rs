//! The two programs of the torch.export overview, written in Rust like their PyTorch twins
//! (tools/gen_pt2_fixtures.py: SinCos, ConvReluMaxpool), must export to the program PyTorch prints
//! (tests/fixtures/pt2/*.train.txt) line for line, except the `# File:` lines, which point at Rust.
use oxport_core::prelude::*;
use oxport_export::export;
use oxport_export::zoo::{ConvReluMaxpool, SinCos};
use std::path::Path;

fn without_file_lines(s: &str) -> Vec<String> {
    s.lines()
        .filter(|l| !l.trim_start().starts_with("# File:"))
        .map(str::to_string)
        .collect()
}

fn pytorch_print(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/pt2")
            .join(name),
    )
    .unwrap()
}

#[test]
fn sin_cos_exports_as_pytorch_does() {
    let x = Tensor::zeros(&[10, 10], DType::F32).unwrap();
    let ep = export(&SinCos, vec![x.clone().into(), x.into()], vec![]).unwrap();
    let ours = ep.to_string();
    assert_eq!(
        without_file_lines(&ours),
        without_file_lines(&pytorch_print("sin_cos.train.txt")),
        "\n{ours}"
    );
    // The File lines point at the Rust source of the model.
    let cos_line = ours
        .lines()
        .find(|l| l.contains("code: let b = y.cos()?;"))
        .expect(&ours);
    assert!(
        cos_line
            .trim_start()
            .starts_with("# File: crates/oxport-export/src/zoo.rs:"),
        "{cos_line}"
    );
}

#[test]
fn conv_relu_maxpool_exports_as_pytorch_does() {
    let mut g = Generator::new(0);
    let model = ConvReluMaxpool::new(&mut g).unwrap();
    let x = Tensor::zeros(&[1, 3, 256, 256], DType::F32).unwrap();
    let constant = Tensor::ones(&[1, 16, 256, 256], DType::F32).unwrap();
    let ep = export(
        &model,
        vec![x.into()],
        vec![("constant".into(), constant.into())],
    )
    .unwrap();
    let ours = ep.to_string();
    assert_eq!(
        without_file_lines(&ours),
        without_file_lines(&pytorch_print("conv_relu_maxpool.train.txt")),
        "\n{ours}"
    );
}

/// Branching on a tensor's values cannot be traced: export fails and names the line.
struct DataDependent;

impl oxport_export::Module for DataDependent {
    fn type_name(&self) -> String {
        "__main__.DataDependent".into()
    }
}

impl oxport_export::Forward for DataDependent {
    fn forward_arg_names(&self) -> Vec<String> {
        vec!["x".into()]
    }
    fn forward_py(
        &self,
        args: &[oxport_runtime::PyValue],
        _: &[(String, oxport_runtime::PyValue)],
    ) -> Result<oxport_runtime::PyValue> {
        let x = args[0].as_tensor().unwrap();
        let y = if x.sum_all()?.item_f64()? > 0.0 {
            x.sin()?
        } else {
            x.cos()?
        };
        Ok(y.into())
    }
}

#[test]
fn data_dependent_branching_is_an_error_naming_the_line() {
    let x = Tensor::zeros(&[3], DType::F32).unwrap();
    let e = export(&DataDependent, vec![x.into()], vec![])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("crates/oxport-export/tests/seed_programs.rs:"),
        "{e}"
    );
    assert!(
        e.contains("cannot read a tensor's values during export") && e.contains("oxport::cond("),
        "{e}"
    );
}

/// Twin of `BufferMutation` in tools/gen_pt2_fixtures.py: in-place updates of buffers (one
/// non-persistent) and of a user input stay in-place ops in the training IR, as in PyTorch.
#[derive(oxport_export::Module)]
#[module(crate = "oxport_export")]
struct BufferMutation {
    #[buffer]
    count: Tensor,
    #[buffer]
    running: Tensor,
    #[buffer(persistent = false)]
    scratch: Tensor,
    #[module]
    lin: oxport_export::nn::Linear,
}

impl oxport_export::Forward for BufferMutation {
    fn forward_arg_names(&self) -> Vec<String> {
        vec!["x".into(), "y".into()]
    }
    #[rustfmt::skip]
    fn forward_py(
        &self,
        args: &[oxport_runtime::PyValue],
        _: &[(String, oxport_runtime::PyValue)],
    ) -> Result<oxport_runtime::PyValue> {
        use oxport_runtime::PyValue::Tuple;
        let (x, y) = (args[0].as_tensor().unwrap(), args[1].as_tensor().unwrap());
        self.count.add_(1)?;
        self.running.mul_(0.9)?.add_(&x.mean(&[0], false)?.mul(0.1)?)?;
        self.scratch.mul_(2.0)?;
        y.add_(1)?;
        // One line, as the twin's `return self.lin(x) + self.running + self.scratch, y * 2` (one stack-trace group).
        Ok(Tuple(vec![self.lin.forward(x)?.add(&self.running)?.add(&self.scratch)?.into(), y.mul(2)?.into()]))
    }
}

#[test]
fn buffer_and_input_mutations_export_as_pytorch_does() {
    let mut g = Generator::new(0);
    let model = BufferMutation {
        count: Tensor::zeros(&[] as &[i64], DType::I64).unwrap(),
        running: Tensor::zeros(&[4], DType::F32).unwrap(),
        scratch: Tensor::ones(&[4], DType::F32).unwrap(),
        lin: oxport_export::nn::Linear::new(4, 4, true, &mut g).unwrap(),
    };
    let x = Tensor::zeros(&[3, 4], DType::F32).unwrap();
    let ep = export(&model, vec![x.clone().into(), x.into()], vec![]).unwrap();
    let ours = ep.to_string();
    assert_eq!(
        without_file_lines(&ours),
        without_file_lines(&pytorch_print("buffer_mutation.train.txt")),
        "\n{ours}"
    );
    // The state: two persistent buffers and the parameters in the state_dict, the other in constants.
    assert!(ep.state_dict.contains_key("count") && ep.constants.contains_key("scratch"));
}

/// Twin of `SmallCnnBn` in tools/gen_pt2_fixtures.py, exported in eval and in train mode.
#[derive(oxport_export::Module)]
#[module(crate = "oxport_export")]
struct SmallCnnBn {
    #[module]
    conv: oxport_export::nn::Conv2d,
    #[module]
    bn: oxport_export::nn::BatchNorm2d,
    #[module]
    relu: oxport_export::nn::ReLU,
    #[module]
    pool: oxport_export::nn::AdaptiveAvgPool2d,
    #[module]
    flatten: oxport_export::nn::Flatten,
    #[module]
    fc: oxport_export::nn::Linear,
}

impl oxport_export::Forward for SmallCnnBn {
    fn forward_arg_names(&self) -> Vec<String> {
        vec!["x".into()]
    }
    #[rustfmt::skip]
    fn forward_py(
        &self,
        args: &[oxport_runtime::PyValue],
        _: &[(String, oxport_runtime::PyValue)],
    ) -> Result<oxport_runtime::PyValue> {
        let x = args[0].as_tensor().unwrap();
        Ok(self.fc.forward(&self.flatten.forward(&self.pool.forward(&self.relu.forward(&self.bn.forward(&self.conv.forward(x)?)?)?)?)?)?.into())
    }
}

#[test]
fn batch_norm_exports_in_eval_and_train_mode_as_pytorch_does() {
    use oxport_export::nn::*;
    let mut g = Generator::new(0);
    let model = SmallCnnBn {
        conv: Conv2d::new(3, 8, [3, 3], [1, 1], [0, 0], [1, 1], 1, true, &mut g).unwrap(),
        bn: BatchNorm2d::new(8, 1e-5, 0.1).unwrap(),
        relu: ReLU { inplace: false },
        pool: AdaptiveAvgPool2d {
            output_size: [1, 1],
        },
        flatten: Flatten {
            start_dim: 1,
            end_dim: -1,
        },
        fc: Linear::new(8, 10, true, &mut g).unwrap(),
    };
    let x = Tensor::zeros(&[2, 3, 16, 16], DType::F32).unwrap();
    for (mode, fixture) in [
        (false, "small_cnn_bn_eval.train.txt"),
        (true, "small_cnn_bn_train.train.txt"),
    ] {
        oxport_export::train(&model, mode);
        let ep = export(&model, vec![x.clone().into()], vec![]).unwrap();
        assert_eq!(
            without_file_lines(&ep.to_string()),
            without_file_lines(&pytorch_print(fixture)),
            "{fixture}"
        );
    }
    oxport_export::eval(&model);
    let names: Vec<String> = oxport_export::state_dict(&model)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names[4..7],
        [
            "bn.running_mean",
            "bn.running_var",
            "bn.num_batches_tracked"
        ]
    );
}

#[test]
fn weights_load_from_safetensors_and_from_a_pt2() {
    // tools/gen_export_fixtures.py saved the PyTorch twin's weights with safetensors.torch.save_file;
    // tools/gen_pt2_fixtures.py exported the same seeded twin. Both fill the Rust model identically.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let from_st = ConvReluMaxpool::new(&mut Generator::new(1)).unwrap();
    let st =
        oxport_ir::safetensors::load(dir.join("export/conv_relu_maxpool.safetensors")).unwrap();
    oxport_export::load_state_dict(&from_st, st.iter().map(|(k, t)| (k.as_str(), t))).unwrap();
    let from_pt2 = ConvReluMaxpool::new(&mut Generator::new(2)).unwrap();
    let ep = oxport_ir::pt2::load(dir.join("pt2/conv_relu_maxpool.train.pt2")).unwrap();
    oxport_export::load_state_dict(&from_pt2, ep.state_dict.iter().map(|(k, w)| (k, &w.tensor)))
        .unwrap();
    let (a, b) = (
        oxport_export::state_dict(&from_st),
        oxport_export::state_dict(&from_pt2),
    );
    assert_eq!(a.len(), 2);
    for ((n1, t1), (n2, t2)) in a.iter().zip(&b) {
        assert_eq!(n1, n2);
        assert_eq!(t1.to_vec_f64(), t2.to_vec_f64(), "{n1}");
    }
    // Strict loading names what is wrong.
    let e = oxport_export::load_state_dict(
        &from_st,
        st.iter()
            .filter(|(k, _)| k != "conv.bias")
            .map(|(k, t)| (k.as_str(), t)),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("Missing key(s) in state_dict: conv.bias"),
        "{e}"
    );
}
