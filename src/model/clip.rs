//! The CLIP vision tower (ViT) plus `visual_projection`, reading Hugging Face's key names
//! (`vision_model.embeddings.patch_embedding.weight`, ..., `visual_projection.weight`).
//!
//! This is `CLIPModel.get_image_features` from transformers: patch embedding (a stride-`patch`
//! convolution without bias, done here as unfold + matmul), class token, position embedding,
//! `pre_layrnorm`, pre-norm encoder layers with quick_gelu MLPs, `post_layernorm` on the class
//! token, then the bias-free projection.

use candle_core::{D, DType, Device, Module as _, Tensor};
use candle_nn::LayerNorm;

use super::ModelError;
use super::kernels;
use super::weights::{Dense, LoadScratch, MatmulMode, TensorSource, with_cpu_f32};

/// The vision half of a Hugging Face `CLIPConfig`.
#[derive(Clone, Debug, PartialEq)]
pub struct ClipVisionConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_channels: usize,
    pub image_size: usize,
    pub patch_size: usize,
    pub hidden_act: Activation,
    pub layer_norm_eps: f64,
    pub projection_dim: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    QuickGelu,
    Gelu,
}

impl ClipVisionConfig {
    /// `openai/clip-vit-large-patch14` (224 px): 24 layers of width 1024, 16 heads, projection 768.
    pub fn vit_large_patch14() -> Self {
        Self {
            hidden_size: 1024,
            intermediate_size: 4096,
            num_hidden_layers: 24,
            num_attention_heads: 16,
            num_channels: 3,
            image_size: 224,
            patch_size: 14,
            hidden_act: Activation::QuickGelu,
            layer_norm_eps: 1e-5,
            projection_dim: 768,
        }
    }

    /// One line for people: the shape, and whether it is the ViT-L/14 GeoCLIP was trained on.
    pub fn describe(&self) -> String {
        let shape = format!(
            "{} layers, width {}, {} heads, patch {}, {} px, projection {}",
            self.num_hidden_layers,
            self.hidden_size,
            self.num_attention_heads,
            self.patch_size,
            self.image_size,
            self.projection_dim
        );
        if *self == Self::vit_large_patch14() {
            format!("ViT-L/14 ({shape})")
        } else {
            format!("not ViT-L/14, GeoCLIP's backbone: {shape}")
        }
    }

    /// Reads a Hugging Face `config.json` of a `CLIPModel` (or a bare `CLIPVisionConfig`),
    /// with transformers' defaults for absent fields.
    pub fn from_hf_json(text: &str) -> Result<Self, String> {
        let root: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let vision = root.get("vision_config").unwrap_or(&root);
        let int = |v: &serde_json::Value, key: &str, default: usize| hf_int(v, key, default, "");
        let hidden_act = hf_activation(vision, "")?;
        // The projection size is the top-level `projection_dim` of a CLIPConfig.
        let projection_dim = match root.get("projection_dim") {
            Some(_) if root.get("vision_config").is_some() => int(&root, "projection_dim", 512)?,
            _ => int(vision, "projection_dim", 512)?,
        };
        let cfg = Self {
            hidden_size: int(vision, "hidden_size", 768)?,
            intermediate_size: int(vision, "intermediate_size", 3072)?,
            num_hidden_layers: int(vision, "num_hidden_layers", 12)?,
            num_attention_heads: int(vision, "num_attention_heads", 12)?,
            num_channels: int(vision, "num_channels", 3)?,
            image_size: int(vision, "image_size", 224)?,
            patch_size: int(vision, "patch_size", 32)?,
            hidden_act,
            layer_norm_eps: vision
                .get("layer_norm_eps")
                .and_then(|v| v.as_f64())
                .unwrap_or(1e-5),
            projection_dim,
        };
        if cfg.patch_size == 0 || !cfg.image_size.is_multiple_of(cfg.patch_size) {
            return Err(format!(
                "image_size {} is not a multiple of patch_size {}",
                cfg.image_size, cfg.patch_size
            ));
        }
        if cfg.num_attention_heads == 0 || !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads)
        {
            return Err("hidden_size must be a multiple of num_attention_heads".into());
        }
        Ok(cfg)
    }

    pub fn grid_size(&self) -> usize {
        self.image_size / self.patch_size
    }

    pub fn num_positions(&self) -> usize {
        self.grid_size() * self.grid_size() + 1
    }

    /// Every tensor the tower reads, with its shape, in Hugging Face naming.
    pub fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let (h, i, p, c) = (
            self.hidden_size,
            self.intermediate_size,
            self.patch_size,
            self.num_channels,
        );
        let mut out = vec![
            (
                "vision_model.embeddings.class_embedding".to_owned(),
                vec![h],
            ),
            (
                "vision_model.embeddings.patch_embedding.weight".to_owned(),
                vec![h, c, p, p],
            ),
            (
                "vision_model.embeddings.position_embedding.weight".to_owned(),
                vec![self.num_positions(), h],
            ),
            ("vision_model.pre_layrnorm.weight".to_owned(), vec![h]),
            ("vision_model.pre_layrnorm.bias".to_owned(), vec![h]),
        ];
        out.extend(encoder_tensors(
            "vision_model.encoder",
            self.num_hidden_layers,
            h,
            i,
        ));
        out.push(("vision_model.post_layernorm.weight".to_owned(), vec![h]));
        out.push(("vision_model.post_layernorm.bias".to_owned(), vec![h]));
        out.push((
            "visual_projection.weight".to_owned(),
            vec![self.projection_dim, h],
        ));
        out
    }
}

/// Every tensor of a CLIP encoder under `prefix` (`vision_model.encoder`, `text_model.encoder`).
pub(super) fn encoder_tensors(
    prefix: &str,
    layers: usize,
    hidden: usize,
    intermediate: usize,
) -> Vec<(String, Vec<usize>)> {
    let (h, i) = (hidden, intermediate);
    let mut out = Vec::with_capacity(layers * 16);
    for l in 0..layers {
        let pre = format!("{prefix}.layers.{l}");
        for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
            out.push((format!("{pre}.self_attn.{proj}.weight"), vec![h, h]));
            out.push((format!("{pre}.self_attn.{proj}.bias"), vec![h]));
        }
        for norm in ["layer_norm1", "layer_norm2"] {
            out.push((format!("{pre}.{norm}.weight"), vec![h]));
            out.push((format!("{pre}.{norm}.bias"), vec![h]));
        }
        out.push((format!("{pre}.mlp.fc1.weight"), vec![i, h]));
        out.push((format!("{pre}.mlp.fc1.bias"), vec![i]));
        out.push((format!("{pre}.mlp.fc2.weight"), vec![h, i]));
        out.push((format!("{pre}.mlp.fc2.bias"), vec![h]));
    }
    out
}

/// An integer field of a Hugging Face config, transformers' `default` when absent; `section`
/// (`"text_config."`) names where it is in errors.
pub(super) fn hf_int(
    v: &serde_json::Value,
    key: &str,
    default: usize,
    section: &str,
) -> Result<usize, String> {
    match v.get(key) {
        None | Some(serde_json::Value::Null) => Ok(default),
        Some(x) => x
            .as_u64()
            .map(|n| n as usize)
            .ok_or(format!("`{section}{key}` must be a positive integer")),
    }
}

/// A config's `hidden_act` (quick_gelu when absent).
pub(super) fn hf_activation(v: &serde_json::Value, section: &str) -> Result<Activation, String> {
    match v
        .get("hidden_act")
        .and_then(|v| v.as_str())
        .unwrap_or("quick_gelu")
    {
        "quick_gelu" => Ok(Activation::QuickGelu),
        "gelu" => Ok(Activation::Gelu),
        other => Err(format!("{section}hidden_act `{other}` is not supported")),
    }
}

pub(super) fn layer_norm(
    src: &dyn TensorSource,
    name: &str,
    dim: usize,
    eps: f64,
) -> Result<LayerNorm, ModelError> {
    let w = src.tensor(&format!("{name}.weight"), &[dim])?;
    let b = src.tensor(&format!("{name}.bias"), &[dim])?;
    Ok(LayerNorm::new(w, b, eps))
}

struct EncoderLayer {
    /// q, k and v projections fused into one `(hidden, 3 * hidden)` matmul.
    qkv_proj: Dense,
    out_proj: Dense,
    layer_norm1: LayerNorm,
    layer_norm2: LayerNorm,
    fc1: Dense,
    fc2: Dense,
}

/// The shape of a CLIP encoder: the vision and the text tower share its code.
#[derive(Clone, Copy, Debug)]
pub(super) struct EncoderShape {
    pub layers: usize,
    pub hidden: usize,
    pub intermediate: usize,
    pub heads: usize,
    pub act: Activation,
    pub eps: f64,
    pub mask: kernels::Mask,
}

/// CLIP's pre-norm encoder layers with quick_gelu MLPs: the vision tower's without a mask, the
/// text tower's with the causal one.
pub(super) struct Encoder {
    shape: EncoderShape,
    layers: Vec<EncoderLayer>,
}

impl Encoder {
    /// Reads `prefix.layers.N.*` (checked beforehand with [`encoder_tensors`]).
    pub(super) fn load(
        src: &dyn TensorSource,
        prefix: &str,
        shape: EncoderShape,
        mode: MatmulMode,
    ) -> Result<Self, ModelError> {
        let (h, i, eps) = (shape.hidden, shape.intermediate, shape.eps);
        let mut layers = Vec::with_capacity(shape.layers);
        let scratch = &mut LoadScratch::default();
        for l in 0..shape.layers {
            let pre = format!("{prefix}.layers.{l}");
            layers.push(EncoderLayer {
                qkv_proj: Dense::load_fused(
                    src,
                    &[
                        &format!("{pre}.self_attn.q_proj"),
                        &format!("{pre}.self_attn.k_proj"),
                        &format!("{pre}.self_attn.v_proj"),
                    ],
                    h,
                    h,
                    mode,
                    scratch,
                )?,
                out_proj: Dense::load_fused(
                    src,
                    &[&format!("{pre}.self_attn.out_proj")],
                    h,
                    h,
                    mode,
                    scratch,
                )?,
                layer_norm1: layer_norm(src, &format!("{pre}.layer_norm1"), h, eps)?,
                layer_norm2: layer_norm(src, &format!("{pre}.layer_norm2"), h, eps)?,
                fc1: Dense::load_fused(src, &[&format!("{pre}.mlp.fc1")], i, h, mode, scratch)?,
                fc2: Dense::load_fused(src, &[&format!("{pre}.mlp.fc2")], h, i, mode, scratch)?,
            });
        }
        Ok(Self { shape, layers })
    }

    /// `(B, T, hidden)` through every layer.
    pub(super) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = x.clone();
        for layer in &self.layers {
            x = self.layer(layer, &x)?;
        }
        Ok(x)
    }

    fn layer(&self, layer: &EncoderLayer, x: &Tensor) -> candle_core::Result<Tensor> {
        let residual = x;
        let h = layer.layer_norm1.forward(x)?;
        let h = self.attention(layer, &h)?;
        let x = (residual + h)?;
        let residual = &x;
        let h = layer.layer_norm2.forward(&x)?;
        let h = match self.shape.act {
            Activation::QuickGelu => layer.fc1.forward_act(&h, kernels::Activation::QuickGelu)?,
            Activation::Gelu => layer.fc1.forward(&h)?.gelu_erf()?,
        };
        let h = layer.fc2.forward(&h)?;
        residual + h
    }

    fn attention(&self, layer: &EncoderLayer, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t, hidden) = x.dims3()?;
        let heads = self.shape.heads;
        let head_dim = hidden / heads;
        let scale = (head_dim as f64).powf(-0.5);
        let split = |y: Tensor| {
            y.reshape((b, t, heads, head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let qkv = layer.qkv_proj.forward(x)?;
        if qkv.device().is_cpu() && qkv.dtype() == DType::F32 {
            let out = with_cpu_f32(&qkv, |qkv| {
                kernels::attention(qkv, (b, t, hidden), heads, self.shape.mask)
            })?;
            let out = Tensor::from_vec(out, (b, t, hidden), &Device::Cpu)?;
            return layer.out_proj.forward(&out);
        }
        let q = split((qkv.narrow(2, 0, hidden)? * scale)?)?;
        let k = split(qkv.narrow(2, hidden, hidden)?)?;
        let v = split(qkv.narrow(2, 2 * hidden, hidden)?)?;
        let mut scores = q.matmul(&k.t()?)?;
        if self.shape.mask == kernels::Mask::Causal {
            // transformers' mask: the smallest f32 above the diagonal.
            let mask: Vec<f32> = (0..t * t)
                .map(|n| if n % t > n / t { f32::MIN } else { 0.0 })
                .collect();
            let mask = Tensor::from_vec(mask, (t, t), scores.device())?.to_dtype(scores.dtype())?;
            scores = scores.broadcast_add(&mask)?;
        }
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = weights
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((b, t, hidden))?;
        layer.out_proj.forward(&out)
    }
}

/// The vision tower and its projection: `pixel_values (B, 3, 224, 224) -> image_embeds (B, 768)`.
pub struct ClipVision {
    cfg: ClipVisionConfig,
    patch_embed: Dense,
    class_embedding: Tensor,
    position_embedding: Tensor,
    pre_layrnorm: LayerNorm,
    encoder: Encoder,
    post_layernorm: LayerNorm,
    visual_projection: Dense,
    mode: MatmulMode,
}

impl ClipVision {
    /// Builds the exact (f32) tower, first checking that every tensor is present with the
    /// right shape.
    pub fn new(src: &dyn TensorSource, cfg: &ClipVisionConfig) -> Result<Self, ModelError> {
        Self::with_mode(src, cfg, MatmulMode::F32)
    }

    /// Builds the tower with its matrix products in `mode`. Each weight is read and converted
    /// one at a time, so a bf16 tower never holds the f32 weights of more than one layer.
    pub fn with_mode(
        src: &dyn TensorSource,
        cfg: &ClipVisionConfig,
        mode: MatmulMode,
    ) -> Result<Self, ModelError> {
        src.check_all(&cfg.expected_tensors())?;
        let (h, i, p, c) = (
            cfg.hidden_size,
            cfg.intermediate_size,
            cfg.patch_size,
            cfg.num_channels,
        );
        let eps = cfg.layer_norm_eps;
        let e = "vision_model.embeddings";
        let patch_weight = src.tensor(&format!("{e}.patch_embedding.weight"), &[h, c, p, p])?;
        let patch_embed = patch_weight
            .reshape((h, c * p * p))
            .and_then(|w| Dense::with_mode(&w, None, mode))
            .map_err(ModelError::candle("patch embedding"))?;
        let encoder = Encoder::load(
            src,
            "vision_model.encoder",
            EncoderShape {
                layers: cfg.num_hidden_layers,
                hidden: h,
                intermediate: i,
                heads: cfg.num_attention_heads,
                act: cfg.hidden_act,
                eps,
                mask: kernels::Mask::None,
            },
            mode,
        )?;
        let visual_projection = Dense::with_mode(
            &src.tensor("visual_projection.weight", &[cfg.projection_dim, h])?,
            None,
            mode,
        )
        .map_err(ModelError::candle("visual projection"))?;
        Ok(Self {
            cfg: cfg.clone(),
            patch_embed,
            class_embedding: src.tensor(&format!("{e}.class_embedding"), &[h])?,
            position_embedding: src.tensor(
                &format!("{e}.position_embedding.weight"),
                &[cfg.num_positions(), h],
            )?,
            pre_layrnorm: layer_norm(src, "vision_model.pre_layrnorm", h, eps)?,
            encoder,
            post_layernorm: layer_norm(src, "vision_model.post_layernorm", h, eps)?,
            visual_projection,
            mode,
        })
    }

    pub fn config(&self) -> &ClipVisionConfig {
        &self.cfg
    }

    /// How the tower's matrix products run.
    pub fn mode(&self) -> MatmulMode {
        self.mode
    }

    /// `CLIPModel.get_image_features`: `(B, C, S, S)` normalised pixels to `(B, projection_dim)`.
    pub fn forward(&self, pixel_values: &Tensor) -> candle_core::Result<Tensor> {
        let cfg = &self.cfg;
        let (b, c, p, g, h) = (
            pixel_values.dim(0)?,
            cfg.num_channels,
            cfg.patch_size,
            cfg.grid_size(),
            cfg.hidden_size,
        );
        // Unfold into (B, G*G, C*P*P) patches in the conv weight's (c, y, x) order.
        let patches = pixel_values
            .reshape((b, c, g, p, g, p))?
            .permute((0, 2, 4, 1, 3, 5))?
            .contiguous()?
            .reshape((b, g * g, c * p * p))?;
        let patch_embeds = self.patch_embed.forward(&patches)?;
        let class = self
            .class_embedding
            .reshape((1, 1, h))?
            .broadcast_as((b, 1, h))?;
        let mut x =
            Tensor::cat(&[&class, &patch_embeds], 1)?.broadcast_add(&self.position_embedding)?;
        x = self.pre_layrnorm.forward(&x)?;
        x = self.encoder.forward(&x)?;
        let pooled = self
            .post_layernorm
            .forward(&x.narrow(1, 0, 1)?.squeeze(1)?)?;
        self.visual_projection.forward(&pooled)
    }
}

/// Softmax-free helper for tests: L2-normalise rows.
pub fn l2_normalize_rows(x: &Tensor) -> candle_core::Result<Tensor> {
    let norm = x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?;
    x.broadcast_div(&norm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vit_l14_config() {
        let json = r#"{"projection_dim": 768, "vision_config": {"hidden_size": 1024, "intermediate_size": 4096,
            "num_hidden_layers": 24, "num_attention_heads": 16, "patch_size": 14, "image_size": 224,
            "hidden_act": "quick_gelu", "projection_dim": 768}}"#;
        assert_eq!(
            ClipVisionConfig::from_hf_json(json).unwrap(),
            ClipVisionConfig::vit_large_patch14()
        );
    }

    #[test]
    fn describes_the_shape_and_says_when_it_is_not_vit_l14() {
        let large = ClipVisionConfig::vit_large_patch14();
        assert!(
            large
                .describe()
                .starts_with("ViT-L/14 (24 layers, width 1024")
        );
        let tiny = ClipVisionConfig {
            num_hidden_layers: 2,
            hidden_size: 64,
            ..large
        };
        assert!(
            tiny.describe().starts_with("not ViT-L/14"),
            "{}",
            tiny.describe()
        );
        assert!(tiny.describe().contains("2 layers, width 64"));
    }

    #[test]
    fn rejects_bad_configs() {
        assert!(
            ClipVisionConfig::from_hf_json(r#"{"vision_config": {"patch_size": 15}}"#).is_err()
        );
        assert!(
            ClipVisionConfig::from_hf_json(r#"{"vision_config": {"hidden_act": "swish"}}"#)
                .is_err()
        );
    }

    #[test]
    fn expected_tensor_count() {
        // 5 embedding/pre-norm tensors + 16 per layer + post norm (2) + projection.
        assert_eq!(
            ClipVisionConfig::vit_large_patch14()
                .expected_tensors()
                .len(),
            5 + 24 * 16 + 3
        );
    }
}
