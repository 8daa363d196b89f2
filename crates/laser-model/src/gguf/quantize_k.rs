//! k-quant encoders for `--gguf-type same`: llama.cpp's reference quantizers
//! (`quantize_row_q4_K_ref`, `_q5_K_ref`, `_q6_K_ref` in ggml-quants.c — what `llama-quantize`
//! runs when no importance matrix is given), so an edited tensor of a `Q4_K_M` file goes back in
//! its own type. Each function encodes one super-block of [`QK_K`] weights; the arithmetic keeps
//! the reference's order of operations so the choices (levels, scales) are the reference's.

use half::f16;

use crate::kquants::{QK_K, scale_min_k4};

/// Below this, a group counts as all zeros (ggml's `GROUP_MAX_EPS`).
const GROUP_MAX_EPS: f32 = 1e-15;

/// Round to nearest, ties to even: what ggml's `nearest_int` (adding 1.5·2²³) computes.
fn nearest_int(v: f32) -> i32 {
    v.round_ties_even() as i32
}

/// `v` as the f16 a block stores, and that f16's value back.
fn stored(v: f32) -> (f16, f32) {
    let h = f16::from_f32(v);
    (h, h.to_f32())
}

/// ggml's `make_qkx2_quants`: levels `0..=nmax` for `x` under an affine map `scale·l − min`,
/// chosen by a weighted least-squares search over `nstep + 1` trial scales. Writes the levels
/// into `levels` and returns `(scale, min)` (the minimum as a non-negative offset).
fn affine_levels(
    x: &[f32],
    weights: &[f32],
    nmax: i32,
    levels: &mut [u8],
    (rmin, rdelta, nstep): (f32, f32, i32),
) -> (f32, f32) {
    let n = x.len();
    let (mut min, mut max) = (x[0], x[0]);
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        sum_w += weights[i];
        sum_x += weights[i] * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        levels.fill(0);
        return (0.0, -min);
    }
    let level = |iscale: f32, v: f32, min: f32| nearest_int(iscale * (v - min)).clamp(0, nmax);
    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for i in 0..n {
        let l = level(iscale, x[i], min);
        levels[i] = l as u8;
        let diff = scale * l as f32 + min - x[i];
        best_error += weights[i] * (diff * diff);
    }
    let mut trial = [0u8; 32];
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for i in 0..n {
            let l = level(iscale, x[i], min);
            trial[i] = l as u8;
            let (w, l) = (weights[i], l as f32);
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        let det = sum_w * sum_l2 - sum_l * sum_l;
        if det > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut error = 0.0f32;
            for i in 0..n {
                let diff = this_scale * f32::from(trial[i]) + this_min - x[i];
                error += weights[i] * (diff * diff);
            }
            if error < best_error {
                levels[..n].copy_from_slice(&trial[..n]);
                best_error = error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// ggml's `make_qx_quants` with `rmse_type = 1` and no importance weights: signed levels
/// `−nmax..nmax` (stored offset by `nmax`) for `x` under `scale·l`, the scale refined over 18
/// trial grids by `x²`-weighted least squares. Returns the scale.
fn symmetric_levels(x: &[f32], nmax: i32, levels: &mut [u8]) -> f32 {
    let (mut max, mut amax) = (0.0f32, 0.0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        levels.fill(0);
        return 0.0;
    }
    let level = |iscale: f32, v: f32| nearest_int(iscale * v).clamp(-nmax, nmax - 1);
    let sums = |iscale: f32| {
        x.iter().fold((0.0f32, 0.0f32), |(lx, l2), &v| {
            let (l, w) = (level(iscale, v) as f32, v * v);
            (lx + w * v * l, l2 + w * l * l)
        })
    };
    let set = |iscale: f32, levels: &mut [u8]| {
        for (out, &v) in levels.iter_mut().zip(x) {
            *out = (nmax + level(iscale, v)) as u8;
        }
    };
    let iscale = -(nmax as f32) / max;
    set(iscale, levels);
    let (sumlx, suml2) = sums(iscale);
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in (-9..=9).filter(|&is| is != 0) {
        let iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        let (sumlx, suml2) = sums(iscale);
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            set(iscale, levels);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// The 12-byte table of Q4_K/Q5_K: eight 6-bit (scale, min) pairs, pairs 4–7 split between the
/// nibbles of bytes 8–11 and the top two bits of bytes 0–7.
fn pack_scales(ls: &[u8; 8], lm: &[u8; 8]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for j in 0..8 {
        if j < 4 {
            s[j] = ls[j];
            s[j + 4] = lm[j];
        } else {
            s[j + 4] = (ls[j] & 0x0f) | ((lm[j] & 0x0f) << 4);
            s[j - 4] |= (ls[j] >> 4) << 6;
            s[j] |= (lm[j] >> 4) << 6;
        }
    }
    s
}

/// The shared part of Q4_K and Q5_K: per 32 weights an affine fit with levels `0..=nmax`, the
/// eight scales and minimums quantized to 6 bits against two f16 super-scales, then every weight
/// re-leveled against the stored scales. Returns `(d, dmin, scales table, levels)`.
fn affine_super_block(
    x: &[f32],
    nmax: i32,
    search: (f32, f32, i32),
) -> (f16, f16, [u8; 12], [u8; QK_K]) {
    let mut levels = [0u8; QK_K];
    let (mut scales, mut mins) = ([0.0f32; 8], [0.0f32; 8]);
    let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
    for j in 0..8 {
        let sub = &x[32 * j..32 * j + 32];
        let sum_x2: f32 = sub.iter().fold(0.0, |s, v| s + v * v);
        let av_x = (sum_x2 / 32.0).sqrt();
        let weights: [f32; 32] = std::array::from_fn(|l| av_x + sub[l].abs());
        let (scale, min) =
            affine_levels(sub, &weights, nmax, &mut levels[32 * j..32 * j + 32], search);
        (scales[j], mins[j]) = (scale, min);
        if scale > max_scale {
            max_scale = scale;
        }
        if min > max_min {
            max_min = min;
        }
    }
    let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let six_bits = |v: f32| (nearest_int(v) as u8).min(63);
    let ls: [u8; 8] = std::array::from_fn(|j| six_bits(inv_scale * scales[j]));
    let lm: [u8; 8] = std::array::from_fn(|j| six_bits(inv_min * mins[j]));
    let table = pack_scales(&ls, &lm);
    let (d, d_value) = stored(max_scale / 63.0);
    let (dmin, dmin_value) = stored(max_min / 63.0);
    for j in 0..8 {
        let (sc, m) = scale_min_k4(j, &table);
        let d = d_value * sc;
        if d == 0.0 {
            continue;
        }
        let dm = dmin_value * m;
        for i in 32 * j..32 * j + 32 {
            levels[i] = nearest_int((x[i] + dm) / d).clamp(0, nmax) as u8;
        }
    }
    (d, dmin, table, levels)
}

/// Q4_K (144 bytes): `d`, `dmin`, the scale table, `qs[128]` — per 64 weights, the first 32 in
/// the low nibbles and the next 32 in the high ones.
pub(crate) fn q4_k(x: &[f32]) -> Vec<u8> {
    let (d, dmin, table, levels) = affine_super_block(x, 15, (-1.0, 0.1, 20));
    let mut out = Vec::with_capacity(144);
    out.extend(d.to_le_bytes());
    out.extend(dmin.to_le_bytes());
    out.extend(table);
    for chunk in levels.chunks_exact(64) {
        out.extend((0..32).map(|l| chunk[l] | (chunk[l + 32] << 4)));
    }
    out
}

/// Q5_K (176 bytes): as Q4_K with `qh[32]` before `qs[128]`; weight `l` of the `n`-th 64 keeps
/// its fifth bit in bit `2n` (first 32) or `2n + 1` (next 32) of `qh[l]`.
pub(crate) fn q5_k(x: &[f32]) -> Vec<u8> {
    let (d, dmin, table, levels) = affine_super_block(x, 31, (-0.5, 0.1, 15));
    let (mut qh, mut qs) = ([0u8; 32], [0u8; 128]);
    for (n, chunk) in levels.chunks_exact(64).enumerate() {
        for j in 0..32 {
            let (l1, l2) = (chunk[j], chunk[j + 32]);
            qh[j] |= ((l1 >> 4) << (2 * n)) | ((l2 >> 4) << (2 * n + 1));
            qs[32 * n + j] = (l1 & 0x0f) | ((l2 & 0x0f) << 4);
        }
    }
    let mut out = Vec::with_capacity(176);
    out.extend(d.to_le_bytes());
    out.extend(dmin.to_le_bytes());
    out.extend(table);
    out.extend(qh);
    out.extend(qs);
    out
}

/// Q6_K (210 bytes): `ql[128]` (low 4 bits), `qh[64]` (high 2 bits), sixteen int8 scales (one per
/// 16 weights) against one f16 `d` stored last; levels are offset by 32.
pub(crate) fn q6_k(x: &[f32]) -> Vec<u8> {
    let mut levels = [0u8; QK_K];
    let mut scales = [0.0f32; 16];
    let (mut max_scale, mut max_abs_scale) = (0.0f32, 0.0f32);
    for ib in 0..16 {
        let scale = symmetric_levels(&x[16 * ib..16 * ib + 16], 32, &mut levels[16 * ib..][..16]);
        scales[ib] = scale;
        if scale.abs() > max_abs_scale {
            max_abs_scale = scale.abs();
            max_scale = scale;
        }
    }
    if max_abs_scale < GROUP_MAX_EPS {
        return vec![0; 210];
    }
    let iscale = -128.0 / max_scale;
    let (d, d_value) = stored(1.0 / iscale);
    let int_scales: [i8; 16] =
        std::array::from_fn(|ib| nearest_int(iscale * scales[ib]).min(127) as i8);
    for (j, &scale) in int_scales.iter().enumerate() {
        let d = d_value * f32::from(scale);
        if d == 0.0 {
            continue;
        }
        for i in 16 * j..16 * j + 16 {
            levels[i] = (nearest_int(x[i] / d).clamp(-32, 31) + 32) as u8;
        }
    }
    let (mut ql, mut qh) = ([0u8; 128], [0u8; 64]);
    for (half, chunk) in levels.chunks_exact(128).enumerate() {
        let (ql, qh) = (&mut ql[64 * half..64 * half + 64], &mut qh[32 * half..32 * half + 32]);
        for l in 0..32 {
            let q = |k: usize| chunk[l + 32 * k];
            ql[l] = (q(0) & 0x0f) | ((q(2) & 0x0f) << 4);
            ql[l + 32] = (q(1) & 0x0f) | ((q(3) & 0x0f) << 4);
            qh[l] = (q(0) >> 4) | ((q(1) >> 4) << 2) | ((q(2) >> 4) << 4) | ((q(3) >> 4) << 6);
        }
    }
    let mut out = Vec::with_capacity(210);
    out.extend(ql);
    out.extend(qh);
    out.extend(int_scales.map(|s| s as u8));
    out.extend(d.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::{GgmlType, dequantize};

    /// Deterministic, roughly Gaussian weights (sum of four uniforms), with the shapes real
    /// blocks have: a scale that varies across sub-blocks, an outlier, an all-positive
    /// sub-block and an all-zero one.
    fn weights(blocks: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut uniform = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let mut x: Vec<f32> = (0..blocks * QK_K)
            .map(|i| {
                let g = uniform() + uniform() + uniform() + uniform();
                g * 0.02 * (1.0 + (i / 32 % 5) as f32)
            })
            .collect();
        x[7] = 0.9;
        x[40..72].iter_mut().for_each(|v| *v = v.abs() + 0.01);
        x[QK_K + 96..QK_K + 128].fill(0.0);
        x
    }

    fn relative_error(x: &[f32], y: &[f32]) -> f64 {
        let num: f64 = x.iter().zip(y).map(|(a, b)| f64::from(a - b).powi(2)).sum();
        let den: f64 = x.iter().map(|a| f64::from(*a).powi(2)).sum();
        (num / den).sqrt()
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/kquants/");
        std::fs::read(format!("{path}{name}")).unwrap()
    }

    type Encoder = fn(&[f32]) -> Vec<u8>;

    fn encoders() -> [(GgmlType, Encoder, &'static str); 3] {
        [
            (GgmlType::Q4K, q4_k, "q4_k.bin"),
            (GgmlType::Q5K, q5_k, "q5_k.bin"),
            (GgmlType::Q6K, q6_k, "q6_k.bin"),
        ]
    }

    /// The bytes llama.cpp's own reference encoders write for the same 12 super-blocks
    /// (`scripts/kquant-reference.sh` compiles them from a llama.cpp checkout): every level,
    /// scale and minimum the search chooses is the reference's.
    #[test]
    fn encodes_exactly_as_llama_cpp_reference_quantizers() {
        let x: Vec<f32> = fixture("input.f32")
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(x, (0..3).flat_map(|seed| weights(4, seed)).collect::<Vec<_>>());
        for (ty, encode, reference) in encoders() {
            let ours: Vec<u8> = x.chunks_exact(QK_K).flat_map(encode).collect();
            let theirs = fixture(reference);
            assert_eq!(ours.len(), theirs.len(), "{ty:?}");
            let first = ours.iter().zip(&theirs).position(|(a, b)| a != b);
            assert_eq!(first, None, "{ty:?}: first differing byte");
        }
    }

    /// Through the loader's decoder, the error is what each format's bit width allows (each bit
    /// about halves it), and re-encoding decoded weights (already on a grid) adds far less.
    #[test]
    fn decode_within_each_widths_error_and_re_encode_closer_still() {
        let x = weights(8, 11);
        for ((ty, encode, _), bound) in encoders().into_iter().zip([0.08, 0.045, 0.025]) {
            let once =
                dequantize(ty, &x.chunks_exact(QK_K).flat_map(encode).collect::<Vec<_>>(), x.len());
            let error = relative_error(&x, &once);
            assert!(error > 0.0 && error < bound, "{ty:?}: {error}");
            let twice = dequantize(
                ty,
                &once.chunks_exact(QK_K).flat_map(encode).collect::<Vec<_>>(),
                x.len(),
            );
            let again = relative_error(&once, &twice);
            assert!(again < error / 3.0, "{ty:?}: {again} after {error}");
        }
    }

    #[test]
    fn zeros_encode_to_zeros() {
        for (ty, encode, _) in encoders() {
            let bytes = encode(&[0.0; QK_K]);
            assert_eq!(bytes.len(), ty.block().1, "{ty:?}");
            assert!(dequantize(ty, &bytes, QK_K).iter().all(|&v| v == 0.0), "{ty:?}");
        }
    }
}
