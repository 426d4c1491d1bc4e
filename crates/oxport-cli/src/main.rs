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
    /// The main job on the embedded seed model (`conv_relu_maxpool` of the torch.export overview, written
    /// in Rust): export it, print the program, save the `.pt2`, load it back, run it and compare with the
    /// model's eager output.
    Demo {
        /// Seed for the weights and the input.
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
        /// Plan without the compile stage's passes (the plain path).
        #[arg(long)]
        no_fuse: bool,
    },
    /// Time a `.pt2`: runs it `--iters` times after `--warmup` runs, prints the time per op kind and,
    /// last, `median_ms=<float>`. Without `--input`s, random inputs of the exported example shapes.
    Bench {
        /// The `.pt2` file.
        file: std::path::PathBuf,
        /// One `.npy` per user input, in order.
        #[arg(long = "input")]
        inputs: Vec<std::path::PathBuf>,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Untimed runs first.
        #[arg(long, default_value_t = 3)]
        warmup: usize,
        /// Timed runs.
        #[arg(long, default_value_t = 20)]
        iters: usize,
        /// Plan without the compile stage's passes (no static shapes, fusion or memory plan): the
        /// plain path the optimized one is checked against.
        #[arg(long)]
        no_fuse: bool,
        /// Time whole calls only (no per-op timers, no per-op table).
        #[arg(long)]
        no_profile: bool,
        /// Also list the N slowest nodes (a fused step: its nodes joined by `+`).
        #[arg(long, value_name = "N", default_value_t = 0)]
        nodes: usize,
    },
    /// List the ATen overloads in the op registry (`--core` for the Core ATen subset).
    Ops {
        /// Only overloads tagged `core` in PyTorch.
        #[arg(long)]
        core: bool,
        /// Print `name, core|-, kernel (out|alloc|-), decomposition (yes|-)` instead of schemas.
        #[arg(long)]
        implementations: bool,
    },
}

fn demo(seed: u64, out: Option<std::path::PathBuf>) -> Result<(), Box<dyn std::error::Error>> {
    use oxport::prelude::*;
    use oxport::zoo::ConvReluMaxpool;
    let mut g = Generator::new(seed);
    let model = ConvReluMaxpool::new(&mut g)?;
    let (x, constant) = ConvReluMaxpool::example_inputs(&mut g)?;

    let t0 = std::time::Instant::now();
    let ep = export(
        &model,
        vec![x.clone().into()],
        vec![("constant".into(), constant.clone().into())],
    )?;
    let export_ms = t0.elapsed().as_secs_f64() * 1e3;
    print!("{ep}");

    let path =
        out.unwrap_or_else(|| std::env::temp_dir().join("oxport_demo_conv_relu_maxpool.pt2"));
    oxport::pt2::save(&ep, &path)?;
    let back = oxport::pt2::load(&path)?;
    if back.to_string() != ep.to_string() {
        return Err("the program loaded back prints differently".into());
    }
    let module = back.module()?;
    let t0 = std::time::Instant::now();
    let y = module.call(
        vec![x.clone().into()],
        vec![("constant".into(), constant.clone().into())],
    )?;
    let run_ms = t0.elapsed().as_secs_f64() * 1e3;
    let y = y
        .as_tensor()
        .ok_or("the program did not return a tensor")?
        .clone();
    let eager = model.forward(&x, &constant)?;
    let max_diff = y
        .to_vec_f64()
        .iter()
        .zip(eager.to_vec_f64())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    println!(
        "exported in {export_ms:.2} ms; saved {} ({} bytes); loaded back: same program",
        path.display(),
        std::fs::metadata(&path)?.len()
    );
    println!(
        "ran the loaded program: x {:?}, constant {:?} -> {:?} {} in {run_ms:.2} ms; max |program - eager| = {max_diff:e}",
        x.sizes(),
        constant.sizes(),
        y.sizes(),
        y.dtype().name()
    );
    if max_diff > 1e-4 {
        return Err(
            format!("the program's output differs from the eager model's by {max_diff}").into(),
        );
    }
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
    no_fuse: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    use oxport::runtime::Value;
    let ep = oxport::pt2::load(file)?;
    let m = oxport::runtime::Module::with_options(&ep, plan_options(no_fuse))?;
    let values = read_inputs(&m, inputs)?;
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

/// The user inputs from `.npy` files (a 0-d array stands for a Python number where the program takes one).
fn read_inputs(
    m: &oxport::runtime::Module,
    inputs: &[std::path::PathBuf],
) -> Result<Vec<oxport::runtime::Value>, Box<dyn std::error::Error>> {
    use oxport::runtime::Value;
    let metas = m.input_metas();
    let mut values = vec![];
    for (i, path) in inputs.iter().enumerate() {
        let t = Tensor::read_npy(path)?;
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
    Ok(values)
}

/// Random inputs of the exported example shapes (symbolic sizes take their export-time hint).
fn example_inputs(
    m: &oxport::runtime::Module,
) -> Result<Vec<oxport::runtime::Value>, Box<dyn std::error::Error>> {
    use oxport::ir::{SymExprHint, SymInt as IrSymInt};
    use oxport::runtime::Value;
    let mut g = Generator::new(0);
    let mut values = vec![];
    for (name, meta) in m.input_names().into_iter().zip(m.input_metas()) {
        let Some(meta) = meta else {
            return Err(
                format!("input '{name}' is not a tensor: pass the inputs with --input").into(),
            );
        };
        let mut sizes = vec![];
        for s in &meta.sizes {
            sizes.push(match s {
                IrSymInt::AsInt(n) => *n as usize,
                IrSymInt::AsExpr(e) => match e.hint {
                    Some(SymExprHint::AsInt(n)) => n as usize,
                    _ => {
                        return Err(format!(
                            "input '{name}' has a symbolic size without a hint: pass --input"
                        )
                        .into())
                    }
                },
            });
        }
        let dtype = meta
            .dtype
            .dtype()
            .ok_or_else(|| format!("input '{name}' has an unsupported dtype"))?;
        let t = if dtype.is_floating_point() {
            Tensor::randn(&sizes, &mut g)?.to_dtype(dtype)?
        } else {
            let sizes: Vec<i64> = sizes.iter().map(|&s| s as i64).collect();
            Tensor::zeros(&sizes, dtype)?
        };
        values.push(Value::Tensor(t));
    }
    Ok(values)
}

fn plan_options(no_fuse: bool) -> oxport::runtime::PlanOptions {
    if no_fuse {
        oxport::runtime::PlanOptions::unoptimized()
    } else {
        oxport::runtime::PlanOptions::default()
    }
}

struct BenchOptions {
    warmup: usize,
    iters: usize,
    no_fuse: bool,
    no_profile: bool,
    nodes: usize,
}

fn bench(
    file: &std::path::Path,
    inputs: &[std::path::PathBuf],
    threads: Option<usize>,
    o: BenchOptions,
) -> Result<(), Box<dyn std::error::Error>> {
    let BenchOptions {
        warmup,
        iters,
        no_fuse,
        no_profile,
        nodes,
    } = o;
    if let Some(n) = threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()?;
    }
    let ep = oxport::pt2::load(file)?;
    let m = oxport::runtime::Module::with_options(&ep, plan_options(no_fuse))?;
    let values = if inputs.is_empty() {
        example_inputs(&m)?
    } else {
        read_inputs(&m, inputs)?
    };
    for _ in 0..warmup {
        m.call_flat(values.clone())?;
    }
    let mut profile = if nodes > 0 {
        oxport::runtime::Profile::per_node()
    } else {
        oxport::runtime::Profile::default()
    };
    let mut times = vec![];
    for _ in 0..iters.max(1) {
        let t0 = std::time::Instant::now();
        m.call_flat_profiled(values.clone(), (!no_profile).then_some(&mut profile))?;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let n = times.len() as f64;
    let total: f64 = profile
        .by_target
        .values()
        .map(|(d, _)| d.as_secs_f64())
        .sum::<f64>()
        * 1e3
        / n;
    println!(
        "{}: {} runs after {warmup} warm-up, {} threads",
        file.display(),
        times.len(),
        rayon::current_num_threads()
    );
    let mem = m.memory_stats();
    let mb = |b: usize| b as f64 / (1 << 20) as f64;
    println!(
        "memory: arena {:.1} MB (least possible {:.1} MB), weights {:.1} MB{}",
        mb(mem.arena_bytes),
        mb(mem.peak_live_bytes),
        mb(mem.weight_bytes),
        if no_fuse {
            " (unoptimized: no arena)"
        } else {
            ""
        }
    );
    if !no_profile {
        println!(
            "{:<56} {:>9} {:>9} {:>7}",
            "op", "calls/run", "ms/run", "share"
        );
    }
    let mut rows: Vec<_> = profile.by_target.iter().collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1 .0));
    for (target, (d, calls)) in rows {
        let ms = d.as_secs_f64() * 1e3 / n;
        println!(
            "{:<56} {:>9} {:>9.3} {:>6.1}%",
            target.strip_prefix("torch.ops.").unwrap_or(target),
            (*calls as f64 / n).round(),
            ms,
            100.0 * ms / total.max(1e-12)
        );
    }
    if let (false, Some(by_node)) = (no_profile, &profile.by_node) {
        println!(
            "\n{:<40} {:<40} {:>9} {:>7}",
            "node", "op", "ms/run", "share"
        );
        let mut rows: Vec<_> = by_node.iter().collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.1 .1));
        for (node, (target, d, _)) in rows.into_iter().take(nodes) {
            let ms = d.as_secs_f64() * 1e3 / n;
            println!(
                "{:<40} {:<40} {:>9.3} {:>6.1}%",
                node,
                target.strip_prefix("torch.ops.").unwrap_or(target),
                ms,
                100.0 * ms / total.max(1e-12)
            );
        }
    }
    println!(
        "min_ms={:.4} max_ms={:.4}",
        times[0],
        times[times.len() - 1]
    );
    println!("median_ms={median:.4}");
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
            no_fuse,
        } => run(&file, &inputs, &output_dir, no_fuse),
        Command::Bench {
            file,
            inputs,
            threads,
            warmup,
            iters,
            no_fuse,
            no_profile,
            nodes,
        } => bench(
            &file,
            &inputs,
            threads,
            BenchOptions {
                warmup,
                iters,
                no_fuse,
                no_profile,
                nodes,
            },
        ),
        Command::Ops {
            core,
            implementations,
        } => {
            for op in oxport::ops::registry().ops() {
                if core && !op.is_core {
                    continue;
                }
                if implementations {
                    let kernel = match op.kernel {
                        Some(oxport::ops::Kernel::Out(_)) => "out",
                        Some(oxport::ops::Kernel::Alloc(_)) => "alloc",
                        None => "-",
                    };
                    let tag = if op.is_core { "core" } else { "-" };
                    let decomposition = if op.decomposition.is_some() {
                        "yes"
                    } else {
                        "-"
                    };
                    println!("{}\t{tag}\t{kernel}\t{decomposition}", op.name);
                } else {
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
