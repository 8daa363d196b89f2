//! Quantizers for re-encoding edited tensors in their source type (`--gguf-type same`):
//! llama.cpp's reference rounding (`quantize_row_*_ref` in ggml-quants.c) for the block types
//! whose encoding is one scale (and minimum) per 32 weights, and — in `quantize_k.rs` — its
//! reference searches for Q4_K, Q5_K and Q6_K. Q2_K and Q3_K have none here: a tensor of those
//! types is written as F16 or F32 instead.

use half::f16;

use super::GgmlType;
use super::quantize_k;
use crate::kquants::QK_K;

/// Encodes `x` (a whole number of blocks) as `ty`, or `None` where no encoder exists.
pub(crate) fn encode(ty: GgmlType, x: &[f32]) -> Option<Vec<u8>> {
    Some(match ty {
        GgmlType::F32 => x.iter().flat_map(|v| v.to_le_bytes()).collect(),
        GgmlType::F16 => x.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect(),
        GgmlType::BF16 => x.iter().flat_map(|&v| half::bf16::from_f32(v).to_le_bytes()).collect(),
        GgmlType::Q8_0 => x.chunks_exact(32).flat_map(q8_0).collect(),
        GgmlType::Q4_0 => x.chunks_exact(32).flat_map(q4_0).collect(),
        GgmlType::Q4_1 => x.chunks_exact(32).flat_map(q4_1).collect(),
        GgmlType::Q5_0 => x.chunks_exact(32).flat_map(q5_0).collect(),
        GgmlType::Q5_1 => x.chunks_exact(32).flat_map(q5_1).collect(),
        GgmlType::Q4K => x.chunks_exact(QK_K).flat_map(quantize_k::q4_k).collect(),
        GgmlType::Q5K => x.chunks_exact(QK_K).flat_map(quantize_k::q5_k).collect(),
        GgmlType::Q6K => x.chunks_exact(QK_K).flat_map(quantize_k::q6_k).collect(),
        _ => return None,
    })
}

/// The types [`encode`] handles.
pub(crate) const ENCODABLE: [GgmlType; 11] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
];

fn inverse(d: f32) -> f32 {
    if d == 0.0 { 0.0 } else { 1.0 / d }
}

/// d = max|x| / 127, q = round(x / d).
fn q8_0(x: &[f32]) -> Vec<u8> {
    let amax = x.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = inverse(d);
    let mut out = f16::from_f32(d).to_le_bytes().to_vec();
    out.extend(x.iter().map(|&v| (v * id).round() as i8 as u8));
    out
}

/// d = (the value of largest magnitude) / -8; q = min(15, trunc(x / d + 8.5)); weights 0..15 in
/// the low nibbles, 16..31 in the high ones.
fn q4_0(x: &[f32]) -> Vec<u8> {
    let max = x.iter().fold(0.0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
    let d = max / -8.0;
    let id = inverse(d);
    let q = |v: f32| ((v * id + 8.5) as i8).min(15) as u8;
    let mut out = f16::from_f32(d).to_le_bytes().to_vec();
    out.extend((0..16).map(|j| q(x[j]) | (q(x[j + 16]) << 4)));
    out
}

/// d = (max − min) / 15, m = min; q = min(15, trunc((x − min) / d + 0.5)).
fn q4_1(x: &[f32]) -> Vec<u8> {
    let min = x.iter().copied().fold(f32::INFINITY, f32::min);
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let d = (max - min) / 15.0;
    let id = inverse(d);
    let q = |v: f32| (((v - min) * id + 0.5) as i8).min(15) as u8;
    let mut out = f16::from_f32(d).to_le_bytes().to_vec();
    out.extend(f16::from_f32(min).to_le_bytes());
    out.extend((0..16).map(|j| q(x[j]) | (q(x[j + 16]) << 4)));
    out
}

/// d = (the value of largest magnitude) / -16; q = min(31, trunc(x / d + 16.5)); the low four
/// bits as Q4_0 packs them, each weight's fifth bit in bit j of a little-endian u32 (weights
/// 0..15 in bits 0..15, 16..31 in bits 16..31).
fn q5_0(x: &[f32]) -> Vec<u8> {
    let max = x.iter().fold(0.0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
    let d = max / -16.0;
    let id = inverse(d);
    let levels: [u8; 32] = std::array::from_fn(|j| ((x[j] * id + 16.5) as i8).min(31) as u8);
    let mut out = f16::from_f32(d).to_le_bytes().to_vec();
    out.extend(fifth_bits(&levels).to_le_bytes());
    out.extend((0..16).map(|j| (levels[j] & 0x0f) | ((levels[j + 16] & 0x0f) << 4)));
    out
}

/// d = (max − min) / 31, m = min; q = trunc((x − min) / d + 0.5); packed as Q5_0.
fn q5_1(x: &[f32]) -> Vec<u8> {
    let min = x.iter().copied().fold(f32::INFINITY, f32::min);
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let d = (max - min) / 31.0;
    let id = inverse(d);
    let levels: [u8; 32] = std::array::from_fn(|j| (((x[j] - min) * id + 0.5) as u8).min(31));
    let mut out = f16::from_f32(d).to_le_bytes().to_vec();
    out.extend(f16::from_f32(min).to_le_bytes());
    out.extend(fifth_bits(&levels).to_le_bytes());
    out.extend((0..16).map(|j| (levels[j] & 0x0f) | ((levels[j + 16] & 0x0f) << 4)));
    out
}

fn fifth_bits(levels: &[u8; 32]) -> u32 {
    levels.iter().enumerate().fold(0, |qh, (j, &l)| qh | (u32::from(l >> 4) << j))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::dequantize;

    fn block(seed: u32) -> Vec<f32> {
        (0..64).map(|i| ((i as f32 + seed as f32) * 0.37).sin() * (1.0 + i as f32 / 10.0)).collect()
    }

    /// Encoding then the loader's decoding stays within half a quantization step per weight.
    #[test]
    fn round_trips_through_the_loaders_decoder_within_half_a_step() {
        for ty in [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1] {
            let x = block(3);
            let bytes = encode(ty, &x).unwrap();
            assert_eq!(bytes.len(), 2 * ty.block().1, "{ty:?}");
            let y = dequantize(ty, &bytes, x.len());
            for (b, (xs, ys)) in x.chunks(32).zip(y.chunks(32)).enumerate() {
                let lo = xs.iter().copied().fold(f32::INFINITY, f32::min);
                let hi = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let amax = lo.abs().max(hi.abs());
                let step = match ty {
                    GgmlType::Q8_0 => amax / 127.0,
                    GgmlType::Q4_0 => amax / 8.0,
                    GgmlType::Q5_0 => amax / 16.0,
                    GgmlType::Q5_1 => (hi - lo) / 31.0,
                    _ => (hi - lo) / 15.0,
                };
                for (a, b2) in xs.iter().zip(ys) {
                    // Half a step, plus f16 rounding of the scale and the clamp of the top level
                    // of the symmetric types.
                    let symmetric = matches!(ty, GgmlType::Q4_0 | GgmlType::Q5_0);
                    let bound = if symmetric { step } else { 0.51 * step + 1e-3 * amax };
                    assert!((a - b2).abs() <= bound, "{ty:?} block {b}: {a} → {b2}");
                }
            }
        }
    }

    #[test]
    fn floats_encode_exactly_where_the_type_can_hold_them() {
        let x = vec![1.0, -2.5, 0.125, 1024.0];
        assert_eq!(dequantize(GgmlType::F32, &encode(GgmlType::F32, &x).unwrap(), 4), x);
        assert_eq!(dequantize(GgmlType::F16, &encode(GgmlType::F16, &x).unwrap(), 4), x);
        assert!(encode(GgmlType::Q3K, &[0.0; 256]).is_none());
    }
}
