//! Resumable transfers of Hub files: `HEAD` the resolve URL for the commit, the cache key
//! (etag) and the expected size and sha256, then `GET` it into `blobs/<etag>.part` with
//! `Range: bytes=<len of the .part>-`, check its size and sha256, rename it into place as
//! `blobs/<etag>` and link `snapshots/<commit>/<file>` to it: the layout `hf-hub` and Python's
//! `huggingface_hub` read, so offline mode and other tools find the files.
//!
//! A `.part` survives an interruption, a cancel and the app closing, and the next try asks only
//! for what is missing. A server that ignores the `Range` header (answers `200` instead of
//! `206`) makes the `.part` start over from its first byte.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};

use super::{DownloadError, DownloadProgress, is_sha256_hex};

/// How often, during a transfer, cancellation is asked for while no bytes arrive.
const CANCEL_POLL_MS: u64 = 50;

/// A connection that sends nothing for this long counts as broken (and is tried again).
const READ_TIMEOUT_SECS: u64 = 60;

/// Tries of one file in a row that bring no new bytes before giving up; a try that adds bytes
/// to the `.part` does not count.
pub(super) const MAX_TRIES_WITHOUT_PROGRESS: u32 = 3;

/// Upper bound on the tries of one file in one fetch, progress or not.
const MAX_TRIES: u32 = 50;

/// Pause between two tries of the same file, multiplied by the number of tries without progress.
const RETRY_PAUSE_MS: u64 = 250;

/// What the Hub says about one file before its bytes are fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Remote {
    /// The commit the revision resolved to.
    pub commit: String,
    /// The cache key: the sha256 for LFS files (`X-Linked-Etag`), the git blob id otherwise.
    pub etag: String,
    pub size_bytes: Option<u64>,
    /// The content's sha256 when the Hub told it (LFS files).
    pub sha256: Option<String>,
}

/// How one try of a transfer ended, short of success.
enum TryFailed {
    /// The connection broke (or stalled) mid-body: worth another try with `Range`.
    Broken(String),
    /// Anything else: not worth trying again.
    Fatal(DownloadError),
}

/// The HTTP side: one client that never follows redirects (for the `HEAD`, whose redirect
/// carries the LFS headers) and one that does (for the bytes).
pub(super) struct Http {
    pub endpoint: String,
    token: Option<String>,
    head_client: reqwest::Client,
    get_client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl Http {
    pub fn new(endpoint: &str, token: Option<String>) -> Result<Self, String> {
        let build = |redirects: reqwest::redirect::Policy| {
            reqwest::Client::builder()
                .redirect(redirects)
                .connect_timeout(Duration::from_secs(30))
                .read_timeout(Duration::from_secs(READ_TIMEOUT_SECS))
                .user_agent(concat!("geoloupe/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| super::error_chain(&e))
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("could not start its runtime: {e}"))?;
        Ok(Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            token,
            head_client: build(reqwest::redirect::Policy::none())?,
            get_client: build(reqwest::redirect::Policy::limited(10))?,
            runtime,
        })
    }

    /// `{endpoint}/{repo}/resolve/{revision}/{file}`, each part percent-encoded.
    pub fn resolve_url(
        &self,
        repo_id: &str,
        revision: &str,
        file: &str,
    ) -> Result<reqwest::Url, String> {
        let mut url = reqwest::Url::parse(&self.endpoint).map_err(|e| e.to_string())?;
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| format!("{} cannot be a base URL", self.endpoint))?;
            segments.pop_if_empty();
            segments.extend(repo_id.split('/'));
            segments.push("resolve");
            segments.push(revision);
            segments.extend(file.split('/'));
        }
        Ok(url)
    }

    fn authorised(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Asks the Hub about `file` without fetching it; `progress.cancelled()` stops the wait.
    pub fn head(
        &self,
        target: &Target<'_>,
        progress: &dyn DownloadProgress,
    ) -> Result<Remote, DownloadError> {
        let url = self
            .resolve_url(target.repo_id, target.revision, target.file)
            .map_err(|reason| target.invalid(reason))?;
        let request = self
            .authorised(self.head_client.head(url))
            .header(header::ACCEPT_ENCODING, "identity");
        // `send` needs the runtime's reactor (for its timeouts) already when it is called.
        let response = self
            .runtime
            .block_on(async {
                let send = request.send();
                tokio::pin!(send);
                loop {
                    tokio::select! {
                        sent = &mut send => break Some(sent),
                        () = tokio::time::sleep(Duration::from_millis(CANCEL_POLL_MS)) => {
                            if progress.cancelled() {
                                break None;
                            }
                        }
                    }
                }
            })
            .ok_or_else(|| target.cancelled())?
            .map_err(|e| {
                if e.is_connect() || e.is_timeout() {
                    target.unreachable(&self.endpoint, super::error_chain(&e))
                } else {
                    target.hub(&self.endpoint, super::error_chain(&e))
                }
            })?;
        let status = response.status();
        if !(status.is_success() || status.is_redirection()) {
            return Err(target.status_error(&self.endpoint, status, response.headers()));
        }
        remote_from_headers(response.headers()).ok_or_else(|| {
            target.hub(
                &self.endpoint,
                format!("its answer ({status}) lacks X-Repo-Commit or ETag"),
            )
        })
    }

    /// Fetches `file` into `<repo cache>/blobs/<etag>` (resuming its `.part`), checks it and
    /// links it from `snapshots/<commit>/<file>`. Returns the snapshot path and the sha256
    /// computed over the blob.
    pub fn fetch_into_cache(
        &self,
        target: &Target<'_>,
        remote: &Remote,
        repo_cache: &Path,
        pinned_sha256: Option<&str>,
        progress: &mut dyn DownloadProgress,
    ) -> Result<(PathBuf, String), DownloadError> {
        let blobs = repo_cache.join("blobs");
        std::fs::create_dir_all(&blobs).map_err(DownloadError::io("create", &blobs))?;
        let blob = blobs.join(&remote.etag);
        let part = blobs.join(format!("{}.part", remote.etag));
        progress.file_started(target.file, remote.size_bytes);
        let (mut tries, mut tries_without_progress) = (0u32, 0u32);
        loop {
            let before = file_len(&part);
            if remote.size_bytes.is_some_and(|size| before == size) {
                break;
            }
            tries += 1;
            match self.transfer_once(target, remote, &part, progress) {
                Ok(()) => break,
                Err(TryFailed::Fatal(e)) => return Err(e),
                Err(TryFailed::Broken(reason)) => {
                    if file_len(&part) > before {
                        tries_without_progress = 0;
                    } else {
                        tries_without_progress += 1;
                    }
                    if tries_without_progress >= MAX_TRIES_WITHOUT_PROGRESS || tries >= MAX_TRIES {
                        return Err(DownloadError::Interrupted {
                            repo_id: target.repo_id.to_owned(),
                            file: target.file.to_owned(),
                            attempts: tries,
                            reason,
                        });
                    }
                    let pause = RETRY_PAUSE_MS * u64::from(tries_without_progress.max(1));
                    if sleep_unless_cancelled(Duration::from_millis(pause), progress) {
                        return Err(target.cancelled());
                    }
                }
            }
        }
        let sha256 = check_part(target, remote, &part, pinned_sha256, progress)?;
        std::fs::rename(&part, &blob).map_err(DownloadError::io("move into place", &blob))?;
        let snapshot = link_snapshot(repo_cache, remote, target.file, &blob)?;
        Ok((snapshot, sha256))
    }

    /// One `GET` of the missing end of `part` (all of it when the server ignores `Range`).
    fn transfer_once(
        &self,
        target: &Target<'_>,
        remote: &Remote,
        part: &Path,
        progress: &mut dyn DownloadProgress,
    ) -> Result<(), TryFailed> {
        let url = self
            .resolve_url(target.repo_id, &remote.commit, target.file)
            .map_err(|reason| TryFailed::Fatal(target.invalid(reason)))?;
        let from = file_len(part);
        let mut request = self
            .authorised(self.get_client.get(url))
            .header(header::ACCEPT_ENCODING, "identity");
        if from > 0 {
            request = request.header(header::RANGE, format!("bytes={from}-"));
        }
        let endpoint = self.endpoint.clone();
        self.runtime.block_on(async {
            let send = request.send();
            tokio::pin!(send);
            let response = loop {
                tokio::select! {
                    sent = &mut send => break sent,
                    () = tokio::time::sleep(Duration::from_millis(CANCEL_POLL_MS)) => {
                        if progress.cancelled() {
                            return Err(TryFailed::Fatal(target.cancelled()));
                        }
                    }
                }
            };
            let mut response = response.map_err(|e| {
                if e.is_connect() {
                    TryFailed::Fatal(target.unreachable(&endpoint, super::error_chain(&e)))
                } else {
                    TryFailed::Broken(super::error_chain(&e))
                }
            })?;
            let status = response.status();
            let append = match status {
                StatusCode::PARTIAL_CONTENT if from > 0 => {
                    content_range_start(response.headers()) == Some(from)
                }
                StatusCode::OK | StatusCode::PARTIAL_CONTENT => false,
                StatusCode::RANGE_NOT_SATISFIABLE => {
                    // The `.part` is not a prefix of this file: start over.
                    truncate(part).map_err(TryFailed::Fatal)?;
                    return Err(TryFailed::Broken(format!(
                        "the server answered {status} to a resume"
                    )));
                }
                s if s.is_server_error() => {
                    return Err(TryFailed::Broken(format!("the server answered {s}")));
                }
                s => {
                    return Err(TryFailed::Fatal(target.status_error(
                        &endpoint,
                        s,
                        response.headers(),
                    )));
                }
            };
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(append)
                .write(true)
                .truncate(!append)
                .open(part)
                .map_err(|e| TryFailed::Fatal(DownloadError::io("open", part)(e)))?;
            let mut done_bytes = if append { from } else { 0 };
            progress.bytes(target.file, done_bytes);
            loop {
                let next = response.chunk();
                tokio::pin!(next);
                let chunk = loop {
                    tokio::select! {
                        chunk = &mut next => break chunk,
                        () = tokio::time::sleep(Duration::from_millis(CANCEL_POLL_MS)) => {
                            if progress.cancelled() {
                                return Err(TryFailed::Fatal(target.cancelled()));
                            }
                        }
                    }
                };
                match chunk {
                    Ok(Some(bytes)) => {
                        file.write_all(&bytes)
                            .map_err(|e| TryFailed::Fatal(DownloadError::io("write", part)(e)))?;
                        done_bytes += bytes.len() as u64;
                        progress.bytes(target.file, done_bytes);
                        if progress.cancelled() {
                            return Err(TryFailed::Fatal(target.cancelled()));
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return Err(TryFailed::Broken(super::error_chain(&e))),
                }
            }
            file.flush()
                .map_err(|e| TryFailed::Fatal(DownloadError::io("write", part)(e)))?;
            match remote.size_bytes {
                Some(size) if done_bytes < size => Err(TryFailed::Broken(format!(
                    "the connection ended after {done_bytes} of {size} bytes"
                ))),
                _ => Ok(()),
            }
        })
    }
}

/// Names of one file being fetched, for requests and errors.
pub(super) struct Target<'a> {
    pub repo_id: &'a str,
    pub revision: &'a str,
    pub file: &'a str,
}

impl Target<'_> {
    fn invalid(&self, reason: String) -> DownloadError {
        DownloadError::InvalidRequest { reason }
    }

    fn cancelled(&self) -> DownloadError {
        DownloadError::Cancelled {
            repo_id: self.repo_id.to_owned(),
            file: self.file.to_owned(),
        }
    }

    fn unreachable(&self, endpoint: &str, reason: String) -> DownloadError {
        DownloadError::Unreachable {
            endpoint: endpoint.to_owned(),
            repo_id: self.repo_id.to_owned(),
            file: self.file.to_owned(),
            reason,
        }
    }

    fn hub(&self, endpoint: &str, reason: String) -> DownloadError {
        DownloadError::Hub {
            endpoint: endpoint.to_owned(),
            repo_id: self.repo_id.to_owned(),
            file: self.file.to_owned(),
            reason,
        }
    }

    /// The error for a status that is neither success nor redirect.
    fn status_error(
        &self,
        endpoint: &str,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> DownloadError {
        let code = headers
            .get("x-error-code")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        match status {
            StatusCode::NOT_FOUND => DownloadError::NotFound {
                endpoint: endpoint.to_owned(),
                repo_id: self.repo_id.to_owned(),
                revision: self.revision.to_owned(),
                file: self.file.to_owned(),
            },
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => DownloadError::AccessDenied {
                endpoint: endpoint.to_owned(),
                repo_id: self.repo_id.to_owned(),
                file: self.file.to_owned(),
                reason: if code.is_empty() {
                    status.to_string()
                } else {
                    format!("{status}, {code}")
                },
            },
            other => self.hub(endpoint, format!("it answered {other}")),
        }
    }
}

/// The commit, etag, size and sha256 from the headers of a resolve URL's `HEAD` (before any
/// redirect: the redirect of an LFS file carries `X-Linked-Etag` and `X-Linked-Size`).
pub(super) fn remote_from_headers(headers: &HeaderMap) -> Option<Remote> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let unquote = |etag: String| etag.trim_start_matches("W/").trim_matches('"').to_owned();
    let commit = text("x-repo-commit")?;
    let linked = text("x-linked-etag").map(unquote);
    let etag = linked.clone().or_else(|| text("etag").map(unquote))?;
    if etag.is_empty() || etag.contains(['/', '\\']) || etag.starts_with('.') {
        return None;
    }
    let size_bytes = text("x-linked-size")
        .filter(|_| linked.is_some())
        .or_else(|| text("content-length"))
        .and_then(|s| s.parse().ok());
    let sha256 = linked
        .filter(|e| is_sha256_hex(e))
        .map(|e| e.to_ascii_lowercase());
    Some(Remote {
        commit,
        etag,
        size_bytes,
        sha256,
    })
}

/// The first byte of a `206` answer's `Content-Range: bytes <first>-<last>/<total>`.
fn content_range_start(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    let range = value.trim().strip_prefix("bytes ")?;
    range.split(['-', '/']).next()?.trim().parse().ok()
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn truncate(path: &Path) -> Result<(), DownloadError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DownloadError::io("remove", path)(e)),
    }
}

/// Sleeps `pause` in short steps; `true` when the caller cancelled meanwhile.
fn sleep_unless_cancelled(pause: Duration, progress: &dyn DownloadProgress) -> bool {
    let step = Duration::from_millis(CANCEL_POLL_MS);
    let mut slept = Duration::ZERO;
    // Bounded: `pause` is a few hundred milliseconds.
    while slept < pause {
        if progress.cancelled() {
            return true;
        }
        std::thread::sleep(step);
        slept += step;
    }
    progress.cancelled()
}

/// Checks the finished `.part` against the announced size, the Hub's sha256 and the pinned one;
/// deletes it when a check fails (the next try fetches it again from its first byte).
fn check_part(
    target: &Target<'_>,
    remote: &Remote,
    part: &Path,
    pinned_sha256: Option<&str>,
    progress: &dyn DownloadProgress,
) -> Result<String, DownloadError> {
    let size = file_len(part);
    if let Some(expected_bytes) = remote.size_bytes
        && expected_bytes != size
    {
        let _ = std::fs::remove_file(part);
        return Err(DownloadError::SizeMismatch {
            repo_id: target.repo_id.to_owned(),
            file: target.file.to_owned(),
            expected_bytes,
            actual_bytes: size,
        });
    }
    let actual = sha256_cancellable(part, progress)?.ok_or_else(|| target.cancelled())?;
    let pinned = pinned_sha256.map(|s| s.trim().to_ascii_lowercase());
    for expected in [pinned, remote.sha256.clone()].into_iter().flatten() {
        if expected != actual {
            let _ = std::fs::remove_file(part);
            return Err(DownloadError::ChecksumMismatch {
                file: target.file.to_owned(),
                expected,
                actual,
            });
        }
    }
    Ok(actual)
}

/// Hex sha256 of a file, streamed; `None` when the caller cancelled meanwhile (hashing 1.7 GB
/// takes seconds, and closing the app must not wait for it). The `.part` stays for next time.
fn sha256_cancellable(
    path: &Path,
    progress: &dyn DownloadProgress,
) -> Result<Option<String>, DownloadError> {
    use sha2::Digest as _;
    use std::io::Read as _;
    let mut file = std::fs::File::open(path).map_err(DownloadError::io("open", path))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if progress.cancelled() {
            return Ok(None);
        }
        let n = file
            .read(&mut buf)
            .map_err(DownloadError::io("read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Some(hex::encode(hasher.finalize())))
}

/// Links `snapshots/<commit>/<file>` to the blob (a relative symlink on Unix, a copy elsewhere)
/// and records the commit of a branch or tag in `refs/<revision>`.
pub(super) fn link_snapshot(
    repo_cache: &Path,
    remote: &Remote,
    file: &str,
    blob: &Path,
) -> Result<PathBuf, DownloadError> {
    let snapshot = repo_cache.join("snapshots").join(&remote.commit).join(file);
    if let Some(parent) = snapshot.parent() {
        std::fs::create_dir_all(parent).map_err(DownloadError::io("create", parent))?;
    }
    let _ = std::fs::remove_file(&snapshot);
    #[cfg(unix)]
    {
        let up = "../".repeat(2 + file.matches('/').count());
        let relative = PathBuf::from(format!(
            "{up}blobs/{}",
            blob.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        std::os::unix::fs::symlink(&relative, &snapshot)
            .map_err(DownloadError::io("link", &snapshot))?;
    }
    #[cfg(not(unix))]
    {
        std::fs::copy(blob, &snapshot).map_err(DownloadError::io("copy into", &snapshot))?;
    }
    Ok(snapshot)
}

/// Writes `refs/<revision>` (for a branch or tag: a commit needs none).
pub(super) fn write_ref(
    repo_cache: &Path,
    revision: &str,
    commit: &str,
) -> Result<(), DownloadError> {
    if revision == commit {
        return Ok(());
    }
    let path = repo_cache.join("refs").join(revision);
    if std::fs::read_to_string(&path).is_ok_and(|t| t.trim() == commit) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(DownloadError::io("create", parent))?;
    }
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&temporary, commit).map_err(DownloadError::io("write", &temporary))?;
    std::fs::rename(&temporary, &path).map_err(DownloadError::io("move into place", &path))
}

/// The bytes of a broken-off `.part` waiting under `repo_cache`, if any (for "resumes at …").
pub fn partial_bytes(repo_cache: &Path) -> u64 {
    std::fs::read_dir(repo_cache.join("blobs"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn lfs_headers_give_the_sha256_and_the_linked_size() {
        let sha = "ab".repeat(32);
        let remote = remote_from_headers(&headers(&[
            ("x-repo-commit", "c0ffee"),
            ("x-linked-etag", &format!("\"{sha}\"")),
            ("x-linked-size", "1234"),
            ("etag", "\"cdn-pointer\""),
            ("content-length", "0"),
        ]))
        .unwrap();
        assert_eq!(
            remote,
            Remote {
                commit: "c0ffee".into(),
                etag: sha.clone(),
                size_bytes: Some(1234),
                sha256: Some(sha),
            }
        );
    }

    #[test]
    fn regular_files_have_a_git_etag_and_no_sha256() {
        let remote = remote_from_headers(&headers(&[
            ("x-repo-commit", "c0ffee"),
            ("etag", "W/\"0123abcd\""),
            ("content-length", "42"),
        ]))
        .unwrap();
        assert_eq!(remote.etag, "0123abcd");
        assert_eq!(remote.size_bytes, Some(42));
        assert_eq!(remote.sha256, None);
        // No commit, or an etag that would escape the blobs folder: refused.
        assert!(remote_from_headers(&headers(&[("etag", "\"x\"")])).is_none());
        assert!(
            remote_from_headers(&headers(&[("x-repo-commit", "c"), ("etag", "\"../x\"")]))
                .is_none()
        );
    }

    #[test]
    fn content_range_start_is_parsed() {
        assert_eq!(
            content_range_start(&headers(&[("content-range", "bytes 100-199/200")])),
            Some(100)
        );
        assert_eq!(
            content_range_start(&headers(&[("content-range", "bytes */200")])),
            None
        );
        assert_eq!(content_range_start(&HeaderMap::new()), None);
    }

    #[test]
    fn resolve_urls_encode_their_parts() {
        let http = Http::new("http://hub.example/", None).unwrap();
        let url = http
            .resolve_url("org/repo", "refs/pr/1", "dir/a b.json")
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://hub.example/org/repo/resolve/refs%2Fpr%2F1/dir/a%20b.json"
        );
    }
}
