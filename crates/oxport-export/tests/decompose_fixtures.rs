//! `run_decompositions` on PyTorch's own training-IR programs (tests/fixtures/pt2/*.train.pt2) gives
//! the program PyTorch's `run_decompositions()` gave (`*.core.txt`, printed as `torch.export.load`
//! prints it), byte for byte — stack traces included, since the original nodes' metadata is kept.
//! And Rust twins of PyTorch modules (einsum over many equations) exported by oxport: both IR forms print
//! as PyTorch's export of the twin and its `run_decompositions()` print (tests/fixtures/export, from
//! tools/gen_export_fixtures.py), and run to PyTorch's outputs.
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
        same.len() >= 42,
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

// ---- einsum: Rust twins of `EinsumPairs` / `EinsumSingle` in tools/gen_export_fixtures.py --------------

use oxport_core::ops::Value;
use oxport_core::prelude::*;
use oxport_export::Forward;
use oxport_runtime::{ExportedProgramExt, PyValue};

fn export_fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/export")
        .join(name)
}

/// The print minus the `# File:` lines, which point at Python sources in PyTorch's and Rust in ours.
fn print_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("# File:"))
        .map(str::to_string)
        .collect()
}

fn check_print(ep: &oxport_ir::ExportedProgram, fixture: &str) {
    let want = std::fs::read_to_string(export_fixture(fixture)).unwrap();
    let (got, want) = (print_lines(&ep.to_string()), print_lines(&want));
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert_eq!(a, b, "{fixture}: line {}", i + 1);
    }
    assert_eq!(got.len(), want.len(), "{fixture}: line count");
}

/// Runs `ep` on PyTorch's inputs `<name>.run.in_<i>.npy` and compares with its outputs
/// `<name>.run.out_<i>.npy`: same dtype and shape, values within 1e-5 relative/absolute.
fn check_run(ep: &oxport_ir::ExportedProgram, name: &str) {
    let npys = |kind: &str| -> Vec<Tensor> {
        (0..)
            .map(|i| export_fixture(&format!("{name}.run.{kind}_{i}.npy")))
            .take_while(|p| p.exists())
            .map(|p| Tensor::read_npy(p).unwrap())
            .collect()
    };
    let (inputs, want) = (npys("in"), npys("out"));
    assert!(
        !inputs.is_empty() && !want.is_empty(),
        "{name}: no fixtures"
    );
    let got = ep
        .module()
        .unwrap()
        .call_flat(inputs.into_iter().map(Value::Tensor).collect())
        .unwrap();
    assert_eq!(got.len(), want.len(), "{name}: outputs");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let Value::Tensor(g) = g else {
            panic!("{name}: output {i} is {g:?}")
        };
        let what = format!("{name}: output {i}");
        assert_eq!(g.dtype(), w.dtype(), "{what}");
        assert_eq!(g.sizes(), w.sizes(), "{what}");
        let (g, w) = (
            g.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap(),
            w.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap(),
        );
        for (j, (a, b)) in g.iter().zip(&w).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                "{what}[{j}]: {a} vs PyTorch's {b}"
            );
        }
    }
}

/// Exports `model` on zeros of `shapes`, and checks both IR forms against PyTorch's export of the twin:
/// the training IR prints as `<name>.train.txt`, `run_decompositions()` as `<name>.core.txt`, and both
/// run to PyTorch's outputs.
fn check_twin(model: &dyn Forward, name: &str, shapes: &[&[i64]]) {
    let args = shapes
        .iter()
        .map(|&s| Tensor::zeros(s, DType::F32).unwrap().into())
        .collect();
    let ep = oxport_export::export(model, args, vec![]).unwrap();
    check_print(&ep, &format!("{name}.train.txt"));
    let core = oxport_export::run_decompositions(&ep).unwrap();
    check_print(&core, &format!("{name}.core.txt"));
    check_run(&ep, name);
    check_run(&core, name);
}

/// `torch.ops.aten.einsum.default(equation, operands, path=path)`: what `torch.einsum` calls with
/// opt_einsum's contraction path.
#[track_caller]
fn einsum_along(equation: &str, operands: &[&Tensor], path: &[i64]) -> Result<Tensor> {
    let out = oxport_core::ops::call(
        "aten.einsum.default",
        vec![
            Value::Str(equation.into()),
            Value::Tensors(operands.iter().map(|&x| x.clone()).collect()),
        ],
        vec![("path".into(), Value::from(path))],
    )?;
    match out.into_iter().next() {
        Some(Value::Tensor(t)) => Ok(t),
        other => panic!("einsum returned {other:?}"),
    }
}

/// Twin of `EinsumPairs`: einsum over two and three operands.
#[derive(oxport_export::Module)]
#[module(crate = "oxport_export", type_name = "gen_export_fixtures.EinsumPairs")]
struct EinsumPairs;

impl Forward for EinsumPairs {
    fn forward_arg_names(&self) -> Vec<String> {
        [
            "x", "y", "z", "bt", "bu", "q", "k", "v", "w", "one", "x2", "t3",
        ]
        .map(String::from)
        .to_vec()
    }
    fn forward_py(&self, args: &[PyValue], _: &[(String, PyValue)]) -> Result<PyValue> {
        let a: Vec<&Tensor> = args.iter().map(|a| a.as_tensor().unwrap()).collect();
        let [x, y, z, bt, bu, q, k, v, w, one, x2, t3] = a[..] else {
            panic!("12 inputs")
        };
        let e = Tensor::einsum;
        let outs = [
            e("ij,jk->ik", &[x, y])?,
            e("bij,bjk->bik", &[bt, bu])?,
            e("bhqd,bhkd->bhqk", &[q, k])?,
            e("i,j->ij", &[v, w])?,
            e("...ij,...jk->...ik", &[bt, z])?,
            e("ij,jk,kl->il", &[x, y, z])?,
            e("ij,ij->i", &[x, x])?,
            e("ij,ij->ij", &[x, x])?,
            e("bij,bjk->bik", &[one, bu])?,
            e("bij,bjk->ik", &[one, bu])?,
            e("ij,k->i", &[x, w])?,
            e("ij,ik->j", &[x, x2])?,
            e("ij,ik->kj", &[x, x2])?,
            e("ijk,kj->i", &[t3, &y.permute(&[1, 0])?])?,
            e("bn,anm,bm->ba", &[x, t3, x2])?,
            e("ij,jk", &[x, y])?,
            e("Ab,bC->AC", &[x, y])?,
            e("i,i->", &[v, v])?,
            einsum_along("ij,jk,kl->il", &[x, y, z], &[1, 2, 0, 1])?,
        ];
        Ok(PyValue::Tuple(outs.into_iter().map(Into::into).collect()))
    }
}

/// Twin of `EinsumSingle`: einsum over one operand.
#[derive(oxport_export::Module)]
#[module(
    crate = "oxport_export",
    type_name = "gen_export_fixtures.EinsumSingle"
)]
struct EinsumSingle;

impl Forward for EinsumSingle {
    fn forward_arg_names(&self) -> Vec<String> {
        ["sq", "x", "c3", "d3", "u"].map(String::from).to_vec()
    }
    fn forward_py(&self, args: &[PyValue], _: &[(String, PyValue)]) -> Result<PyValue> {
        let a: Vec<&Tensor> = args.iter().map(|a| a.as_tensor().unwrap()).collect();
        let [sq, x, c3, d3, u] = a[..] else {
            panic!("5 inputs")
        };
        let e = Tensor::einsum;
        let outs = [
            e("ii->i", &[sq])?,
            e("ii->", &[sq])?,
            e("ii", &[sq])?,
            e("ij->", &[x])?,
            e("ij->ji", &[x])?,
            e("ba", &[x])?,
            e("ij->j", &[x])?,
            e("iij->ji", &[c3])?,
            e("jii->ij", &[d3])?,
            e("iji->j", &[&c3.permute(&[0, 2, 1])?])?,
            e("ibj->jb", &[u])?,
            e("...j->j...", &[c3])?,
            e("i...->...", &[x])?,
        ];
        Ok(PyValue::Tuple(outs.into_iter().map(Into::into).collect()))
    }
}

#[test]
fn einsum_over_two_and_three_operands_decomposes_as_pytorch_does() {
    let shapes: [&[i64]; 12] = [
        &[2, 3],
        &[3, 4],
        &[4, 5],
        &[2, 3, 4],
        &[2, 4, 5],
        &[2, 3, 4, 5],
        &[2, 3, 6, 5],
        &[3],
        &[4],
        &[1, 3, 4],
        &[2, 4],
        &[2, 3, 4],
    ];
    check_twin(&EinsumPairs, "einsum_pairs", &shapes);
}

#[test]
fn einsum_over_one_operand_decomposes_as_pytorch_does() {
    let shapes: [&[i64]; 5] = [&[3, 3], &[2, 3], &[3, 3, 2], &[2, 3, 3], &[3, 1, 4]];
    check_twin(&EinsumSingle, "einsum_single", &shapes);
}
