//! Zoo models export to the program torch.export prints for their PyTorch twins
//! (tests/fixtures/export/<model>.train.txt, written by tools/gen_export_fixtures.py without the
//! `# File:` lines), line for line.
use oxport_core::prelude::*;
use oxport_export::nn::{
    AvgPool2d, BatchNorm2d, Dropout, Embedding, Flatten, Hardsigmoid, Hardswish, Identity, ReLU6,
    SiLU, Sigmoid, Tanh, LSTM,
};
use oxport_export::zoo::{GPTBlock, MobileNetV3, ResNet};
use oxport_export::{export, export_dynamic, run_decompositions, Dim};
use oxport_runtime::{ExportedProgramExt, PyValue};
use std::path::Path;

fn pytorch_print(name: &str) -> Vec<String> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/export")
        .join(name);
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn ours(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("# File:"))
        .map(str::to_string)
        .collect()
}

#[test]
fn resnet18_exports_as_torchvision_resnet18() {
    let model = ResNet::resnet18(&mut Generator::new(0)).unwrap();
    let x = Tensor::zeros(&[1, 3, 224, 224], DType::F32).unwrap();
    let ep = export(&model, vec![x.into()], vec![]).unwrap();
    check(&run_decompositions(&ep).unwrap(), "resnet18.core.txt");
    let (got, want) = (ours(&ep.to_string()), pytorch_print("resnet18.train.txt"));
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert_eq!(a, b, "line {}", i + 1);
    }
    assert_eq!(got.len(), want.len());
}

#[test]
fn gpt_block_exports_as_its_pytorch_twin() {
    let model = GPTBlock::new(64, 4, &mut Generator::new(0)).unwrap();
    let x = Tensor::zeros(&[2, 16, 64], DType::F32).unwrap();
    let ep = export(&model, vec![x.into()], vec![]).unwrap();
    let (got, want) = (ours(&ep.to_string()), pytorch_print("gpt_block.train.txt"));
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert_eq!(a, b, "line {}", i + 1);
    }
    assert_eq!(got.len(), want.len());
}

/// Twin of `Layers` in tools/gen_export_fixtures.py: one of each simple layer.
#[derive(oxport_export::Module)]
#[module(crate = "oxport_export")]
struct Layers {
    #[module]
    bn: BatchNorm2d,
    #[module]
    r6: ReLU6,
    #[module]
    hs: Hardswish,
    #[module]
    hsig: Hardsigmoid,
    #[module]
    si: SiLU,
    #[module]
    ap: AvgPool2d,
    #[module]
    ident: Identity,
    #[module]
    flat: Flatten,
    #[module]
    emb: Embedding,
    #[module]
    dropout: Dropout,
    #[module]
    sg: Sigmoid,
    #[module]
    th: Tanh,
}

impl oxport_export::Forward for Layers {
    fn forward_arg_names(&self) -> Vec<String> {
        vec!["img".into(), "idx".into()]
    }
    fn forward_py(&self, args: &[PyValue], _: &[(String, PyValue)]) -> Result<PyValue> {
        let (img, idx) = (args[0].as_tensor().unwrap(), args[1].as_tensor().unwrap());
        let a = self.hs.forward(&self.r6.forward(&self.bn.forward(img)?)?)?;
        let b = self
            .ap
            .forward(&self.si.forward(&self.hsig.forward(&a)?)?)?;
        let c = self.th.forward(
            &self
                .sg
                .forward(&self.dropout.forward(&self.emb.forward(idx)?)?)?,
        )?;
        Ok(PyValue::Tuple(vec![
            self.flat.forward(&self.ident.forward(&b)?)?.into(),
            c.into(),
        ]))
    }
}

#[test]
fn simple_layers_export_as_torch_nn_does() {
    let mut g = Generator::new(0);
    let model = Layers {
        bn: BatchNorm2d::new(3, 1e-5, 0.1).unwrap(),
        r6: ReLU6 { inplace: false },
        hs: Hardswish { inplace: false },
        hsig: Hardsigmoid { inplace: true },
        si: SiLU { inplace: true },
        ap: AvgPool2d { kernel_size: 2 },
        ident: Identity,
        flat: Flatten {
            start_dim: 1,
            end_dim: -1,
        },
        emb: Embedding::new(10, 4, &mut g).unwrap(),
        dropout: Dropout::new(0.1, false),
        sg: Sigmoid,
        th: Tanh,
    };
    let img = Tensor::zeros(&[2, 3, 8, 8], DType::F32).unwrap();
    let idx = Tensor::from_vec(vec![1i64, 2, 3, 4], &[2, 2]).unwrap();
    let ep = export(&model, vec![img.into(), idx.into()], vec![]).unwrap();
    check(&run_decompositions(&ep).unwrap(), "layers.core.txt");
    let (got, want) = (ours(&ep.to_string()), pytorch_print("layers.train.txt"));
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert_eq!(a, b, "line {}", i + 1);
    }
    assert_eq!(got.len(), want.len());
}

#[test]
fn mobilenet_v3_small_exports_as_torchvision_does() {
    let model = MobileNetV3::mobilenet_v3_small(&mut Generator::new(0)).unwrap();
    let x = Tensor::zeros(&[1, 3, 224, 224], DType::F32).unwrap();
    let ep = export(&model, vec![x.into()], vec![]).unwrap();
    check(
        &run_decompositions(&ep).unwrap(),
        "mobilenet_v3_small.core.txt",
    );
    let (got, want) = (
        ours(&ep.to_string()),
        pytorch_print("mobilenet_v3_small.train.txt"),
    );
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert_eq!(a, b, "line {}", i + 1);
    }
    assert_eq!(got.len(), want.len());
}

fn check(ep: &oxport_ir::ExportedProgram, fixture: &str) {
    let (got, want) = (ours(&ep.to_string()), pytorch_print(fixture));
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert_eq!(a, b, "line {}", i + 1);
    }
    assert_eq!(got.len(), want.len());
}

#[test]
fn lstm_exports_as_torch_nn_lstm() {
    let model = oxport_export::zoo::lstm(&mut Generator::new(0)).unwrap();
    let x = Tensor::zeros(&[2, 5, 16], DType::F32).unwrap();
    check(
        &export(&model, vec![x.into()], vec![]).unwrap(),
        "lstm.train.txt",
    );
}

#[test]
fn transformer_encoder_exports_as_torch_nn_does() {
    let model = oxport_export::zoo::transformer_encoder(&mut Generator::new(0)).unwrap();
    let x = Tensor::zeros(&[2, 16, 64], DType::F32).unwrap();
    check(
        &export(&model, vec![x.into()], vec![]).unwrap(),
        "transformer_encoder.train.txt",
    );
}

/// Twin of `DynMLP` in tools/gen_export_fixtures.py, exported with a dynamic batch.
#[derive(oxport_export::Module)]
#[module(crate = "oxport_export")]
struct DynMLP {
    #[module]
    fc1: oxport_export::nn::Linear,
    #[module]
    relu: oxport_export::nn::ReLU,
    #[module]
    fc2: oxport_export::nn::Linear,
}

impl oxport_export::Forward for DynMLP {
    fn forward_arg_names(&self) -> Vec<String> {
        vec!["x".into()]
    }
    fn forward_py(&self, args: &[PyValue], _: &[(String, PyValue)]) -> Result<PyValue> {
        let x = args[0].as_tensor().unwrap();
        Ok(self
            .fc2
            .forward(&self.relu.forward(&self.fc1.forward(x)?)?)?
            .into())
    }
}

#[test]
fn dynamic_batch_exports_as_pytorch_does_and_runs_for_any_batch_in_range() {
    use oxport_export::nn::{Linear, ReLU};

    let mut g = Generator::new(0);
    let model = DynMLP {
        fc1: Linear::new(8, 16, true, &mut g).unwrap(),
        relu: ReLU { inplace: false },
        fc2: Linear::new(16, 4, true, &mut g).unwrap(),
    };
    let x = Tensor::zeros(&[5, 8], DType::F32).unwrap();
    let ds = [("x".to_string(), 0, Dim::new("batch", Some(3), Some(1024)))];
    let ep = export_dynamic(&model, vec![x.into()], vec![], &ds).unwrap();
    check(&ep, "dynamic_mlp.train.txt");
    // The program runs for other batch sizes and refuses those out of range.
    let m = ep.module().unwrap();
    for b in [3usize, 17] {
        let out = m
            .call(
                vec![Tensor::zeros(&[b as i64, 8], DType::F32).unwrap().into()],
                vec![],
            )
            .unwrap();
        assert_eq!(out.as_tensor().unwrap().sizes(), &[b, 4]);
    }
    let e = m
        .call(
            vec![Tensor::zeros(&[2, 8], DType::F32).unwrap().into()],
            vec![],
        )
        .unwrap_err();
    assert!(
        e.to_string().starts_with("Guard failed: x.size()[0] >= 3"),
        "{e}"
    );
}

/// Twin of `Seq1d` in tools/gen_export_fixtures.py: Conv1d, BatchNorm1d and a ModuleDict.
#[derive(oxport_export::Module)]
#[module(crate = "oxport_export")]
struct Seq1d {
    #[module]
    conv: oxport_export::nn::Conv1d,
    #[module]
    bn: oxport_export::nn::BatchNorm1d,
    #[module]
    heads: oxport_export::nn::ModuleDict,
}

impl oxport_export::Forward for Seq1d {
    fn forward_arg_names(&self) -> Vec<String> {
        vec!["x".into()]
    }
    #[rustfmt::skip]
    fn forward_py(&self, args: &[PyValue], _: &[(String, PyValue)]) -> Result<PyValue> {
        let h = self.bn.forward(&self.conv.forward(args[0].as_tensor().unwrap())?)?;
        let (relu, tanh) = (self.heads.get("relu").unwrap(), self.heads.get("tanh").unwrap());
        Ok(PyValue::Tuple(vec![relu.forward(&h)?.into(), tanh.forward(&h)?.into()]))
    }
}

#[test]
fn conv1d_batchnorm1d_moduledict_export_as_torch_nn_does() {
    use oxport_export::nn::{BatchNorm1d, Conv1d, Layer, ModuleDict, ReLU};
    let mut g = Generator::new(0);
    let heads: Vec<(String, Box<dyn Layer>)> = vec![
        ("relu".into(), Box::new(ReLU { inplace: false })),
        ("tanh".into(), Box::new(Tanh)),
    ];
    let model = Seq1d {
        conv: Conv1d::new(4, 6, 3, 1, 1, 1, 1, true, &mut g).unwrap(),
        bn: BatchNorm1d::new(6, 1e-5, 0.1).unwrap(),
        heads: ModuleDict { modules: heads },
    };
    let x = Tensor::zeros(&[2, 4, 10], DType::F32).unwrap();
    let ep = export(&model, vec![x.into()], vec![]).unwrap();
    check(&run_decompositions(&ep).unwrap(), "seq1d.core.txt");
    check(&ep, "seq1d.train.txt");
}

/// Twin of `ConvModes` in tools/gen_export_fixtures.py.
#[derive(oxport_export::Module)]
#[module(crate = "oxport_export")]
struct ConvModes {
    #[module]
    c1: oxport_export::nn::Conv2d,
    #[module]
    c2: oxport_export::nn::Conv2d,
    #[module]
    c3: oxport_export::nn::Conv2d,
}

impl oxport_export::Forward for ConvModes {
    fn forward_arg_names(&self) -> Vec<String> {
        vec!["x".into()]
    }
    fn forward_py(&self, args: &[PyValue], _: &[(String, PyValue)]) -> Result<PyValue> {
        let x = args[0].as_tensor().unwrap();
        Ok(self
            .c3
            .forward(&self.c2.forward(&self.c1.forward(x)?)?)?
            .into())
    }
}

#[test]
fn conv_padding_modes_export_as_torch_nn_does() {
    use oxport_export::nn::{Conv2d, PaddingMode};
    let mut g = Generator::new(0);
    let mut conv = |mode, padding| {
        let mut c = Conv2d::new(2, 2, [3, 3], [1, 1], padding, [1, 1], 1, true, &mut g).unwrap();
        c.padding_mode = mode;
        c
    };
    let model = ConvModes {
        c1: conv(PaddingMode::Reflect, [1, 1]),
        c2: conv(PaddingMode::Replicate, [1, 1]),
        c3: conv(PaddingMode::Circular, [1, 2]),
    };
    let x = Tensor::zeros(&[1, 2, 5, 5], DType::F32).unwrap();
    check(
        &export(&model, vec![x.into()], vec![]).unwrap(),
        "conv_modes.train.txt",
    );
}

/// Twin of `AttnWeights` in tools/gen_export_fixtures.py: `attn(x, x, x)` with need_weights=True.
#[derive(oxport_export::Module)]
#[module(crate = "oxport_export")]
struct AttnWeights {
    #[module]
    attn: oxport_export::nn::MultiheadAttention,
}

impl oxport_export::Forward for AttnWeights {
    fn forward_arg_names(&self) -> Vec<String> {
        vec!["x".into()]
    }
    fn forward_py(&self, args: &[PyValue], _: &[(String, PyValue)]) -> Result<PyValue> {
        let x = args[0].as_tensor().unwrap();
        let (a, w) = self.attn.forward(x, x, x, Default::default())?;
        Ok(PyValue::Tuple(vec![a.into(), w.expect("weights").into()]))
    }
}

#[test]
fn attention_weights_path_exports_as_torch_nn_does() {
    let mut g = Generator::new(0);
    let model = AttnWeights {
        attn: oxport_export::nn::MultiheadAttention::new(16, 2, &mut g)
            .unwrap()
            .batch_first(true),
    };
    let x = Tensor::zeros(&[2, 4, 16], DType::F32).unwrap();
    check(
        &export(&model, vec![x.into()], vec![]).unwrap(),
        "attn_weights.train.txt",
    );
}

#[test]
fn symbolic_sizes_are_serialized_as_pytorch_writes_them() {
    // PyTorch 2.15 writes sizes as sympy srepr. tests/fixtures/pt2/dynamic_batch.train.pt2 exported
    // forward(x, y) with one Dim on both batch dims, as this export of SinCos(x, y) does.
    use oxport_export::zoo::SinCos;

    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/pt2/dynamic_batch.train.pt2");
    let theirs = oxport_ir::pt2::load(p).unwrap();
    let x = Tensor::zeros(&[10, 8], DType::F32).unwrap();
    let batch = Dim::new("batch", Some(3), Some(1024));
    let ds = [
        ("x".to_string(), 0, batch.clone()),
        ("y".to_string(), 0, batch),
    ];
    let ours = export_dynamic(&SinCos, vec![x.clone().into(), x.into()], vec![], &ds).unwrap();
    let size0 = |ep: &oxport_ir::ExportedProgram| match &ep
        .graph()
        .tensor_values
        .get("x")
        .unwrap()
        .sizes[0]
    {
        oxport_ir::SymInt::AsExpr(e) => e.expr_str.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(size0(&ours), size0(&theirs));
}

/// Twin of `DynSizes` in tools/gen_export_fixtures.py: sizes of dynamic dims read with `sym_size` and
/// computed with, as `x.shape[0] * 2` in Python.
#[derive(oxport_export::Module)]
#[module(crate = "oxport_export", type_name = "gen_export_fixtures.DynSizes")]
struct DynSizes;

impl oxport_export::Forward for DynSizes {
    fn forward_arg_names(&self) -> Vec<String> {
        vec!["x".into(), "y".into()]
    }
    #[rustfmt::skip]
    fn forward_py(&self, args: &[PyValue], _: &[(String, PyValue)]) -> Result<PyValue> {
        let (x, y) = (args[0].as_tensor().unwrap(), args[1].as_tensor().unwrap());
        let _u = y.sym_size(0)?;
        let b = x.sym_size(0)?;
        let c = &b * 2;
        let h = x.relu()?;
        let r = [h.reshape([c, (-1).into()])?, h.reshape([2 * &b, 3.into(), (-1).into()])?, y.reshape([y.sym_size(0)?, (-1).into()])?];
        let v = x.view([&b + 1 - 1, (-1).into()])?;
        let out = h.reshape([h.sym_size(0)?, (x.size(1)? as i64 / 2).into(), (-1).into()])?;
        Ok(PyValue::Tuple(vec![PyValue::Tuple(r.into_iter().map(Into::into).collect()), v.into(), out.into()]))
    }
}

#[test]
fn dynamic_sizes_are_traced_as_sym_nodes_like_pytorch() {
    let x = Tensor::zeros(&[4, 6], DType::F32).unwrap();
    let y = Tensor::zeros(&[4, 2, 3], DType::F32).unwrap();
    let b = Dim::new("b", Some(2), Some(64));
    let ds = [("x".to_string(), 0, b.clone()), ("y".to_string(), 0, b)];
    let ep = export_dynamic(&DynSizes, vec![x.into(), y.into()], vec![], &ds).unwrap();
    check(&ep, "dynamic_sizes.train.txt");
    // The program runs at another batch size, with PyTorch's result shapes.
    let m = ep.module().unwrap();
    let out = m
        .call_flat(vec![
            Tensor::zeros(&[7, 6], DType::F32).unwrap().into(),
            Tensor::zeros(&[7, 2, 3], DType::F32).unwrap().into(),
        ])
        .unwrap();
    let shapes: Vec<Vec<usize>> = out
        .iter()
        .map(|v| match v {
            oxport_core::ops::Value::Tensor(t) => t.sizes().to_vec(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        shapes,
        vec![
            vec![14, 3],
            vec![14, 3, 1],
            vec![7, 6],
            vec![7, 6],
            vec![7, 3, 2]
        ]
    );
}

/// Reads its input's sizes as plain integers, which would bake the example batch into the graph.
#[derive(oxport_export::Module)]
#[module(crate = "oxport_export")]
struct PlainRead;

impl oxport_export::Forward for PlainRead {
    fn forward_arg_names(&self) -> Vec<String> {
        vec!["x".into()]
    }
    fn forward_py(&self, args: &[PyValue], _: &[(String, PyValue)]) -> Result<PyValue> {
        let x = args[0].as_tensor().unwrap();
        let b = x.sizes()[0] as i64;
        Ok(x.view(&[b, -1])?.into())
    }
}

#[test]
fn a_plain_read_of_a_dynamic_dim_fails_export_naming_the_line() {
    let x = Tensor::zeros(&[4, 6], DType::F32).unwrap();
    // Static export: reading sizes is fine.
    export(&PlainRead, vec![x.clone().into()], vec![]).unwrap();
    let ds = [("x".to_string(), 0, Dim::new("b", Some(2), Some(64)))];
    let e = export_dynamic(&PlainRead, vec![x.into()], vec![], &ds).unwrap_err();
    let line = line!() - 12;
    assert_eq!(
        e.to_string(),
        format!(
            "crates/oxport-export/tests/zoo_prints.rs:{line}: reads the sizes of `x` as plain integers, but \
             its dim 0 is dynamic (s77): the program would be fixed to this example's size 4. Read it with \
             `x.sym_size(0)?` (a SymInt that `view`/`reshape`/`zeros`/... take), and static dims with \
             `x.size(dim)?`"
        )
    );
}

/// Adds a static `(4, 6)` tensor to its input: a dynamic batch would have to equal 4.
#[derive(oxport_export::Module)]
#[module(crate = "oxport_export")]
struct AddStatic;

impl oxport_export::Forward for AddStatic {
    fn forward_arg_names(&self) -> Vec<String> {
        vec!["x".into(), "y".into()]
    }
    fn forward_py(&self, args: &[PyValue], _: &[(String, PyValue)]) -> Result<PyValue> {
        let (x, y) = (args[0].as_tensor().unwrap(), args[1].as_tensor().unwrap());
        Ok(x.add(y)?.into())
    }
}

#[test]
fn a_guard_that_narrows_a_dynamic_dim_fails_export_naming_the_op_and_line() {
    let x = Tensor::zeros(&[4, 6], DType::F32).unwrap();
    let ds = [("x".to_string(), 0, Dim::new("b", Some(2), Some(64)))];
    let e = export_dynamic(&AddStatic, vec![x.clone().into(), x.into()], vec![], &ds).unwrap_err();
    let line = line!() - 9;
    assert_eq!(
        e.to_string(),
        format!(
            "Constraints violated (b = s77): tracing assumed s77 == 4 (in aten.add.Tensor at \
             crates/oxport-export/tests/zoo_prints.rs:{line}) about the dynamic dims, which does not hold \
             for every size in their ranges. Narrow the Dim's min/max to where it holds, make the dim \
             static, or change the model so it does not depend on it"
        )
    );
}

#[test]
fn stacked_bidirectional_lstm_with_initial_state_exports_as_torch_nn_lstm() {
    use oxport_export::nn::LSTMConfig;
    let cfg = LSTMConfig {
        num_layers: 2,
        bidirectional: true,
        ..Default::default()
    };
    let mut g = Generator::new(0);
    let model = LSTM::with_config(8, 12, cfg, &mut g).unwrap();
    let x = Tensor::randn(&[5, 3, 8], &mut g).unwrap();
    let h0 = Tensor::randn(&[4, 3, 12], &mut g).unwrap();
    let c0 = Tensor::randn(&[4, 3, 12], &mut g).unwrap();
    let hx = PyValue::Tuple(vec![h0.clone().into(), c0.clone().into()]);
    let ep = export(&model, vec![x.clone().into(), hx], vec![]).unwrap();
    check(&ep, "lstm_stacked.train.txt");
    check(&run_decompositions(&ep).unwrap(), "lstm_stacked.core.txt");
    // The exported program computes what the model computes.
    let (out, (h, c)) = model.forward_with_state(&x, (&h0, &c0)).unwrap();
    let got = ep
        .module()
        .unwrap()
        .call_flat(vec![x.into(), h0.into(), c0.into()])
        .unwrap();
    for (g, want) in got.iter().zip([out, h, c]) {
        let oxport_core::ops::Value::Tensor(g) = g else {
            panic!("{g:?}")
        };
        assert_eq!(g.to_vec::<f32>().unwrap(), want.to_vec::<f32>().unwrap());
    }
}

#[test]
fn unbatched_lstm_without_biases_exports_as_torch_nn_lstm() {
    use oxport_export::nn::LSTMConfig;
    let cfg = LSTMConfig {
        num_layers: 2,
        bidirectional: true,
        bias: false,
        dropout: 0.1,
        ..Default::default()
    };
    let model = LSTM::with_config(8, 12, cfg, &mut Generator::new(0)).unwrap();
    let x = Tensor::zeros(&[5, 8], DType::F32).unwrap();
    let ep = export(&model, vec![x.into()], vec![]).unwrap();
    check(&ep, "lstm_unbatched.train.txt");
    check(&run_decompositions(&ep).unwrap(), "lstm_unbatched.core.txt");
}

/// Twin of `AttnMasks` in tools/gen_export_fixtures.py.
#[derive(oxport_export::Module)]
#[module(crate = "oxport_export")]
struct AttnMasks {
    #[module]
    attn: oxport_export::nn::MultiheadAttention,
}

impl oxport_export::Forward for AttnMasks {
    fn forward_arg_names(&self) -> Vec<String> {
        ["q", "kv", "v", "kpm", "am", "fm"]
            .map(String::from)
            .to_vec()
    }
    #[rustfmt::skip]
    fn forward_py(&self, args: &[PyValue], _: &[(String, PyValue)]) -> Result<PyValue> {
        use oxport_export::nn::AttnArgs;
        let t: Vec<&Tensor> = args.iter().map(|a| a.as_tensor().unwrap()).collect();
        let (q, kv, v, kpm, am, fm) = (t[0], t[1], t[2], t[3], t[4], t[5]);
        let masks = AttnArgs { key_padding_mask: Some(kpm), attn_mask: Some(am), ..Default::default() };
        let (a, w) = self.attn.forward(q, kv, kv, masks)?;
        let (b, _) = self.attn.forward(q, kv, v, AttnArgs { need_weights: false, ..masks })?;
        let (c, wc) = self.attn.forward(q, q, q, AttnArgs { attn_mask: Some(fm), average_attn_weights: false, ..Default::default() })?;
        let (d, _) = self.attn.forward(q, q, q, AttnArgs { need_weights: false, attn_mask: Some(fm), ..Default::default() })?;
        let outs = [a, w.unwrap(), b, c, wc.unwrap(), d];
        Ok(PyValue::Tuple(outs.into_iter().map(Into::into).collect()))
    }
}

fn attn_mask_inputs(g: &mut Generator) -> Vec<Tensor> {
    let kpm: Vec<bool> = (0..10).map(|i| i >= 8).collect();
    let am: Vec<bool> = (0..20).map(|i| i % 5 > i / 5).collect();
    vec![
        Tensor::randn(&[2, 4, 16], g).unwrap(),
        Tensor::randn(&[2, 5, 16], g).unwrap(),
        Tensor::randn(&[2, 5, 16], g).unwrap(),
        Tensor::from_vec(kpm, &[2, 5]).unwrap(),
        Tensor::from_vec(am, &[4, 5]).unwrap(),
        Tensor::randn(&[4, 4], g).unwrap(),
    ]
}

#[test]
fn attention_with_masks_and_cross_attention_exports_as_torch_nn_does() {
    let mut g = Generator::new(0);
    let model = AttnMasks {
        attn: oxport_export::nn::MultiheadAttention::new(16, 2, &mut g)
            .unwrap()
            .batch_first(true),
    };
    let inputs = attn_mask_inputs(&mut g);
    let args: Vec<PyValue> = inputs.iter().cloned().map(Into::into).collect();
    let ep = export(&model, args.clone(), vec![]).unwrap();
    check(&ep, "attn_masks.train.txt");
    // The program computes what the model computes.
    let eager = oxport_export::Forward::forward_py(&model, &args, &[]).unwrap();
    let got = ep.module().unwrap().call(args, vec![]).unwrap();
    let (PyValue::Tuple(want), PyValue::Tuple(got)) = (eager, got) else {
        panic!("tuples expected")
    };
    for (w, g) in want.iter().zip(&got) {
        let (w, g) = (w.as_tensor().unwrap(), g.as_tensor().unwrap());
        assert_eq!(w.sizes(), g.sizes());
        assert_close_f32(&w.to_vec::<f32>().unwrap(), &g.to_vec::<f32>().unwrap());
    }
}

/// Twin of `AttnUnbatched` in tools/gen_export_fixtures.py.
#[derive(oxport_export::Module)]
#[module(crate = "oxport_export")]
struct AttnUnbatched {
    #[module]
    attn: oxport_export::nn::MultiheadAttention,
}

impl oxport_export::Forward for AttnUnbatched {
    fn forward_arg_names(&self) -> Vec<String> {
        ["q", "kv", "kpm"].map(String::from).to_vec()
    }
    fn forward_py(&self, args: &[PyValue], _: &[(String, PyValue)]) -> Result<PyValue> {
        let t: Vec<&Tensor> = args.iter().map(|a| a.as_tensor().unwrap()).collect();
        let masks = oxport_export::nn::AttnArgs {
            key_padding_mask: Some(t[2]),
            ..Default::default()
        };
        let (a, w) = self.attn.forward(t[0], t[1], t[1], masks)?;
        Ok(PyValue::Tuple(vec![a.into(), w.unwrap().into()]))
    }
}

#[test]
fn unbatched_sequence_first_attention_exports_as_torch_nn_does() {
    let mut g = Generator::new(0);
    let model = AttnUnbatched {
        attn: oxport_export::nn::MultiheadAttention::new(16, 2, &mut g).unwrap(),
    };
    let kpm = Tensor::from_vec((0..5).map(|i| i >= 3).collect::<Vec<bool>>(), &[5]).unwrap();
    let args = vec![
        Tensor::zeros(&[4, 16], DType::F32).unwrap().into(),
        Tensor::zeros(&[5, 16], DType::F32).unwrap().into(),
        kpm.into(),
    ];
    check(
        &export(&model, args, vec![]).unwrap(),
        "attn_unbatched.train.txt",
    );
}

/// Twin of `EncoderOptions` in tools/gen_export_fixtures.py.
#[derive(oxport_export::Module)]
#[module(crate = "oxport_export")]
struct EncoderOptions {
    #[module]
    enc: oxport_export::nn::TransformerEncoder,
}

impl oxport_export::Forward for EncoderOptions {
    fn forward_arg_names(&self) -> Vec<String> {
        ["x", "kpm", "am"].map(String::from).to_vec()
    }
    #[rustfmt::skip]
    fn forward_py(&self, args: &[PyValue], _: &[(String, PyValue)]) -> Result<PyValue> {
        use oxport_export::nn::EncoderArgs;
        let t: Vec<&Tensor> = args.iter().map(|a| a.as_tensor().unwrap()).collect();
        let (x, kpm, am) = (t[0], t[1], t[2]);
        let a = self.enc.forward_with(x, EncoderArgs { src_key_padding_mask: Some(kpm), ..Default::default() })?; let b = self.enc.forward_with(x, EncoderArgs { mask: Some(am), is_causal: Some(false), ..Default::default() })?;
        Ok(PyValue::Tuple(vec![a.into(), b.into()]))
    }
}

fn encoder_inputs() -> Vec<PyValue> {
    let kpm = Tensor::from_vec((0..8).map(|i| i == 7).collect::<Vec<bool>>(), &[2, 4]).unwrap();
    let causal = Tensor::from_vec(
        (0..16).map(|i| i % 4 > i / 4).collect::<Vec<bool>>(),
        &[4, 4],
    )
    .unwrap();
    let x = Tensor::randn(&[2, 4, 16], &mut Generator::new(1)).unwrap();
    vec![x.into(), kpm.into(), causal.into()]
}

#[test]
fn encoder_with_pre_norm_gelu_layers_final_norm_and_masks_exports_as_torch_nn_does() {
    use oxport_export::nn::{
        Activation, LayerNorm, TransformerEncoder, TransformerEncoderLayer,
        TransformerEncoderLayerConfig,
    };
    let cfg = TransformerEncoderLayerConfig {
        dim_feedforward: 32,
        activation: Activation::Gelu,
        batch_first: true,
        norm_first: true,
        ..Default::default()
    };
    let layer = TransformerEncoderLayer::with_config(16, 2, cfg, &mut Generator::new(0)).unwrap();
    let norm = Some(LayerNorm::new(16).unwrap());
    let model = EncoderOptions {
        enc: TransformerEncoder::new(layer, 2, norm).unwrap(),
    };
    let args = encoder_inputs();
    let ep = export(&model, args.clone(), vec![]).unwrap();
    check(&ep, "encoder_options.train.txt");
    let eager = oxport_export::Forward::forward_py(&model, &args, &[]).unwrap();
    let got = ep.module().unwrap().call(args, vec![]).unwrap();
    let (PyValue::Tuple(want), PyValue::Tuple(got)) = (eager, got) else {
        panic!("tuples expected")
    };
    for (w, g) in want.iter().zip(&got) {
        let (w, g) = (w.as_tensor().unwrap(), g.as_tensor().unwrap());
        assert_close_f32(&w.to_vec::<f32>().unwrap(), &g.to_vec::<f32>().unwrap());
    }
}

/// Twin of `EncoderLayerSeqFirst` in tools/gen_export_fixtures.py.
#[derive(oxport_export::Module)]
#[module(crate = "oxport_export")]
struct EncoderLayerSeqFirst {
    #[module]
    layer: oxport_export::nn::TransformerEncoderLayer,
}

impl oxport_export::Forward for EncoderLayerSeqFirst {
    fn forward_arg_names(&self) -> Vec<String> {
        ["x", "kpm", "am"].map(String::from).to_vec()
    }
    fn forward_py(&self, args: &[PyValue], _: &[(String, PyValue)]) -> Result<PyValue> {
        let t: Vec<&Tensor> = args.iter().map(|a| a.as_tensor().unwrap()).collect();
        let masks = oxport_export::nn::EncoderArgs {
            mask: Some(t[2]),
            src_key_padding_mask: Some(t[1]),
            is_causal: None,
        };
        Ok(self.layer.forward_with(t[0], masks)?.into())
    }
}

#[test]
fn sequence_first_pre_norm_encoder_layer_with_masks_exports_as_torch_nn_does() {
    use oxport_export::nn::{Activation, TransformerEncoderLayer, TransformerEncoderLayerConfig};
    let cfg = TransformerEncoderLayerConfig {
        dim_feedforward: 32,
        dropout: 0.0,
        activation: Activation::Gelu,
        norm_first: true,
        ..Default::default()
    };
    let model = EncoderLayerSeqFirst {
        layer: TransformerEncoderLayer::with_config(16, 2, cfg, &mut Generator::new(0)).unwrap(),
    };
    let mut args = encoder_inputs();
    args[0] = Tensor::zeros(&[4, 2, 16], DType::F32).unwrap().into();
    check(
        &export(&model, args, vec![]).unwrap(),
        "encoder_layer_seq_first.train.txt",
    );
}

#[test]
fn training_mode_records_dropout_as_pytorch_does() {
    use oxport_export::nn::{TransformerEncoderLayer, TransformerEncoderLayerConfig};
    let cfg = TransformerEncoderLayerConfig {
        dim_feedforward: 32,
        batch_first: true,
        ..Default::default()
    };
    let mut layer =
        TransformerEncoderLayer::with_config(16, 2, cfg, &mut Generator::new(0)).unwrap();
    layer.self_attn.dropout = 0.25; // as the fixture script sets it
    oxport_export::train(&layer, true);
    let x = Tensor::zeros(&[2, 4, 16], DType::F32).unwrap();
    check(
        &export(&layer, vec![x.clone().into()], vec![]).unwrap(),
        "encoder_layer_train.train.txt",
    );

    let mut g = Generator::new(0);
    let model = AttnWeights {
        attn: oxport_export::nn::MultiheadAttention::new(16, 2, &mut g)
            .unwrap()
            .batch_first(true)
            .dropout(0.25),
    };
    oxport_export::train(&model, true);
    check(
        &export(&model, vec![x.into()], vec![]).unwrap(),
        "attn_weights_train.train.txt",
    );
}

/// Twin of `CondModel` in tools/gen_export_fixtures.py: `torch.cond` on tensor data.
#[derive(oxport_export::Module)]
#[module(crate = "oxport_export")]
struct CondModel {
    #[param]
    w: Tensor,
    #[buffer]
    b: Tensor,
}

impl oxport_export::Forward for CondModel {
    fn forward_arg_names(&self) -> Vec<String> {
        vec!["x".into(), "y".into()]
    }
    fn forward_py(&self, args: &[PyValue], _: &[(String, PyValue)]) -> Result<PyValue> {
        let (x, y) = (args[0].as_tensor().unwrap(), args[1].as_tensor().unwrap());
        let t = |o: &[Tensor]| -> Result<Vec<Tensor>> {
            let m = o[0].mul(&self.w)?;
            let a = m.add(&o[1])?;
            let s = o[0].sin()?;
            Ok(vec![a, s])
        };
        let f = |o: &[Tensor]| -> Result<Vec<Tensor>> {
            let c = o[0].cos()?;
            let m = c.mul(&self.b)?;
            let a = o[1].add(1)?;
            Ok(vec![m, a])
        };
        let pred = x.sum_all()?.gt(0)?;
        let out = oxport_export::cond(&pred, t, f, &[x.clone(), y.clone()])?;
        let first = out[0].add(1)?;
        Ok(PyValue::Tuple(vec![first.into(), out[1].clone().into()]))
    }
}

#[test]
fn cond_on_tensor_data_exports_as_torch_cond_and_runs_both_ways() {
    let model = CondModel {
        w: Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3]).unwrap(),
        b: Tensor::from_vec(vec![0.5f32, -1.0, 2.0], &[3]).unwrap(),
    };
    let mut g = Generator::new(0);
    let (x, y) = (
        Tensor::randn(&[2, 3], &mut g).unwrap(),
        Tensor::randn(&[2, 3], &mut g).unwrap(),
    );
    let ep = export(&model, vec![x.clone().into(), y.clone().into()], vec![]).unwrap();
    check(&ep, "cond.train.txt");
    check(&run_decompositions(&ep).unwrap(), "cond.core.txt");
    // The program takes the branch the data selects, as the eager model does.
    let m = ep.module().unwrap();
    for sign in [1.0f64, -1.0] {
        let xs = x.mul(&x).unwrap().add(0.1).unwrap().mul(sign).unwrap();
        let args: Vec<PyValue> = vec![xs.into(), y.clone().into()];
        let want = oxport_export::Forward::forward_py(&model, &args, &[]).unwrap();
        let got = m.call(args, vec![]).unwrap();
        let (PyValue::Tuple(w), PyValue::Tuple(g)) = (want, got) else {
            panic!("tuples expected")
        };
        for (w, g) in w.iter().zip(&g) {
            let (w, g) = (w.as_tensor().unwrap(), g.as_tensor().unwrap());
            assert_close_f32(&w.to_vec::<f32>().unwrap(), &g.to_vec::<f32>().unwrap());
        }
    }
}

#[test]
fn a_bare_multihead_attention_exports_as_torch_nn_does() {
    // Inputs are separate placeholders, so `key is value` is false inside forward, as in PyTorch.
    let mut g = Generator::new(0);
    let attn = oxport_export::nn::MultiheadAttention::new(16, 2, &mut g)
        .unwrap()
        .batch_first(true);
    let kv = Tensor::zeros(&[2, 5, 16], DType::F32).unwrap();
    let q = Tensor::zeros(&[2, 4, 16], DType::F32).unwrap();
    let args = vec![q.into(), kv.clone().into(), kv.into()];
    check(
        &export(&attn, args, vec![]).unwrap(),
        "mha_module.train.txt",
    );
}

/// Equal within f32 tolerance (|a-b| <= 1e-5 + 1e-4|b|): the runtime's compile stage (packed
/// products, fused kernels) may round differently from the eager kernels in the last bits.
fn assert_close_f32(want: &[f32], got: &[f32]) {
    assert_eq!(want.len(), got.len());
    for (i, (&w, &g)) in want.iter().zip(got).enumerate() {
        assert!(
            (w - g).abs() <= 1e-5 + 1e-4 * w.abs() || (w.is_nan() && g.is_nan()),
            "element {i}: {g} vs {w}"
        );
    }
}
