//! GeoCLIP in candle: model files, preprocessing, the CLIP vision tower, GeoCLIP's heads, the
//! GPS gallery and the engine that ties them together.
//!
//! Nothing here falls back to random weights: a missing or mis-shaped tensor is a
//! [`ModelError`] that names the tensor and the file. Random weights exist only in
//! [`weights::RandomWeights`], which the speed benchmark asks for by name.

pub mod bench;
pub mod bf16;
pub mod clip;
pub mod clip_text;
pub mod download;
pub mod engine;
pub mod files;
pub mod gallery;
pub mod heads;
pub mod heif;
pub mod kernels;
pub mod memory;
pub mod preprocess;
pub mod text;
pub mod weights;

use std::path::PathBuf;

pub use crate::domain::{Candidate, Prediction};
pub use engine::GeoClip;

/// Errors of the model domain. Paths come last in messages.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("tensor `{name}` is missing from {file}")]
    MissingTensor { name: String, file: PathBuf },
    #[error("tensor `{name}` has shape {actual:?}, expected {expected:?}, in {file}")]
    ShapeMismatch {
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
        file: PathBuf,
    },
    #[error("{what} not found. {hint}: {path}")]
    MissingFile {
        what: String,
        hint: String,
        path: PathBuf,
    },
    #[error("invalid {what} ({reason}): {path}")]
    Invalid {
        what: String,
        reason: String,
        path: PathBuf,
    },
    #[error("could not {action}: {path}: {source}")]
    Io {
        action: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Candle {
        context: String,
        source: candle_core::Error,
    },
    #[error(
        "checksum mismatch for {path}: expected sha256 {expected}, found {actual}. Re-import or re-download it"
    )]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error(transparent)]
    Download(#[from] download::DownloadError),
    #[error("this build has no {0} support; rebuild with `--features {0}`")]
    DeviceUnavailable(String),
    #[error("text query: {0}")]
    Text(String),
    #[error("cancelled")]
    Cancelled,
}

impl ModelError {
    pub(crate) fn io(
        action: impl Into<String>,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let (action, path) = (action.into(), path.into());
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }

    pub(crate) fn candle(context: impl Into<String>) -> impl FnOnce(candle_core::Error) -> Self {
        let context = context.into();
        move |source| Self::Candle { context, source }
    }
}

/// Which compute device runs the model.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
pub enum DeviceChoice {
    #[default]
    Cpu,
    Cuda,
    Metal,
}

impl DeviceChoice {
    /// Photos per forward pass on a GPU (`locate` and the app's worker): what keeps an H100-class
    /// card busy (the benchmark's largest batch) while its activations stay near 1 GB in f32.
    pub const GPU_BATCH: usize = 32;

    /// Whether this is a GPU, where photos are run in batches of [`Self::GPU_BATCH`].
    pub fn is_gpu(self) -> bool {
        !matches!(self, Self::Cpu)
    }

    pub fn device(self) -> Result<candle_core::Device, ModelError> {
        match self {
            Self::Cpu => Ok(candle_core::Device::Cpu),
            Self::Cuda if cfg!(feature = "cuda") => candle_core::Device::new_cuda(0)
                .map_err(ModelError::candle("could not open CUDA device 0")),
            Self::Metal if cfg!(feature = "metal") => candle_core::Device::new_metal(0)
                .map_err(ModelError::candle("could not open Metal device 0")),
            Self::Cuda => Err(ModelError::DeviceUnavailable("cuda".into())),
            Self::Metal => Err(ModelError::DeviceUnavailable("metal".into())),
        }
    }
}

/// How the CLIP image tower computes: what the user asked for. Exact is the default and the
/// only mode that reproduces PyTorch's f32 numbers; fast mode is chosen only by the user
/// (`--precision bf16`, or the model panel), never on its own.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 everywhere, as PyTorch's GeoCLIP.
    #[default]
    Exact,
    /// Fast mode: the image tower's matrix products in bf16 x bf16 -> f32 (weights converted
    /// once at load); layer norms, softmax, the image MLP and the location encoder stay f32.
    Bf16,
}

impl Precision {
    /// The name used on the command line, in settings and in provenance.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Bf16 => "bf16",
        }
    }
}

/// Hex sha256 of a file, streamed.
pub fn sha256_file(path: &std::path::Path) -> Result<String, ModelError> {
    use sha2::Digest as _;
    use std::io::Read as _;
    let mut file = std::fs::File::open(path).map_err(ModelError::io("open", path))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(ModelError::io("read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Hex sha256 of bytes.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}
