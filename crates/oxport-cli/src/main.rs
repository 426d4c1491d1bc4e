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
    /// The main job on the embedded seed program (`conv_relu_maxpool`, as PyTorch 2.15 exports it): load
    /// the `.pt2`, print it as PyTorch does, save it, load it back, and run the model with its weights.
    /// Exporting from Rust and running the graph itself join as they land.
    Demo {
        /// Seed for the input.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Where to save the program (default: a temporary file).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Print a `.pt2` program exactly as PyTorch's `print(torch.export.load(FILE))` does.
    Inspect {
        /// The `.pt2` file.
        file: std::path::PathBuf,
    },
    /// Run a `.pt2` on `.npy` inputs (the flattened user inputs, args then kwargs; a non-tensor is a 0-d
    /// array) and write `DIR/output_<i>.npy` for the flattened user outputs.
    Run {
        /// The `.pt2` file.
        file: std::path::PathBuf,
        /// One `.npy` per user input, in order.
        #[arg(long = "input")]
        inputs: Vec<std::path::PathBuf>,
        /// Where to write the outputs.
        #[arg(long)]
        output_dir: std::path::PathBuf,
    },
    /// List the ATen overloads in the op registry (`--core` for the Core ATen subset).
    Ops {
        /// Only overloads tagged `core` in PyTorch.
        #[arg(long)]
        core: bool,
    },
}

/// `torch.export.save` of the torch.export overview's second program (tools/gen_pt2_fixtures.py).
const SEED_PROGRAM: &[u8] =
    include_bytes!("../../../tests/fixtures/pt2/conv_relu_maxpool.train.pt2");

fn demo(seed: u64, out: Option<std::path::PathBuf>) -> Result<(), Box<dyn std::error::Error>> {
    let start = std::time::Instant::now();
    let ep = oxport::pt2::load_from_bytes(SEED_PROGRAM)?;
    print!("{ep}");
    let path =
        out.unwrap_or_else(|| std::env::temp_dir().join("oxport_demo_conv_relu_maxpool.pt2"));
    oxport::pt2::save(&ep, &path)?;
    let back = oxport::pt2::load(&path)?;
    if back.to_string() != ep.to_string() {
        return Err("the program loaded back prints differently".into());
    }
    let io_ms = start.elapsed().as_secs_f64() * 1e3;
    println!(
        "saved to {} ({} bytes) and loaded back: identical program ({io_ms:.2} ms for load + print + save + load)",
        path.display(),
        std::fs::metadata(&path)?.len()
    );

    // The forward of the program, eagerly, with the program's own weights.
    let weight = |k: &str| {
        back.state_dict
            .get(k)
            .map(|w| w.tensor.clone())
            .ok_or_else(|| format!("state_dict has no '{k}'"))
    };
    let (w, b) = (weight("conv.weight")?, weight("conv.bias")?);
    let mut g = Generator::new(seed);
    let x = Tensor::randn(&[1, 3, 256, 256], &mut g)?;
    let constant = Tensor::ones(&[1, 16, 256, 256], DType::F32)?;
    let start = std::time::Instant::now();
    let a = x.conv2d(&w, Some(&b), &[1, 1], &[1, 1], &[1, 1], 1)?;
    a.add_(&constant)?;
    let y = a
        .relu()?
        .max_pool2d(&[3, 3], &[], &[0, 0], &[1, 1], false)?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let v = y.to_vec::<f32>()?;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
    println!(
        "ran the model eagerly: x [1, 3, 256, 256], constant [1, 16, 256, 256] -> {:?} {}, mean {mean:.6}, {ms:.2} ms",
        y.sizes(),
        y.dtype().name()
    );
    Ok(())
}

fn inspect(file: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let ep = oxport::pt2::load(file)?;
    // A closed pipe (`oxport inspect f | head`) ends the output quietly instead of panicking.
    let mut out = std::io::stdout().lock();
    match std::io::Write::write_all(&mut out, ep.to_string().as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

fn run(
    file: &std::path::Path,
    inputs: &[std::path::PathBuf],
    output_dir: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    use oxport::runtime::Value;
    let ep = oxport::pt2::load(file)?;
    let m = oxport::runtime::Module::new(&ep)?;
    let metas = m.input_metas();
    let mut values = vec![];
    for (i, path) in inputs.iter().enumerate() {
        let t = Tensor::read_npy(path).map_err(|e| format!("{}: {e}", path.display()))?;
        // A 0-d array stands for a Python number where the program takes one.
        let is_tensor = metas.get(i).is_some_and(|m| m.is_some());
        values.push(match (is_tensor, t.dim()) {
            (false, 0) => match t.item()? {
                Scalar::Int(v) => Value::Int(v.into()),
                Scalar::Float(v) => Value::Float(v),
                Scalar::Bool(v) => Value::Bool(v),
            },
            _ => Value::Tensor(t),
        });
    }
    let outs = m.call_flat(values)?;
    std::fs::create_dir_all(output_dir)?;
    for (j, o) in outs.iter().enumerate() {
        let t = match o {
            Value::Tensor(t) => t.clone(),
            Value::Int(v) => Tensor::scalar(v.as_int().ok_or("symbolic output")?),
            Value::Float(v) => Tensor::scalar(*v),
            Value::Bool(v) => Tensor::scalar(*v),
            other => {
                return Err(
                    format!("output {j} is a {}, which .npy cannot hold", other.kind()).into(),
                )
            }
        };
        t.write_npy(output_dir.join(format!("output_{j}.npy")))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r: Result<(), Box<dyn std::error::Error>> = match cli.command {
        Command::Demo { seed, out } => demo(seed, out),
        Command::Inspect { file } => inspect(&file),
        Command::Run {
            file,
            inputs,
            output_dir,
        } => run(&file, &inputs, &output_dir),
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
