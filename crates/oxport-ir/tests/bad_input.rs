//! Broken `.pt2` files: each gives a clear error naming what is wrong, never a panic, and never an
//! allocation sized by a lying header. The broken archives are made from good fixtures.
use oxport_ir::pt2;
use std::io::{Read, Write};
use std::path::Path;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/pt2")
            .join(name),
    )
    .expect("fixture")
}

/// The archive's entries (full names) in order.
fn entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("zip");
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).expect("entry");
            let mut v = vec![];
            f.read_to_end(&mut v).expect("read");
            (f.name().to_string(), v)
        })
        .collect()
}

fn build(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (n, b) in entries {
        w.start_file(n.as_str(), opts).expect("start");
        w.write_all(b).expect("write");
    }
    w.finish().expect("finish").into_inner()
}

/// `fixture` with the entry ending in `suffix` replaced by `f(old)`.
fn edit(fixture_name: &str, suffix: &str, f: impl Fn(String) -> String) -> Vec<u8> {
    let mut e = entries(&fixture(fixture_name));
    let entry = e
        .iter_mut()
        .find(|(n, _)| n.ends_with(suffix))
        .expect("entry to edit");
    entry.1 = f(String::from_utf8(entry.1.clone()).expect("text")).into_bytes();
    build(&e)
}

fn load_err(bytes: &[u8]) -> String {
    match pt2::load_from_bytes(bytes) {
        Ok(_) => panic!("a broken archive loaded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_rebuilt_archive_still_loads() {
    // The editing helpers themselves keep a good archive good.
    let e = entries(&fixture("tied_and_views.train.pt2"));
    pt2::load_from_bytes(&build(&e)).expect("rebuilt archive loads");
}

#[test]
fn truncated_or_not_a_zip() {
    let good = fixture("sin_cos.train.pt2");
    for len in [0, 10, good.len() / 2, good.len() - 1] {
        // Cut off, the zip directory is gone (or, one byte short, the search for it lands on the
        // zip nested in the sample inputs, which has no program).
        let msg = load_err(&good[..len]);
        assert!(
            msg.contains("not a readable zip archive") || msg.contains("missing entry"),
            "{len}: {msg}"
        );
    }
    let msg = load_err(b"this is not a zip file at all, just text");
    assert!(msg.contains("not a readable zip archive"), "{msg}");
}

#[test]
fn corrupt_entry_data_fails_its_checksum() {
    let mut bytes = build(&entries(&fixture("tied_and_views.train.pt2")));
    // Flip a byte inside the first weight file's data.
    let pos = bytes
        .windows(7)
        .position(|w| w == b"weight_")
        .expect("weight entry")
        + 60;
    bytes[pos] ^= 0xff;
    let msg = load_err(&bytes);
    assert!(msg.contains("corrupt") || msg.contains("zip"), "{msg}");
}

#[test]
fn invalid_json_names_the_entry() {
    let msg = load_err(&edit("sin_cos.train.pt2", "models/model.json", |_| {
        "{\"graph_module\": [".into()
    }));
    assert!(
        msg.contains("models/model.json: invalid program JSON"),
        "{msg}"
    );
    let msg = load_err(&edit("sin_cos.train.pt2", "models/model.json", |s| {
        s.replace("\"as_tensor\"", "\"as_tensr\"")
    }));
    assert!(
        msg.contains("models/model.json") && msg.contains("as_tensr"),
        "{msg}"
    );
}

#[test]
fn unknown_schema_major_version() {
    let msg = load_err(&edit("sin_cos.train.pt2", "models/model.json", |s| {
        s.replace(
            "\"schema_version\": {\"major\": 8",
            "\"schema_version\": {\"major\": 9",
        )
    }));
    assert!(msg.contains("schema version 9.20"), "{msg}");
}

#[test]
fn tensor_views_must_fit_their_storage() {
    let cfg = "data/weights/model_weights_config.json";
    // `win` is base[5:9] in a 20-element storage: make it 100 elements long.
    let msg = load_err(&edit("tied_and_views.train.pt2", cfg, |s| {
        s.replacen(
            "\"sizes\": [{\"as_int\": 4}], \"requires_grad\": false",
            "\"sizes\": [{\"as_int\": 100}], \"requires_grad\": false",
            1,
        )
    }));
    assert!(msg.contains("'win'") && msg.contains("do not fit"), "{msg}");
    // Absurd sizes (2^62 elements) are refused without allocating.
    let msg = load_err(&edit("tied_and_views.train.pt2", cfg, |s| {
        s.replacen(
            "\"sizes\": [{\"as_int\": 4}], \"requires_grad\": false",
            "\"sizes\": [{\"as_int\": 4611686018427387904}], \"requires_grad\": false",
            1,
        )
    }));
    assert!(msg.contains("'win'"), "{msg}");
    let msg = load_err(&edit("tied_and_views.train.pt2", cfg, |s| {
        s.replacen(
            "\"storage_offset\": {\"as_int\": 5}",
            "\"storage_offset\": {\"as_int\": 9223372036854775807}",
            1,
        )
    }));
    assert!(msg.contains("'win'"), "{msg}");
    let msg = load_err(&edit("tied_and_views.train.pt2", cfg, |s| {
        s.replacen(
            "\"strides\": [{\"as_int\": 1}], \"storage_offset\": {\"as_int\": 5}",
            "\"strides\": [{\"as_int\": -1}], \"storage_offset\": {\"as_int\": 5}",
            1,
        )
    }));
    assert!(msg.contains("negative strides"), "{msg}");
}

#[test]
fn weights_the_signature_needs_must_exist() {
    let msg = load_err(&edit(
        "tied_and_views.train.pt2",
        "data/weights/model_weights_config.json",
        |s| s.replace("\"emb.weight\"", "\"emb.weight_renamed\""),
    ));
    assert!(
        msg.contains("parameter 'emb.weight'") && msg.contains("missing from the state_dict"),
        "{msg}"
    );
}

#[test]
fn pickles_are_refused_not_executed() {
    let msg = load_err(&edit(
        "tied_and_views.train.pt2",
        "data/weights/model_weights_config.json",
        |s| s.replacen("\"use_pickle\": false", "\"use_pickle\": true", 1),
    ));
    assert!(
        msg.contains("pickle") && msg.contains("emb.weight"),
        "{msg}"
    );
}

#[test]
fn duplicate_and_missing_value_names() {
    // `cos` is renamed to `sin`: defined twice.
    let msg = load_err(&edit("sin_cos.train.pt2", "models/model.json", |s| {
        s.replace(
            "\"outputs\": [{\"as_tensor\": {\"name\": \"cos\"}}]",
            "\"outputs\": [{\"as_tensor\": {\"name\": \"sin\"}}]",
        )
    }));
    assert!(msg.contains("'sin' is defined twice"), "{msg}");
    // `add` reads a value nobody defines.
    let msg = load_err(&edit("sin_cos.train.pt2", "models/model.json", |s| {
        s.replace(
            "\"name\": \"other\", \"arg\": {\"as_tensor\": {\"name\": \"cos\"}}",
            "\"name\": \"other\", \"arg\": {\"as_tensor\": {\"name\": \"nowhere\"}}",
        )
    }));
    assert!(msg.contains("uses 'nowhere'"), "{msg}");
    // A JSON object with a repeated key.
    let msg = load_err(&edit("sin_cos.train.pt2", "models/model.json", |s| {
        s.replacen("\"tensor_values\": {", "\"tensor_values\": {\"x\": {}, ", 1)
    }));
    assert!(msg.contains("models/model.json"), "{msg}");
}

#[test]
fn unsafe_entry_names() {
    let mut e = entries(&fixture("sin_cos.train.pt2"));
    e.push(("sin_cos.train/../../evil".into(), b"x".to_vec()));
    let bytes = build(&e);
    let names: Vec<String> = entries(&bytes).into_iter().map(|(n, _)| n).collect();
    assert!(names.iter().any(|n| n.contains("..")), "{names:?}");
    let msg = load_err(&bytes);
    assert!(msg.contains("unsafe entry name"), "{msg}");
}

#[test]
fn random_corruption_never_panics() {
    // xorshift: deterministic, no extra dependency.
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for name in [
        "tied_and_views.train.pt2",
        "db_cond_branch_nested_function.train.pt2",
        "dynamic_batch.core.pt2",
    ] {
        let good = fixture(name);
        for _ in 0..150 {
            let mut b = good.clone();
            for _ in 0..1 + next() % 8 {
                let i = (next() % b.len() as u64) as usize;
                b[i] = next() as u8;
            }
            if let Ok(ep) = pt2::load_from_bytes(&b) {
                let _ = ep.to_string();
            }
        }
    }
    // Mutating the JSON text itself (valid zip, odd program).
    let good = entries(&fixture("db_cond_branch_nested_function.train.pt2"));
    let idx = good
        .iter()
        .position(|(n, _)| n.ends_with("models/model.json"))
        .expect("json");
    for _ in 0..300 {
        let mut e = good.clone();
        let text = &mut e[idx].1;
        for _ in 0..1 + next() % 4 {
            let i = (next() % text.len() as u64) as usize;
            const ALPHABET: &[u8] = b"{}[]\":,0123456789-abcnul ";
            text[i] = ALPHABET[(next() % ALPHABET.len() as u64) as usize];
        }
        if let Ok(ep) = pt2::load_from_bytes(&build(&e)) {
            let _ = ep.to_string();
        }
    }
}

#[test]
fn a_lying_entry_size_is_refused_before_allocating() {
    // Patch the sizes of `weight_0` in both its local and central headers to ~4 GiB: the loader must
    // refuse before reserving memory for it.
    let mut bytes = build(&entries(&fixture("tied_and_views.train.pt2")));
    let name = b"tied_and_views.train/data/weights/weight_0";
    let mut patched = 0;
    let mut from = 0;
    while let Some(p) = bytes[from..].windows(name.len()).position(|w| w == name) {
        let pos = from + p;
        if pos >= 46 && bytes[pos - 46..pos - 42] == *b"PK\x01\x02" {
            for off in [pos - 46 + 20, pos - 46 + 24] {
                bytes[off..off + 4].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
            }
            patched += 1;
        } else if pos >= 30 && bytes[pos - 30..pos - 26] == *b"PK\x03\x04" {
            for off in [pos - 30 + 18, pos - 30 + 22] {
                bytes[off..off + 4].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
            }
            patched += 1;
        }
        from = pos + 1;
    }
    assert_eq!(patched, 2);
    let msg = load_err(&bytes);
    assert!(msg.contains("weight_0") || msg.contains("zip"), "{msg}");
}
