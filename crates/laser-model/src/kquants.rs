//! llama.cpp's "k-quant" block formats (`ggml-common.h`, `dequantize_row_q*_K` in
//! `ggml-quants.c`): super-blocks of 256 weights split into sub-blocks with their own quantized
//! scales (and minimums), which most published GGUF files use (`Q4_K_M`, `Q5_K_M`, `Q6_K`, ...).
//! Each function appends one super-block's 256 weights to `out`.

use crate::floats::f16_at as half;

/// Weights per super-block.
pub(crate) const QK_K: usize = 256;

/// The `j`-th (scale, min) pair of the 12-byte, 6-bit packed table of Q4_K and Q5_K: pairs 0–3
/// keep their low 6 bits in bytes 0–7; pairs 4–7 are split between the low/high nibbles of bytes
/// 8–11 and the top 2 bits of bytes 0–7.
pub(crate) fn scale_min_k4(j: usize, q: &[u8]) -> (f32, f32) {
    let (d, m) = if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    };
    (f32::from(d), f32::from(m))
}

/// Q2_K (84 bytes): `scales[16]` (low nibble scale, high nibble min, per 16 weights), `qs[64]`
/// (2-bit weights), `d`, `dmin`.
pub(crate) fn q2_k(block: &[u8], out: &mut Vec<f32>) {
    let (scales, qs) = (&block[0..16], &block[16..80]);
    let (d, dmin) = (half(&block[80..82]), half(&block[82..84]));
    let mut is = 0;
    for half_block in qs.chunks_exact(32) {
        for shift in [0, 2, 4, 6] {
            for part in half_block.chunks_exact(16) {
                let sc = scales[is];
                is += 1;
                let (dl, ml) = (d * f32::from(sc & 0x0f), dmin * f32::from(sc >> 4));
                out.extend(part.iter().map(|&q| dl * f32::from((q >> shift) & 3) - ml));
            }
        }
    }
}

/// Q3_K (110 bytes): `hmask[32]` (the third bit), `qs[64]` (low 2 bits), `scales[12]` (16 6-bit
/// scales, offset by 32), `d`.
pub(crate) fn q3_k(block: &[u8], out: &mut Vec<f32>) {
    let (hmask, qs, packed) = (&block[0..32], &block[32..96], &block[96..108]);
    let d = half(&block[108..110]);
    // Unpack 16 6-bit scales: low 4 bits from bytes 0–7 (nibbles), high 2 bits from bytes 8–11.
    let scales: Vec<f32> = (0..16)
        .map(|i| {
            let low = if i < 8 { packed[i] & 0x0f } else { packed[i - 8] >> 4 };
            let high = (packed[8 + i % 4] >> (2 * (i / 4))) & 3;
            f32::from(i16::from(low | (high << 4)) as i8) - 32.0
        })
        .collect();
    let mut is = 0;
    let mut bit = 0;
    for half_block in qs.chunks_exact(32) {
        for shift in [0, 2, 4, 6] {
            for (p, part) in half_block.chunks_exact(16).enumerate() {
                let dl = d * scales[is];
                is += 1;
                let hm = &hmask[16 * p..16 * p + 16];
                out.extend(part.iter().zip(hm).map(|(&q, &h)| {
                    let low = i16::from((q >> shift) & 3);
                    let sub = if h & (1 << bit) != 0 { 0 } else { 4 };
                    dl * f32::from(low - sub)
                }));
            }
            bit += 1;
        }
    }
}

/// Q4_K (144 bytes): `d`, `dmin`, `scales[12]` (8 packed 6-bit scale/min pairs, one per 32
/// weights), `qs[128]` (4-bit weights: the low nibbles of 32 bytes, then their high nibbles).
pub(crate) fn q4_k(block: &[u8], out: &mut Vec<f32>) {
    let (d, dmin) = (half(&block[0..2]), half(&block[2..4]));
    let (scales, qs) = (&block[4..16], &block[16..144]);
    for (j, chunk) in qs.chunks_exact(32).enumerate() {
        let (s1, m1) = scale_min_k4(2 * j, scales);
        let (s2, m2) = scale_min_k4(2 * j + 1, scales);
        out.extend(chunk.iter().map(|&q| d * s1 * f32::from(q & 0x0f) - dmin * m1));
        out.extend(chunk.iter().map(|&q| d * s2 * f32::from(q >> 4) - dmin * m2));
    }
}

/// Q5_K (176 bytes): as Q4_K with `qh[32]` holding each weight's fifth bit, before `qs[128]`.
pub(crate) fn q5_k(block: &[u8], out: &mut Vec<f32>) {
    let (d, dmin) = (half(&block[0..2]), half(&block[2..4]));
    let (scales, qh, qs) = (&block[4..16], &block[16..48], &block[48..176]);
    for (j, chunk) in qs.chunks_exact(32).enumerate() {
        let (s1, m1) = scale_min_k4(2 * j, scales);
        let (s2, m2) = scale_min_k4(2 * j + 1, scales);
        let (u1, u2) = (1u8 << (2 * j), 1u8 << (2 * j + 1));
        let high = |h: u8, u: u8| if h & u != 0 { 16.0 } else { 0.0 };
        out.extend(
            chunk
                .iter()
                .zip(qh)
                .map(|(&q, &h)| d * s1 * (f32::from(q & 0x0f) + high(h, u1)) - dmin * m1),
        );
        out.extend(
            chunk
                .iter()
                .zip(qh)
                .map(|(&q, &h)| d * s2 * (f32::from(q >> 4) + high(h, u2)) - dmin * m2),
        );
    }
}

/// Q6_K (210 bytes): `ql[128]` (low 4 bits), `qh[64]` (high 2 bits), `scales[16]` (int8, one per
/// 16 weights), `d`; weights are offset by 32.
pub(crate) fn q6_k(block: &[u8], out: &mut Vec<f32>) {
    let (ql, qh, scales) = (&block[0..128], &block[128..192], &block[192..208]);
    let d = half(&block[208..210]);
    let start = out.len();
    out.resize(start + QK_K, 0.0);
    let y = &mut out[start..];
    for n in 0..2 {
        let (ql, qh, sc) = (&ql[64 * n..], &qh[32 * n..], &scales[8 * n..]);
        let y = &mut y[128 * n..128 * n + 128];
        for l in 0..32 {
            let is = l / 16;
            let q =
                |low: u8, shift: u32| f32::from(((low | (((qh[l] >> shift) & 3) << 4)) as i8) - 32);
            let scale = |k: usize| d * f32::from(sc[is + k] as i8);
            y[l] = scale(0) * q(ql[l] & 0x0f, 0);
            y[l + 32] = scale(2) * q(ql[l + 32] & 0x0f, 2);
            y[l + 64] = scale(4) * q(ql[l] >> 4, 4);
            y[l + 96] = scale(6) * q(ql[l + 32] >> 4, 6);
        }
    }
}

/// Q8_K (292 bytes): `d` as f32, `qs[256]` (int8), then 16 block sums used only by dot products.
pub(crate) fn q8_k(block: &[u8], out: &mut Vec<f32>) {
    let d = f32::from_le_bytes([block[0], block[1], block[2], block[3]]);
    out.extend(block[4..260].iter().map(|&q| d * f32::from(q as i8)));
}
