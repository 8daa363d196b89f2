//! Little-endian float decoding shared by the safetensors, GGUF and k-quant readers: one place
//! that turns f32 / f16 / bf16 bytes into f32 weights.

use half::{bf16, f16};

/// The f16 at the start of `b` (at least 2 bytes), as f32.
pub(crate) fn f16_at(b: &[u8]) -> f32 {
    f16::from_le_bytes([b[0], b[1]]).to_f32()
}

/// A stored float width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FloatBytes {
    F32,
    F16,
    Bf16,
}

/// Appends the floats of `bytes` (whole values only; a trailing partial value is ignored, callers
/// check lengths first) to `out` as f32.
pub(crate) fn decode_into(kind: FloatBytes, bytes: &[u8], out: &mut Vec<f32>) {
    match kind {
        FloatBytes::F32 => {
            out.extend(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        }
        FloatBytes::F16 => out.extend(bytes.chunks_exact(2).map(f16_at)),
        FloatBytes::Bf16 => {
            out.extend(bytes.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()))
        }
    }
}

/// The floats of `bytes` as f32.
pub(crate) fn decode(kind: FloatBytes, bytes: &[u8]) -> Vec<f32> {
    let width = if kind == FloatBytes::F32 { 4 } else { 2 };
    let mut out = Vec::with_capacity(bytes.len() / width);
    decode_into(kind, bytes, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_width_decodes_exactly_representable_values() {
        let values = [0.0f32, -1.5, 65504.0, 2.0f32.powi(-14), f32::INFINITY];
        let f32_bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let f16_bytes: Vec<u8> =
            values.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect();
        let bf16_bytes: Vec<u8> =
            values.iter().flat_map(|&v| bf16::from_f32(v).to_le_bytes()).collect();
        assert_eq!(decode(FloatBytes::F32, &f32_bytes), values);
        assert_eq!(decode(FloatBytes::F16, &f16_bytes), values);
        // 65504 is not a bf16 value; the others are.
        let bf = decode(FloatBytes::Bf16, &bf16_bytes);
        assert_eq!([bf[0], bf[1], bf[3], bf[4]], [values[0], values[1], values[3], values[4]]);
        assert_eq!(bf[2], 65536.0);
        // bf16 is the top half of an f32.
        assert_eq!(decode(FloatBytes::Bf16, &[0x80, 0x3f]), [1.0]);
    }
}
