//! Host-side weights: HF safetensors files (single or sharded) read through a memory map and
//! converted once to f32 (from f32, f16 or bf16), keyed by HF tensor name.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use safetensors::{Dtype, SafeTensors};

use crate::error::{ModelError, Result};
use crate::floats::{FloatBytes, decode};

/// A dense f32 tensor in row-major order, as stored by HF. Its value count always equals the
/// product of its shape ([`HostTensor::new`] checks; outside this crate the fields are private).
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub(crate) shape: Vec<usize>,
    pub(crate) data: Vec<f32>,
}

impl HostTensor {
    /// A tensor from parts: an error unless `data.len()` is the product of `shape`.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        match shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) {
            Some(n) if n == data.len() => Ok(Self { shape, data }),
            _ => Err(ModelError::TensorShape {
                name: "host tensor".into(),
                expected: shape,
                got: vec![data.len()],
            }),
        }
    }

    /// Dimensions, outermost first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Row-major values.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Row-major values, to change in place (the shape stays).
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// The values, giving the tensor up.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// Fails on the first NaN or infinity.
    pub fn check_finite(&self, name: &str) -> Result<()> {
        check_finite(name, &self.data)
    }
}

/// Fails on the first NaN or infinity of the values of tensor `name`.
pub(crate) fn check_finite(name: &str, data: &[f32]) -> Result<()> {
    // In parallel chunks: a serial scan of SmolLM2's weights was 0.2 s of every command's start.
    const CHUNK: usize = 1 << 16;
    let bad = data.par_chunks(CHUNK).enumerate().find_map_first(|(chunk, values)| {
        values.iter().position(|x| !x.is_finite()).map(|i| chunk * CHUNK + i)
    });
    match bad {
        None => Ok(()),
        Some(index) => {
            Err(ModelError::NonFinite { name: name.to_owned(), index, value: data[index] })
        }
    }
}

/// All tensors of a checkpoint by HF name.
pub type WeightMap = BTreeMap<String, HostTensor>;

/// Loads `model.safetensors`, or every shard named by `model.safetensors.index.json`, from `dir`.
pub fn load_safetensors_dir(dir: &Path) -> Result<WeightMap> {
    let single = dir.join("model.safetensors");
    let index = dir.join("model.safetensors.index.json");
    if single.is_file() {
        return load_safetensors_file(&single);
    }
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| ModelError::io(&index, e))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| ModelError::format(&index, format!("not JSON: {e}")))?;
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| ModelError::format(&index, "no `weight_map` object"))?;
        let mut shards: Vec<&str> = map.values().filter_map(|v| v.as_str()).collect();
        shards.sort_unstable();
        shards.dedup();
        let mut out = WeightMap::new();
        for shard in shards {
            if shard.contains('/') || shard.contains("..") {
                return Err(ModelError::format(
                    &index,
                    format!("shard name `{shard}` leaves the model folder"),
                ));
            }
            out.extend(load_safetensors_file(&dir.join(shard))?);
        }
        return Ok(out);
    }
    Err(ModelError::format(
        dir,
        "no model.safetensors or model.safetensors.index.json in this folder",
    ))
}

/// Loads one safetensors file. The header's offsets are validated by `safetensors` before any
/// tensor is touched, so a lying header is an error, not an out-of-bounds read.
pub fn load_safetensors_file(path: &Path) -> Result<WeightMap> {
    let file = File::open(path).map_err(|e| ModelError::io(path, e))?;
    // SAFETY: the map is read-only and private; the file is opened read-only and not modified by
    // this process. Another process truncating it concurrently could fault, as with any mmap.
    let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| ModelError::io(path, e))?;
    // Each tensor's pages go back once it is converted: otherwise every touched page of the file
    // stays in the resident set beside the f32 tensors built from it, and loading peaks at twice
    // the weights (measured on the synthetic 1B llama: 7.46 GB for 3.81 GB of f32).
    parse_with(&mmap, path, |data| {
        let offset = data.as_ptr() as usize - mmap.as_ptr() as usize;
        // SAFETY: a read-only private file mapping has no modified pages, so MADV_DONTNEED only
        // drops cached pages; a later read faults the same file contents back in. No reference
        // observes a change. Failure (an OS without it) only costs the saving.
        #[cfg(unix)]
        let _ = unsafe {
            mmap.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, data.len())
        };
    })
}

/// Decodes safetensors bytes to f32 tensors; `path` only names the file in errors.
pub fn parse_safetensors(bytes: &[u8], path: &Path) -> Result<WeightMap> {
    parse_with(bytes, path, |_| {})
}

/// [`parse_safetensors`], calling `converted` with each tensor's bytes once they are decoded.
fn parse_with(bytes: &[u8], path: &Path, mut converted: impl FnMut(&[u8])) -> Result<WeightMap> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| ModelError::format(path, format!("not a valid safetensors file: {e}")))?;
    let mut out = WeightMap::new();
    for (name, view) in st.tensors() {
        let data = to_f32(view.dtype(), view.data()).ok_or_else(|| {
            ModelError::Unsupported(format!(
                "{}: tensor `{name}` has dtype {:?} (need F32, F16 or BF16)",
                path.display(),
                view.dtype()
            ))
        })?;
        converted(view.data());
        out.insert(name, HostTensor::new(view.shape().to_vec(), data)?);
    }
    Ok(out)
}

fn to_f32(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        Dtype::F32 => decode(FloatBytes::F32, bytes),
        Dtype::F16 => decode(FloatBytes::F16, bytes),
        Dtype::BF16 => decode(FloatBytes::Bf16, bytes),
        _ => return None,
    })
}

/// Writes f32 tensors as a safetensors file, atomically (temporary name, then rename).
pub fn save_safetensors(
    path: &Path,
    tensors: &WeightMap,
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Result<()> {
    save_safetensors_as(path, tensors, metadata, StoredFloat::F32)
}

/// The float type [`save_safetensors_as`] stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredFloat {
    /// 4 bytes, exact.
    F32,
    /// bfloat16 (round to nearest even).
    Bf16,
    /// IEEE half (round to nearest even).
    F16,
}

/// [`save_safetensors`] with the values rounded to `dtype`.
pub fn save_safetensors_as(
    path: &Path,
    tensors: &WeightMap,
    metadata: Option<std::collections::HashMap<String, String>>,
    dtype: StoredFloat,
) -> Result<()> {
    // Narrow types need their own bytes; f32 is viewed in place.
    let narrowed: Vec<Vec<u8>> = match dtype {
        StoredFloat::F32 => Vec::new(),
        StoredFloat::Bf16 => tensors
            .values()
            .map(|t| t.data.iter().flat_map(|&x| half::bf16::from_f32(x).to_le_bytes()).collect())
            .collect(),
        StoredFloat::F16 => tensors
            .values()
            .map(|t| t.data.iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect())
            .collect(),
    };
    let st_dtype = match dtype {
        StoredFloat::F32 => Dtype::F32,
        StoredFloat::Bf16 => Dtype::BF16,
        StoredFloat::F16 => Dtype::F16,
    };
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .enumerate()
        .map(|(i, (name, t))| {
            let bytes: &[u8] =
                if narrowed.is_empty() { bytemuck_f32(&t.data) } else { &narrowed[i] };
            safetensors::tensor::TensorView::new(st_dtype, t.shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| ModelError::format(path, format!("tensor `{name}`: {e}")))
        })
        .collect::<Result<_>>()?;
    let tmp = temp_path(path);
    // A failed write (full disk, file-size limit) is the machine's I/O error, not a format error,
    // and leaves no partial file behind.
    safetensors::serialize_to_file(views, metadata, &tmp).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        match e {
            safetensors::SafeTensorError::IoError(io) => ModelError::io(&tmp, io),
            other => ModelError::format(&tmp, other.to_string()),
        }
    })?;
    if let Err(e) = as_created(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(ModelError::io(&tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| ModelError::io(path, e))
}

/// Gives `file` the mode a file created by this process gets (0666 less the umask):
/// safetensors writes through a private temporary file (0600), which a model folder shared with
/// other users or a server running as another user must not keep.
fn as_created(file: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The umask without changing it (a set-and-restore would race other threads' creates);
        // /proc/self/status states it since Linux 4.7, and 022 is the usual one elsewhere.
        let umask = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("Umask:"))?;
                u32::from_str_radix(line.split_whitespace().nth(1)?, 8).ok()
            })
            .unwrap_or(0o022);
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o666 & !umask))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// `dir/.name.tmp` beside `path`.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

fn bytemuck_f32(data: &[f32]) -> &[u8] {
    // SAFETY: f32 has no padding and any byte pattern is a valid u8; alignment only decreases.
    // safetensors stores little-endian, which is every platform this crate targets.
    unsafe { std::slice::from_raw_parts(data.as_ptr().cast::<u8>(), std::mem::size_of_val(data)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parallel scan reports the first bad value, wherever the chunks split.
    #[test]
    fn check_finite_names_the_first_bad_index_across_chunks() {
        let mut data = vec![0.5f32; 3 * (1 << 16) + 5];
        assert!(check_finite("w", &data).is_ok());
        data[150_000] = f32::NAN;
        data[70_000] = f32::INFINITY;
        match check_finite("w", &data) {
            Err(ModelError::NonFinite { name, index, value }) => {
                assert_eq!((name.as_str(), index, value), ("w", 70_000, f32::INFINITY));
            }
            other => panic!("expected NonFinite, got {other:?}"),
        }
        data[3] = f32::NEG_INFINITY;
        assert!(matches!(check_finite("w", &data), Err(ModelError::NonFinite { index: 3, .. })));
    }
}
