//! `oxport` — the command-line tool.
use clap::{Parser, Subcommand};
use oxport::prelude::*;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "oxport",
    version,
    about = "torch.export in Rust: export, inspect and run ATen programs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the embedded seed model (Conv2d(3,16,3,padding=1) -> add_ -> ReLU -> MaxPool2d(3)) eagerly and
    /// print its output summary. Export, save and load join this command as they land.
    Demo {
        /// Seed for the model weights and inputs.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Print a `.pt2` program exactly as PyTorch's `print(torch.export.load(FILE))` does.
    Inspect {
        /// The `.pt2` file.
        file: std::path::PathBuf,
    },
    /// List the ATen overloads in the op registry (`--core` for the Core ATen subset).
    Ops {
        /// Only overloads tagged `core` in PyTorch.
        #[arg(long)]
        core: bool,
    },
}

fn demo(seed: u64) -> Result<()> {
    let mut g = Generator::new(seed);
    // nn.Conv2d(3, 16, 3, padding=1) default init: U(-b, b) with b = 1/sqrt(fan_in).
    let bound = 1.0 / (27f64).sqrt();
    let uniform = |g: &mut Generator, size: &[usize]| -> Result<Tensor> {
        Tensor::rand(size, g)?.mul(2.0 * bound)?.sub(bound)
    };
    let weight = uniform(&mut g, &[16, 3, 3, 3])?;
    let bias = uniform(&mut g, &[16])?;
    let x = Tensor::randn(&[1, 3, 256, 256], &mut g)?;
    let constant = Tensor::ones(&[1, 16, 256, 256], DType::F32)?;
    let start = std::time::Instant::now();
    let a = x.conv2d(&weight, Some(&bias), &[1, 1], &[1, 1], &[1, 1], 1)?;
    a.add_(&constant)?;
    let out = a
        .relu()?
        .max_pool2d(&[3, 3], &[], &[0, 0], &[1, 1], false)?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let v = out.to_vec::<f32>()?;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
    println!(
        "conv_relu_maxpool (eager): input [1, 3, 256, 256] -> output {:?} {}",
        out.sizes(),
        out.dtype().name()
    );
    println!(
        "output mean {mean:.6}, max {:.6}, {ms:.2} ms",
        v.iter().cloned().fold(f32::MIN, f32::max)
    );
    Ok(())
}

fn inspect(file: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let ep = oxport::pt2::load(file)?;
    print!("{ep}");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r: Result<(), Box<dyn std::error::Error>> = match cli.command {
        Command::Demo { seed } => demo(seed).map_err(Into::into),
        Command::Inspect { file } => inspect(&file),
        Command::Ops { core } => {
            for op in oxport::ops::registry().ops() {
                if !core || op.is_core {
                    println!("{}\t{}", op.name, op.schema.text);
                }
            }
            Ok(())
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
