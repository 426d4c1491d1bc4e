//! Every `.pt2` in `tests/fixtures/pt2` was written by `torch.export.save` (PyTorch 2.15, by
//! `tools/gen_pt2_fixtures.py`) next to `print(torch.export.load(file))` as `<case>.txt`.
//! oxport must load each one, print it byte for byte as PyTorch does, and save it back losslessly.
use oxport_ir::{pt2, ExportedProgram};
use std::io::Read;
use std::path::{Path, PathBuf};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/pt2")
}

fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixture_dir())
        .expect("fixture dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pt2"))
        .collect();
    v.sort();
    assert!(
        v.len() >= 80,
        "expected the generated fixtures, found {}",
        v.len()
    );
    v
}

fn load(p: &Path) -> ExportedProgram {
    pt2::load(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The bytes of `<root>/models/model.json` in a `.pt2`.
fn model_json(bytes: &[u8]) -> Vec<u8> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("zip");
    let name = (0..z.len())
        .map(|i| z.name_for_index(i).expect("name").to_string())
        .find(|n| n.ends_with("/models/model.json"))
        .expect("models/model.json");
    let mut out = vec![];
    z.by_name(&name)
        .expect("entry")
        .read_to_end(&mut out)
        .expect("read");
    out
}

#[test]
fn prints_exactly_like_pytorch() {
    let mut failures = vec![];
    for p in fixtures() {
        let expected = std::fs::read_to_string(p.with_extension("txt")).expect("reference print");
        let got = load(&p).to_string();
        if got != expected {
            let line = got
                .lines()
                .zip(expected.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(got.lines().count().min(expected.lines().count()));
            failures.push(format!(
                "{}: first difference at line {}\n  ours:    {:?}\n  pytorch: {:?}",
                p.display(),
                line + 1,
                got.lines().nth(line),
                expected.lines().nth(line)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} programs print differently:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn save_then_load_is_lossless_and_deterministic() {
    for p in fixtures() {
        let ep = load(&p);
        let bytes = pt2::to_bytes(&ep).expect("save");
        assert_eq!(
            bytes,
            pt2::to_bytes(&ep).expect("save again"),
            "{}: saving twice differs",
            p.display()
        );
        // The program JSON is re-emitted byte for byte as PyTorch (json.dumps) wrote it.
        let original = std::fs::read(&p).expect("read");
        assert!(
            model_json(&bytes) == model_json(&original),
            "{}: models/model.json differs after load+save",
            p.display()
        );
        let back = pt2::load_from_bytes(&bytes).expect("load what we saved");
        assert_eq!(back.to_string(), ep.to_string(), "{}", p.display());
        assert_eq!(back.state_dict.len(), ep.state_dict.len());
        for ((k1, a), (k2, b)) in ep.state_dict.iter().zip(back.state_dict.iter()) {
            assert_eq!(k1, k2);
            assert_eq!(a.is_param, b.is_param);
            assert_eq!(a.requires_grad, b.requires_grad);
            assert_eq!(
                (a.tensor.sizes(), a.tensor.strides()),
                (b.tensor.sizes(), b.tensor.strides())
            );
            assert_eq!(a.tensor.storage_offset(), b.tensor.storage_offset());
            assert_eq!(a.tensor.to_vec_f64(), b.tensor.to_vec_f64(), "{k1}");
        }
        for ((k1, a), (k2, b)) in ep.constants.iter().zip(back.constants.iter()) {
            assert_eq!(k1, k2);
            assert_eq!((a.sizes(), a.strides()), (b.sizes(), b.strides()));
            assert_eq!(a.to_vec_f64(), b.to_vec_f64(), "{k1}");
        }
    }
}

#[test]
fn shared_storage_and_views_are_rebuilt() {
    // tools/gen_pt2_fixtures.py: TiedAndViews — emb.weight is head.weight; `win` is base[5:9];
    // `c` is arange(12.).reshape(3, 4).t(), lifted as a constant.
    let ep = load(&fixture_dir().join("tied_and_views.train.pt2"));
    let w = |k: &str| &ep.state_dict.get(k).unwrap_or_else(|| panic!("{k}")).tensor;
    assert!(w("emb.weight").shares_storage(w("head.weight")));
    assert!(w("win").shares_storage(w("base")));
    assert_eq!(w("win").storage_offset(), 5);
    assert_eq!(w("win").to_vec_f64(), w("base").to_vec_f64()[5..9].to_vec());
    let c = ep.constants.get("c").expect("constant c");
    assert_eq!(
        (c.sizes(), c.strides()),
        (&[4usize, 3][..], &[1usize, 4][..])
    );
    assert_eq!(
        c.to_vec_f64(),
        vec![0., 4., 8., 1., 5., 9., 2., 6., 10., 3., 7., 11.]
    );
    // Saved once per storage, as PyTorch does.
    let bytes = pt2::to_bytes(&ep).expect("save");
    let z = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).expect("zip");
    let weight_files = z
        .file_names()
        .filter(|n| n.contains("data/weights/weight_"))
        .count();
    assert_eq!(weight_files, 2);
}
