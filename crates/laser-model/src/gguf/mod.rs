//! GGUF (llama.cpp) files: header, metadata and tensor table parsed with every size and offset
//! checked against the file before anything is allocated; F32/F16/BF16, Q4_0/Q4_1/Q5_0/Q5_1/Q8_0
//! and the k-quants Q2_K–Q6_K/Q8_K tensors dequantized to f32. [`crate::GgufModel`]
//! (`families/gguf.rs`) turns a file of a registered family's architecture into the HF layout,
//! with the tokenizer its metadata describes.
//!
//! Format: <https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::floats::{FloatBytes, decode_into, f16_at};

use crate::error::{ModelError, Result};
use crate::kquants::{self, QK_K};
use crate::weights::HostTensor;

pub(crate) mod arch_keys;
mod export;
mod from_hf;
mod quantize;
mod quantize_k;
pub(crate) mod rope_factors;
pub(crate) mod tokenizer;
mod tokenizer_out;
mod write;

pub use export::{check_gguf_export, export_gguf};
pub use write::{GgufExport, GgufTensorType, WrittenTensor};

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    /// Any unsigned integer type.
    Uint(u64),
    /// Any signed integer type.
    Int(i64),
    /// f32 or f64.
    Float(f64),
    /// bool.
    Bool(bool),
    /// UTF-8 string (invalid bytes replaced).
    String(String),
    /// Array of values.
    Array(Vec<GgufValue>),
}

impl GgufValue {
    pub(crate) fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::Uint(v) => Some(v),
            Self::Int(v) if v >= 0 => Some(v as u64),
            _ => None,
        }
    }

    pub(crate) fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::Float(v) => Some(v),
            Self::Uint(v) => Some(v as f64),
            Self::Int(v) => Some(v as f64),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }
}

/// GGML tensor types this loader dequantizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
    Q8K,
    BF16,
}

impl GgmlType {
    /// The type's id in a GGUF tensor table.
    fn id(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q4_1 => 3,
            Self::Q5_0 => 6,
            Self::Q5_1 => 7,
            Self::Q8_0 => 8,
            Self::Q2K => 10,
            Self::Q3K => 11,
            Self::Q4K => 12,
            Self::Q5K => 13,
            Self::Q6K => 14,
            Self::Q8K => 15,
            Self::BF16 => 30,
        }
    }

    /// llama.cpp's name of the type (`Q4_K`).
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "F32",
            Self::F16 => "F16",
            Self::Q4_0 => "Q4_0",
            Self::Q4_1 => "Q4_1",
            Self::Q5_0 => "Q5_0",
            Self::Q5_1 => "Q5_1",
            Self::Q8_0 => "Q8_0",
            Self::Q2K => "Q2_K",
            Self::Q3K => "Q3_K",
            Self::Q4K => "Q4_K",
            Self::Q5K => "Q5_K",
            Self::Q6K => "Q6_K",
            Self::Q8K => "Q8_K",
            Self::BF16 => "BF16",
        }
    }

    fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            6 => Self::Q5_0,
            7 => Self::Q5_1,
            8 => Self::Q8_0,
            10 => Self::Q2K,
            11 => Self::Q3K,
            12 => Self::Q4K,
            13 => Self::Q5K,
            14 => Self::Q6K,
            15 => Self::Q8K,
            30 => Self::BF16,
            _ => return None,
        })
    }

    /// (weights per block, bytes per block).
    fn block(self) -> (usize, usize) {
        match self {
            Self::F32 => (1, 4),
            Self::F16 | Self::BF16 => (1, 2),
            Self::Q4_0 => (32, 18),
            Self::Q4_1 => (32, 20),
            Self::Q5_0 => (32, 22),
            Self::Q5_1 => (32, 24),
            Self::Q8_0 => (32, 34),
            Self::Q2K => (QK_K, 84),
            Self::Q3K => (QK_K, 110),
            Self::Q4K => (QK_K, 144),
            Self::Q5K => (QK_K, 176),
            Self::Q6K => (QK_K, 210),
            Self::Q8K => (QK_K, 292),
        }
    }
}

/// Dequantizes `n` weights of type `ty` from `bytes` (which must hold exactly their blocks).
pub fn dequantize(ty: GgmlType, bytes: &[u8], n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n);
    dequantize_into(ty, bytes, &mut out);
    out
}

/// [`dequantize`] appending to `out` (which then needs no allocation when it has the room).
pub(crate) fn dequantize_into(ty: GgmlType, bytes: &[u8], out: &mut Vec<f32>) {
    match ty {
        GgmlType::F32 => decode_into(FloatBytes::F32, bytes, out),
        GgmlType::F16 => decode_into(FloatBytes::F16, bytes, out),
        GgmlType::BF16 => decode_into(FloatBytes::Bf16, bytes, out),
        GgmlType::Q8_0 => {
            for block in bytes.chunks_exact(34) {
                let d = f16_at(&block[0..2]);
                out.extend(block[2..].iter().map(|&q| d * f32::from(q as i8)));
            }
        }
        GgmlType::Q4_0 | GgmlType::Q4_1 => {
            let (size, data_at) = if ty == GgmlType::Q4_0 { (18, 2) } else { (20, 4) };
            for block in bytes.chunks_exact(size) {
                let d = f16_at(&block[0..2]);
                let (m, offset) =
                    if ty == GgmlType::Q4_0 { (0.0, 8.0) } else { (f16_at(&block[2..4]), 0.0) };
                let nibbles = &block[data_at..data_at + 16];
                // Low nibbles are weights 0..15, high nibbles 16..31.
                out.extend(nibbles.iter().map(|&b| d * (f32::from(b & 0x0f) - offset) + m));
                out.extend(nibbles.iter().map(|&b| d * (f32::from(b >> 4) - offset) + m));
            }
        }
        GgmlType::Q5_0 | GgmlType::Q5_1 => {
            // d, [m,] 32 fifth bits (u32), 16 bytes of nibbles; Q5_0 is offset by 16.
            let (size, bits_at) = if ty == GgmlType::Q5_0 { (22, 2) } else { (24, 4) };
            for block in bytes.chunks_exact(size) {
                let d = f16_at(&block[0..2]);
                let (m, offset) =
                    if ty == GgmlType::Q5_0 { (0.0, 16.0) } else { (f16_at(&block[2..4]), 0.0) };
                let qh = u32::from_le_bytes(block[bits_at..bits_at + 4].try_into().expect("4"));
                let nibbles = &block[bits_at + 4..bits_at + 20];
                let fifth = |j: usize| if (qh >> j) & 1 == 1 { 16.0 } else { 0.0 };
                out.extend(
                    nibbles
                        .iter()
                        .enumerate()
                        .map(|(j, &b)| d * (f32::from(b & 0x0f) + fifth(j) - offset) + m),
                );
                out.extend(
                    nibbles
                        .iter()
                        .enumerate()
                        .map(|(j, &b)| d * (f32::from(b >> 4) + fifth(j + 16) - offset) + m),
                );
            }
        }
        GgmlType::Q2K
        | GgmlType::Q3K
        | GgmlType::Q4K
        | GgmlType::Q5K
        | GgmlType::Q6K
        | GgmlType::Q8K => {
            let (_, size) = ty.block();
            let f = match ty {
                GgmlType::Q2K => kquants::q2_k,
                GgmlType::Q3K => kquants::q3_k,
                GgmlType::Q4K => kquants::q4_k,
                GgmlType::Q5K => kquants::q5_k,
                GgmlType::Q6K => kquants::q6_k,
                _ => kquants::q8_k,
            };
            for block in bytes.chunks_exact(size) {
                f(block, out);
            }
        }
    }
}

/// A tensor's entry in the table.
#[derive(Debug, Clone)]
pub struct GgufTensorInfo {
    /// GGUF name (`blk.0.attn_q.weight`).
    pub name: String,
    /// GGUF dims, innermost first (`ne0` = columns).
    pub dims: Vec<usize>,
    /// Element type.
    pub ty: GgmlType,
    /// Absolute byte range in the file.
    pub range: std::ops::Range<usize>,
}

impl GgufTensorInfo {
    /// The shape in HF order (outermost first; GGUF lists the innermost dimension first).
    pub fn hf_shape(&self) -> Vec<usize> {
        self.dims.iter().rev().copied().collect()
    }
}

/// Where a GGUF file's parts lie: what a writer that copies its header needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GgufLayout {
    /// Byte offset of the tensor table (the end of the metadata).
    pub(crate) table_start: usize,
    /// The data section's alignment.
    pub(crate) alignment: usize,
}

/// A parsed GGUF file (the data stays memory-mapped).
#[derive(Debug)]
pub struct GgufFile {
    path: PathBuf,
    mmap: memmap2::Mmap,
    layout: GgufLayout,
    /// Metadata by key.
    pub metadata: BTreeMap<String, GgufValue>,
    /// Tensor table.
    pub tensors: Vec<GgufTensorInfo>,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn err(&self, what: impl Into<String>) -> ModelError {
        ModelError::format(self.path, format!("{} (at byte {})", what.into(), self.pos))
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| self.err(format!("truncated: {what} needs {n} bytes")))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        let b = self.take(8, what)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// A count whose items take at least `min_item` bytes each: bounded by the bytes left, so a
    /// 40-byte file cannot ask for a billion entries.
    fn count(&mut self, min_item: usize, what: &str) -> Result<usize> {
        let n = self.u64(what)?;
        if n.saturating_mul(min_item as u64) > self.remaining() as u64 {
            return Err(self.err(format!(
                "{what} = {n} exceeds what the remaining {} bytes can hold",
                self.remaining()
            )));
        }
        Ok(n as usize)
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let n = self.count(1, what)?;
        Ok(String::from_utf8_lossy(self.take(n, what)?).into_owned())
    }

    fn value(&mut self, ty: u32, depth: usize) -> Result<GgufValue> {
        let scalar = |c: &mut Self, n: usize| -> Result<&'a [u8]> { c.take(n, "metadata value") };
        Ok(match ty {
            0 => GgufValue::Uint(u64::from(scalar(self, 1)?[0])),
            1 => GgufValue::Int(i64::from(scalar(self, 1)?[0] as i8)),
            2 => {
                let b = scalar(self, 2)?;
                GgufValue::Uint(u64::from(u16::from_le_bytes([b[0], b[1]])))
            }
            3 => {
                let b = scalar(self, 2)?;
                GgufValue::Int(i64::from(i16::from_le_bytes([b[0], b[1]])))
            }
            4 => GgufValue::Uint(u64::from(self.u32("u32")?)),
            5 => GgufValue::Int(i64::from(self.u32("i32")? as i32)),
            6 => GgufValue::Float(f64::from(f32::from_bits(self.u32("f32")?))),
            7 => GgufValue::Bool(scalar(self, 1)?[0] != 0),
            8 => GgufValue::String(self.string("string length")?),
            9 => {
                if depth > 2 {
                    return Err(self.err("metadata arrays nested too deeply"));
                }
                let inner = self.u32("array type")?;
                let min = match inner {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8..=12 => 8,
                    other => return Err(self.err(format!("unknown metadata array type {other}"))),
                };
                let n = self.count(min, "array length")?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(inner, depth + 1)?);
                }
                GgufValue::Array(items)
            }
            10 => GgufValue::Uint(self.u64("u64")?),
            11 => GgufValue::Int(self.u64("i64")? as i64),
            12 => GgufValue::Float(f64::from_bits(self.u64("f64")?)),
            other => return Err(self.err(format!("unknown metadata value type {other}"))),
        })
    }
}

impl GgufFile {
    /// Opens and parses a GGUF file.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| ModelError::io(path, e))?;
        // SAFETY: read-only private map of a file opened read-only (see weights.rs).
        let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| ModelError::io(path, e))?;
        let (metadata, tensors, layout) = Self::parse_layout(&mmap, path)?;
        Ok(Self { path: path.to_owned(), mmap, layout, metadata, tensors })
    }

    /// Parses a GGUF header (metadata and tensor table) from bytes, checking every count, size
    /// and offset against `bytes.len()` before allocating; `path` only names the file in errors.
    /// [`GgufFile::open`] runs exactly this on the mapped file (the fuzz targets call it directly).
    pub fn parse(
        bytes: &[u8],
        path: &Path,
    ) -> Result<(BTreeMap<String, GgufValue>, Vec<GgufTensorInfo>)> {
        Self::parse_layout(bytes, path).map(|(m, t, _)| (m, t))
    }

    /// [`GgufFile::parse`], also saying where the metadata ends and how data is aligned.
    #[allow(clippy::type_complexity)]
    fn parse_layout(
        bytes: &[u8],
        path: &Path,
    ) -> Result<(BTreeMap<String, GgufValue>, Vec<GgufTensorInfo>, GgufLayout)> {
        let mut c = Cursor { bytes, pos: 0, path };
        if c.take(4, "magic")
            .map_err(|_| ModelError::format(path, "not a GGUF file: shorter than its magic"))?
            != b"GGUF"
        {
            return Err(ModelError::format(path, "not a GGUF file: bad magic (expected `GGUF`)"));
        }
        let version = c.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(c.err(format!("unsupported GGUF version {version} (need 2 or 3)")));
        }
        // A tensor entry takes ≥ 8 (name) + 4 + 8 (one dim) + 4 + 8 bytes; a metadata pair ≥ 8 + 4 + 1.
        let n_tensors = c.count(32, "tensor count")?;
        let n_kv = c.count(13, "metadata count")?;
        let mut metadata = BTreeMap::new();
        for _ in 0..n_kv {
            let key = c.string("metadata key length")?;
            let ty = c.u32("metadata type")?;
            let value = c.value(ty, 0)?;
            metadata.insert(key, value);
        }
        let table_start = c.pos;
        let mut raw = Vec::with_capacity(n_tensors);
        for i in 0..n_tensors {
            let name = c.string("tensor name length")?;
            let n_dims = c.u32("tensor rank")? as usize;
            if n_dims == 0 || n_dims > 4 {
                return Err(c.err(format!("tensor {i} `{name}` has rank {n_dims} (need 1..=4)")));
            }
            let mut dims = Vec::with_capacity(n_dims);
            for _ in 0..n_dims {
                dims.push(c.u64("tensor dim")?);
            }
            let ty_id = c.u32("tensor type")?;
            let offset = c.u64("tensor offset")?;
            let ty = GgmlType::from_id(ty_id).ok_or_else(|| {
                ModelError::Unsupported(format!("{}: tensor `{name}` has GGML type {ty_id} (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K–Q6_K, Q8_K)", path.display()))
            })?;
            raw.push((name, dims, ty, offset));
        }
        let alignment =
            metadata.get("general.alignment").and_then(GgufValue::as_u64).unwrap_or(32) as usize;
        if alignment == 0 || !alignment.is_power_of_two() {
            return Err(ModelError::format(
                path,
                format!("general.alignment {alignment} is not a power of two"),
            ));
        }
        let data_start = c.pos.div_ceil(alignment) * alignment;
        let mut tensors = Vec::with_capacity(raw.len());
        for (name, dims, ty, offset) in raw {
            let bad = |m: String| ModelError::format(path, format!("tensor `{name}`: {m}"));
            let n = dims
                .iter()
                .try_fold(1u64, |a, &d| a.checked_mul(d))
                .filter(|&n| n > 0 && n < 1 << 40)
                .ok_or_else(|| bad(format!("absurd dims {dims:?}")))?;
            let (per_block, block_bytes) = ty.block();
            if !dims[0].is_multiple_of(per_block as u64) {
                return Err(bad(format!(
                    "row length {} is not a multiple of the {ty:?} block size {per_block}",
                    dims[0]
                )));
            }
            let len = (n / per_block as u64) * block_bytes as u64;
            let start = (data_start as u64)
                .checked_add(offset)
                .ok_or_else(|| bad("offset overflows".into()))?;
            let end =
                start.checked_add(len).filter(|&e| e <= bytes.len() as u64).ok_or_else(|| {
                    bad(format!(
                        "data [{start}, {}) lies outside the {}-byte file",
                        start.saturating_add(len),
                        bytes.len()
                    ))
                })?;
            tensors.push(GgufTensorInfo {
                name,
                dims: dims.iter().map(|&d| d as usize).collect(),
                ty,
                range: start as usize..end as usize,
            });
        }
        Ok((metadata, tensors, GgufLayout { table_start, alignment }))
    }

    /// Dequantizes a tensor to f32 in HF (row-major, outermost-first) shape.
    pub fn tensor(&self, info: &GgufTensorInfo) -> HostTensor {
        let mut data = Vec::with_capacity(info.dims.iter().product());
        self.dequantize_into(info, &mut data);
        HostTensor { shape: info.hf_shape(), data }
    }

    /// Appends a tensor's values, dequantized to f32 and in HF order, to `out`.
    pub(crate) fn dequantize_into(&self, info: &GgufTensorInfo, out: &mut Vec<f32>) {
        // `parse` checked that the byte range holds exactly the product of the dims.
        dequantize_into(info.ty, &self.mmap[info.range.clone()], out);
    }

    pub(crate) fn meta(&self, key: &str) -> Result<&GgufValue> {
        self.metadata
            .get(key)
            .ok_or_else(|| ModelError::config(&self.path, format!("GGUF metadata lacks `{key}`")))
    }

    pub(crate) fn meta_u64(&self, key: &str) -> Result<u64> {
        self.meta(key)?.as_u64().ok_or_else(|| {
            ModelError::config(&self.path, format!("GGUF `{key}` is not an unsigned integer"))
        })
    }

    pub(crate) fn meta_strings(&self, key: &str) -> Result<Vec<String>> {
        match self.meta(key)? {
            GgufValue::Array(items) => items
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_owned).ok_or_else(|| {
                        ModelError::config(&self.path, format!("GGUF `{key}` holds a non-string"))
                    })
                })
                .collect(),
            _ => Err(ModelError::config(&self.path, format!("GGUF `{key}` is not an array"))),
        }
    }
}
