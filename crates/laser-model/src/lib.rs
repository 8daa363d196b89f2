//! The transformer engine of laser-rs, on [burn] 0.22 (flex CPU backend by default; ndarray and
//! wgpu behind cargo features): HF safetensors and GGUF loading, the architecture families below,
//! batched forward passes, the gradient pass that feeds LASER's σ-gradients, matrix addressing by
//! HF tensor name (read / replace / restore), and export of an adapted model as an HF folder.
//!
//! ```no_run
//! use laser_model::{Backend, Model, TokenTarget};
//!
//! let model = Model::load("model-dir", Backend::Flex.device()?)?;
//! let tok = model.tokenizer().expect("tokenizer.json");
//! let ids = tok.encode("The capital of France is")?;
//! let prep = model.prepare(&[ids.clone()])?;
//! let lp = model.log_probs_at(&prep, None, &[(0, ids.len() - 1)])?; // next-token log-probs
//! # Ok::<(), laser_model::ModelError>(())
//! ```
//!
//! Families, one file each in `src/families/` and one line each in its registry ([`families`]):
//! llama (whose file also serves the llama-layout families mistral, qwen2, qwen3 and Llama 3's
//! RoPE scaling), phi3, gemma2, gemma3, gpt2, gptj, gpt_neox, roberta.

#[cfg(target_endian = "big")]
compile_error!(
    "laser-model reads little-endian tensor files in place; big-endian targets are unsupported"
);

pub mod allocator;
mod arch;
mod autodiff_ops;
mod config;
mod error;
mod export;
mod factorized;
mod families;
mod floats;
pub mod gguf;
mod host_kernels;
mod kquants;
mod layers;
mod matrix;
mod model;
mod taps;
mod tokenizer;
mod weight_path;
mod weights;

/// The device a model's tensors live on (burn's), re-exported so that a library user needs no
/// burn import: `Backend::Flex.device()?` gives one.
pub use arch::ScoreScales;
pub use burn::tensor::Device;
pub use config::{Activation, Family, Llama3RopeScaling, LocalAttention, ModelConfig};
pub use error::{ModelError, Result};
pub use export::{HfDtype, HfParts, export_hf, export_hf_as, export_hf_parts};
pub use factorized::{
    FACTORIZED_FILE, FactorCluster, FactorizedLayout, FactorizedMatrix, densify_factors,
};
pub use families::gguf::{GgufModel, gguf_architectures};
pub use families::{RegisteredFamily, families};
pub use gguf::{GgufExport, GgufTensorType, WrittenTensor, check_gguf_export, export_gguf};
pub use matrix::{MatrixInfo, MatrixKind};
pub use model::{
    Backend, GradientPass, HiddenStates, Model, Pass, PrefixKeysValues, PreparedBatch, PromptState,
    RowShape, TokenTarget, WeightDtype, WeightStamp, mib,
};
pub use tokenizer::{PieceKind, Tokenizer};
pub use weights::{
    HostTensor, StoredFloat, WeightMap, load_safetensors_dir, load_safetensors_file,
    parse_safetensors, save_safetensors, save_safetensors_as,
};
