//! Building a [`Model`]: from an HF folder or a GGUF file, through the family registry, every
//! tensor the architecture names checked for presence, shape and finiteness before it is used.

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};

use super::{Model, WeightDtype, backend, editing};
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::layers::{HostMatrix, Params};
use crate::tokenizer::Tokenizer;
use crate::weights::{HostTensor, WeightMap};

impl Model {
    /// Loads an HF model folder (`config.json`, safetensors, `tokenizer.json`) or a `.gguf` file.
    pub fn load(path: impl AsRef<Path>, device: Device) -> Result<Self> {
        let path = path.as_ref();
        if path.is_dir() {
            let cfg = ModelConfig::from_file(path.join("config.json"))?;
            let mut weights = crate::weights::load_safetensors_dir(path)?;
            crate::factorized::densify(path, &mut weights)?;
            let tok_path = path.join("tokenizer.json");
            let tokenizer =
                if tok_path.is_file() { Some(Tokenizer::from_file(&tok_path)?) } else { None };
            Self::from_weights(cfg, weights, tokenizer, device, path)
        } else if path.is_file() {
            let gguf = crate::families::gguf::GgufModel::load(path)?;
            let mut model =
                Self::from_weights(gguf.config, gguf.weights, Some(gguf.tokenizer), device, path)?;
            model.notes.extend(gguf.notes);
            Ok(model)
        } else {
            Err(ModelError::io(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such model folder or .gguf file",
                ),
            ))
        }
    }

    /// Builds a model from host weights, validating every tensor the architecture reads.
    pub fn from_weights(
        cfg: ModelConfig,
        weights: WeightMap,
        tokenizer: Option<Tokenizer>,
        device: Device,
        source: &Path,
    ) -> Result<Self> {
        let arch = crate::families::build(cfg)?;
        let (mut weights, notes) = arch.normalise_names(weights);
        let mut map = HashMap::new();
        let mut shapes = HashMap::new();
        let mut host = HashMap::new();
        // CPU backends read the matrices on the host for faer's faster matmul (see `Params`).
        let use_host = backend::is_cpu(&device);
        let in_file =
            |e: ModelError| ModelError::InFile { path: source.to_owned(), error: Box::new(e) };
        for (name, shape) in arch.weights().tensors() {
            let t = weights.remove(name).ok_or_else(|| ModelError::MissingTensor {
                name: name.clone(),
                path: source.to_owned(),
            })?;
            if t.shape != *shape {
                return Err(in_file(ModelError::TensorShape {
                    name: name.clone(),
                    expected: shape.clone(),
                    got: t.shape,
                }));
            }
            t.check_finite(name).map_err(in_file)?;
            shapes.insert(name.clone(), shape.clone());
            let matrix = t.shape.len() == 2;
            let tensor = to_device(t, &device);
            if use_host && matrix {
                host.insert(name.clone(), HostMatrix::of(&tensor)?);
            }
            map.insert(name.clone(), tensor);
        }
        // Tensors some checkpoints carry.
        for (name, cols) in arch.weights().optional() {
            if let Some(t) = weights.remove(name) {
                if t.shape.len() != 2 || t.shape[1] != *cols || t.shape[0] == 0 {
                    return Err(in_file(ModelError::TensorShape {
                        name: name.clone(),
                        expected: vec![1, *cols],
                        got: t.shape,
                    }));
                }
                t.check_finite(name).map_err(in_file)?;
                shapes.insert(name.clone(), t.shape.clone());
                map.insert(name.clone(), to_device(t, &device));
            }
        }
        if let Some(tok) = &tokenizer
            && tok.vocab_size() > arch.config().vocab_size
        {
            return Err(ModelError::Tokenizer(format!(
                "{}: the tokenizer has {} tokens but the model's vocabulary is {}",
                source.display(),
                tok.vocab_size(),
                arch.config().vocab_size
            )));
        }
        let num_layers = arch.config().num_layers;
        let matrix_index = arch
            .weights()
            .editable()
            .iter()
            .enumerate()
            .map(|(i, m)| (m.name.clone(), i))
            .collect();
        Ok(Self {
            arch,
            device,
            params: Params { map, host, taps: None },
            originals: HashMap::new(),
            matrix_index,
            shapes,
            tokenizer,
            source: source.to_owned(),
            instance: editing::NEXT_INSTANCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            layer_changes: vec![0; num_layers],
            layer_unedited: vec![0; num_layers],
            change_clock: 0,
            activation_budget: None,
            activation_budget_hard: true,
            matrix_dtype: WeightDtype::F32,
            notes,
        })
    }
}

fn to_device(t: HostTensor, device: &Device) -> Tensor<2> {
    let shape = match t.shape.as_slice() {
        [n] => [1, *n],
        [r, c] => [*r, *c],
        other => [1, other.iter().product()],
    };
    Tensor::from_data(TensorData::new(t.data, shape), device)
}
