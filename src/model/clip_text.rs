//! The CLIP text tower plus `text_projection`, reading Hugging Face's key names
//! (`text_model.embeddings.token_embedding.weight`, ..., `text_projection.weight`).
//!
//! This is `CLIPModel.get_text_features` from transformers: token and position embeddings,
//! the same pre-norm encoder layers as the vision tower (quick_gelu) under a causal mask,
//! `final_layer_norm`, the hidden state at the end-of-text token (transformers' pooling: with
//! the legacy `eos_token_id` 2 of OpenAI's configs, the position of the largest token id, which
//! is `<|endoftext|>`; else the first position of `eos_token_id`), then the bias-free projection.
//!
//! candle-transformers has a CLIP text model too; it is not used because the encoder here is the
//! vision tower's (fused q/k/v, the attention and linear kernels of `model::kernels`, fast
//! mode), so both towers run one code path, and geoloupe does not take on that crate's hundred
//! other models to compile.

use candle_core::{DType, Device, Module as _, Tensor};
use candle_nn::LayerNorm;

use super::ModelError;
use super::clip::{
    Activation, Encoder, EncoderShape, encoder_tensors, hf_activation, hf_int, layer_norm,
};
use super::kernels;
use super::weights::{Dense, MatmulMode, TensorSource};

/// The text half of a Hugging Face `CLIPConfig`.
#[derive(Clone, Debug, PartialEq)]
pub struct ClipTextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// The context length: 77 for CLIP, the tokenizer truncates to it.
    pub max_position_embeddings: usize,
    pub hidden_act: Activation,
    pub layer_norm_eps: f64,
    /// 2 in OpenAI's configs: the legacy value, which makes pooling take the largest token id.
    pub eos_token_id: u32,
    pub projection_dim: usize,
}

impl ClipTextConfig {
    /// `openai/clip-vit-large-patch14`'s text tower: 12 layers of width 768, 12 heads,
    /// projection 768.
    pub fn vit_large_patch14() -> Self {
        Self {
            vocab_size: 49408,
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            max_position_embeddings: 77,
            hidden_act: Activation::QuickGelu,
            layer_norm_eps: 1e-5,
            eos_token_id: 2,
            projection_dim: 768,
        }
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        format!(
            "{} layers, width {}, {} heads, context {}, vocabulary {}, projection {}",
            self.num_hidden_layers,
            self.hidden_size,
            self.num_attention_heads,
            self.max_position_embeddings,
            self.vocab_size,
            self.projection_dim
        )
    }

    /// Reads the `text_config` of a Hugging Face `CLIPModel` `config.json`, with transformers'
    /// defaults for absent fields.
    pub fn from_hf_json(text: &str) -> Result<Self, String> {
        let root: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let Some(cfg) = root.get("text_config") else {
            return Err("config.json has no `text_config`".into());
        };
        let int = |v: &serde_json::Value, key: &str, default: usize| {
            hf_int(v, key, default, "text_config.")
        };
        let hidden_act = hf_activation(cfg, "text ")?;
        let out = Self {
            vocab_size: int(cfg, "vocab_size", 49408)?,
            hidden_size: int(cfg, "hidden_size", 512)?,
            intermediate_size: int(cfg, "intermediate_size", 2048)?,
            num_hidden_layers: int(cfg, "num_hidden_layers", 12)?,
            num_attention_heads: int(cfg, "num_attention_heads", 8)?,
            max_position_embeddings: int(cfg, "max_position_embeddings", 77)?,
            hidden_act,
            layer_norm_eps: cfg
                .get("layer_norm_eps")
                .and_then(|v| v.as_f64())
                .unwrap_or(1e-5),
            eos_token_id: u32::try_from(int(cfg, "eos_token_id", 2)?)
                .map_err(|_| "`text_config.eos_token_id` is too large")?,
            projection_dim: int(&root, "projection_dim", 512)?,
        };
        if out.num_attention_heads == 0 || !out.hidden_size.is_multiple_of(out.num_attention_heads)
        {
            return Err("text hidden_size must be a multiple of num_attention_heads".into());
        }
        if out.max_position_embeddings < 2 {
            return Err("text max_position_embeddings must hold at least the two markers".into());
        }
        Ok(out)
    }

    /// Every tensor the tower reads, with its shape, in Hugging Face naming.
    pub fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let h = self.hidden_size;
        let e = "text_model.embeddings";
        let mut out = vec![
            (
                format!("{e}.token_embedding.weight"),
                vec![self.vocab_size, h],
            ),
            (
                format!("{e}.position_embedding.weight"),
                vec![self.max_position_embeddings, h],
            ),
        ];
        out.extend(encoder_tensors(
            "text_model.encoder",
            self.num_hidden_layers,
            h,
            self.intermediate_size,
        ));
        out.push(("text_model.final_layer_norm.weight".to_owned(), vec![h]));
        out.push(("text_model.final_layer_norm.bias".to_owned(), vec![h]));
        out.push((
            "text_projection.weight".to_owned(),
            vec![self.projection_dim, h],
        ));
        out
    }

    /// Where transformers pools a tokenized text: see the module doc.
    pub fn pooled_position(&self, ids: &[u32]) -> usize {
        if self.eos_token_id == 2 {
            // torch.argmax: the first of equal maxima.
            let mut best = 0;
            for (i, &id) in ids.iter().enumerate() {
                if id > ids[best] {
                    best = i;
                }
            }
            best
        } else {
            ids.iter()
                .position(|&id| id == self.eos_token_id)
                .unwrap_or(0)
        }
    }
}

/// The text tower and its projection: token ids -> text_embeds `(projection_dim)`.
pub struct ClipText {
    cfg: ClipTextConfig,
    /// `(vocab, hidden)`, rows gathered on the CPU.
    token_embedding: Vec<f32>,
    position_embedding: Tensor,
    encoder: Encoder,
    final_layer_norm: LayerNorm,
    text_projection: Dense,
    device: Device,
}

impl ClipText {
    /// Builds the tower with its matrix products in `mode`, first checking that every tensor is
    /// present with the right shape.
    pub fn with_mode(
        src: &dyn TensorSource,
        cfg: &ClipTextConfig,
        mode: MatmulMode,
        device: &Device,
    ) -> Result<Self, ModelError> {
        src.check_all(&cfg.expected_tensors())?;
        let h = cfg.hidden_size;
        let e = "text_model.embeddings";
        let token_embedding = src
            .tensor(&format!("{e}.token_embedding.weight"), &[cfg.vocab_size, h])?
            .to_device(&Device::Cpu)
            .and_then(|t| t.to_dtype(DType::F32)?.flatten_all()?.to_vec1())
            .map_err(ModelError::candle("text token embedding"))?;
        let encoder = Encoder::load(
            src,
            "text_model.encoder",
            EncoderShape {
                layers: cfg.num_hidden_layers,
                hidden: h,
                intermediate: cfg.intermediate_size,
                heads: cfg.num_attention_heads,
                act: cfg.hidden_act,
                eps: cfg.layer_norm_eps,
                mask: kernels::Mask::Causal,
            },
            mode,
        )?;
        let text_projection = Dense::with_mode(
            &src.tensor("text_projection.weight", &[cfg.projection_dim, h])?,
            None,
            mode,
        )
        .map_err(ModelError::candle("text projection"))?;
        Ok(Self {
            cfg: cfg.clone(),
            token_embedding,
            position_embedding: src.tensor(
                &format!("{e}.position_embedding.weight"),
                &[cfg.max_position_embeddings, h],
            )?,
            encoder,
            final_layer_norm: layer_norm(
                src,
                "text_model.final_layer_norm",
                h,
                cfg.layer_norm_eps,
            )?,
            text_projection,
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &ClipTextConfig {
        &self.cfg
    }

    /// `CLIPModel.get_text_features` for one tokenized text (markers included, at most the
    /// context length): `(projection_dim)`. Each text runs at its own length: under the causal
    /// mask, the padding transformers adds after `<|endoftext|>` changes nothing at the pooled
    /// position.
    pub fn forward(&self, ids: &[u32]) -> Result<Vec<f32>, ModelError> {
        let cfg = &self.cfg;
        let (t, h) = (ids.len(), cfg.hidden_size);
        if t == 0 || t > cfg.max_position_embeddings {
            return Err(ModelError::Text(format!(
                "a text of {t} tokens: the text tower takes 1 to {}",
                cfg.max_position_embeddings
            )));
        }
        let mut embeds = Vec::with_capacity(t * h);
        for &id in ids {
            let row = id as usize;
            if row >= cfg.vocab_size {
                return Err(ModelError::Text(format!(
                    "token id {id} is outside the text tower's vocabulary of {}",
                    cfg.vocab_size
                )));
            }
            embeds.extend_from_slice(&self.token_embedding[row * h..(row + 1) * h]);
        }
        let pooled = self.pooled_position(ids);
        let run = || -> candle_core::Result<Vec<f32>> {
            let x = Tensor::from_vec(embeds, (1, t, h), &Device::Cpu)?
                .to_device(&self.device)?
                .broadcast_add(&self.position_embedding.narrow(0, 0, t)?)?;
            let x = self.encoder.forward(&x)?;
            let x = x.narrow(1, pooled, 1)?.squeeze(1)?;
            let x = self.final_layer_norm.forward(&x)?;
            self.text_projection
                .forward(&x)?
                .to_device(&Device::Cpu)?
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1()
        };
        run().map_err(ModelError::candle("running the CLIP text tower"))
    }

    fn pooled_position(&self, ids: &[u32]) -> usize {
        self.cfg.pooled_position(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vit_l14_text_config() {
        let json = r#"{"projection_dim": 768, "text_config": {"hidden_size": 768,
            "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
            "max_position_embeddings": 77, "vocab_size": 49408, "eos_token_id": 2,
            "hidden_act": "quick_gelu", "projection_dim": 768}}"#;
        assert_eq!(
            ClipTextConfig::from_hf_json(json).unwrap(),
            ClipTextConfig::vit_large_patch14()
        );
    }

    #[test]
    fn rejects_configs_it_cannot_run() {
        assert!(ClipTextConfig::from_hf_json(r#"{"vision_config": {}}"#).is_err());
        let bad_heads = r#"{"text_config": {"hidden_size": 30, "num_attention_heads": 4}}"#;
        assert!(ClipTextConfig::from_hf_json(bad_heads).is_err());
        let bad_act = r#"{"text_config": {"hidden_act": "swish"}}"#;
        assert!(ClipTextConfig::from_hf_json(bad_act).is_err());
    }

    #[test]
    fn pools_where_transformers_does() {
        let legacy = ClipTextConfig::vit_large_patch14();
        // The largest id, the first of equals: <|endoftext|> ends the text and pads it.
        assert_eq!(legacy.pooled_position(&[49406, 320, 1125, 49407, 49407]), 3);
        let modern = ClipTextConfig {
            eos_token_id: 7,
            ..legacy
        };
        assert_eq!(modern.pooled_position(&[0, 9, 7, 3, 7]), 2);
    }

    #[test]
    fn expected_tensor_count() {
        // 2 embeddings + 16 per layer + final norm (2) + projection.
        assert_eq!(
            ClipTextConfig::vit_large_patch14().expected_tensors().len(),
            2 + 12 * 16 + 3
        );
    }
}
