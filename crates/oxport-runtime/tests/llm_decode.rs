//! A tiny LLaMA exported by PyTorch with a static KV cache (`tools/gen_llm_static_cache.py`:
//! transformers' `convert_and_export_with_cache`, the cache in buffers the program mutates) decodes
//! greedily from Rust to exactly the tokens PyTorch's `torch.export.load(..).module()` decoded: the prompt
//! fed token by token, then 32 argmax tokens, one call each, the cache carried from call to call by the
//! module's buffers. Both forms: the training IR as exported (the cache written by `index_copy_` on the
//! buffers) and `run_decompositions()` (BUFFER_MUTATION outputs written back after each call). Each also
//! prints as PyTorch prints it.
use oxport_core::Tensor;
use oxport_runtime::{ExportedProgramExt, Module, PyValue};
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/llm")
}

/// Feeds `prompt` one token per call (positions 0, 1, ...), then each argmax of the last logits, until
/// `steps` tokens are generated; returns them.
fn greedy(m: &Module, prompt: &[i64], steps: usize) -> Vec<i64> {
    let mut tokens = prompt.to_vec();
    for pos in 0..prompt.len() + steps - 1 {
        let kwargs = vec![
            (
                "input_ids".to_string(),
                PyValue::from(Tensor::from_vec(vec![tokens[pos]], &[1, 1]).unwrap()),
            ),
            (
                "cache_position".to_string(),
                Tensor::from_vec(vec![pos as i64], &[1]).unwrap().into(),
            ),
        ];
        let logits = m.call(vec![], kwargs).unwrap();
        if pos + 1 >= prompt.len() {
            let logits = logits.as_tensor().expect("the program returns the logits");
            let id = logits.flatten(0, -1).unwrap().argmax(None, false).unwrap();
            tokens.push(id.item_as::<i64>().unwrap());
        }
    }
    tokens.split_off(prompt.len())
}

fn expected() -> serde_json::Value {
    let text = std::fs::read_to_string(dir().join("llama_static_cache.json"))
        .expect("run tools/gen_llm_static_cache.py");
    serde_json::from_str(&text).unwrap()
}

fn ids(v: &serde_json::Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

fn check(form: &str) {
    let want = expected();
    let (prompt, steps) = (
        ids(&want["prompt"]),
        want["steps"].as_u64().unwrap() as usize,
    );
    let ep = oxport_ir::pt2::load(dir().join(format!("llama_static_cache.{form}.pt2"))).unwrap();
    let print =
        std::fs::read_to_string(dir().join(format!("llama_static_cache.{form}.txt"))).unwrap();
    assert!(
        ep.to_string() == print,
        "{form}: the program prints unlike PyTorch's print"
    );
    let m = ep.module().unwrap();
    let got = greedy(&m, &prompt, steps);
    assert_eq!(
        got,
        ids(&want["tokens"][form]),
        "{form}: greedy decode differs from PyTorch's"
    );
    // The cache holds every position fed so far (all but the last generated token) and nothing after.
    let keys = m.buffer("key_cache_1").expect("the cache is a buffer");
    let fed = prompt.len() + steps - 1;
    for p in [0, fed - 1, fed] {
        let written = keys.select(2, p as i64).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(
            written.iter().any(|&v| v != 0.0),
            p < fed,
            "{form}: cache position {p}"
        );
    }
}

#[test]
fn llama_static_cache_training_ir_decodes_as_pytorch() {
    check("train");
}

#[test]
fn llama_static_cache_core_ir_decodes_as_pytorch() {
    check("core");
}
