//! GGUF out, by the kind of source a model was loaded from: a GGUF file is written back with its
//! edited matrices replaced (`write.rs`); an HF folder is written whole in llama.cpp's layout
//! (`from_hf.rs`). Both are checked before a search or a write ([`check_gguf_export`]).

use std::path::Path;

use super::GgufFile;
use super::from_hf::{check_hf_source, export_from_hf};
use super::write::{GgufExport, GgufTensorType, check_file, export_from_gguf};
use crate::error::{ModelError, Result};
use crate::model::Model;

/// Checks that `model` can be written as GGUF with `ty`: its source is a GGUF file of a
/// registered architecture (and with [`GgufTensorType::Same`] every editable matrix's tensor type
/// has an encoder), or an HF folder of a llama-layout family with a byte-level BPE tokenizer —
/// what [`export_gguf`] would refuse, refused before a search or a write.
pub fn check_gguf_export(model: &Model, ty: GgufTensorType) -> Result<()> {
    let source = model.source();
    if source.is_dir() {
        return check_hf_source(model);
    }
    if !is_gguf(source) {
        return Err(not_gguf(source));
    }
    check_file(model, &GgufFile::open(source)?, ty)
}

/// Writes `model` to `dest` as GGUF, through a temporary sibling renamed into place: from a GGUF
/// source, the source with its edited matrices encoded as `ty`; from an HF folder, the whole
/// model in llama.cpp's layout.
pub fn export_gguf(model: &Model, dest: &Path, ty: GgufTensorType) -> Result<GgufExport> {
    let source = model.source();
    if source.is_dir() {
        return export_from_hf(model, dest, ty);
    }
    if !is_gguf(source) {
        return Err(not_gguf(source));
    }
    export_from_gguf(model, source, dest, ty)
}

fn not_gguf(source: &Path) -> ModelError {
    ModelError::Unsupported(format!(
        "{}: GGUF export writes a model loaded from a GGUF file or an HF folder; this is neither",
        source.display()
    ))
}

fn is_gguf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    path.is_file()
        && std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok()
        && &magic == b"GGUF"
}
