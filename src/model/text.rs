//! Text queries (issue 14): CLIP's tokenizer, the text tower, and prompt ensembles.
//!
//! A text goes where a photo goes: CLIP's text feature (768) through GeoCLIP's image MLP, then
//! scored against the gallery like an image feature. CLIP trained its two towers into one space
//! and GeoCLIP's MLP was trained on that space's image half, so this is the paper's
//! text-to-location use.
//!
//! The tokenizer is transformers' `CLIPTokenizer` (Hugging Face's `tokenizers` library reading
//! the backbone's `tokenizer.json`): NFC, runs of whitespace to one space, lower case, CLIP's
//! split pattern, byte-level BPE over 49,408 tokens, `<|startoftext|>` ... `<|endoftext|>`,
//! truncated to the context length (77). OpenAI's original tokenizer also ran ftfy and unescaped
//! HTML entities; transformers' does not, and geoloupe matches transformers (the fixture records
//! on which test strings the two differ).

use std::path::{Path, PathBuf};

use super::ModelError;
use super::clip_text::{ClipText, ClipTextConfig};

/// The Hugging Face tokenizer file of a CLIP folder.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
const START_OF_TEXT: &str = "<|startoftext|>";
const END_OF_TEXT: &str = "<|endoftext|>";

/// The prompt ensemble: CLIP's way of asking about a place ("a photo taken in {}"), each filled
/// with the query. [`TextEncoder::feature`] with `ensemble` averages their features.
pub const TEMPLATES: [&str; 8] = [
    "a photo taken in {}.",
    "a photo of {}.",
    "a street view of {}.",
    "a landscape in {}.",
    "a picture from {}.",
    "a photo i took in {}.",
    "a travel photo of {}.",
    "an aerial photo of {}.",
];

/// CLIP's tokenizer, from a `tokenizer.json`.
pub struct ClipTokenizer {
    inner: tokenizers::Tokenizer,
    start: u32,
    end: u32,
    context: usize,
}

impl ClipTokenizer {
    /// Reads `path`; `context` is the text tower's `max_position_embeddings` (77).
    pub fn from_file(path: &Path, context: usize) -> Result<Self, ModelError> {
        if !path.is_file() {
            return Err(ModelError::MissingFile {
                what: "CLIP tokenizer".into(),
                hint: "Text queries need the backbone's tokenizer.json: run `geoloupe model \
                       download`, or `geoloupe model import <Hugging Face CLIP folder>` with it"
                    .into(),
                path: path.to_owned(),
            });
        }
        let invalid = |reason: String| ModelError::Invalid {
            what: "CLIP tokenizer".into(),
            reason,
            path: path.to_owned(),
        };
        let mut inner =
            tokenizers::Tokenizer::from_file(path).map_err(|e| invalid(e.to_string()))?;
        // Some tokenizer.json files pad or truncate on their own; geoloupe adds the markers and
        // cuts to the tower's context itself, so the ids are the text's whatever the file says.
        inner
            .with_truncation(None)
            .map_err(|e| invalid(e.to_string()))?;
        inner.with_padding(None);
        let marker = |token: &str| {
            inner
                .token_to_id(token)
                .ok_or_else(|| invalid(format!("no `{token}` token: not CLIP's tokenizer")))
        };
        let (start, end) = (marker(START_OF_TEXT)?, marker(END_OF_TEXT)?);
        if context < 2 {
            return Err(invalid(format!("a context of {context} tokens")));
        }
        Ok(Self {
            inner,
            start,
            end,
            context,
        })
    }

    /// The token ids of `text` as the text tower takes them: `<|startoftext|>`, at most
    /// `context - 2` tokens of the text, `<|endoftext|>` (transformers' `truncation=True,
    /// max_length=77`).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| ModelError::Text(format!("could not tokenize {text:?}: {e}")))?;
        let body = encoding.get_ids();
        let kept = body.len().min(self.context - 2);
        let mut ids = Vec::with_capacity(kept + 2);
        ids.push(self.start);
        ids.extend_from_slice(&body[..kept]);
        ids.push(self.end);
        Ok(ids)
    }

    /// How many of the text's tokens [`Self::encode`] drops to fit the context.
    pub fn truncated(&self, text: &str) -> usize {
        self.inner
            .encode(text, false)
            .map(|e| e.get_ids().len().saturating_sub(self.context - 2))
            .unwrap_or(0)
    }
}

/// The text tower with its tokenizer: text -> CLIP text features.
pub struct TextEncoder {
    tokenizer: ClipTokenizer,
    tower: ClipText,
    tokenizer_path: PathBuf,
}

impl TextEncoder {
    pub fn new(tokenizer: ClipTokenizer, tower: ClipText, tokenizer_path: PathBuf) -> Self {
        Self {
            tokenizer,
            tower,
            tokenizer_path,
        }
    }

    pub fn tokenizer(&self) -> &ClipTokenizer {
        &self.tokenizer
    }

    pub fn config(&self) -> &ClipTextConfig {
        self.tower.config()
    }

    pub fn tokenizer_path(&self) -> &Path {
        &self.tokenizer_path
    }

    /// `CLIPModel.get_text_features` of `text` (768, not normalised).
    pub fn clip_features(&self, text: &str) -> Result<Vec<f32>, ModelError> {
        self.tower.forward(&self.tokenizer.encode(text)?)
    }

    /// The texts a query runs: the text itself, or each template filled with it.
    pub fn prompts(text: &str, ensemble: bool) -> Vec<String> {
        if ensemble {
            TEMPLATES.iter().map(|t| t.replace("{}", text)).collect()
        } else {
            vec![text.to_owned()]
        }
    }
}

/// Averages L2-normalised rows and normalises the mean: CLIP's prompt ensemble, applied here to
/// GeoCLIP features.
pub fn ensemble_mean(rows: &[Vec<f32>]) -> Vec<f32> {
    let dim = rows.first().map_or(0, Vec::len);
    let mut mean = vec![0f32; dim];
    for row in rows {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v / norm;
        }
    }
    for m in &mut mean {
        *m /= rows.len() as f32;
    }
    let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt();
    mean.iter().map(|v| v / norm).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_filled_with_the_query() {
        assert_eq!(TextEncoder::prompts("Kyoto", false), vec!["Kyoto"]);
        let all = TextEncoder::prompts("Kyoto", true);
        assert_eq!(all.len(), TEMPLATES.len());
        assert_eq!(all[0], "a photo taken in Kyoto.");
        assert!(all.iter().all(|p| p.contains("Kyoto") && !p.contains("{}")));
    }

    #[test]
    fn the_ensemble_is_the_normalised_mean_of_normalised_rows() {
        let mean = ensemble_mean(&[vec![3.0, 0.0], vec![0.0, 0.5]]);
        let half = std::f32::consts::FRAC_1_SQRT_2;
        assert!((mean[0] - half).abs() < 1e-6 && (mean[1] - half).abs() < 1e-6);
        assert_eq!(ensemble_mean(&[vec![0.0, -2.0]]), vec![0.0, -1.0]);
    }

    #[test]
    fn a_missing_tokenizer_names_the_file_and_what_to_do() {
        let err = ClipTokenizer::from_file(Path::new("/nonexistent/tokenizer.json"), 77)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("tokenizer.json"), "{err}");
        assert!(err.contains("geoloupe model download"), "{err}");
    }
}
