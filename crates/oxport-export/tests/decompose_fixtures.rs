//! `run_decompositions` on PyTorch's own training-IR programs (tests/fixtures/pt2/*.train.pt2) gives
//! the program PyTorch's `run_decompositions()` gave (`*.core.txt`, printed as `torch.export.load`
//! prints it), byte for byte — stack traces included, since the original nodes' metadata is kept.
use std::path::Path;

#[test]
fn pytorch_training_programs_decompose_as_pytorch_decomposes_them() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/pt2");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".train.pt2").map(str::to_string))
        .collect();
    names.sort();
    let (mut same, mut unsupported, mut differ) = (vec![], vec![], vec![]);
    for name in &names {
        let ep = oxport_ir::pt2::load(dir.join(format!("{name}.train.pt2"))).unwrap();
        let want = std::fs::read_to_string(dir.join(format!("{name}.core.txt"))).unwrap();
        match oxport_export::run_decompositions(&ep) {
            Ok(core) if core.to_string() == want => same.push(name.clone()),
            Ok(core) => {
                let got = core.to_string();
                let line = got
                    .lines()
                    .zip(want.lines())
                    .find(|(a, b)| a != b)
                    .map(|(a, b)| format!("\n    ours:    {a}\n    pytorch: {b}"))
                    .unwrap_or_default();
                differ.push(format!("{name}{line}"));
            }
            Err(e) => unsupported.push(format!("{name}: {e}")),
        }
    }
    eprintln!("same ({}): {}", same.len(), same.join(", "));
    eprintln!(
        "unsupported ({}):\n  {}",
        unsupported.len(),
        unsupported.join("\n  ")
    );
    assert!(
        differ.is_empty(),
        "decomposed differently:\n{}",
        differ.join("\n")
    );
    // The rest name what they need (input mutations, control flow, symbolic sizes, more ops); this count
    // only grows.
    assert!(
        same.len() >= 39,
        "only {} programs decompose as PyTorch's",
        same.len()
    );
}

/// The large programs of `tools/gen_large_pt2.py` (resnet18, mobilenet_v3_small, vit_b_16,
/// TransformerEncoder, LSTM, GPT block), when that cache exists (`bash tools/check_large_pt2.sh`
/// makes it): those oxport decomposes must print as PyTorch's decomposition, byte for byte.
#[test]
fn large_pytorch_programs_decompose_as_pytorch_decomposes_them() {
    let dir = std::env::var_os("OXPORT_LARGE_PT2")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/oxport/large_pt2"))
        });
    let Some(dir) = dir.filter(|d| d.join("manifest.json").exists()) else {
        eprintln!("no large_pt2 cache: skipped");
        return;
    };
    let mut report = vec![];
    for name in [
        "resnet18",
        "mobilenet_v3_small",
        "vit_b_16",
        "transformer_encoder",
        "lstm",
        "gpt_block",
    ] {
        let train = dir.join(format!("{name}.train.pt2"));
        if !train.exists() {
            continue;
        }
        let ep = oxport_ir::pt2::load(&train).unwrap();
        let want = std::fs::read_to_string(dir.join(format!("{name}.core.txt"))).unwrap();
        match oxport_export::run_decompositions(&ep) {
            Ok(core) => {
                let got = core.to_string();
                let diff = got.lines().zip(want.lines()).find(|(a, b)| a != b);
                assert!(
                    diff.is_none() && got.len() == want.len(),
                    "{name}: {diff:?}"
                );
                report.push(format!("{name}: same"));
            }
            Err(e) => report.push(format!("{name}: {e}")),
        }
    }
    eprintln!("{}", report.join("\n"));
}
