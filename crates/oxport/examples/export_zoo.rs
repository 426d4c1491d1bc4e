//! Exports a model of the zoo (eval mode, seeded weights) on its example inputs and writes
//! `DIR/model.pt2`, `DIR/program.txt` (the printed program), `DIR/in_<i>.npy` (flattened inputs) and
//! `DIR/out_<j>.npy` (the Rust model's eager outputs on those inputs).
//!
//! `cargo run --release --example export_zoo -- --model NAME [--core] [--dynamic-batch] --out DIR`
use clap::Parser;
use oxport::prelude::*;
use oxport::zoo::{ConvReluMaxpool, GPTBlock, MobileNetV3, ResNet, SinCos};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
struct Args {
    /// sin_cos, conv_relu_maxpool, resnet18, mobilenet_v3_small, transformer_encoder, lstm, gpt_block
    #[arg(long)]
    model: String,
    /// Export, then run_decompositions() to Core ATen.
    #[arg(long)]
    core: bool,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Load the weights (state_dict) of this `.pt2` (e.g. one torch.export.save wrote) before exporting.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Export with dim 0 of every input dynamic: `Dim("batch", min=1, max=1024)`.
    #[arg(long)]
    dynamic_batch: bool,
}

type Case = (Box<dyn Forward>, Vec<Tensor>, Vec<(String, Tensor)>);

fn build(name: &str, g: &mut Generator) -> Result<Case, String> {
    let e = |e: oxport::Error| e.to_string();
    Ok(match name {
        "sin_cos" => {
            let x = Tensor::randn(&[10, 10], g).map_err(e)?;
            let y = Tensor::randn(&[10, 10], g).map_err(e)?;
            (Box::new(SinCos), vec![x, y], vec![])
        }
        "conv_relu_maxpool" => {
            let m = ConvReluMaxpool::new(g).map_err(e)?;
            let (x, c) = ConvReluMaxpool::example_inputs(g).map_err(e)?;
            (Box::new(m), vec![x], vec![("constant".into(), c)])
        }
        "resnet18" => {
            let m = ResNet::resnet18(g).map_err(e)?;
            (
                Box::new(m),
                vec![Tensor::randn(&[1, 3, 224, 224], g).map_err(e)?],
                vec![],
            )
        }
        "gpt_block" => {
            let m = GPTBlock::new(64, 4, g).map_err(e)?;
            (
                Box::new(m),
                vec![Tensor::randn(&[2, 16, 64], g).map_err(e)?],
                vec![],
            )
        }
        "mobilenet_v3_small" => {
            let m = MobileNetV3::mobilenet_v3_small(g).map_err(e)?;
            (Box::new(m), vec![Tensor::randn(&[1, 3, 224, 224], g).map_err(e)?], vec![])
        }
        "transformer_encoder" => {
            let m = oxport::zoo::transformer_encoder(g).map_err(e)?;
            (Box::new(m), vec![Tensor::randn(&[2, 16, 64], g).map_err(e)?], vec![])
        }
        "lstm" => {
            let m = oxport::zoo::lstm(g).map_err(e)?;
            (Box::new(m), vec![Tensor::randn(&[2, 5, 16], g).map_err(e)?], vec![])
        }
        other => {
            return Err(format!(
                "unknown model '{other}' (sin_cos, conv_relu_maxpool, resnet18, mobilenet_v3_small, transformer_encoder, lstm, gpt_block)"
            ))
        }
    })
}

fn run(a: &Args) -> Result<(), String> {
    let mut g = Generator::new(0);
    let (model, args, kwargs) = build(&a.model, &mut g)?;
    if let Some(w) = &a.weights {
        let src = oxport::pt2::load(w).map_err(|e| e.to_string())?;
        let state = src.state_dict.iter().map(|(k, w)| (k, &w.tensor));
        oxport::export_api::load_state_dict(model.as_ref(), state).map_err(|e| e.to_string())?;
    }
    let t0 = std::time::Instant::now();
    let py_args: Vec<PyValue> = args.iter().map(|t| t.clone().into()).collect();
    let py_kwargs: Vec<(String, PyValue)> = kwargs
        .iter()
        .map(|(k, t)| (k.clone(), t.clone().into()))
        .collect();
    let mut dynamic = vec![];
    if a.dynamic_batch {
        let batch = Dim::new("batch", Some(1), Some(1024));
        let names = model.forward_arg_names();
        let inputs = names
            .iter()
            .take(args.len())
            .chain(kwargs.iter().map(|(k, _)| k));
        dynamic.extend(inputs.map(|n| (n.clone(), 0, batch.clone())));
    }
    let mut ep = export_dynamic(model.as_ref(), py_args.clone(), py_kwargs.clone(), &dynamic)
        .map_err(|e| e.to_string())?;
    if a.core {
        ep = oxport::export_api::run_decompositions(&ep).map_err(|e| e.to_string())?;
    }
    println!(
        "exported {} in {:.2} ms",
        a.model,
        t0.elapsed().as_secs_f64() * 1e3
    );
    let eager = model
        .forward_py(&py_args, &py_kwargs)
        .map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&a.out).map_err(|e| e.to_string())?;
    oxport::pt2::save(&ep, a.out.join("model.pt2")).map_err(|e| e.to_string())?;
    std::fs::write(a.out.join("program.txt"), ep.to_string()).map_err(|e| e.to_string())?;
    let inputs = args.iter().chain(kwargs.iter().map(|(_, t)| t));
    for (i, t) in inputs.enumerate() {
        t.write_npy(a.out.join(format!("in_{i}.npy")))
            .map_err(|e| e.to_string())?;
    }
    fn leaves(v: &PyValue, out: &mut Vec<Tensor>) {
        match v {
            PyValue::Tensor(t) => out.push(t.clone()),
            PyValue::Tuple(items) | PyValue::List(items) => {
                items.iter().for_each(|x| leaves(x, out))
            }
            _ => {}
        }
    }
    let mut outs = vec![];
    leaves(&eager, &mut outs);
    for (j, t) in outs.iter().enumerate() {
        t.write_npy(a.out.join(format!("out_{j}.npy")))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let a = Args::parse();
    match run(&a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
