//! Fetching model files from the Hugging Face Hub, for `geoloupe model download` and the app.
//!
//! This is the only place where geoloupe talks to the network, and it only does so when the user
//! asks for it. Files land in the standard Hugging Face cache that Python's `huggingface_hub`,
//! `hf-hub` and other tools share:
//! `<cache>/models--<owner>--<name>/{blobs/<etag>, snapshots/<commit>/<file>, refs/<revision>}`.
//!
//! What this module does:
//! - **settings from the environment** ([`DownloadOptions::from_env`]): `HF_ENDPOINT`, the cache
//!   (`HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`, as `hf-hub` resolves
//!   it), `HF_TOKEN`, and `HF_HUB_OFFLINE`;
//! - **offline mode** that resolves from the cache only (through `hf-hub`'s `local_files_only`)
//!   and never opens a connection; a file that is not cached is [`DownloadError::NotCached`];
//! - **resumable transfers** (`resume`): a `HEAD` of the resolve URL
//!   (`{endpoint}/{repo}/resolve/{revision}/{file}`) gives the commit, the cache key and, for
//!   LFS files, the sha256 (`X-Linked-Etag`) and size (`X-Linked-Size`); the bytes go to
//!   `blobs/<etag>.part`, and a broken-off transfer goes on with `Range: bytes=<have>-`, within
//!   one fetch (as long as each try brings new bytes) and across runs, cancels and app restarts.
//!   A server that ignores `Range` (`200` instead of `206`) restarts the file from byte 0;
//! - **checksums**: the sha256 of every file is computed over the finished `.part` and compared
//!   with the Hub's (LFS files) and with an optional pinned value per file before it is renamed
//!   into place; a mismatch deletes the bad copy so that the next run downloads it again;
//! - **progress** per file through the small [`DownloadProgress`] trait, and **cancel mid-file**
//!   through the same trait; [`RateMeter`] turns the byte counts into speed and time left;
//! - errors that name the repo, the file and what to do next.
//!
//! Files that completed are never fetched again: a rerun only sends one `HEAD` for each of them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hf_hub::{HFClient, HFClientSync, HFError, HFRepositorySync, RepoTypeModel};

mod resume;

/// The public Hub, used when neither the options nor `HF_ENDPOINT` name another endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Where and how to fetch. Build it with [`DownloadOptions::from_env`] and override fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DownloadOptions {
    /// Hub base URL; `None`: `hf-hub`'s default (`HF_ENDPOINT`, else [`DEFAULT_ENDPOINT`]).
    pub endpoint: Option<String>,
    /// The Hugging Face hub cache folder; `None`: `hf-hub`'s default resolution.
    pub cache_dir: Option<PathBuf>,
    /// Resolve from the cache only and never open a network connection.
    pub offline: bool,
    /// Access token for private or gated repos; `None`: `hf-hub`'s implicit token (`HF_TOKEN`,
    /// `HF_TOKEN_PATH`, `$HF_HOME/token`).
    pub token: Option<String>,
}

impl DownloadOptions {
    /// Options from the process environment (`HF_ENDPOINT`, `HF_HUB_CACHE`, `HF_HOME`,
    /// `HF_TOKEN`, `HF_HUB_OFFLINE`, ...). See [`DownloadOptions::from_vars`].
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Options from any variable lookup, so that tests need not touch the process environment.
    ///
    /// Empty values count as unset. The cache follows `hf-hub` (and Python's `huggingface_hub`):
    /// `HF_HUB_CACHE`, `HUGGINGFACE_HUB_CACHE`, `HF_HOME/hub`, `XDG_CACHE_HOME/huggingface/hub`,
    /// `HOME/.cache/huggingface/hub`. `HF_HUB_OFFLINE` set to `1`, `true`, `yes` or `on` (any case)
    /// turns offline mode on.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let cache_dir = var("HF_HUB_CACHE")
            .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
            .map(PathBuf::from)
            .or_else(|| var("HF_HOME").map(|home| Path::new(&home).join("hub")))
            .or_else(|| {
                var("XDG_CACHE_HOME").map(|xdg| Path::new(&xdg).join("huggingface").join("hub"))
            })
            .or_else(|| {
                var("HOME").map(|home| {
                    Path::new(&home)
                        .join(".cache")
                        .join("huggingface")
                        .join("hub")
                })
            });
        Self {
            endpoint: var("HF_ENDPOINT"),
            cache_dir,
            offline: var("HF_HUB_OFFLINE").is_some_and(|v| is_truthy(&v)),
            token: var("HF_TOKEN"),
        }
    }
}

/// Whether an environment flag value means "on".
fn is_truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

/// Which files of which repo (a model repo) at which revision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepoFiles {
    /// `owner/name`, e.g. `geolocal/StreetCLIP`.
    pub repo_id: String,
    /// Branch, tag or 40-hex commit.
    pub revision: String,
    /// Paths inside the repo, `/`-separated.
    pub files: Vec<String>,
    /// Pinned hex sha256 per file (by its path in `files`); checked like the Hub's own.
    pub expected_sha256: BTreeMap<String, String>,
}

impl RepoFiles {
    /// Files of `repo_id` at `revision`, with no pinned checksums.
    pub fn new(
        repo_id: impl Into<String>,
        revision: impl Into<String>,
        files: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            repo_id: repo_id.into(),
            revision: revision.into(),
            files: files.into_iter().map(Into::into).collect(),
            expected_sha256: BTreeMap::new(),
        }
    }
}

/// Receives progress, on the thread that called [`fetch`]. For each fetched file: one
/// `file_started`, any number of `bytes` (running totals for that file), one `file_finished`.
pub trait DownloadProgress: Send {
    /// The file is being fetched; `total_bytes` when the Hub told us its size.
    fn file_started(&mut self, file: &str, total_bytes: Option<u64>);
    /// `done_bytes` of the file are on disk (a running total, not a delta).
    fn bytes(&mut self, file: &str, done_bytes: u64);
    /// The file is in the cache and its checksum passed.
    fn file_finished(&mut self, file: &str);
    /// Asked several times a second during a transfer: `true` stops it mid-file with
    /// [`DownloadError::Cancelled`]. Files that completed stay in the cache; the broken-off one
    /// keeps its `.part`, and the next run resumes it.
    fn cancelled(&self) -> bool {
        false
    }
}

/// Progress that goes nowhere.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl DownloadProgress for NoProgress {
    fn file_started(&mut self, _file: &str, _total_bytes: Option<u64>) {}
    fn bytes(&mut self, _file: &str, _done_bytes: u64) {}
    fn file_finished(&mut self, _file: &str) {}
}

/// Speed and time left of a transfer, from its running byte counts: the bytes of about the
/// last [`RateMeter::WINDOW`] over the time they took. Times are given by the caller, so the
/// meter is pure (and its tests need no clock).
#[derive(Clone, Debug, Default)]
pub struct RateMeter {
    samples: std::collections::VecDeque<(Instant, u64)>,
}

impl RateMeter {
    /// How far back the speed looks.
    pub const WINDOW: Duration = Duration::from_secs(8);
    /// Under this much time measured, no speed is given (it would jump about).
    pub const MIN_SPAN: Duration = Duration::from_millis(500);

    /// `done_bytes` of the file were on disk at `at`. A count lower than the last one (the next
    /// file, or a restart from byte 0) starts the measurement over.
    pub fn sample(&mut self, at: Instant, done_bytes: u64) {
        if self
            .samples
            .back()
            .is_some_and(|&(_, last)| done_bytes < last)
        {
            self.samples.clear();
        }
        self.samples.push_back((at, done_bytes));
        // Keep one sample older than the window, so the span covers all of it.
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|&(t, _)| at.saturating_duration_since(t) >= Self::WINDOW)
        {
            self.samples.pop_front();
        }
    }

    /// Forgets every sample (a new file starts).
    pub fn reset(&mut self) {
        self.samples.clear();
    }

    /// Bytes per second over the window, once it spans [`RateMeter::MIN_SPAN`].
    pub fn bytes_per_sec(&self) -> Option<f64> {
        let (&(t0, b0), &(t1, b1)) = (self.samples.front()?, self.samples.back()?);
        let span = t1.saturating_duration_since(t0);
        (span >= Self::MIN_SPAN).then(|| (b1 - b0) as f64 / span.as_secs_f64())
    }

    /// Time until `total_bytes` at the current speed (`None` while unknown or stalled).
    pub fn time_left(&self, total_bytes: u64) -> Option<Duration> {
        let rate = self.bytes_per_sec().filter(|&r| r > 0.0)?;
        let done = self.samples.back()?.1;
        Some(Duration::from_secs_f64(
            total_bytes.saturating_sub(done) as f64 / rate,
        ))
    }
}

/// One file in the cache, verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedFile {
    /// Its path inside the repo, as asked for.
    pub name: String,
    /// `<cache>/models--owner--name/snapshots/<commit>/<name>` (a symlink to the blob on Unix).
    pub path: PathBuf,
    /// Size of the file on disk.
    pub size_bytes: u64,
    /// Hex sha256 computed over the file on disk.
    pub sha256: String,
}

/// Why fetching failed. Messages name the repo and the file, say what to do, and end with paths.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("cannot fetch from the Hub: {reason}")]
    InvalidRequest { reason: String },
    #[error("could not set up the Hugging Face Hub client for {endpoint}: {reason}")]
    Client { endpoint: String, reason: String },
    #[error(
        "could not reach the Hugging Face Hub at {endpoint} to fetch {file} from {repo_id} ({reason}). \
         Check the network, set HF_ENDPOINT to a reachable mirror, or copy the files in with `geoloupe model import`"
    )]
    Unreachable {
        endpoint: String,
        repo_id: String,
        file: String,
        reason: String,
    },
    #[error(
        "the download of {file} from {repo_id} broke off {attempts} times ({reason}). \
         Run `geoloupe model download` again: it resumes where this one stopped"
    )]
    Interrupted {
        repo_id: String,
        file: String,
        attempts: u32,
        reason: String,
    },
    #[error(
        "{file} was not found in {repo_id} at revision {revision} on {endpoint}. Check the repo id, the \
         revision and the file name; a private or gated repo also answers this way without HF_TOKEN"
    )]
    NotFound {
        endpoint: String,
        repo_id: String,
        revision: String,
        file: String,
    },
    #[error(
        "the Hub at {endpoint} refused access to {file} in {repo_id} ({reason}). Set HF_TOKEN to a token \
         that can read the repo (for a gated repo, accept its terms on the Hub first)"
    )]
    AccessDenied {
        endpoint: String,
        repo_id: String,
        file: String,
        reason: String,
    },
    #[error(
        "{file} of {repo_id} is not in the local Hugging Face cache and offline mode is on \
         (HF_HUB_OFFLINE). Run without offline mode to download it, or use `geoloupe model import`"
    )]
    NotCached { repo_id: String, file: String },
    #[error(
        "sha256 mismatch for {file}: expected {expected}, got {actual}. The bad copy was deleted; \
         run the download again"
    )]
    ChecksumMismatch {
        file: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{file} of {repo_id} has {actual_bytes} bytes on disk but the Hub announced {expected_bytes}. \
         The bad copy was deleted; run the download again"
    )]
    SizeMismatch {
        repo_id: String,
        file: String,
        expected_bytes: u64,
        actual_bytes: u64,
    },
    #[error("the Hub at {endpoint} failed to serve {file} of {repo_id}: {reason}")]
    Hub {
        endpoint: String,
        repo_id: String,
        file: String,
        reason: String,
    },
    #[error("the download of {file} from {repo_id} was cancelled")]
    Cancelled { repo_id: String, file: String },
    #[error("could not {action}: {path}: {source}")]
    Io {
        action: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DownloadError {
    fn io(action: impl Into<String>, path: &Path) -> impl FnOnce(std::io::Error) -> Self {
        let (action, path) = (action.into(), path.to_path_buf());
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}

/// Fetches `repo.files` into the Hugging Face cache (or, offline, finds them there), verifies
/// each file's sha256, and returns them in the order asked for. Stops at the first failure;
/// files fetched before it stay in the cache.
pub fn fetch(
    options: &DownloadOptions,
    repo: &RepoFiles,
    progress: &mut dyn DownloadProgress,
) -> Result<Vec<FetchedFile>, DownloadError> {
    validate(repo)?;
    let hub = Hub::connect(options, repo)?;
    let mut fetched = Vec::with_capacity(repo.files.len());
    for file in &repo.files {
        let (path, announced_bytes, sha256) = if options.offline {
            let path = hub.cached(file)?;
            let size_bytes = std::fs::metadata(&path).map(|m| m.len()).ok();
            progress.file_started(file, size_bytes);
            if let Some(size_bytes) = size_bytes {
                progress.bytes(file, size_bytes);
            }
            (path, None, None)
        } else {
            hub.download(file, progress)?
        };
        let checked = verify(repo, file, &path, announced_bytes, sha256)?;
        progress.file_finished(file);
        fetched.push(checked);
    }
    Ok(fetched)
}

fn validate(repo: &RepoFiles) -> Result<(), DownloadError> {
    let invalid = |reason: String| Err(DownloadError::InvalidRequest { reason });
    let parts: Vec<&str> = repo.repo_id.split('/').collect();
    if parts.len() != 2
        || parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return invalid(format!(
            "the repo id must look like `owner/name`, got `{}`",
            repo.repo_id
        ));
    }
    if repo.revision.is_empty()
        || repo
            .revision
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return invalid(format!(
            "invalid revision `{}` for {}",
            repo.revision, repo.repo_id
        ));
    }
    for file in &repo.files {
        if file.is_empty()
            || file.starts_with('/')
            || file.contains('\\')
            || file
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return invalid(format!(
                "invalid file name `{file}` in {} (it must be a relative path inside the repo)",
                repo.repo_id
            ));
        }
    }
    for file in repo.expected_sha256.keys() {
        if !repo.files.contains(file) {
            return invalid(format!(
                "a sha256 is pinned for `{file}`, which is not among the files to fetch from {}",
                repo.repo_id
            ));
        }
    }
    Ok(())
}

/// An `hf-hub` client bound to one repo for cache lookups (offline mode), and our own HTTP
/// side ([`resume`]) for transfers, which resume a broken-off file with `Range` requests.
struct Hub<'a> {
    repo: &'a RepoFiles,
    endpoint: String,
    cache_dir: PathBuf,
    handle: HFRepositorySync<RepoTypeModel>,
    http: resume::Http,
}

impl<'a> Hub<'a> {
    fn connect(options: &DownloadOptions, repo: &'a RepoFiles) -> Result<Self, DownloadError> {
        let mut builder = HFClient::builder();
        if let Some(endpoint) = &options.endpoint {
            builder = builder.endpoint(endpoint.clone());
        }
        if let Some(cache_dir) = &options.cache_dir {
            builder = builder.cache_dir(cache_dir.clone());
        }
        if let Some(token) = &options.token {
            builder = builder.token(token.clone());
        }
        let client_error = |reason: String| DownloadError::Client {
            endpoint: options
                .endpoint
                .clone()
                .unwrap_or_else(|| "the default endpoint".to_owned()),
            reason,
        };
        let client = builder.build().map_err(|e| client_error(e.to_string()))?;
        let endpoint = client.endpoint().to_owned();
        let cache_dir = client.cache_dir().to_path_buf();
        let (owner, name) = hf_hub::split_id(&repo.repo_id);
        let sync = HFClientSync::from_inner(client).map_err(|e| client_error(e.to_string()))?;
        let handle = sync.model(owner, name);
        let token = options.token.clone().or_else(implicit_token);
        let http = resume::Http::new(&endpoint, token).map_err(client_error)?;
        Ok(Self {
            repo,
            endpoint,
            cache_dir,
            handle,
            http,
        })
    }

    /// `<cache>/models--owner--name`.
    fn repo_cache(&self) -> PathBuf {
        repo_cache_dir(&self.cache_dir, &self.repo.repo_id)
    }

    /// The cached snapshot path of `file`, without any network access.
    fn cached(&self, file: &str) -> Result<PathBuf, DownloadError> {
        self.handle
            .download_file()
            .filename(file)
            .revision(self.repo.revision.clone())
            .local_files_only(true)
            .send()
            .map_err(|e| match e {
                HFError::LocalEntryNotFound { .. } => DownloadError::NotCached {
                    repo_id: self.repo.repo_id.clone(),
                    file: file.to_owned(),
                },
                other => self.error(file, other),
            })
    }

    /// Downloads `file` into the cache (resuming what an earlier try left in its `.part`), or
    /// finds it there after one `HEAD`. Returns its snapshot path, the size the Hub announced,
    /// and the sha256 when this call computed it (a fresh transfer, already checked).
    fn download(
        &self,
        file: &str,
        progress: &mut dyn DownloadProgress,
    ) -> Result<(PathBuf, Option<u64>, Option<String>), DownloadError> {
        let target = resume::Target {
            repo_id: &self.repo.repo_id,
            revision: &self.repo.revision,
            file,
        };
        let remote = self.http.head(&target, progress)?;
        let repo_cache = self.repo_cache();
        resume::write_ref(&repo_cache, &self.repo.revision, &remote.commit)?;
        let blob = repo_cache.join("blobs").join(&remote.etag);
        if blob.is_file() {
            let snapshot = resume::link_snapshot(&repo_cache, &remote, file, &blob)?;
            let size_bytes = std::fs::metadata(&blob).map(|m| m.len()).ok();
            progress.file_started(file, size_bytes);
            if let Some(size_bytes) = size_bytes {
                progress.bytes(file, size_bytes);
            }
            return Ok((snapshot, remote.size_bytes, None));
        }
        let pinned = self.repo.expected_sha256.get(file).map(String::as_str);
        let (snapshot, sha256) =
            self.http
                .fetch_into_cache(&target, &remote, &repo_cache, pinned, progress)?;
        Ok((snapshot, remote.size_bytes, Some(sha256)))
    }

    /// Our error for an `hf-hub` error while looking `file` up in the cache.
    fn error(&self, file: &str, error: HFError) -> DownloadError {
        let (endpoint, repo_id, file) = (
            self.endpoint.clone(),
            self.repo.repo_id.clone(),
            file.to_owned(),
        );
        match error {
            HFError::LocalEntryNotFound { .. } => DownloadError::NotCached { repo_id, file },
            HFError::Io(source) => DownloadError::Io {
                action: format!("read {file} of {repo_id} from the Hugging Face cache"),
                path: self.cache_dir.clone(),
                source,
            },
            other => DownloadError::Hub {
                endpoint,
                repo_id,
                file,
                reason: other.to_string(),
            },
        }
    }
}

/// `<cache>/models--owner--name`, the Hugging Face cache folder of a model repo.
pub fn repo_cache_dir(cache_dir: &Path, repo_id: &str) -> PathBuf {
    cache_dir.join(format!("models--{}", repo_id.replace('/', "--")))
}

/// Bytes of broken-off transfers (`.part` files) waiting in the cache of `repo_id`: the next
/// download resumes from there.
pub fn partial_bytes(options: &DownloadOptions, repo_id: &str) -> u64 {
    options
        .cache_dir
        .as_deref()
        .map(|cache| resume::partial_bytes(&repo_cache_dir(cache, repo_id)))
        .unwrap_or(0)
}

/// The token `hf-hub` would find by itself when none is given: `HF_TOKEN_PATH`, else
/// `$HF_HOME/token`, else `~/.cache/huggingface/token` (`HF_TOKEN` is already in the options).
fn implicit_token() -> Option<String> {
    let path = std::env::var_os("HF_TOKEN_PATH")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HF_HOME").map(|h| Path::new(&h).join("token")))
        .or_else(|| {
            std::env::var_os("HOME").map(|h| {
                Path::new(&h)
                    .join(".cache")
                    .join("huggingface")
                    .join("token")
            })
        })?;
    std::fs::read_to_string(path)
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// `error` and its sources, `: `-separated (reqwest hides the useful part in the sources).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    // Bounded: source chains are short, and we stop after a few links regardless.
    for _ in 0..8 {
        let Some(inner) = source else { break };
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}

/// Checks `file` (at its snapshot `path`) against the announced size, the Hub's sha256 and the
/// pinned sha256; deletes the blob and the snapshot entry when a check fails. `checked_sha256`:
/// the file was hashed and checked as it was fetched, this is its sha256.
fn verify(
    repo: &RepoFiles,
    file: &str,
    path: &Path,
    announced_bytes: Option<u64>,
    checked_sha256: Option<String>,
) -> Result<FetchedFile, DownloadError> {
    let blob = crate::platform::canonicalize(path).map_err(DownloadError::io(
        format!("find {file} of {} in the cache", repo.repo_id),
        path,
    ))?;
    let size_bytes = std::fs::metadata(&blob)
        .map_err(DownloadError::io("read the size of", &blob))?
        .len();
    let discard = || {
        // Best effort: failing to delete must not hide the mismatch itself.
        let _ = std::fs::remove_file(&blob);
        let _ = std::fs::remove_file(path);
    };
    if let Some(expected_bytes) = announced_bytes
        && expected_bytes != size_bytes
    {
        discard();
        return Err(DownloadError::SizeMismatch {
            repo_id: repo.repo_id.clone(),
            file: file.to_owned(),
            expected_bytes,
            actual_bytes: size_bytes,
        });
    }
    if let Some(sha256) = checked_sha256 {
        return Ok(FetchedFile {
            name: file.to_owned(),
            path: path.to_path_buf(),
            size_bytes,
            sha256,
        });
    }
    let actual = sha256_file(&blob)?;
    // On Unix the snapshot entry links to `blobs/<etag>`; for LFS files the etag is the sha256.
    let from_hub = blob
        .file_name()
        .and_then(|name| name.to_str())
        .filter(|name| blob != path && is_sha256_hex(name))
        .map(str::to_ascii_lowercase);
    let pinned = repo
        .expected_sha256
        .get(file)
        .map(|s| s.trim().to_ascii_lowercase());
    for expected in [pinned, from_hub].into_iter().flatten() {
        if expected != actual {
            discard();
            return Err(DownloadError::ChecksumMismatch {
                file: file.to_owned(),
                expected,
                actual,
            });
        }
    }
    Ok(FetchedFile {
        name: file.to_owned(),
        path: path.to_path_buf(),
        size_bytes,
        sha256: actual,
    })
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Hex sha256 of a file, streamed.
fn sha256_file(path: &Path) -> Result<String, DownloadError> {
    use sha2::Digest as _;
    use std::io::Read as _;
    let mut file = std::fs::File::open(path).map_err(DownloadError::io("open", path))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(DownloadError::io("read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(vars: &[(&str, &str)]) -> DownloadOptions {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        DownloadOptions::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn offline_flag_values() {
        for on in ["1", "true", "TRUE", "yes", "Yes", "on", " on "] {
            assert!(
                options(&[("HF_HUB_OFFLINE", on)]).offline,
                "{on:?} should mean offline"
            );
        }
        for off in ["", "0", "false", "no", "off", "2", "offline"] {
            assert!(
                !options(&[("HF_HUB_OFFLINE", off)]).offline,
                "{off:?} should not mean offline"
            );
        }
        assert!(!options(&[]).offline);
    }

    #[test]
    fn cache_dir_precedence() {
        let all = [
            ("HF_HUB_CACHE", "/a"),
            ("HF_HOME", "/b"),
            ("XDG_CACHE_HOME", "/c"),
            ("HOME", "/d"),
        ];
        assert_eq!(options(&all).cache_dir, Some(PathBuf::from("/a")));
        assert_eq!(options(&all[1..]).cache_dir, Some(PathBuf::from("/b/hub")));
        assert_eq!(
            options(&all[2..]).cache_dir,
            Some(PathBuf::from("/c/huggingface/hub"))
        );
        assert_eq!(
            options(&all[3..]).cache_dir,
            Some(PathBuf::from("/d/.cache/huggingface/hub"))
        );
        assert_eq!(
            options(&[("HUGGINGFACE_HUB_CACHE", "/e"), ("HF_HOME", "/b")]).cache_dir,
            Some(PathBuf::from("/e"))
        );
        assert_eq!(
            options(&[("HF_HUB_CACHE", ""), ("HF_HOME", "/b")]).cache_dir,
            Some(PathBuf::from("/b/hub"))
        );
        assert_eq!(options(&[]).cache_dir, None);
    }

    #[test]
    fn endpoint_and_token() {
        let o = options(&[
            ("HF_ENDPOINT", "https://hf-mirror.example"),
            ("HF_TOKEN", "hf_x"),
        ]);
        assert_eq!(o.endpoint.as_deref(), Some("https://hf-mirror.example"));
        assert_eq!(o.token.as_deref(), Some("hf_x"));
        let o = options(&[("HF_ENDPOINT", ""), ("HF_TOKEN", " ")]);
        assert_eq!((o.endpoint, o.token), (None, None));
    }

    #[test]
    fn rejects_bad_requests() {
        let ok = RepoFiles::new("org/repo", "main", ["a.json", "dir/b.bin"]);
        assert!(validate(&ok).is_ok());
        for repo_id in ["repo", "org/", "/repo", "a/b/c", "../x"] {
            assert!(
                validate(&RepoFiles {
                    repo_id: repo_id.into(),
                    ..ok.clone()
                })
                .is_err(),
                "{repo_id}"
            );
        }
        for file in ["", "/etc/passwd", "../x", "a//b", "a/./b", "a\\b"] {
            assert!(
                validate(&RepoFiles {
                    files: vec![file.into()],
                    ..ok.clone()
                })
                .is_err(),
                "{file}"
            );
        }
        let mut pinned = ok.clone();
        pinned.expected_sha256.insert("other".into(), "00".into());
        assert!(validate(&pinned).is_err());
    }

    #[test]
    fn rate_meter_speed_and_time_left() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut meter = RateMeter::default();
        meter.sample(at(0), 1_000_000);
        assert_eq!(meter.bytes_per_sec(), None, "one sample says nothing");
        meter.sample(at(200), 1_200_000);
        assert_eq!(meter.bytes_per_sec(), None, "under MIN_SPAN");
        meter.sample(at(1_000), 2_000_000);
        assert_eq!(meter.bytes_per_sec(), Some(1_000_000.0));
        assert_eq!(meter.time_left(12_000_000), Some(Duration::from_secs(10)));
        // The window forgets old speed: 20 s later at 100 kB/s.
        for s in 1..=20 {
            meter.sample(at(1_000 + s * 1_000), 2_000_000 + s * 100_000);
        }
        let rate = meter.bytes_per_sec().unwrap();
        assert!((rate - 100_000.0).abs() < 1.0, "{rate}");
        // A lower count (the next file) starts over.
        meter.sample(at(30_000), 10);
        assert_eq!(meter.bytes_per_sec(), None);
        // Stalled: no time left.
        meter.sample(at(31_000), 10);
        assert_eq!(meter.bytes_per_sec(), Some(0.0));
        assert_eq!(meter.time_left(100), None);
    }

    #[test]
    fn sha256_hex_shape() {
        assert!(is_sha256_hex(&"ab".repeat(32)));
        assert!(!is_sha256_hex(&"ab".repeat(20)));
        assert!(!is_sha256_hex(&"zz".repeat(32)));
    }
}
