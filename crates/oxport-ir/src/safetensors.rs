//! Weights from `.safetensors` files (`safetensors.torch.save_file`): name -> tensor, in file order.
use crate::error::{Error, Result};
use oxport_core::tensor::Buffer;
use oxport_core::{DType, Tensor};
use std::path::Path;

fn dtype(d: safetensors::Dtype, name: &str) -> Result<DType> {
    use safetensors::Dtype as S;
    Ok(match d {
        S::BOOL => DType::Bool,
        S::U8 => DType::U8,
        S::I8 => DType::I8,
        S::I16 => DType::I16,
        S::I32 => DType::I32,
        S::I64 => DType::I64,
        S::F16 => DType::F16,
        S::BF16 => DType::BF16,
        S::F32 => DType::F32,
        S::F64 => DType::F64,
        other => {
            return Err(Error::Unsupported(format!(
                "tensor '{name}' has dtype {other:?}"
            )))
        }
    })
}

/// Reads every tensor of a `.safetensors` file (in the order of the file's header).
///
/// ```no_run
/// let weights = oxport_ir::safetensors::load("model.safetensors")?;
/// for (name, t) in &weights {
///     println!("{name}: {:?}", t.sizes());
/// }
/// # Ok::<(), oxport_ir::Error>(())
/// ```
pub fn load(path: impl AsRef<Path>) -> Result<Vec<(String, Tensor)>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    load_from_bytes(&bytes)
}

/// [`load`] from the file's bytes.
pub fn load_from_bytes(bytes: &[u8]) -> Result<Vec<(String, Tensor)>> {
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| Error::Archive(format!("not a readable .safetensors file: {e}")))?;
    // The header's order (the file's), not the crate's name-sorted iteration.
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::Archive(format!("not a readable .safetensors file: {e}")))?;
    let mut names: Vec<(usize, String)> = meta
        .tensors()
        .into_iter()
        .map(|(name, info)| (info.data_offsets.0, name))
        .collect();
    names.sort();
    let mut out = vec![];
    for (_, name) in names {
        let view = st
            .tensor(&name)
            .map_err(|e| Error::Archive(format!("tensor '{name}': {e}")))?;
        let dt = dtype(view.dtype(), &name)?;
        let buf = Buffer::from_le_bytes(dt, view.data())
            .map_err(|e| Error::Invalid(format!("tensor '{name}': {e}")))?;
        out.push((name, Tensor::from_buffer_checked(buf, view.shape())?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_errors_not_panics() {
        for bytes in [
            &b""[..],
            b"garbage",
            &[0xff; 8],
            &[8, 0, 0, 0, 0, 0, 0, 0, b'{', b'}'],
        ] {
            let e = load_from_bytes(bytes);
            assert!(
                e.is_err() || e.as_ref().is_ok_and(Vec::is_empty),
                "{bytes:?}"
            );
        }
        // A header whose offsets run past the data.
        let header = br#"{"w":{"dtype":"F32","shape":[1000000],"data_offsets":[0,4000000]}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        bytes.extend_from_slice(&[0; 16]);
        let e = load_from_bytes(&bytes).unwrap_err().to_string();
        assert!(e.contains("not a readable .safetensors file"), "{e}");
    }
}
