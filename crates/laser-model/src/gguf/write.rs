//! GGUF out: a model loaded from a GGUF file, written back as GGUF with its edited matrices
//! replaced. The header (version, counts, every metadata key and value) is copied byte for byte;
//! the tensor table lists the same tensors in the same order; every untouched tensor's bytes are
//! copied as they are (same type, same alignment rule); only the edited tensors are encoded anew
//! — as F16 (the default), F32, or their source type where a quantizer exists
//! (`quantize.rs`).
//!
//! An edited matrix goes back into llama.cpp's layout by inverting what the loader undid
//! (`GgufForm::restore`, e.g. the llama architecture's Q/K row permutation): the restore is run on
//! a probe whose rows hold their own index, which reads off the row permutation; a restore of an
//! editable matrix that is not a row permutation is refused.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::quantize::{ENCODABLE, encode};
use super::{GgmlType, GgufFile, GgufTensorInfo, dequantize};
use crate::error::{ModelError, Result};
use crate::families::gguf::{form_of, hf_name};
use crate::model::Model;
use crate::weights::HostTensor;

/// How edited tensors are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GgufTensorType {
    /// Half precision (2 bytes a weight): llama.cpp runs it everywhere.
    #[default]
    F16,
    /// Single precision: exact.
    F32,
    /// The tensor's type in the source file, re-quantized (floats, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
    /// Q4_K, Q5_K, Q6_K; `quantize.rs`).
    Same,
}

impl FromStr for GgufTensorType {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "f16" => Ok(Self::F16),
            "f32" => Ok(Self::F32),
            "same" => Ok(Self::Same),
            other => Err(format!("unknown GGUF tensor type `{other}` (expected f16, f32 or same)")),
        }
    }
}

impl fmt::Display for GgufTensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::F16 => "f16",
            Self::F32 => "f32",
            Self::Same => "same",
        })
    }
}

/// One edited tensor as written.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WrittenTensor {
    /// llama.cpp's name.
    pub gguf_name: String,
    /// HF name.
    pub name: String,
    /// Its type in the source file.
    pub source_type: &'static str,
    /// The type written.
    pub written_type: &'static str,
    /// ‖written − edited‖ / ‖edited‖: what the encoding adds to the edit (0 for F32).
    pub relative_error: f64,
}

/// What [`export_gguf`] wrote.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GgufExport {
    /// The file.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// The source file's size.
    pub source_bytes: u64,
    /// The edited tensors.
    pub edited: Vec<WrittenTensor>,
}

/// An edited tensor ready to write.
struct Replacement {
    index: usize,
    ty: GgmlType,
    bytes: Vec<u8>,
    report: WrittenTensor,
}

/// The checks of a GGUF source opened as `file`: its architecture is registered and, with
/// [`GgufTensorType::Same`], every editable matrix's tensor type has an encoder.
pub(super) fn check_file(model: &Model, file: &GgufFile, ty: GgufTensorType) -> Result<()> {
    let form = form(file)?;
    if ty == GgufTensorType::Same {
        for info in &file.tensors {
            let editable =
                hf_name(&form, &info.name).is_some_and(|n| model.matrix_info(&n).is_ok());
            if editable && !ENCODABLE.contains(&info.ty) {
                return Err(no_quantizer(&file.path, info));
            }
        }
    }
    Ok(())
}

fn form(file: &GgufFile) -> Result<crate::arch::GgufForm> {
    let arch = file.meta("general.architecture")?.as_str().unwrap_or_default();
    form_of(arch).ok_or_else(|| {
        ModelError::Unsupported(format!("{}: GGUF architecture `{arch}`", file.path.display()))
    })
}

fn no_quantizer(path: &Path, info: &GgufTensorInfo) -> ModelError {
    ModelError::Unsupported(format!(
        "{}: tensor `{}` is {}, which has no quantizer here (re-encoding keeps {}); write edited tensors as f16 or f32",
        path.display(),
        info.name,
        info.ty.name(),
        ENCODABLE.map(GgmlType::name).join(", ")
    ))
}

/// Writes `model`, loaded from the GGUF file `source`, to `dest` as that file with its edited
/// matrices encoded as `ty`, through a temporary sibling renamed into place.
pub(super) fn export_from_gguf(
    model: &Model,
    source: &Path,
    dest: &Path,
    ty: GgufTensorType,
) -> Result<GgufExport> {
    let file = GgufFile::open(source)?;
    check_file(model, &file, ty)?;
    let replacements = plan(model, &file, ty)?;
    let written = through_temporary(dest, |tmp| write(&file, &replacements, tmp))?;
    Ok(GgufExport {
        path: dest.to_owned(),
        bytes: written,
        source_bytes: file.mmap.len() as u64,
        edited: replacements.into_iter().map(|r| r.report).collect(),
    })
}

/// Runs `write` on a temporary sibling of `dest` and renames it into place; on failure the
/// temporary is removed and `dest` is untouched. Returns what `write` returns (the bytes written).
pub(super) fn through_temporary(
    dest: &Path,
    write: impl FnOnce(&Path) -> Result<u64>,
) -> Result<u64> {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dest.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let written = write(&tmp).and_then(|bytes| {
        std::fs::rename(&tmp, dest).map_err(|e| ModelError::io(dest, e))?;
        Ok(bytes)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// ‖x − y‖ / ‖x‖ (0 for a zero `x`): the error an encoding adds.
pub(super) fn relative_error(x: &[f32], y: &[f32]) -> f64 {
    let (num, den) = x.iter().zip(y).fold((0.0f64, 0.0f64), |(n, d), (&a, &b)| {
        (n + f64::from(a - b).powi(2), d + f64::from(a).powi(2))
    });
    if den > 0.0 { (num / den).sqrt() } else { 0.0 }
}

/// The edited tensors of `file`, in `model`'s edited state, encoded.
fn plan(model: &Model, file: &GgufFile, ty: GgufTensorType) -> Result<Vec<Replacement>> {
    let path = &file.path;
    let form = form(file)?;
    let edited = model.edited();
    let mut out = Vec::new();
    for (index, info) in file.tensors.iter().enumerate() {
        let Some(hf) = hf_name(&form, &info.name).filter(|n| edited.contains(n)) else {
            continue;
        };
        let target = match ty {
            GgufTensorType::F16 => GgmlType::F16,
            GgufTensorType::F32 => GgmlType::F32,
            GgufTensorType::Same if ENCODABLE.contains(&info.ty) => info.ty,
            GgufTensorType::Same => return Err(no_quantizer(path, info)),
        };
        let shape = model.matrix_info(&hf)?.shape;
        if info.hf_shape() != shape {
            return Err(ModelError::format(
                path,
                format!(
                    "tensor `{}` is {:?}; the model's `{hf}` is {shape:?}",
                    info.name,
                    info.hf_shape()
                ),
            ));
        }
        let values = to_gguf_rows(&form, info, model.matrix(&hf)?, shape, model, path)?;
        let bytes = encode(target, &values).expect("an encodable type");
        let back = dequantize(target, &bytes, values.len());
        out.push(Replacement {
            index,
            ty: target,
            bytes,
            report: WrittenTensor {
                gguf_name: info.name.clone(),
                name: hf,
                source_type: info.ty.name(),
                written_type: target.name(),
                relative_error: relative_error(&values, &back),
            },
        });
    }
    Ok(out)
}

/// The HF matrix `data` ([rows, cols] row-major) in llama.cpp's row order for tensor `info`.
fn to_gguf_rows(
    form: &crate::arch::GgufForm,
    info: &GgufTensorInfo,
    data: Vec<f32>,
    [rows, cols]: [usize; 2],
    model: &Model,
    path: &Path,
) -> Result<Vec<f32>> {
    // Row r of the probe holds r: after the restore, HF row j holds the GGUF row it came from.
    let probe = HostTensor {
        shape: vec![rows, cols],
        data: (0..rows).flat_map(|r| std::iter::repeat_n(r as f32, cols)).collect(),
    };
    let restored = (form.restore)(&info.name, probe, model.config(), path)?;
    let not_a_permutation = || {
        ModelError::Unsupported(format!(
            "{}: the loader's change to tensor `{}` is not a row permutation; it cannot be written back",
            path.display(),
            info.name
        ))
    };
    if restored.shape != [rows, cols] || rows >= 1 << 24 {
        return Err(not_a_permutation());
    }
    let mut out = vec![0.0f32; rows * cols];
    let mut seen = vec![false; rows];
    for j in 0..rows {
        let row = &restored.data[j * cols..(j + 1) * cols];
        let src = row[0];
        if src.fract() != 0.0 || src < 0.0 || row.iter().any(|&v| v != src) {
            return Err(not_a_permutation());
        }
        let src = src as usize;
        if src >= rows || std::mem::replace(&mut seen[src], true) {
            return Err(not_a_permutation());
        }
        out[src * cols..(src + 1) * cols].copy_from_slice(&data[j * cols..(j + 1) * cols]);
    }
    Ok(out)
}

/// Writes the GGUF: `file`'s header bytes up to its tensor table, the table with the
/// replacements' types and offsets laid out again, then every tensor's data, aligned.
fn write(file: &GgufFile, replacements: &[Replacement], tmp: &Path) -> Result<u64> {
    let io = |e| ModelError::io(tmp, e);
    let align = file.layout.alignment as u64;
    let pad = |n: u64| n.div_ceil(align) * align - n;
    let mut w = std::io::BufWriter::new(std::fs::File::create(tmp).map_err(io)?);
    let src = &file.mmap[..];
    w.write_all(&src[..file.layout.table_start]).map_err(io)?;
    let mut pos = file.layout.table_start as u64;
    let replacement = |i: usize| replacements.iter().find(|r| r.index == i);
    let mut offset = 0u64;
    for (i, t) in file.tensors.iter().enumerate() {
        let (ty, len) = match replacement(i) {
            Some(r) => (r.ty, r.bytes.len() as u64),
            None => (t.ty, t.range.len() as u64),
        };
        let mut entry = Vec::with_capacity(t.name.len() + 48);
        entry.extend((t.name.len() as u64).to_le_bytes());
        entry.extend(t.name.as_bytes());
        entry.extend((t.dims.len() as u32).to_le_bytes());
        for &d in &t.dims {
            entry.extend((d as u64).to_le_bytes());
        }
        entry.extend(ty.id().to_le_bytes());
        entry.extend(offset.to_le_bytes());
        w.write_all(&entry).map_err(io)?;
        pos += entry.len() as u64;
        offset += len + pad(len);
    }
    let zeros = vec![0u8; align as usize];
    w.write_all(&zeros[..pad(pos) as usize]).map_err(io)?;
    pos += pad(pos);
    for (i, t) in file.tensors.iter().enumerate() {
        let bytes = match replacement(i) {
            Some(r) => &r.bytes[..],
            None => &src[t.range.clone()],
        };
        w.write_all(bytes).map_err(io)?;
        let p = pad(bytes.len() as u64);
        w.write_all(&zeros[..p as usize]).map_err(io)?;
        pos += bytes.len() as u64 + p;
    }
    let f = w.into_inner().map_err(|e| io(e.into_error()))?;
    f.sync_all().map_err(io)?;
    Ok(pos)
}
