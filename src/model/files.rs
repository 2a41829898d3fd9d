//! Model files on disk: where they live, the GeoCLIP release format, importing the official
//! `geoclip` package (wheel or unpacked folder), release folders and CLIP backbone folders,
//! installing from the Hub, and `model info`.
//!
//! Everything ends in one layout under the user's data dir:
//! ```text
//! <data>/models/geoclip/                   the release: config.json, model.safetensors, <gallery>.csv, manifest.json
//! <data>/models/clip-vit-large-patch14/    the backbone: config.json, model.safetensors, preprocessor_config.json, manifest.json
//! <cache>/gallery/                         precomputed gallery features, keyed by hashes
//! ```
//! `manifest.json` records each file's size and sha256 at install time; `verify` re-checks them.

use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::clip::ClipVisionConfig;
use super::clip_text::ClipTextConfig;
use super::heads::{ImageMlp, LocationEncoder};
use super::preprocess::PreprocessConfig;
pub use super::text::TOKENIZER_FILE;
use super::weights::{TensorSource, WeightFile};
use super::{ModelError, sha256_file};

pub const RELEASE_MODEL_TYPE: &str = "geoclip-geolocation";
pub const RELEASE_FORMAT_VERSION: u32 = 1;
pub const RELEASE_REPO_ID: &str = "VicenteVivanco/geoclip-geolocation";
pub const RELEASE_REVISION: &str = "main";
pub const BACKBONE_REPO_ID: &str = "openai/clip-vit-large-patch14";
/// The backbone commit GeoCLIP was trained against, pinned so a Hub change can't swap weights.
pub const BACKBONE_REVISION: &str = "32bd64288804d66eefd0ccbe215aa642df71cc41";
pub const GALLERY_FILE: &str = "coordinates_100K.csv";
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const CONFIG_FILE: &str = "config.json";
pub const PREPROCESSOR_FILE: &str = "preprocessor_config.json";
pub const MANIFEST_FILE: &str = "manifest.json";
/// A CLIP folder's tokenizer files that `model import` takes along: `tokenizer.json` is the one
/// read; the others are the same tokenizer in transformers' older form, kept with it.
pub const TOKENIZER_FILES: [&str; 5] = [
    TOKENIZER_FILE,
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
];

const LOGIT_SCALE: &str = "logit_scale";
const MLP_PREFIX: &str = "image_encoder.mlp.";
const LOCATION_PREFIX: &str = "location_encoder.";

/// Where geoloupe keeps its files: three folders, each for one kind of file.
///
/// | kind | what | Linux (XDG) | Windows | macOS |
/// |---|---|---|---|---|
/// | data: kept | `models/`, `library.sqlite3`, `backups/` (EXIF write backups) | `$XDG_DATA_HOME/geoloupe` (`~/.local/share/geoloupe`) | `%LOCALAPPDATA%\geoloupe\geoloupe\data` (local: 1.7 GB of models must not roam) | `~/Library/Application Support/org.geoloupe.geoloupe` |
/// | cache: deletable | `gallery/` (feature cache), `thumbnails/`, `tiles/` | `$XDG_CACHE_HOME/geoloupe` (`~/.cache/geoloupe`) | `%LOCALAPPDATA%\geoloupe\geoloupe\cache` | `~/Library/Caches/org.geoloupe.geoloupe` |
/// | config | `app.ron` (settings, window state) | `$XDG_CONFIG_HOME/geoloupe` (`~/.config/geoloupe`) | `%APPDATA%\geoloupe\geoloupe\config` (roaming) | `~/Library/Application Support/org.geoloupe.geoloupe` |
///
/// `--data-dir DIR` or `GEOLOUPE_DATA_DIR=DIR` puts all three under `DIR` (data in `DIR`, the
/// others in `DIR/cache` and `DIR/config`). The folders come from `directories`
/// ([`ProjectDirs`](directories::ProjectDirs) `org`, `geoloupe`, `geoloupe`); see
/// [`folders_for`] for the same table as code.
#[derive(Clone, Debug)]
pub struct DataDirs {
    pub data_dir: PathBuf,
    pub cache_dir: PathBuf,
    pub config_dir: PathBuf,
}

impl DataDirs {
    /// `explicit`, else `$GEOLOUPE_DATA_DIR` (data, cache and config all below it), else the
    /// platform's folders (the table above).
    pub fn resolve(explicit: Option<&Path>) -> Result<Self, ModelError> {
        if let Some(dir) = explicit
            .map(Path::to_owned)
            .or_else(|| std::env::var_os("GEOLOUPE_DATA_DIR").map(PathBuf::from))
        {
            return Ok(Self::below(dir));
        }
        let dirs =
            directories::ProjectDirs::from("org", "geoloupe", "geoloupe").ok_or_else(|| {
                ModelError::MissingFile {
                    what: "home folder".into(),
                    hint: "Set GEOLOUPE_DATA_DIR or pass --data-dir".into(),
                    path: PathBuf::from("~"),
                }
            })?;
        Ok(Self {
            data_dir: choose_data_dir(dirs.data_local_dir(), dirs.data_dir(), |p| p.exists()),
            cache_dir: dirs.cache_dir().to_owned(),
            config_dir: dirs.config_dir().to_owned(),
        })
    }

    /// Everything below one folder (`--data-dir`, `GEOLOUPE_DATA_DIR`).
    pub fn below(dir: PathBuf) -> Self {
        Self {
            cache_dir: dir.join("cache"),
            config_dir: dir.join("config"),
            data_dir: dir,
        }
    }

    /// The settings file (eframe's storage: geoloupe's settings and the window's state).
    pub fn settings_file(&self) -> PathBuf {
        self.config_dir.join(SETTINGS_FILE)
    }

    pub fn release_dir(&self) -> PathBuf {
        self.data_dir.join("models").join("geoclip")
    }

    pub fn backbone_dir(&self) -> PathBuf {
        self.data_dir.join("models").join("clip-vit-large-patch14")
    }

    pub fn gallery_cache_dir(&self) -> PathBuf {
        self.cache_dir.join("gallery")
    }
}

/// The settings file's name in [`DataDirs::config_dir`].
pub const SETTINGS_FILE: &str = "app.ron";

/// The data folder: `local` (on Windows `%LOCALAPPDATA%`, which does not roam: models are
/// 1.7 GB), unless only `roaming` exists, from a version that kept its data in `%APPDATA%`;
/// that one is used where it is rather than moved. On Linux and macOS both are the same folder.
pub fn choose_data_dir(local: &Path, roaming: &Path, exists: impl Fn(&Path) -> bool) -> PathBuf {
    if local != roaming && !exists(local) && exists(roaming) {
        log::info!(
            "using the data folder of an earlier version: {}",
            roaming.display()
        );
        return roaming.to_owned();
    }
    local.to_owned()
}

/// Where eframe kept the settings before they moved to [`DataDirs::settings_file`]: its own
/// folder for the app id `org.geoloupe.geoloupe` (`eframe::storage_dir`, which follows
/// `directories`: `~/.local/share/org.geoloupe.geoloupe` on Linux, `%APPDATA%\org.geoloupe.geoloupe\data`
/// on Windows, the same folder as now on macOS).
pub fn legacy_settings_file() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "org.geoloupe.geoloupe")
        .map(|dirs| dirs.data_dir().join(SETTINGS_FILE))
}

/// Copies the settings from `legacy` to `file` when `file` doesn't exist yet (the old file is
/// left for an older version); true when it copied. Nothing to copy is not an error.
pub fn migrate_settings(file: &Path, legacy: &Path) -> std::io::Result<bool> {
    if file == legacy || file.exists() || !legacy.is_file() {
        return Ok(false);
    }
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = file.with_extension("ron.part");
    std::fs::copy(legacy, &tmp)?;
    std::fs::rename(&tmp, file)?;
    Ok(true)
}

/// The systems of [`folders_for`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    /// Linux and the BSDs: the XDG base directories.
    Xdg,
    Windows,
    MacOs,
}

/// The folders [`DataDirs::resolve`] picks on `system` (no override, no earlier version's
/// folder), from the variables it reads there: `home`, and `XDG_DATA_HOME`, `XDG_CACHE_HOME`,
/// `XDG_CONFIG_HOME` (Linux: used when absolute), `APPDATA` and `LOCALAPPDATA` (Windows: the
/// known folders Roaming and Local), given by `var`. Text in, text out, so the table is tested
/// on every system; the test on each host checks it against `directories`.
pub fn folders_for(
    system: System,
    home: &str,
    var: impl Fn(&str) -> Option<String>,
) -> [String; 3] {
    match system {
        System::Xdg => {
            let base = |name: &str, fallback: &str| {
                var(name)
                    .filter(|v| v.starts_with('/'))
                    .unwrap_or_else(|| format!("{home}/{fallback}"))
            };
            [
                format!("{}/geoloupe", base("XDG_DATA_HOME", ".local/share")),
                format!("{}/geoloupe", base("XDG_CACHE_HOME", ".cache")),
                format!("{}/geoloupe", base("XDG_CONFIG_HOME", ".config")),
            ]
        }
        System::Windows => {
            let local = var("LOCALAPPDATA").unwrap_or_else(|| format!(r"{home}\AppData\Local"));
            let roaming = var("APPDATA").unwrap_or_else(|| format!(r"{home}\AppData\Roaming"));
            [
                format!(r"{local}\geoloupe\geoloupe\data"),
                format!(r"{local}\geoloupe\geoloupe\cache"),
                format!(r"{roaming}\geoloupe\geoloupe\config"),
            ]
        }
        System::MacOs => [
            format!("{home}/Library/Application Support/org.geoloupe.geoloupe"),
            format!("{home}/Library/Caches/org.geoloupe.geoloupe"),
            format!("{home}/Library/Application Support/org.geoloupe.geoloupe"),
        ],
    }
}

/// `config.json` of a GeoCLIP release.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReleaseConfig {
    pub model_type: String,
    pub format_version: u32,
    pub sigma: Vec<f64>,
    pub gallery_file: String,
    pub backbone: BackboneRef,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackboneRef {
    pub repo_id: String,
    pub revision: String,
}

impl ReleaseConfig {
    pub fn geoclip_default() -> Self {
        Self {
            model_type: RELEASE_MODEL_TYPE.into(),
            format_version: RELEASE_FORMAT_VERSION,
            sigma: vec![1.0, 16.0, 256.0],
            gallery_file: GALLERY_FILE.into(),
            backbone: BackboneRef {
                repo_id: BACKBONE_REPO_ID.into(),
                revision: BACKBONE_REVISION.into(),
            },
        }
    }
}

/// The tensors of a release's `model.safetensors`, with shapes.
pub fn release_expected_tensors() -> Vec<(String, Vec<usize>)> {
    let mut out = vec![(LOGIT_SCALE.to_owned(), vec![])];
    out.extend(LocationEncoder::expected_tensors(LOCATION_PREFIX));
    out.extend(ImageMlp::expected_tensors(MLP_PREFIX));
    out
}

/// A validated GeoCLIP release folder.
#[derive(Clone, Debug)]
pub struct Release {
    pub dir: PathBuf,
    pub config: ReleaseConfig,
    pub weights_path: PathBuf,
    pub gallery_path: PathBuf,
}

impl Release {
    /// Reads and checks `config.json` and that `model.safetensors` holds exactly the expected tensors.
    pub fn open(dir: &Path) -> Result<Self, ModelError> {
        let config_path = dir.join(CONFIG_FILE);
        let invalid = |reason: String| ModelError::Invalid {
            what: "GeoCLIP release config".into(),
            reason,
            path: config_path.clone(),
        };
        let text = std::fs::read_to_string(&config_path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ModelError::MissingFile {
                what: "GeoCLIP release".into(),
                hint: "Run `geoloupe model import geoclip-1.3.0-py3-none-any.whl` (from `pip download --no-deps geoclip==1.3.0`) or `geoloupe model download`".into(),
                path: config_path.clone(),
            },
            _ => ModelError::Io { action: "read".into(), path: config_path.clone(), source: e },
        })?;
        let config: ReleaseConfig =
            serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        if config.model_type != RELEASE_MODEL_TYPE
            || config.format_version != RELEASE_FORMAT_VERSION
        {
            return Err(invalid(format!(
                "expected model_type `{RELEASE_MODEL_TYPE}` with format_version {RELEASE_FORMAT_VERSION}, found `{}` version {}",
                config.model_type, config.format_version
            )));
        }
        if config.sigma.len() != LocationEncoder::NUM_CAPSULES {
            return Err(invalid(format!(
                "sigma must list {} scales",
                LocationEncoder::NUM_CAPSULES
            )));
        }
        let gallery_name = Path::new(&config.gallery_file);
        if !config.gallery_file.ends_with(".csv")
            || gallery_name.file_name() != Some(gallery_name.as_os_str())
        {
            return Err(invalid(
                "gallery_file must name a CSV file inside the release".into(),
            ));
        }
        let weights_path = dir.join(WEIGHTS_FILE);
        let gallery_path = dir.join(&config.gallery_file);
        if !gallery_path.is_file() {
            return Err(ModelError::MissingFile {
                what: "GPS gallery".into(),
                hint: "The release folder is incomplete; import it again".into(),
                path: gallery_path,
            });
        }
        let weights = WeightFile::open(&weights_path, &Device::Cpu)?;
        check_exact_tensors(&weights, &release_expected_tensors())?;
        Ok(Self {
            dir: dir.to_owned(),
            config,
            weights_path,
            gallery_path,
        })
    }

    /// The scalar `logit_scale` (before `exp`).
    pub fn logit_scale(weights: &dyn TensorSource) -> Result<f32, ModelError> {
        weights
            .tensor(LOGIT_SCALE, &[])?
            .to_scalar::<f32>()
            .map_err(ModelError::candle("reading logit_scale"))
    }

    pub fn mlp(weights: &dyn TensorSource) -> Result<ImageMlp, ModelError> {
        ImageMlp::new(weights, MLP_PREFIX)
    }

    pub fn location_encoder(weights: &dyn TensorSource) -> Result<LocationEncoder, ModelError> {
        LocationEncoder::new(weights, LOCATION_PREFIX)
    }
}

fn check_exact_tensors(
    weights: &WeightFile,
    expected: &[(String, Vec<usize>)],
) -> Result<(), ModelError> {
    weights.check_all(expected)?;
    let known: std::collections::HashSet<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    let mut extra: Vec<String> = weights
        .shapes()
        .into_keys()
        .filter(|n| !known.contains(n.as_str()))
        .collect();
    extra.sort();
    if let Some(first) = extra.first() {
        return Err(ModelError::Invalid {
            what: "GeoCLIP weights".into(),
            reason: format!(
                "unexpected tensor `{first}` ({} unexpected in all)",
                extra.len()
            ),
            path: weights.path().to_owned(),
        });
    }
    Ok(())
}

/// A validated CLIP backbone folder in Hugging Face layout.
#[derive(Clone, Debug)]
pub struct Backbone {
    pub dir: PathBuf,
    pub vision: ClipVisionConfig,
    /// The text tower's config, when `config.json` has a `text_config` that geoloupe can run
    /// (text queries only; photos never need it). Else why not.
    pub text: Result<ClipTextConfig, String>,
    pub preprocess: PreprocessConfig,
    pub weights_path: PathBuf,
    /// `tokenizer.json` (text queries only: it may be absent).
    pub tokenizer_path: PathBuf,
}

impl Backbone {
    pub fn open(dir: &Path) -> Result<Self, ModelError> {
        let config_path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&config_path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ModelError::MissingFile {
                what: "CLIP backbone".into(),
                hint: "Run `geoloupe model download`, or `geoloupe model import <folder>` with a Hugging Face CLIP folder (config.json, model.safetensors, preprocessor_config.json)".into(),
                path: config_path.clone(),
            },
            _ => ModelError::Io { action: "read".into(), path: config_path.clone(), source: e },
        })?;
        let vision =
            ClipVisionConfig::from_hf_json(&text).map_err(|reason| ModelError::Invalid {
                what: "CLIP config".into(),
                reason,
                path: config_path.clone(),
            })?;
        let pre_path = dir.join(PREPROCESSOR_FILE);
        let preprocess = match std::fs::read_to_string(&pre_path) {
            Ok(t) => PreprocessConfig::from_json(&t).map_err(|reason| ModelError::Invalid {
                what: "preprocessor config".into(),
                reason,
                path: pre_path.clone(),
            })?,
            Err(_) => {
                return Err(ModelError::MissingFile {
                    what: "preprocessor_config.json".into(),
                    hint: "A CLIP folder needs config.json, model.safetensors and preprocessor_config.json".into(),
                    path: pre_path,
                });
            }
        };
        if preprocess.crop_height_px as usize != vision.image_size
            || preprocess.crop_width_px as usize != vision.image_size
        {
            return Err(ModelError::Invalid {
                what: "preprocessor config".into(),
                reason: format!(
                    "crop size does not match the model's image_size {}",
                    vision.image_size
                ),
                path: pre_path,
            });
        }
        let weights_path = dir.join(WEIGHTS_FILE);
        WeightFile::open(&weights_path, &Device::Cpu)?.check_all(&vision.expected_tensors())?;
        Ok(Self {
            dir: dir.to_owned(),
            vision,
            text: ClipTextConfig::from_hf_json(&text),
            preprocess,
            weights_path,
            tokenizer_path: dir.join(TOKENIZER_FILE),
        })
    }
}

/// What was installed.
#[derive(Clone, Debug)]
pub struct InstallReport {
    pub kind: &'static str,
    pub dir: PathBuf,
    pub files: Vec<ManifestEntry>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub name: String,
    pub size_bytes: u64,
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub source: String,
    pub installed_at_unix_secs: u64,
    pub files: Vec<ManifestEntry>,
}

impl Manifest {
    pub fn read(dir: &Path) -> Option<Self> {
        serde_json::from_str(&std::fs::read_to_string(dir.join(MANIFEST_FILE)).ok()?).ok()
    }

    /// Re-hashes every file; the first difference is an error.
    pub fn verify(&self, dir: &Path) -> Result<(), ModelError> {
        for entry in &self.files {
            let path = dir.join(&entry.name);
            let actual = sha256_file(&path)?;
            if actual != entry.sha256 {
                return Err(ModelError::Checksum {
                    path,
                    expected: entry.sha256.clone(),
                    actual,
                });
            }
        }
        Ok(())
    }
}

/// Imports whatever `source` is: the `geoclip` wheel, an unpacked `geoclip` package, a release
/// folder, or a CLIP backbone folder.
pub fn import(source: &Path, dirs: &DataDirs) -> Result<InstallReport, ModelError> {
    if source.is_file() {
        return import_package(&PackageSource::Wheel(source.to_owned()), dirs);
    }
    if !source.is_dir() {
        return Err(ModelError::MissingFile {
            what: "import source".into(),
            hint: "Give the geoclip wheel, a GeoCLIP release folder or a CLIP folder".into(),
            path: source.to_owned(),
        });
    }
    if let Some(weights_dir) = find_package_weights(source) {
        return import_package(&PackageSource::Folder(weights_dir), dirs);
    }
    let config: serde_json::Value = std::fs::read_to_string(source.join(CONFIG_FILE))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    match config.get("model_type").and_then(|v| v.as_str()) {
        Some(RELEASE_MODEL_TYPE) => {
            let release = Release::open(source)?;
            let names = [CONFIG_FILE, WEIGHTS_FILE, release.config.gallery_file.as_str()];
            install_files(&in_folder(source, &names), &dirs.release_dir(), "release", &source.display().to_string())
        }
        _ if config.get("vision_config").is_some() || config.get("model_type").and_then(|v| v.as_str()) == Some("clip") => {
            Backbone::open(source)?;
            let mut names = vec![CONFIG_FILE, WEIGHTS_FILE, PREPROCESSOR_FILE];
            // The tokenizer, for text queries: taken when the folder has it.
            names.extend(TOKENIZER_FILES.iter().filter(|n| source.join(n).is_file()));
            install_files(&in_folder(source, &names), &dirs.backbone_dir(), "backbone", &source.display().to_string())
        }
        _ => Err(ModelError::Invalid {
            what: "import source".into(),
            reason: "not a geoclip package, a GeoCLIP release (config.json model_type `geoclip-geolocation`) or a CLIP folder".into(),
            path: source.to_owned(),
        }),
    }
}

enum PackageSource {
    Wheel(PathBuf),
    /// The folder holding `weights/` and `gps_gallery/` (`geoclip/model` in the package).
    Folder(PathBuf),
}

const PKG_MLP: &str = "weights/image_encoder_mlp_weights.pth";
const PKG_LOCATION: &str = "weights/location_encoder_weights.pth";
const PKG_LOGIT_SCALE: &str = "weights/logit_scale_weights.pth";
const PKG_GALLERY: &str = "gps_gallery/coordinates_100K.csv";

fn find_package_weights(dir: &Path) -> Option<PathBuf> {
    [
        dir.join("geoclip").join("model"),
        dir.join("model"),
        dir.to_owned(),
    ]
    .into_iter()
    .find(|d| d.join(PKG_MLP).is_file())
}

impl PackageSource {
    fn read(&self, rel: &str) -> Result<Vec<u8>, ModelError> {
        match self {
            Self::Folder(dir) => {
                let path = dir.join(rel);
                std::fs::read(&path).map_err(ModelError::io("read", path))
            }
            Self::Wheel(wheel) => {
                let file = std::fs::File::open(wheel).map_err(ModelError::io("open", wheel))?;
                let not_wheel = |reason: String| ModelError::Invalid {
                    what: "geoclip wheel".into(),
                    reason,
                    path: wheel.clone(),
                };
                let mut zip = zip::ZipArchive::new(file)
                    .map_err(|e| not_wheel(format!("not a zip archive: {e}")))?;
                let name = format!("geoclip/model/{rel}");
                let mut entry = zip.by_name(&name).map_err(|_| {
                    not_wheel(format!(
                        "`{name}` is missing; expected the geoclip 1.3.0 wheel"
                    ))
                })?;
                let mut bytes = Vec::with_capacity(entry.size() as usize);
                entry
                    .read_to_end(&mut bytes)
                    .map_err(ModelError::io(format!("extract {name} from"), wheel))?;
                Ok(bytes)
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Wheel(p) | Self::Folder(p) => p.display().to_string(),
        }
    }
}

/// Reads a PyTorch `.pth` state dict with candle's pickle reader (it needs a path).
fn read_state_dict(
    bytes: &[u8],
    scratch: &Path,
    name: &str,
) -> Result<Vec<(String, Tensor)>, ModelError> {
    let path = scratch.join(name);
    std::fs::write(&path, bytes).map_err(ModelError::io("write", &path))?;
    candle_core::pickle::read_all(&path).map_err(ModelError::candle(format!(
        "reading PyTorch weights {name}"
    )))
}

/// `logit_scale_weights.pth` holds a bare scalar parameter, which candle's pickle reader returns
/// as no tensors. A PyTorch zip checkpoint keeps each storage raw under `<archive>/data/<key>`;
/// this one has exactly one storage of one little-endian f32.
pub fn read_scalar_pth(bytes: &[u8]) -> Result<f32, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a PyTorch zip checkpoint: {e}"))?;
    let names: Vec<String> = zip
        .file_names()
        .filter_map(Result::ok)
        .map(|n| n.into_owned())
        .collect();
    let pickle_name = names
        .iter()
        .find(|n| n.ends_with("data.pkl"))
        .ok_or("no data.pkl")?
        .clone();
    let mut pickle = Vec::new();
    zip.by_name(&pickle_name)
        .map_err(|e| e.to_string())?
        .read_to_end(&mut pickle)
        .map_err(|e| e.to_string())?;
    if !pickle.windows(12).any(|w| w == b"FloatStorage") {
        return Err("the checkpoint does not hold a float32 storage".into());
    }
    let storages: Vec<&String> = names
        .iter()
        .filter(|n| n.contains("/data/") && !n.ends_with('/'))
        .collect();
    let [storage] = storages.as_slice() else {
        return Err(format!("expected one storage, found {}", storages.len()));
    };
    let mut raw = Vec::new();
    zip.by_name(storage)
        .map_err(|e| e.to_string())?
        .read_to_end(&mut raw)
        .map_err(|e| e.to_string())?;
    let raw: [u8; 4] = raw
        .as_slice()
        .try_into()
        .map_err(|_| format!("expected 4 bytes for a scalar, found {}", raw.len()))?;
    Ok(f32::from_le_bytes(raw))
}

fn import_package(source: &PackageSource, dirs: &DataDirs) -> Result<InstallReport, ModelError> {
    let staging = staging_dir(&dirs.release_dir())?;
    let result = (|| {
        let scratch = staging.join(".scratch");
        std::fs::create_dir_all(&scratch).map_err(ModelError::io("create", &scratch))?;
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        for (name, tensor) in read_state_dict(&source.read(PKG_MLP)?, &scratch, "mlp.pth")? {
            tensors.insert(format!("{MLP_PREFIX}{name}"), tensor);
        }
        for (name, tensor) in
            read_state_dict(&source.read(PKG_LOCATION)?, &scratch, "location.pth")?
        {
            tensors.insert(format!("{LOCATION_PREFIX}{name}"), tensor);
        }
        let logit_scale = read_scalar_pth(&source.read(PKG_LOGIT_SCALE)?).map_err(|reason| {
            ModelError::Invalid {
                what: "logit_scale_weights.pth".into(),
                reason,
                path: PathBuf::from(source.describe()),
            }
        })?;
        tensors.insert(
            LOGIT_SCALE.into(),
            Tensor::new(logit_scale, &Device::Cpu).map_err(ModelError::candle("logit_scale"))?,
        );
        std::fs::remove_dir_all(&scratch).map_err(ModelError::io("remove", &scratch))?;
        for (name, shape) in release_expected_tensors() {
            match tensors.get(&name) {
                None => {
                    return Err(ModelError::MissingTensor {
                        name,
                        file: PathBuf::from(source.describe()),
                    });
                }
                Some(t) if t.dims() != shape.as_slice() => {
                    return Err(ModelError::ShapeMismatch {
                        name,
                        expected: shape,
                        actual: t.dims().to_vec(),
                        file: PathBuf::from(source.describe()),
                    });
                }
                Some(_) => {}
            }
        }
        let tensors: HashMap<String, Tensor> = tensors
            .into_iter()
            .map(|(k, t)| t.to_dtype(candle_core::DType::F32).map(|t| (k, t)))
            .collect::<Result<_, _>>()
            .map_err(ModelError::candle("converting weights to f32"))?;
        let weights_path = staging.join(WEIGHTS_FILE);
        candle_core::safetensors::save(&tensors, &weights_path).map_err(ModelError::candle(
            format!("writing {}", weights_path.display()),
        ))?;
        let gallery_path = staging.join(GALLERY_FILE);
        std::fs::write(&gallery_path, source.read(PKG_GALLERY)?)
            .map_err(ModelError::io("write", &gallery_path))?;
        let config =
            serde_json::to_string_pretty(&ReleaseConfig::geoclip_default()).map_err(|e| {
                ModelError::Invalid {
                    what: "release config".into(),
                    reason: e.to_string(),
                    path: staging.clone(),
                }
            })?;
        std::fs::write(staging.join(CONFIG_FILE), config + "\n")
            .map_err(ModelError::io("write", staging.join(CONFIG_FILE)))?;
        Release::open(&staging)?;
        let names = [CONFIG_FILE, WEIGHTS_FILE, GALLERY_FILE].map(str::to_owned);
        finish_install(
            &staging,
            &names,
            &dirs.release_dir(),
            "release",
            &source.describe(),
        )
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

fn staging_dir(target: &Path) -> Result<PathBuf, ModelError> {
    let parent = target.parent().unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(ModelError::io("create", &staging))?;
    Ok(staging)
}

/// `(name, source path)` pairs for files of one folder.
pub fn in_folder(dir: &Path, names: &[&str]) -> Vec<(String, PathBuf)> {
    names
        .iter()
        .map(|n| ((*n).to_owned(), dir.join(n)))
        .collect()
}

/// Copies (or hard-links) each `(name, source)` into a staging folder, then installs it as
/// `target`. Symbolic links (as in the Hugging Face cache) are followed.
pub fn install_files(
    files: &[(String, PathBuf)],
    target: &Path,
    kind: &'static str,
    source_label: &str,
) -> Result<InstallReport, ModelError> {
    let staging = staging_dir(target)?;
    let result = (|| {
        for (name, from) in files {
            let from = crate::platform::canonicalize(from).map_err(ModelError::io("find", from))?;
            let to = staging.join(name);
            if std::fs::hard_link(&from, &to).is_err() {
                std::fs::copy(&from, &to)
                    .map_err(ModelError::io(format!("copy {} to", from.display()), &to))?;
            }
        }
        let names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
        finish_install(&staging, &names, target, kind, source_label)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

/// Hashes the staged files, writes the manifest and swaps the staging folder into place.
fn finish_install(
    staging: &Path,
    names: &[String],
    target: &Path,
    kind: &'static str,
    source_label: &str,
) -> Result<InstallReport, ModelError> {
    let mut files = Vec::new();
    for name in names {
        let path = staging.join(name);
        let size_bytes = std::fs::metadata(&path)
            .map_err(ModelError::io("stat", &path))?
            .len();
        files.push(ManifestEntry {
            name: name.clone(),
            size_bytes,
            sha256: sha256_file(&path)?,
        });
    }
    let manifest = Manifest {
        source: source_label.to_owned(),
        installed_at_unix_secs: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        files: files.clone(),
    };
    let manifest_path = staging.join(MANIFEST_FILE);
    let text = serde_json::to_string_pretty(&manifest).unwrap_or_default();
    std::fs::write(&manifest_path, text + "\n").map_err(ModelError::io("write", &manifest_path))?;
    let old = target.with_extension("old");
    let _ = std::fs::remove_dir_all(&old);
    if target.exists() {
        std::fs::rename(target, &old).map_err(ModelError::io("move aside", target))?;
    }
    std::fs::rename(staging, target).map_err(ModelError::io("move into place", target))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(InstallReport {
        kind,
        dir: target.to_owned(),
        files,
    })
}

/// The two installed parts of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Component {
    /// GeoCLIP's heads and GPS gallery (`models/geoclip/`).
    Release,
    /// The CLIP vision tower (`models/clip-vit-large-patch14/`).
    Backbone,
}

/// One line of `model info`.
#[derive(Clone, Debug, Serialize)]
pub struct ComponentInfo {
    pub name: &'static str,
    pub component: Component,
    pub dir: PathBuf,
    pub installed: bool,
    /// Nothing is installed there (no `config.json`), as opposed to something broken.
    pub absent: bool,
    /// Bytes an interrupted download of this part left in the Hugging Face cache (`.part`
    /// files): the next download resumes from there.
    pub partial_download_bytes: u64,
    /// What was found, for people (the backbone's shape).
    pub detail: Option<String>,
    pub problem: Option<String>,
    pub files: Vec<ManifestEntry>,
    pub fix: Option<String>,
}

/// What is installed, where, and what is missing with the command that fixes it; downloads
/// left half-way are looked for in the environment's Hugging Face cache.
pub fn info(dirs: &DataDirs, verify_hashes: bool) -> Vec<ComponentInfo> {
    info_with_hub(
        dirs,
        verify_hashes,
        &super::download::DownloadOptions::from_env(),
    )
}

/// [`info`], with downloads left half-way looked for in `hub`'s cache.
pub fn info_with_hub(
    dirs: &DataDirs,
    verify_hashes: bool,
    hub: &super::download::DownloadOptions,
) -> Vec<ComponentInfo> {
    let release_fix = "pip download --no-deps geoclip==1.3.0 && geoloupe model import geoclip-1.3.0-py3-none-any.whl   (or: geoloupe model download)";
    let backbone_fix =
        "geoloupe model download   (or: geoloupe model import <Hugging Face CLIP folder>)";
    let check = |name: &'static str,
                 component: Component,
                 repo_id: &str,
                 dir: PathBuf,
                 open: &dyn Fn(&Path) -> Result<Option<String>, ModelError>,
                 fix: &str| {
        let manifest = Manifest::read(&dir);
        let (detail, mut problem) = match open(&dir) {
            Ok(detail) => (detail, None),
            Err(e) => (None, Some(e.to_string())),
        };
        if problem.is_none() && verify_hashes {
            problem = match &manifest {
                Some(m) => m.verify(&dir).err().map(|e| e.to_string()),
                None => Some("no manifest.json: cannot verify checksums; import it again".into()),
            };
        }
        ComponentInfo {
            name,
            component,
            absent: !dir.join(CONFIG_FILE).exists(),
            partial_download_bytes: if problem.is_some() {
                super::download::partial_bytes(hub, repo_id)
            } else {
                0
            },
            installed: problem.is_none(),
            detail,
            fix: problem.as_ref().map(|_| fix.to_owned()),
            problem,
            files: manifest.map(|m| m.files).unwrap_or_default(),
            dir,
        }
    };
    vec![
        check(
            "GeoCLIP release (heads + gallery)",
            Component::Release,
            RELEASE_REPO_ID,
            dirs.release_dir(),
            &|d| Release::open(d).map(|_| None),
            release_fix,
        ),
        check(
            "CLIP backbone",
            Component::Backbone,
            BACKBONE_REPO_ID,
            dirs.backbone_dir(),
            &|d| Backbone::open(d).map(|b| Some(backbone_detail(&b))),
            backbone_fix,
        ),
    ]
}

/// `model info`'s line for a backbone: the vision tower, and whether text queries can run.
fn backbone_detail(backbone: &Backbone) -> String {
    let text = match (&backbone.text, backbone.tokenizer_path.is_file()) {
        (Ok(text), true) => format!("text queries: {} + {TOKENIZER_FILE}", text.describe()),
        (Ok(_), false) => format!("text queries: no {TOKENIZER_FILE}"),
        (Err(reason), _) => format!("text queries: {reason}"),
    };
    format!("{}; {text}", backbone.vision.describe())
}

/// The caller's progress, plus its cancel flag, which stops a transfer mid-file.
struct CancellableProgress<'a> {
    inner: &'a mut dyn super::download::DownloadProgress,
    cancel: &'a std::sync::atomic::AtomicBool,
}

impl super::download::DownloadProgress for CancellableProgress<'_> {
    fn file_started(&mut self, file: &str, total_bytes: Option<u64>) {
        self.inner.file_started(file, total_bytes);
    }
    fn bytes(&mut self, file: &str, done_bytes: u64) {
        self.inner.bytes(file, done_bytes);
    }
    fn file_finished(&mut self, file: &str) {
        self.inner.file_finished(file);
    }
    fn cancelled(&self) -> bool {
        self.cancel.load(std::sync::atomic::Ordering::SeqCst) || self.inner.cancelled()
    }
}

/// Files of the release and the backbone on the Hub, for `model download`.
pub fn hub_repos() -> [super::download::RepoFiles; 2] {
    [
        super::download::RepoFiles {
            repo_id: RELEASE_REPO_ID.into(),
            revision: RELEASE_REVISION.into(),
            files: vec![CONFIG_FILE.into(), WEIGHTS_FILE.into(), GALLERY_FILE.into()],
            expected_sha256: BTreeMap::new(),
        },
        super::download::RepoFiles {
            repo_id: BACKBONE_REPO_ID.into(),
            revision: BACKBONE_REVISION.into(),
            files: vec![
                CONFIG_FILE.into(),
                WEIGHTS_FILE.into(),
                PREPROCESSOR_FILE.into(),
                TOKENIZER_FILE.into(),
            ],
            expected_sha256: BTreeMap::new(),
        },
    ]
}

/// Downloads the GeoCLIP release and its CLIP backbone from the Hub (`hub_repos`) and installs
/// each into its data folder, checking that it opens before it replaces anything. Consent is the
/// caller's: `geoloupe model download` asks on the terminal, the app in a dialog. `cancel`
/// stops a transfer mid-file (several times a second) and is checked between repositories;
/// files that completed stay in the Hugging Face cache for the next try.
pub fn download_and_install(
    dirs: &DataDirs,
    options: &super::download::DownloadOptions,
    progress: &mut dyn super::download::DownloadProgress,
    cancel: &std::sync::atomic::AtomicBool,
) -> Result<Vec<InstallReport>, ModelError> {
    use std::sync::atomic::Ordering;
    let repos = hub_repos();
    let mut reports = Vec::with_capacity(repos.len());
    for (repo, target, kind) in [
        (&repos[0], dirs.release_dir(), "release"),
        (&repos[1], dirs.backbone_dir(), "backbone"),
    ] {
        if cancel.load(Ordering::SeqCst) {
            return Err(ModelError::Cancelled);
        }
        let fetched = match super::download::fetch(
            options,
            repo,
            &mut CancellableProgress {
                inner: &mut *progress,
                cancel,
            },
        ) {
            Err(super::download::DownloadError::Cancelled { .. }) => {
                return Err(ModelError::Cancelled);
            }
            other => other?,
        };
        if cancel.load(Ordering::SeqCst) {
            return Err(ModelError::Cancelled);
        }
        let files: Vec<(String, PathBuf)> = fetched
            .iter()
            .map(|f| (f.name.clone(), f.path.clone()))
            .collect();
        let report = install_files(
            &files,
            &target,
            kind,
            &format!("hf://{}@{}", repo.repo_id, repo.revision),
        )?;
        let usable = match kind {
            "release" => Release::open(&report.dir).map(|_| ()),
            _ => Backbone::open(&report.dir).map(|_| ()),
        };
        if let Err(e) = usable {
            let _ = std::fs::remove_dir_all(&report.dir);
            return Err(e);
        }
        reports.push(report);
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The folder table of [`DataDirs`] (and README), per system, from the variables each
    /// system's folders come from.
    #[test]
    fn folders_per_system() {
        let none = |_: &str| None;
        assert_eq!(
            folders_for(System::Xdg, "/home/me", none),
            [
                "/home/me/.local/share/geoloupe",
                "/home/me/.cache/geoloupe",
                "/home/me/.config/geoloupe"
            ]
        );
        let xdg = |name: &str| match name {
            "XDG_DATA_HOME" => Some("/data".to_owned()),
            "XDG_CACHE_HOME" => Some("relative/is/ignored".to_owned()),
            "XDG_CONFIG_HOME" => Some("/etc-me".to_owned()),
            _ => None,
        };
        assert_eq!(
            folders_for(System::Xdg, "/home/me", xdg),
            [
                "/data/geoloupe",
                "/home/me/.cache/geoloupe",
                "/etc-me/geoloupe"
            ]
        );
        let windows = |name: &str| match name {
            "APPDATA" => Some(r"C:\Users\Me\AppData\Roaming".to_owned()),
            "LOCALAPPDATA" => Some(r"C:\Users\Me\AppData\Local".to_owned()),
            _ => None,
        };
        assert_eq!(
            folders_for(System::Windows, r"C:\Users\Me", windows),
            [
                r"C:\Users\Me\AppData\Local\geoloupe\geoloupe\data",
                r"C:\Users\Me\AppData\Local\geoloupe\geoloupe\cache",
                r"C:\Users\Me\AppData\Roaming\geoloupe\geoloupe\config"
            ]
        );
        assert_eq!(
            folders_for(System::MacOs, "/Users/me", none),
            [
                "/Users/me/Library/Application Support/org.geoloupe.geoloupe",
                "/Users/me/Library/Caches/org.geoloupe.geoloupe",
                "/Users/me/Library/Application Support/org.geoloupe.geoloupe"
            ]
        );
    }

    /// On the system the tests run on, the table is what `directories` gives (so the README's
    /// table is checked on Linux in CI, on Windows under Wine, on a Mac by whoever runs it).
    #[test]
    fn the_table_is_what_directories_gives_here() {
        let system = if cfg!(windows) {
            System::Windows
        } else if cfg!(target_os = "macos") {
            System::MacOs
        } else {
            System::Xdg
        };
        let (Some(home), Some(dirs)) = (
            std::env::home_dir(),
            directories::ProjectDirs::from("org", "geoloupe", "geoloupe"),
        ) else {
            panic!("no home folder to check against");
        };
        let var = |name: &str| std::env::var(name).ok();
        let expected = folders_for(system, &home.to_string_lossy(), var);
        let got = [dirs.data_local_dir(), dirs.cache_dir(), dirs.config_dir()]
            .map(|p| p.to_string_lossy().into_owned());
        assert_eq!(got, expected);
    }

    #[test]
    fn one_folder_holds_everything_when_given() {
        let dirs = DataDirs::resolve(Some(Path::new("/tmp/gl"))).unwrap();
        assert_eq!(dirs.data_dir, Path::new("/tmp/gl"));
        assert_eq!(dirs.cache_dir, Path::new("/tmp/gl/cache"));
        assert_eq!(dirs.config_dir, Path::new("/tmp/gl/config"));
        assert_eq!(dirs.settings_file(), Path::new("/tmp/gl/config/app.ron"));
        assert_eq!(dirs.gallery_cache_dir(), Path::new("/tmp/gl/cache/gallery"));
    }

    /// Windows: local data unless only an earlier version's roaming folder exists, which is
    /// then used where it is (never moved).
    #[test]
    fn an_earlier_roaming_data_folder_is_kept() {
        let (local, roaming) = (Path::new("L"), Path::new("R"));
        let existing = |names: &'static [&'static str]| {
            move |p: &Path| names.iter().any(|n| Path::new(n) == p)
        };
        assert_eq!(choose_data_dir(local, roaming, existing(&[])), local);
        assert_eq!(choose_data_dir(local, roaming, existing(&["R"])), roaming);
        assert_eq!(
            choose_data_dir(local, roaming, existing(&["L", "R"])),
            local
        );
        assert_eq!(choose_data_dir(local, roaming, existing(&["L"])), local);
        // Linux and macOS: one folder.
        assert_eq!(choose_data_dir(local, local, existing(&["L"])), local);
    }

    #[test]
    fn settings_are_copied_once_from_eframes_old_place() {
        let tmp = tempfile::tempdir().unwrap();
        let legacy = tmp.path().join("share/org.geoloupe.geoloupe/app.ron");
        let file = tmp.path().join("config/geoloupe/app.ron");
        // Nothing to copy.
        assert!(!migrate_settings(&file, &legacy).unwrap());
        assert!(!file.exists());
        std::fs::create_dir_all(legacy.parent().unwrap()).unwrap();
        std::fs::write(&legacy, "(old)").unwrap();
        assert!(migrate_settings(&file, &legacy).unwrap());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "(old)");
        assert!(legacy.exists(), "the old file stays for an older version");
        // Never over settings already there.
        std::fs::write(&file, "(new)").unwrap();
        assert!(!migrate_settings(&file, &legacy).unwrap());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "(new)");
    }

    #[test]
    fn scalar_pth_round_trip_from_a_handmade_checkpoint() {
        use std::io::Write as _;
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut zip = zip::ZipWriter::new(&mut buf);
            let opts = zip::write::SimpleFileOptions::default();
            zip.start_file("archive/data.pkl", opts).unwrap();
            zip.write_all(b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nctorch\nFloatStorage\n")
                .unwrap();
            zip.start_file("archive/data/0", opts).unwrap();
            zip.write_all(&2.659_26_f32.to_le_bytes()).unwrap();
            zip.finish().unwrap();
        }
        assert_eq!(read_scalar_pth(buf.get_ref()).unwrap(), 2.659_26);
        assert!(read_scalar_pth(b"not a zip").is_err());
    }

    #[test]
    fn release_config_json_shape() {
        let json = serde_json::to_value(ReleaseConfig::geoclip_default()).unwrap();
        assert_eq!(json["model_type"], "geoclip-geolocation");
        assert_eq!(json["format_version"], 1);
        assert_eq!(json["backbone"]["repo_id"], "openai/clip-vit-large-patch14");
        assert_eq!(json["gallery_file"], "coordinates_100K.csv");
    }

    #[test]
    fn missing_release_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let err = Release::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("geoloupe model import"), "{err}");
        let err = Backbone::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("geoloupe model download"), "{err}");
    }
}
