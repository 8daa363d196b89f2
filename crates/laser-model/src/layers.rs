//! Building blocks shared by the architectures, on burn tensors: parameter lookup, linear maps in
//! HF orientation, RMSNorm / LayerNorm, activations, rotary embeddings and masked attention.

use std::collections::HashMap;
use std::sync::Arc;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Device, FloatDType, Int, Tensor, TensorData, activation};
use faer::{MatMut, MatRef};

use crate::autodiff_ops::{self, TapTarget};
use crate::config::{Activation, Llama3RopeScaling};
use crate::host_kernels;
use crate::taps::WeightTaps;

/// A 2-D parameter readable on the host as a row-major slice, shared by reference.
#[derive(Debug, Clone)]
pub(crate) struct HostMatrix {
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    data: HostData,
}

/// Where a host matrix's numbers live.
#[derive(Debug, Clone)]
enum HostData {
    /// In the flex backend's own buffer of the device tensor (f32 or bf16), read in place: the
    /// weight is held once (issue 15: no second copy where the backend's buffer can be read).
    Flex(FlexTensor),
    /// In an f32 copy (backends whose buffers cannot be read in place).
    Owned(Arc<Vec<f32>>),
}

impl HostMatrix {
    /// A host view of `tensor` (`[rows, cols]`): its own buffer on the flex backend, an f32 copy
    /// on any other.
    pub(crate) fn of(tensor: &Tensor<2>) -> crate::error::Result<Self> {
        let [rows, cols] = tensor.dims();
        if let Ok(flex) = tensor.clone().try_into_primitive::<Flex>()
            && readable_in_place(&flex, rows * cols)
        {
            return Ok(Self { rows, cols, data: HostData::Flex(flex) });
        }
        let data = tensor
            .to_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| crate::error::ModelError::Backend(format!("{e:?}")))?;
        Ok(Self { rows, cols, data: HostData::Owned(Arc::new(data)) })
    }

    /// Calls `f` with the row-major numbers as f32: in place for f32, widened into a temporary
    /// for bf16 (one matrix at a time).
    pub(crate) fn with_f32<R>(&self, f: impl FnOnce(&[f32]) -> R) -> R {
        let n = self.rows * self.cols;
        match &self.data {
            HostData::Flex(t) if t.dtype() == DType::BF16 => {
                let wide: Vec<f32> =
                    t.storage::<half::bf16>()[..n].iter().map(|x| x.to_f32()).collect();
                f(&wide)
            }
            HostData::Flex(t) => f(&t.storage::<f32>()[..n]),
            HostData::Owned(v) => f(v),
        }
    }

    /// Bytes held by this view beyond the device tensor's (0 when it reads that buffer).
    pub(crate) fn extra_bytes(&self) -> u64 {
        match &self.data {
            HostData::Flex(_) => 0,
            HostData::Owned(v) => v.len() as u64 * 4,
        }
    }
}

/// Whether a flex tensor's buffer holds `n` contiguous f32 or bf16 from its start.
fn readable_in_place(t: &FlexTensor, n: usize) -> bool {
    matches!(t.dtype(), DType::F32 | DType::BF16)
        && t.is_contiguous()
        && t.layout().start_offset() == 0
        && t.bytes().len() >= n * t.dtype().size()
}

/// Device tensors by HF name. 1-D parameters (norms, biases) are stored as `[1, n]`.
///
/// On CPU backends every matrix is also read on the host (in the flex backend's own buffer; a
/// copy on ndarray): faer's matmul runs several times faster than the gemm inside burn's CPU
/// backends (`cargo bench --bench forward -- matmul`), and the linear layers are most of the
/// work. The gradient pass reads the same views through a custom autodiff op
/// (`autodiff_ops/linear.rs`, flex only); its weight gradients go into [`WeightTaps`] as faer
/// products.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pub(crate) map: HashMap<String, Tensor<2>>,
    pub(crate) host: HashMap<String, HostMatrix>,
    /// Gradient pass only: weights whose `∂L/∂W` is taken through output probes.
    pub(crate) taps: Option<Arc<WeightTaps>>,
}

impl Params {
    /// The tensor `name`; the loader guarantees every name an architecture asks for exists.
    ///
    /// Always f32: a matrix stored as bf16 is widened here (computation stays f32).
    pub(crate) fn get(&self, name: &str) -> Tensor<2> {
        self.get_stored(name).cast(FloatDType::F32)
    }

    /// The tensor `name` in its storage type.
    pub(crate) fn get_stored(&self, name: &str) -> Tensor<2> {
        match self.map.get(name) {
            Some(t) => t.clone(),
            None => unreachable!("parameter `{name}` was validated at load time"),
        }
    }

    /// A `[1, n]` parameter as `[1, 1, n]`, ready to broadcast over `[B, T, n]`.
    pub(crate) fn vec3(&self, name: &str) -> Tensor<3> {
        self.get(name).unsqueeze_dim(0)
    }

    /// A `[1, n]` parameter as `[1, 1, 1, n]`, ready to broadcast over `[B, H, T, n]`.
    pub(crate) fn vec4(&self, name: &str) -> Tensor<4> {
        self.vec3(name).unsqueeze_dim(0)
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// `x Wᵀ` for the parameter `name` (`[out, in]`, HF `nn.Linear` orientation), `x: [N, in]`.
    pub(crate) fn matmul_t(&self, x: Tensor<2>, name: &str) -> Tensor<2> {
        self.linear_map(x, name, true)
    }

    /// `x W` for the parameter `name` stored `[in, out]` (GPT-2's `Conv1D`).
    fn matmul(&self, x: Tensor<2>, name: &str) -> Tensor<2> {
        self.linear_map(x, name, false)
    }

    /// `x Wᵀ` (`transposed`) or `x W`: on the host in faer where the weight has a host view —
    /// in the gradient pass as one autodiff op with a faer backward (`autodiff_ops/linear.rs`) —
    /// and burn's matmul otherwise. A tapped weight's gradient comes from that op, or, where the
    /// op does not apply, from an output probe (`taps.rs`).
    fn linear_map(&self, x: Tensor<2>, name: &str, transposed: bool) -> Tensor<2> {
        let host = self.host.get(name);
        let Some(taps) = &self.taps else {
            return match host {
                Some(w) => host_matmul(x, w, transposed),
                None => burn_matmul(x, self.get(name), transposed),
            };
        };
        let tapped = taps.covers(name);
        if let Some(w) = host {
            let tap = tapped.then_some(TapTarget { taps, name });
            if let Some(out) = autodiff_ops::linear(&x, w, transposed, tap) {
                return match (tapped, out.tracked) {
                    // An untracked input (the embeddings' output): only the weight side matters.
                    (true, false) => taps.tap(name, &x, out.y, transposed),
                    _ => out.y,
                };
            }
        }
        let y = burn_matmul(x.clone(), self.get(name), transposed);
        if tapped { taps.tap(name, &x, y, transposed) } else { y }
    }

    /// An HF `nn.Linear`: `x Wᵀ + b` over `[B, T, in]`.
    pub(crate) fn linear(&self, x: Tensor<3>, name: &str, b: Option<Tensor<3>>) -> Tensor<3> {
        let [bsz, t, d_in] = x.dims();
        let y = self.matmul_t(x.reshape([bsz * t, d_in]), name);
        let out = y.dims()[1];
        let y = y.reshape([bsz, t, out]);
        match b {
            Some(b) => y + b,
            None => y,
        }
    }

    /// A GPT-2 `Conv1D` (weight stored `[in, out]`): `x W + b`.
    pub(crate) fn conv1d(&self, x: Tensor<3>, name: &str, b: Tensor<3>) -> Tensor<3> {
        let [bsz, t, d_in] = x.dims();
        let y = self.matmul(x.reshape([bsz * t, d_in]), name);
        let out = y.dims()[1];
        y.reshape([bsz, t, out]) + b
    }
}

/// `x Wᵀ` (`transposed`) or `x W` with burn's matmul.
fn burn_matmul(x: Tensor<2>, w: Tensor<2>, transposed: bool) -> Tensor<2> {
    if transposed { x.matmul(w.transpose()) } else { x.matmul(w) }
}

/// `x W` (or `x Wᵀ`) with faer on the host; the result goes back to `x`'s device.
fn host_matmul(x: Tensor<2>, w: &HostMatrix, transpose: bool) -> Tensor<2> {
    let [m, k] = x.dims();
    let n = if transpose { w.rows } else { w.cols };
    // On flex, read `x` in its own buffer and hand the result over without copies (`into_data`
    // copies a shared tensor, and q/k/v or gate/up share their input).
    if let Ok(flex) = x.clone().try_into_primitive::<Flex>()
        && let Some(xs) = flex.as_slice::<f32>()
    {
        let out = host_product(xs, m, k, w, transpose);
        return Tensor::from_primitive::<Flex>(FlexTensor::from_data(TensorData::new(out, [m, n])));
    }
    let device = x.device();
    let data = x.into_data().convert::<f32>();
    let xs = data.as_slice::<f32>().expect("converted to f32");
    let out = host_product(xs, m, k, w, transpose);
    Tensor::from_data(TensorData::new(out, [m, n]), &device)
}

/// `lhs W` (or `lhs Wᵀ`) in faer for a row-major `lhs: [m, k]`; row-major `[m, n]` (in blocks
/// that bound faer's per-thread buffers: `host_kernels/product.rs`).
pub(crate) fn host_product(
    lhs: &[f32],
    m: usize,
    k: usize,
    w: &HostMatrix,
    transpose: bool,
) -> Vec<f32> {
    let n = if transpose { w.rows } else { w.cols };
    let lhs = MatRef::from_row_major_slice(lhs, m, k);
    let mut out = host_kernels::zeroed(m * n);
    w.with_f32(|ws| {
        let rhs = MatRef::from_row_major_slice(ws, w.rows, w.cols);
        let rhs = if transpose { rhs.transpose() } else { rhs };
        host_kernels::product_in_blocks(MatMut::from_row_major_slice_mut(&mut out, m, n), lhs, rhs);
    });
    out
}

/// RMSNorm (llama): `x / sqrt(mean(x²) + ε) · w`.
pub(crate) fn rms_norm(x: Tensor<3>, w: Tensor<3>, eps: f64) -> Tensor<3> {
    if let Some(out) =
        host_kernels::rms_norm(&x, &w, eps).or_else(|| autodiff_ops::rms_norm(&x, &w, eps))
    {
        return out;
    }
    let ms = x.clone().powi_scalar(2).mean_dim(2);
    x * (ms + eps).sqrt().recip() * w
}

/// RMSNorm over the last axis of `[B, H, T, hd]` with a `[hd]` weight given as `[1, 1, 1, hd]`
/// (Qwen3's per-head q / k norms).
pub(crate) fn rms_norm_heads(x: Tensor<4>, w: Tensor<4>, eps: f64) -> Tensor<4> {
    let ms = x.clone().powi_scalar(2).mean_dim(3);
    x * (ms + eps).sqrt().recip() * w
}

/// LayerNorm with biased variance, as PyTorch.
pub(crate) fn layer_norm(x: Tensor<3>, w: Tensor<3>, b: Tensor<3>, eps: f64) -> Tensor<3> {
    let mean = x.clone().mean_dim(2);
    let centred = x - mean;
    let var = centred.clone().powi_scalar(2).mean_dim(2);
    centred * (var + eps).sqrt().recip() * w + b
}

/// A gated MLP's inner activation `act(gate) · up`; SiLU and GELU-tanh in one fused pass where
/// they apply.
pub(crate) fn gated(gate: Tensor<3>, up: Tensor<3>, act: Activation) -> Tensor<3> {
    let fused = match act {
        Activation::Silu => {
            host_kernels::silu_mul(&gate, &up).or_else(|| autodiff_ops::silu_mul(&gate, &up))
        }
        Activation::GeluTanh => host_kernels::gelu_tanh_mul(&gate, &up)
            .or_else(|| autodiff_ops::gelu_tanh_mul(&gate, &up)),
        Activation::Gelu | Activation::Relu => None,
    };
    fused.unwrap_or_else(|| activate(gate, act) * up)
}

pub(crate) fn activate(x: Tensor<3>, act: Activation) -> Tensor<3> {
    match act {
        Activation::Silu => activation::silu(x),
        Activation::Gelu => gelu_erf(x),
        Activation::GeluTanh => gelu_tanh(x),
        Activation::Relu => activation::relu(x),
    }
}

/// GELU's tanh approximation, `½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`: burn's
/// `gelu_approximate` with `x³` as two products (GPT-2's plain MLP, and the gated MLP where the
/// fused kernels do not apply: other backends). burn forms it by `powf_scalar(3.0)`, an
/// elementwise libm `powf` call (and `powf` again in its backward), which took most of Gemma 3's
/// forward pass on the CPU (`host_kernels/gelu.rs`).
pub(crate) fn gelu_tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let cube = x.clone() * x.clone() * x.clone();
    let inner = (x.clone() + cube.mul_scalar(f64::from(host_kernels::GELU_TANH_CUBIC)))
        .mul_scalar(f64::from(host_kernels::SQRT_2_OVER_PI));
    (x * inner.tanh().add_scalar(1.0)).mul_scalar(0.5)
}

/// Exact GELU, `x·Φ(x) = ½·x·(1 + erf(x/√2))`, written with `erf` so that autodiff differentiates
/// it exactly on every backend. burn's fused `gelu` is exact forward, but its default
/// `gelu_backward` — the one the wgpu backend uses; flex overrides it — is the derivative of the
/// tanh approximation, which put gpt_neox's gradients 3–7·10⁻⁴ off the oracle on wgpu.
pub(crate) fn gelu_erf<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let cdf = x.clone().div_scalar(std::f64::consts::SQRT_2).erf().add_scalar(1.0).mul_scalar(0.5);
    x * cdf
}

/// How a rotary family pairs the dimensions it rotates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RotaryLayout {
    /// HF `rotate_half`: dimension j pairs with j + rot/2 (llama, gpt_neox).
    Half,
    /// GPT-J `rotate_every_two`: dimension 2i pairs with 2i + 1.
    Interleaved,
}

/// Precomputed rotary tables for positions `0..positions`: `cos`, `sin` as `[positions, rot]`,
/// and the signed permutation `R` (`[rot, rot]`) with `rotate(x) = x R`.
#[derive(Debug, Clone)]
pub(crate) struct Rotary {
    cos: Tensor<2>,
    sin: Tensor<2>,
    rotate: Tensor<2>,
    rot: usize,
    layout: RotaryLayout,
}

impl Rotary {
    pub(crate) fn new(
        rot: usize,
        theta: f64,
        scaling: Option<&Llama3RopeScaling>,
        linear_factor: Option<f64>,
        positions: usize,
        layout: RotaryLayout,
        device: &Device,
    ) -> Self {
        let half = rot / 2;
        let inv_freq: Vec<f64> = (0..half)
            .map(|i| 1.0 / theta.powf((2 * i) as f64 / rot as f64))
            .map(|f| scaling.map_or(f, |s| s.scale(f)))
            .map(|f| linear_factor.map_or(f, |s| f / s))
            .collect();
        let freq_of = |j: usize| match layout {
            RotaryLayout::Half => inv_freq[j % half],
            RotaryLayout::Interleaved => inv_freq[j / 2],
        };
        let mut cos = Vec::with_capacity(positions * rot);
        let mut sin = Vec::with_capacity(positions * rot);
        for p in 0..positions {
            for j in 0..rot {
                let angle = p as f64 * freq_of(j);
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        let mut r = vec![0.0f32; rot * rot];
        for j in 0..rot {
            // out[j] = Σ_i x[i] R[i, j]
            let (src, sign) = match layout {
                RotaryLayout::Half if j < half => (j + half, -1.0),
                RotaryLayout::Half => (j - half, 1.0),
                RotaryLayout::Interleaved if j % 2 == 0 => (j + 1, -1.0),
                RotaryLayout::Interleaved => (j - 1, 1.0),
            };
            r[src * rot + j] = sign;
        }
        Self {
            cos: Tensor::from_data(TensorData::new(cos, [positions, rot]), device),
            sin: Tensor::from_data(TensorData::new(sin, [positions, rot]), device),
            rotate: Tensor::from_data(TensorData::new(r, [rot, rot]), device),
            rot,
            layout,
        }
    }

    /// Rotates the first `rot` dimensions of `x: [B, H, T, hd]` at positions `offset..offset+T`
    /// (within the table).
    pub(crate) fn apply(&self, x: Tensor<4>, offset: usize) -> Tensor<4> {
        let t = x.dims()[2];
        if let Some(out) = self.host_rotate(&x, |_, ti| offset + ti) {
            return out;
        }
        let cos = self.cos.clone().narrow(0, offset, t).reshape([1, 1, t, self.rot]);
        let sin = self.sin.clone().narrow(0, offset, t).reshape([1, 1, t, self.rot]);
        self.rotate_with(x, cos, sin)
    }

    /// Rotates `x: [B, H, T, hd]` where token (b, t) sits at position `positions[b·T + t]`
    /// (`host`: the same positions on the host).
    pub(crate) fn apply_at(
        &self,
        x: Tensor<4>,
        positions: &Tensor<1, Int>,
        host: &[i64],
    ) -> Tensor<4> {
        let [b, _, t, _] = x.dims();
        if let Some(out) = self.host_rotate(&x, |bi, ti| host[bi * t + ti] as usize) {
            return out;
        }
        let cos = self.cos.clone().select(0, positions.clone()).reshape([b, 1, t, self.rot]);
        let sin = self.sin.clone().select(0, positions.clone()).reshape([b, 1, t, self.rot]);
        self.rotate_with(x, cos, sin)
    }

    /// The rotation on the host for a plain or autodiff flex `x` (`None` otherwise), token
    /// (b, t) at `position(b, t)` (within the table).
    fn host_rotate(
        &self,
        x: &Tensor<4>,
        position: impl Fn(usize, usize) -> usize + Sync,
    ) -> Option<Tensor<4>> {
        let h = x.dims()[1];
        let interleaved = self.layout == RotaryLayout::Interleaved;
        let tables = (&self.cos, &self.sin);
        host_kernels::rotary(x, self.rot, interleaved, tables, |row, ti| position(row / h, ti))
            .or_else(|| autodiff_ops::rotary(x, tables, self.rot, interleaved, &position))
    }

    fn rotate_with(&self, x: Tensor<4>, cos: Tensor<4>, sin: Tensor<4>) -> Tensor<4> {
        let [b, h, t, hd] = x.dims();
        let rotate = |xr: Tensor<4>| {
            let rotated = xr
                .clone()
                .reshape([b * h * t, self.rot])
                .matmul(self.rotate.clone())
                .reshape([b, h, t, self.rot]);
            xr * cos.clone() + rotated * sin.clone()
        };
        if self.rot == hd {
            rotate(x)
        } else {
            let pass = x.clone().narrow(3, self.rot, hd - self.rot);
            Tensor::cat(vec![rotate(x.narrow(3, 0, self.rot)), pass], 3)
        }
    }
}

/// `[B, T, H·hd]` → `[B, H, T, hd]`.
pub(crate) fn split_heads(x: Tensor<3>, heads: usize) -> Tensor<4> {
    let [b, t, d] = x.dims();
    x.reshape([b, t, heads, d / heads]).swap_dims(1, 2)
}

/// `[B, H, T, hd]` → `[B, T, H·hd]`.
pub(crate) fn merge_heads(x: Tensor<4>) -> Tensor<3> {
    let [b, h, t, hd] = x.dims();
    x.swap_dims(1, 2).reshape([b, t, h * hd])
}

/// Scaled dot-product attention of `Tq` queries over `Tk` keys with an additive mask
/// `[B, 1, Tq, Tk]`. Grouped-query attention without copying K/V: the `rep` query heads sharing a
/// KV head are stacked along the time axis.
/// With `softcap = Some(c)`, scores pass through `c · tanh(s / c)` before the mask (Gemma 2).
pub(crate) fn attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    mask: &Tensor<4>,
    scale: f64,
    softcap: Option<f64>,
) -> Tensor<4> {
    if let Some(out) = host_kernels::attention(&q, &k, &v, mask, scale, softcap)
        .or_else(|| autodiff_ops::attention(&q, &k, &v, mask, scale, softcap))
    {
        return out;
    }
    let [b, h, tq, hd] = q.dims();
    let [_, kv, tk, _] = k.dims();
    let rep = h / kv;
    let q = q.reshape([b, kv, rep * tq, hd]);
    let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale).reshape([b, h, tq, tk]);
    let scores = match softcap {
        Some(c) => soft_cap(scores, c),
        None => scores,
    };
    let probs = activation::softmax(scores + mask.clone(), 3).reshape([b, kv, rep * tq, tk]);
    probs.matmul(v).reshape([b, h, tq, hd])
}

/// `c · tanh(x / c)`: bounds `x` to (−c, c) smoothly (Gemma 2's logit soft-capping).
pub(crate) fn soft_cap<const D: usize>(x: Tensor<D>, c: f64) -> Tensor<D> {
    x.div_scalar(c).tanh().mul_scalar(c)
}

/// The additive mask value of a hidden key on `device`. On the CPU backends, negative infinity:
/// `expf` returns 0 for it on its fast path, while finite values below ≈ −104 go through libm's
/// underflow handler (2% of an evaluation's time in a profile). Every query row keeps at least one
/// visible key, so no softmax row is all −∞. GPU shading languages may assume that no infinities
/// occur (WGSL allows it), so other devices keep a large finite value.
fn masked_value(device: &Device) -> f32 {
    if crate::model::backend::is_cpu(device) { f32::NEG_INFINITY } else { -1e9 }
}

/// Which keys each query of packed rows (a prompt followed by several continuations) may not
/// see, `[B, T, prefix + T]` row-major, after `prefix` cached tokens every row shares: token i
/// sees the whole prefix, and token j ≤ i of its row when j is in the prompt (segment 0) or in
/// i's own continuation. Padding as in [`attention_mask_data`].
pub(crate) fn packed_attention_mask_data(
    segments: &[Vec<u16>],
    t: usize,
    prefix: usize,
) -> Vec<bool> {
    let tk = prefix + t;
    let mut hidden = vec![false; segments.len() * t * tk];
    for (bi, seg) in segments.iter().enumerate() {
        let len = seg.len();
        for i in 0..t {
            for j in 0..t {
                let visible =
                    j < len && (i >= len || (j <= i && (seg[j] == 0 || seg[j] == seg[i])));
                if !visible {
                    hidden[(bi * t + i) * tk + prefix + j] = true;
                }
            }
        }
    }
    hidden
}

/// Which keys each query at positions `offset..offset+Tq` may not see, `[B, Tq, offset + Tq]`
/// row-major. `lengths` are each sequence's total length (cached prefix included); keys past it
/// are hidden, and causal masks also hide later keys. Padded query rows see the real keys, so no
/// row is all-masked (their outputs are never read).
pub(crate) fn attention_mask_data(
    lengths: &[usize],
    tq: usize,
    offset: usize,
    causal: bool,
) -> Vec<bool> {
    let tk = offset + tq;
    let mut hidden = vec![false; lengths.len() * tq * tk];
    for (bi, &len) in lengths.iter().enumerate() {
        for i in 0..tq {
            let pos = offset + i;
            for j in 0..tk {
                let visible = j < len && (!causal || j <= pos || pos >= len);
                if !visible {
                    hidden[(bi * tq + i) * tk + j] = true;
                }
            }
        }
    }
    hidden
}

/// The additive attention mask `[B, 1, T, prefix + T]` of `hidden` (`[B, T, prefix + T]`): 0
/// where a query may see a key, [`masked_value`] elsewhere.
pub(crate) fn mask_tensor(
    hidden: Vec<bool>,
    b: usize,
    t: usize,
    prefix: usize,
    device: &Device,
) -> Tensor<4> {
    let masked = masked_value(device);
    let data: Vec<f32> = hidden.into_iter().map(|h| if h { masked } else { 0.0 }).collect();
    Tensor::from_data(TensorData::new(data, [b, 1, t, prefix + t]), device)
}

/// Token ids `[B·T]` as an Int tensor (for embedding lookups).
pub(crate) fn int_tensor(ids: Vec<i64>, device: &Device) -> Tensor<1, Int> {
    let n = ids.len();
    Tensor::from_data(TensorData::new(ids, [n]), device)
}

/// Embedding rows for flat ids, as `[B, T, D]`.
pub(crate) fn embed(table: Tensor<2>, ids: Tensor<1, Int>, b: usize, t: usize) -> Tensor<3> {
    let d = table.dims()[1];
    table.select(0, ids).reshape([b, t, d])
}
