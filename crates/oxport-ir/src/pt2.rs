//! `.pt2` archives, as `torch.export.save` writes and `torch.export.load` reads them (PyTorch 2.15).
//!
//! Layout (all entries under one root folder, stored uncompressed, data 64-byte aligned):
//!
//! ```text
//! <root>/archive_format                      "pt2"
//! <root>/archive_version                     "0"
//! <root>/models/model.json                   the serialized program (schema 8.x)
//! <root>/data/weights/model_weights_config.json     fqn -> {path_name, is_param, tensor_meta}
//! <root>/data/weights/weight_<i>             raw little-endian bytes of one storage
//! <root>/data/constants/model_constants_config.json
//! <root>/data/constants/tensor_<i>           raw bytes of one constant storage
//! <root>/data/sample_inputs/model.pt         pickled example inputs (never executed: skipped)
//! <root>/.data/version, <root>/byteorder     the zip container's bookkeeping
//! ```
//!
//! Tensors that share a storage in PyTorch point at the same file and are rebuilt as views of one
//! storage here. Saving is deterministic: the same program gives the same bytes.
use crate::error::{Error, Result};
use crate::json::to_python_json;
use crate::program::{ExportedProgram, Weight};
use crate::schema::*;
use crate::validate::{check_version, validate};
use oxport_core::tensor::Buffer;
use oxport_core::Tensor;
use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::sync::Arc;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

/// The program name inside archives written by `torch.export.save`.
pub const MODEL_NAME: &str = "model";

/// Loads the program of a `.pt2` file.
pub fn load(path: impl AsRef<Path>) -> Result<ExportedProgram> {
    let path = path.as_ref();
    let io_err = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    let len = file.metadata().map_err(io_err)?.len();
    load_from(std::io::BufReader::new(file), len)
}

/// Loads a program from `.pt2` bytes.
pub fn load_from_bytes(bytes: &[u8]) -> Result<ExportedProgram> {
    load_from(std::io::Cursor::new(bytes), bytes.len() as u64)
}

/// Loads a program from a reader over a `.pt2` archive of `archive_len` bytes.
pub fn load_from<R: Read + Seek>(reader: R, archive_len: u64) -> Result<ExportedProgram> {
    let mut ar = Archive::open(reader, archive_len)?;
    if ar.read_string("archive_format")?.trim() != "pt2" {
        return Err(Error::Archive(
            "not a .pt2 archive: archive_format is not 'pt2'".into(),
        ));
    }
    if ar.has("archive_version") {
        let v = ar.read_string("archive_version")?;
        if v.trim() != "0" {
            return Err(Error::Unsupported(format!(
                "archive version {} (oxport reads version 0)",
                v.trim()
            )));
        }
    }
    let model = ar.model_name()?;
    let json_entry = format!("models/{model}.json");
    let json = ar.read(&json_entry)?;
    let mut ep = parse_program(&json, &json_entry)?;

    let weights_cfg = format!("data/weights/{model}_weights_config.json");
    if ar.has(&weights_cfg) {
        let cfg: PayloadConfig = parse_json(&ar.read(&weights_cfg)?, &weights_cfg)?;
        let mut files = HashMap::new();
        for (fqn, meta) in cfg.config.iter() {
            let tensor = ar.payload_tensor("data/weights/", fqn, meta, &mut files)?;
            let requires_grad = meta.tensor_meta.as_ref().is_some_and(|m| m.requires_grad);
            ep.state_dict.insert(
                fqn,
                Weight {
                    tensor,
                    is_param: meta.is_param,
                    requires_grad,
                },
            );
        }
    } else if ar.has(&format!("data/weights/{model}.pt")) {
        return Err(Error::Unsupported(
            "legacy pickled weights (data/weights/*.pt); re-save with torch 2.15".into(),
        ));
    }
    let constants_cfg = format!("data/constants/{model}_constants_config.json");
    if ar.has(&constants_cfg) {
        let cfg: PayloadConfig = parse_json(&ar.read(&constants_cfg)?, &constants_cfg)?;
        let mut files = HashMap::new();
        for (fqn, meta) in cfg.config.iter() {
            if !meta.path_name.starts_with("tensor_") {
                return Err(Error::Unsupported(format!(
                    "constant '{fqn}' (data/constants/{}) is a custom or opaque object (torchbind/pickle)",
                    meta.path_name
                )));
            }
            let tensor = ar.payload_tensor("data/constants/", fqn, meta, &mut files)?;
            ep.constants.insert(fqn, tensor);
        }
    }
    validate(&ep)?;
    Ok(ep)
}

/// Parses `models/<name>.json`: the version first, so that a future major version is reported as such
/// rather than as a schema mismatch.
fn parse_program(bytes: &[u8], entry: &str) -> Result<ExportedProgram> {
    #[derive(serde::Deserialize)]
    struct VersionProbe {
        schema_version: SchemaVersion,
    }
    let probe: VersionProbe = parse_json(bytes, entry)?;
    check_version(&probe.schema_version)?;
    parse_json(bytes, entry)
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], entry: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Json {
        entry: entry.into(),
        reason: e.to_string(),
    })
}

/// A validated view of the zip: entry names relative to the root folder.
struct Archive<R> {
    zip: ZipArchive<R>,
    root: String,
    /// Relative name -> zip index.
    entries: HashMap<String, usize>,
    archive_len: u64,
}

impl<R: Read + Seek> Archive<R> {
    fn open(reader: R, archive_len: u64) -> Result<Self> {
        let zip = ZipArchive::new(reader)
            .map_err(|e| Error::Archive(format!("not a readable zip archive: {e}")))?;
        let mut root: Option<String> = None;
        let mut entries = HashMap::new();
        let mut seen = HashSet::new();
        for i in 0..zip.len() {
            let name = zip
                .name_for_index(i)
                .ok_or_else(|| Error::Archive(format!("zip entry #{i} has no name")))?
                .to_string();
            if name.starts_with('/') || name.contains('\\') || name.split('/').any(|c| c == "..") {
                return Err(Error::Archive(format!(
                    "unsafe entry name '{name}' (absolute or with '..')"
                )));
            }
            if !seen.insert(name.clone()) {
                return Err(Error::Archive(format!("duplicate zip entry '{name}'")));
            }
            let (first, rest) = name.split_once('/').unwrap_or(("", name.as_str()));
            let r = root.get_or_insert_with(|| first.to_string());
            // PyTorch reads records under the first entry's folder and ignores the rest.
            if first == r && !rest.is_empty() {
                entries.insert(rest.to_string(), i);
            }
        }
        let root = root.ok_or_else(|| Error::Archive("empty zip archive".into()))?;
        Ok(Archive {
            zip,
            root,
            entries,
            archive_len,
        })
    }

    fn has(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The entry's bytes, read once; its declared size is checked against the archive's size before
    /// anything is allocated.
    fn read(&mut self, name: &str) -> Result<Vec<u8>> {
        let full = format!("{}/{name}", self.root);
        let &idx = self
            .entries
            .get(name)
            .ok_or_else(|| Error::Archive(format!("missing entry '{full}'")))?;
        let mut f = self
            .zip
            .by_index(idx)
            .map_err(|e| Error::Archive(format!("entry '{full}': {e}")))?;
        if f.compression() != CompressionMethod::Stored {
            return Err(Error::Unsupported(format!(
                "entry '{full}' is compressed ({}); PyTorch writes .pt2 entries stored",
                f.compression()
            )));
        }
        let size = f.size();
        if size > self.archive_len {
            return Err(Error::Archive(format!(
                "entry '{full}' claims {size} bytes but the archive has {} bytes",
                self.archive_len
            )));
        }
        let mut out = Vec::with_capacity(size as usize);
        f.read_to_end(&mut out)
            .map_err(|e| Error::Archive(format!("entry '{full}' is corrupt: {e}")))?;
        if out.len() as u64 != size {
            return Err(Error::Archive(format!(
                "entry '{full}' is truncated ({} of {size} bytes)",
                out.len()
            )));
        }
        Ok(out)
    }

    fn read_string(&mut self, name: &str) -> Result<String> {
        String::from_utf8(self.read(name)?)
            .map_err(|_| Error::Archive(format!("entry '{}/{name}' is not UTF-8 text", self.root)))
    }

    /// The program to load: `model` (what `torch.export.save` writes), or the only one there is.
    fn model_name(&self) -> Result<String> {
        let mut names: Vec<&str> = self
            .entries
            .keys()
            .filter_map(|k| k.strip_prefix("models/")?.strip_suffix(".json"))
            .filter(|n| !n.contains('/'))
            .collect();
        names.sort_unstable();
        if names.contains(&MODEL_NAME) {
            return Ok(MODEL_NAME.into());
        }
        match names.as_slice() {
            [one] => Ok(one.to_string()),
            [] => Err(Error::Archive(
                "the archive has no program (models/<name>.json)".into(),
            )),
            many => Err(Error::Unsupported(format!(
                "the archive holds several programs: {}",
                many.join(", ")
            ))),
        }
    }

    /// One weight or constant: a view into the storage of its file (each file is read once).
    fn payload_tensor(
        &mut self,
        dir: &str,
        fqn: &str,
        meta: &PayloadMeta,
        files: &mut HashMap<String, Tensor>,
    ) -> Result<Tensor> {
        let entry = format!("{dir}{}", meta.path_name);
        if meta.use_pickle {
            return Err(Error::Unsupported(format!(
                "'{fqn}' ({entry}) is a pickled tensor subclass; oxport never executes pickles"
            )));
        }
        let tm = meta
            .tensor_meta
            .as_ref()
            .ok_or_else(|| Error::Invalid(format!("'{fqn}' ({entry}) has no tensor_meta")))?;
        let dtype = tm.dtype.dtype().ok_or_else(|| {
            Error::Unsupported(format!(
                "'{fqn}' has dtype {} which oxport does not support",
                tm.dtype.python_name()
            ))
        })?;
        if tm.layout != Layout::Strided {
            return Err(Error::Unsupported(format!(
                "'{fqn}' has layout {}",
                tm.layout.python_name()
            )));
        }
        let sizes = concrete(&tm.sizes, fqn, "sizes")?;
        let strides = concrete(&tm.strides, fqn, "strides")?;
        let offset = concrete(
            std::slice::from_ref(&tm.storage_offset),
            fqn,
            "storage_offset",
        )?[0];
        if sizes.len() != strides.len() {
            return Err(Error::Invalid(format!(
                "'{fqn}' has {} sizes but {} strides",
                sizes.len(),
                strides.len()
            )));
        }
        let flat = match files.get(&meta.path_name) {
            Some(t) => t.clone(),
            None => {
                if !self.has(&entry) {
                    return Err(Error::Archive(format!(
                        "'{fqn}': missing entry '{}/{entry}'",
                        self.root
                    )));
                }
                let bytes = self.read(&entry)?;
                let buf = Buffer::from_le_bytes(dtype, &bytes)
                    .map_err(|e| Error::Invalid(format!("'{fqn}' ({entry}): {e}")))?;
                let n = buf.len();
                let t = Tensor::from_buffer_checked(buf, &[n])?;
                files.insert(meta.path_name.clone(), t.clone());
                t
            }
        };
        if flat.dtype() != dtype {
            return Err(Error::Unsupported(format!(
                "'{fqn}' views {entry} as {} but another tensor views it as {}",
                dtype.name(),
                flat.dtype().name()
            )));
        }
        if flat.numel() == 0 && sizes.iter().all(|&s| s > 0) {
            return Err(Error::Invalid(format!(
                "'{fqn}' ({entry}) has no data but sizes {sizes:?} (saved from a fake tensor?)"
            )));
        }
        flat.restride(&sizes, &strides, offset)
            .map_err(|e| Error::Invalid(format!("'{fqn}' ({entry}): sizes {sizes:?}, strides {strides:?}, offset {offset} do not fit its {} elements: {e}", flat.numel())))
    }
}

fn concrete(v: &[SymInt], fqn: &str, what: &str) -> Result<Vec<usize>> {
    v.iter()
        .map(|s| match s {
            SymInt::AsInt(i) if *i >= 0 => Ok(*i as usize),
            SymInt::AsInt(i) => Err(Error::Invalid(format!("'{fqn}' has negative {what} ({i})"))),
            SymInt::AsExpr(e) => Err(Error::Invalid(format!(
                "'{fqn}' has symbolic {what} ({})",
                e.expr_str
            ))),
        })
        .collect()
}

/// Saves `ep` as a `.pt2` file that `torch.export.load` reads. The same program always gives the same
/// bytes (the archive's root folder is the file's stem, as in PyTorch).
pub fn save(ep: &ExportedProgram, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let root = archive_root_name(path);
    let bytes = to_bytes_with_root(ep, &root)?;
    std::fs::write(path, bytes).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}

/// The `.pt2` bytes of `ep`, with root folder `archive`.
pub fn to_bytes(ep: &ExportedProgram) -> Result<Vec<u8>> {
    to_bytes_with_root(ep, "archive")
}

fn archive_root_name(path: &Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if !stem.is_empty()
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        && stem != ".."
    {
        stem.to_string()
    } else {
        "archive".into()
    }
}

/// Tensor metadata of a concrete CPU tensor.
pub fn tensor_meta_of(t: &Tensor, requires_grad: bool) -> TensorMeta {
    TensorMeta::from_core(&oxport_core::ops::TensorMeta::of(t), requires_grad)
}

/// Writes one payload directory: each distinct storage once, in order of first use.
fn payloads<'a>(
    items: impl Iterator<Item = (&'a str, &'a Tensor, bool, bool)>,
    prefix: &str,
) -> (PayloadConfig, Vec<(String, Vec<u8>)>) {
    let mut cfg = PayloadConfig::default();
    let mut files: Vec<(String, Vec<u8>)> = vec![];
    let mut by_storage: HashMap<usize, String> = HashMap::new();
    for (fqn, t, is_param, requires_grad) in items {
        let key = Arc::as_ptr(t.storage()) as usize;
        let path_name = by_storage
            .entry(key)
            .or_insert_with(|| {
                let name = format!("{prefix}{}", files.len());
                files.push((name.clone(), t.storage().read().to_le_bytes()));
                name
            })
            .clone();
        cfg.config.insert(
            fqn,
            PayloadMeta {
                path_name,
                is_param,
                use_pickle: false,
                tensor_meta: Some(tensor_meta_of(t, requires_grad)),
            },
        );
    }
    (cfg, files)
}

fn to_bytes_with_root(ep: &ExportedProgram, root: &str) -> Result<Vec<u8>> {
    validate(ep)?;
    let json_err =
        |e: serde_json::Error| Error::Invalid(format!("cannot serialize the program: {e}"));
    let (weights_cfg, weight_files) = payloads(
        ep.state_dict
            .iter()
            .map(|(k, w)| (k, &w.tensor, w.is_param, w.requires_grad)),
        "weight_",
    );
    let (constants_cfg, constant_files) = payloads(
        ep.constants.iter().map(|(k, t)| (k, t, false, false)),
        "tensor_",
    );
    let mut entries: Vec<(String, Vec<u8>)> = vec![];
    for (name, bytes) in weight_files {
        entries.push((format!("data/weights/{name}"), bytes));
    }
    entries.push((
        format!("data/weights/{MODEL_NAME}_weights_config.json"),
        to_python_json(&weights_cfg).map_err(json_err)?.into_bytes(),
    ));
    for (name, bytes) in constant_files {
        entries.push((format!("data/constants/{name}"), bytes));
    }
    entries.push((
        format!("data/constants/{MODEL_NAME}_constants_config.json"),
        to_python_json(&constants_cfg)
            .map_err(json_err)?
            .into_bytes(),
    ));
    entries.push((
        format!("models/{MODEL_NAME}.json"),
        to_python_json(ep).map_err(json_err)?.into_bytes(),
    ));
    // torch.export.load requires this entry; empty means "no example inputs".
    entries.push((format!("data/sample_inputs/{MODEL_NAME}.pt"), vec![]));
    entries.push(("archive_format".into(), b"pt2".to_vec()));
    entries.push(("archive_version".into(), b"0".to_vec()));
    entries.push((".data/version".into(), b"6\n".to_vec()));
    entries.push(("byteorder".into(), b"little".to_vec()));

    let mut zw = ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in &entries {
        let opts = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Stored)
            .last_modified_time(zip::DateTime::default())
            .large_file(bytes.len() as u64 >= u32::MAX as u64)
            .with_alignment(64);
        zw.start_file(format!("{root}/{name}"), opts)
            .map_err(|e| Error::Archive(format!("cannot write '{name}': {e}")))?;
        zw.write_all(bytes)
            .map_err(|e| Error::Archive(format!("cannot write '{name}': {e}")))?;
    }
    let cursor = zw
        .finish()
        .map_err(|e| Error::Archive(format!("cannot finish the archive: {e}")))?;
    Ok(cursor.into_inner())
}
