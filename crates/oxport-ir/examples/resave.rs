//! Loads each given `.pt2` and saves it again into a directory (same file names): the Rust half of
//! `tools/check_pt2_interop.sh`, which then has PyTorch load, print and run what oxport wrote.
//!
//! `cargo run --release -p oxport-ir --example resave -- OUT_DIR IN.pt2...`
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(out_dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: resave OUT_DIR IN.pt2...");
        return ExitCode::FAILURE;
    };
    if let Err(e) = std::fs::create_dir_all(&out_dir) {
        eprintln!("{}: {e}", out_dir.display());
        return ExitCode::FAILURE;
    }
    let mut n = 0;
    for input in args.map(PathBuf::from) {
        let name = input.file_name().expect("a file name");
        let r = oxport_ir::pt2::load(&input)
            .and_then(|ep| oxport_ir::pt2::save(&ep, out_dir.join(name)));
        if let Err(e) = r {
            eprintln!("{}: {e}", input.display());
            return ExitCode::FAILURE;
        }
        n += 1;
    }
    println!("re-saved {n} programs into {}", out_dir.display());
    ExitCode::SUCCESS
}
