//! Greedy decoding with a causal LM exported by PyTorch with a static KV cache (transformers'
//! `convert_and_export_with_cache`): one token per call, kwargs `input_ids` [1, 1] and `cache_position`
//! [1]. The cache lives in the program's buffers, which the module keeps from call to call. Prints the
//! generated ids, comma-separated.
//!
//! `cargo run --release -p oxport --example generate -- tests/fixtures/llm/llama_static_cache.core.pt2
//!  --prompt 1,2,3,4,5 --steps 32`
use clap::Parser;
use oxport::prelude::*;
use oxport::runtime::Module;
use std::error::Error;
use std::path::PathBuf;

#[derive(Parser)]
struct Args {
    /// The `.pt2` program.
    program: PathBuf,
    /// Prompt token ids, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    prompt: Vec<i64>,
    /// How many tokens to generate.
    #[arg(long, default_value_t = 32)]
    steps: usize,
}

/// Feeds the prompt one token per call, then each argmax of the last logits, until `steps` tokens are
/// generated; returns them.
fn generate(m: &Module, prompt: &[i64], steps: usize) -> Result<Vec<i64>, Box<dyn Error>> {
    let mut tokens = prompt.to_vec();
    for pos in 0..(prompt.len() + steps).saturating_sub(1) {
        let kwargs = vec![
            (
                "input_ids".into(),
                Tensor::from_vec(vec![tokens[pos]], &[1, 1])?.into(),
            ),
            (
                "cache_position".into(),
                Tensor::from_vec(vec![pos as i64], &[1])?.into(),
            ),
        ];
        let logits = m.call(vec![], kwargs)?;
        if pos + 1 >= prompt.len() {
            let logits = logits
                .as_tensor()
                .ok_or("the program must return the logits")?;
            tokens.push(
                logits
                    .flatten(0, -1)?
                    .argmax(None, false)?
                    .item_as::<i64>()?,
            );
        }
    }
    Ok(tokens.split_off(prompt.len()))
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    let m = oxport::pt2::load(&args.program)?.module()?;
    let ids = generate(&m, &args.prompt, args.steps)?;
    let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
    println!("{}", ids.join(","));
    Ok(())
}
