//! `model::download` against a fake Hugging Face Hub on 127.0.0.1.
//!
//! The fake Hub is a small HTTP/1.1 server on a named thread that answers exactly what hf-hub
//! 1.0's `download_file` asks for:
//! - `HEAD /{repo}/resolve/{revision}/{file}` (sent without following redirects): `X-Repo-Commit`,
//!   `ETag` and `Content-Length`; for the LFS-like file a `302` to `/cdn/{sha256}` carrying
//!   `X-Linked-Etag` (the sha256) and `X-Linked-Size`, as the real Hub does;
//! - `GET` of the same URL (redirects followed): the bytes, or the `302` to `/cdn/{sha256}`,
//!   which answers `Range: bytes=N-` with `206 Partial Content` (unless told to ignore it);
//! - anything else: `404` with `X-Error-Code: EntryNotFound`.
//!
//! Every connection is counted, so a test can prove that offline mode opened none. Each answer
//! closes its connection (`Connection: close`); the accept loop is bounded and stops when the
//! server is dropped (a shutdown flag plus a connect to wake it).
#![allow(clippy::unwrap_used)] // test helpers, as `allow-unwrap-in-tests` allows in #[test] fns

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use geoloupe::model::download::{
    DownloadError, DownloadOptions, DownloadProgress, NoProgress, RepoFiles, fetch,
};
use sha2::Digest as _;

const REPO: &str = "test-org/fake-geoclip";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const BIG_FILE: &str = "model.safetensors";
const BIG_BYTES: usize = 300 * 1024;
/// Upper bound on connections one server accepts, so its loop is bounded.
const MAX_CONNECTIONS: usize = 500;

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

struct FakeFile {
    bytes: Vec<u8>,
    /// LFS files are served through a redirect to `/cdn/{sha256}` with `X-Linked-*` headers.
    lfs: bool,
}

fn fake_repo() -> BTreeMap<String, FakeFile> {
    let config = br#"{"model_type": "geoclip", "embed_dim": 512}"#.to_vec();
    // Deterministic pseudo-random bytes, so a truncated or shifted copy cannot pass.
    let mut state: u32 = 0x1234_5678;
    let big: Vec<u8> = (0..BIG_BYTES)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect();
    let csv = b"LAT,LON\n48.8566,2.3522\n-33.8688,151.2093\n40.7128,-74.0060\n".to_vec();
    BTreeMap::from([
        (
            "config.json".to_owned(),
            FakeFile {
                bytes: config,
                lfs: false,
            },
        ),
        (
            BIG_FILE.to_owned(),
            FakeFile {
                bytes: big,
                lfs: true,
            },
        ),
        (
            "gps_gallery.csv".to_owned(),
            FakeFile {
                bytes: csv,
                lfs: false,
            },
        ),
    ])
}

fn all_files() -> Vec<String> {
    vec![
        "config.json".to_owned(),
        BIG_FILE.to_owned(),
        "gps_gallery.csv".to_owned(),
    ]
}

/// How the fake Hub misbehaves.
#[derive(Clone, Default)]
struct Faults {
    /// Announce this (wrong) sha256 as the big file's `X-Linked-Etag`.
    wrong_big_etag: Option<String>,
    /// Cut the connection half-way through the big file's body for this many GETs.
    drop_big_gets: usize,
    /// Send half of the big file's body, then nothing more until the hub shuts down.
    stall_big: bool,
    /// Answer every `Range` request for the big file with `200` and the whole body.
    ignore_range: bool,
}

#[derive(Debug, Clone)]
struct Logged {
    method: String,
    path: String,
    /// The `Range` header, when the request had one.
    range: Option<String>,
}

struct Shared {
    files: BTreeMap<String, FakeFile>,
    faults: Faults,
    connections: AtomicUsize,
    big_gets: AtomicUsize,
    /// Body bytes of the big file sent, over all its GETs (what a resume saves).
    big_body_bytes: AtomicUsize,
    log: Mutex<Vec<Logged>>,
    shutdown: AtomicBool,
}

struct FakeHub {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl FakeHub {
    fn start(faults: Faults) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake hub");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            files: fake_repo(),
            faults,
            connections: AtomicUsize::new(0),
            big_gets: AtomicUsize::new(0),
            big_body_bytes: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
            shutdown: AtomicBool::new(false),
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("fake-hub".to_owned())
            .spawn(move || serve(&listener, &thread_shared))
            .expect("start the fake hub thread");
        Self {
            addr,
            shared,
            thread: Some(thread),
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    fn log(&self) -> Vec<Logged> {
        self.shared.log.lock().expect("log lock").clone()
    }

    fn big_body_bytes(&self) -> usize {
        self.shared.big_body_bytes.load(Ordering::SeqCst)
    }

    /// The GETs of the big file's bytes (at the fake CDN), in order.
    fn cdn_gets(&self) -> Vec<Logged> {
        self.log()
            .into_iter()
            .filter(|r| r.method == "GET" && r.path.starts_with("/cdn/"))
            .collect()
    }

    fn options(&self, cache: &Path) -> DownloadOptions {
        DownloadOptions {
            endpoint: Some(self.endpoint()),
            cache_dir: Some(cache.to_path_buf()),
            offline: false,
            token: None,
        }
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the loop sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(listener: &TcpListener, shared: &Shared) {
    for _ in 0..MAX_CONNECTIONS {
        let Ok((stream, _)) = listener.accept() else {
            continue;
        };
        if shared.shutdown.load(Ordering::SeqCst) {
            return;
        }
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let _ = handle(stream, shared);
    }
}

struct Request {
    method: String,
    path: String,
    range: Option<String>,
}

fn read_request(stream: &TcpStream) -> std::io::Result<Option<Request>> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Ok(None);
    };
    let (method, path) = (method.to_owned(), path.to_owned());
    let mut content_length = 0usize;
    let mut range = None;
    // Bounded: at most 100 header lines.
    for _ in 0..100 {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            content_length = value.trim().parse().unwrap_or(0);
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("range")
        {
            range = Some(value.trim().to_owned());
        }
    }
    let mut body = vec![0u8; content_length.min(1 << 20)];
    reader.read_exact(&mut body)?;
    Ok(Some(Request {
        method,
        path,
        range,
    }))
}

fn respond(
    mut stream: &TcpStream,
    status: &str,
    headers: &[(String, String)],
    body: &[u8],
    send_body: bool,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if send_body {
        stream.write_all(body)?;
    }
    stream.flush()
}

fn handle(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let Some(request) = read_request(&stream)? else {
        return Ok(());
    };
    shared.log.lock().expect("log lock").push(Logged {
        method: request.method.clone(),
        path: request.path.clone(),
        range: request.range.clone(),
    });
    let is_head = request.method == "HEAD";
    let not_found = |stream: &TcpStream| {
        let headers = [
            ("X-Error-Code".to_owned(), "EntryNotFound".to_owned()),
            ("Content-Length".to_owned(), "0".to_owned()),
        ];
        respond(stream, "404 Not Found", &headers, b"", false)
    };

    // The LFS "CDN": /cdn/{sha256}
    if let Some(sha) = request.path.strip_prefix("/cdn/") {
        let Some((name, file)) = shared
            .files
            .iter()
            .find(|(_, f)| f.lfs && sha256_hex(&f.bytes) == sha)
        else {
            return not_found(&stream);
        };
        // `Range: bytes=N-` (the only form geoloupe sends), unless told to ignore it.
        let start = request
            .range
            .as_deref()
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&n| n < file.bytes.len() && !(shared.faults.ignore_range && name == BIG_FILE));
        let body = &file.bytes[start.unwrap_or(0)..];
        let mut headers = vec![("Content-Length".to_owned(), body.len().to_string())];
        let status = match start {
            Some(n) => {
                headers.push((
                    "Content-Range".to_owned(),
                    format!("bytes {n}-{}/{}", file.bytes.len() - 1, file.bytes.len()),
                ));
                "206 Partial Content"
            }
            None => "200 OK",
        };
        let stall = shared.faults.stall_big;
        if !is_head
            && name == BIG_FILE
            && (stall
                || shared.big_gets.fetch_add(1, Ordering::SeqCst) < shared.faults.drop_big_gets)
        {
            // Announce the whole body, send half, then stall (until the hub shuts down, or
            // 60 s) or cut the connection at once.
            let half = &body[..body.len() / 2];
            shared
                .big_body_bytes
                .fetch_add(half.len(), Ordering::SeqCst);
            respond(&stream, status, &headers, half, true)?;
            for _ in 0..if stall { 600 } else { 0 } {
                if shared.shutdown.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            return stream.shutdown(Shutdown::Both);
        }
        if !is_head && name == BIG_FILE {
            shared
                .big_body_bytes
                .fetch_add(body.len(), Ordering::SeqCst);
        }
        return respond(&stream, status, &headers, body, !is_head);
    }

    // /{owner}/{name}/resolve/{revision}/{file}
    let Some(rest) = request.path.strip_prefix(&format!("/{REPO}/resolve/")) else {
        return not_found(&stream);
    };
    let Some((revision, name)) = rest.split_once('/') else {
        return not_found(&stream);
    };
    let Some(file) = shared
        .files
        .get(name)
        .filter(|_| revision == "main" || revision == COMMIT)
    else {
        return not_found(&stream);
    };
    let sha = sha256_hex(&file.bytes);
    let mut headers = vec![("X-Repo-Commit".to_owned(), COMMIT.to_owned())];
    if file.lfs {
        let announced = match (&shared.faults.wrong_big_etag, name == BIG_FILE) {
            (Some(wrong), true) => wrong.clone(),
            _ => sha.clone(),
        };
        headers.push(("X-Linked-Etag".to_owned(), format!("\"{announced}\"")));
        headers.push(("X-Linked-Size".to_owned(), file.bytes.len().to_string()));
        headers.push(("ETag".to_owned(), "\"cdn-pointer\"".to_owned()));
        headers.push((
            "Location".to_owned(),
            format!("http://{}/cdn/{sha}", stream.local_addr()?),
        ));
        headers.push(("Content-Length".to_owned(), "0".to_owned()));
        return respond(&stream, "302 Found", &headers, b"", false);
    }
    // A git-blob-like etag (40 hex, not a sha256) for regular files.
    headers.push(("ETag".to_owned(), format!("\"{}\"", &sha[..40])));
    headers.push(("Content-Length".to_owned(), file.bytes.len().to_string()));
    respond(&stream, "200 OK", &headers, &file.bytes, !is_head)
}

/// Records progress callbacks.
#[derive(Default)]
struct Recorder {
    started: Vec<(String, Option<u64>)>,
    last_bytes: BTreeMap<String, u64>,
    finished: Vec<String>,
}

impl DownloadProgress for Recorder {
    fn file_started(&mut self, file: &str, total_bytes: Option<u64>) {
        self.started.push((file.to_owned(), total_bytes));
    }
    fn bytes(&mut self, file: &str, done_bytes: u64) {
        self.last_bytes.insert(file.to_owned(), done_bytes);
    }
    fn file_finished(&mut self, file: &str) {
        self.finished.push(file.to_owned());
    }
}

fn repo_files() -> RepoFiles {
    RepoFiles::new(REPO, "main", all_files())
}

fn assert_cached_correctly(fetched: &[geoloupe::model::download::FetchedFile], cache: &Path) {
    let expected = fake_repo();
    assert_eq!(
        fetched.iter().map(|f| f.name.clone()).collect::<Vec<_>>(),
        all_files()
    );
    for file in fetched {
        let want = &expected[&file.name].bytes;
        assert!(
            file.path.starts_with(cache),
            "{} not in the cache",
            file.path.display()
        );
        assert!(
            file.path
                .ends_with(Path::new("snapshots").join(COMMIT).join(&file.name)),
            "{}",
            file.path.display()
        );
        assert_eq!(
            &std::fs::read(&file.path).expect("read fetched file"),
            want,
            "{}",
            file.name
        );
        assert_eq!(file.size_bytes, want.len() as u64);
        assert_eq!(file.sha256, sha256_hex(want));
    }
}

#[test]
fn fetches_all_files_into_the_cache_with_progress() {
    let hub = FakeHub::start(Faults::default());
    let cache = tempfile::tempdir().expect("tempdir");
    let mut progress = Recorder::default();
    let fetched = fetch(&hub.options(cache.path()), &repo_files(), &mut progress).expect("fetch");
    assert_cached_correctly(&fetched, cache.path());

    // The standard layout: refs/main holds the commit; the big file's blob is named by its sha256.
    let repo_dir = cache.path().join("models--test-org--fake-geoclip");
    assert_eq!(
        std::fs::read_to_string(repo_dir.join("refs").join("main"))
            .expect("ref")
            .trim(),
        COMMIT
    );
    let big_sha = sha256_hex(&fake_repo()[BIG_FILE].bytes);
    assert!(repo_dir.join("blobs").join(&big_sha).is_file());

    let sizes: Vec<(String, Option<u64>)> = fake_repo()
        .into_iter()
        .map(|(name, f)| (name, Some(f.bytes.len() as u64)))
        .collect();
    let mut started = progress.started.clone();
    started.sort();
    assert_eq!(started, sizes, "one file_started with its total per file");
    assert_eq!(
        progress.finished,
        all_files(),
        "one file_finished per file, in order"
    );
    for (name, file) in fake_repo() {
        assert_eq!(
            progress.last_bytes.get(&name),
            Some(&(file.bytes.len() as u64)),
            "{name}"
        );
    }

    // A second run downloads nothing again: only HEADs go out.
    let gets = |hub: &FakeHub| hub.log().iter().filter(|r| r.method == "GET").count();
    let gets_before = gets(&hub);
    let fetched =
        fetch(&hub.options(cache.path()), &repo_files(), &mut NoProgress).expect("second fetch");
    assert_cached_correctly(&fetched, cache.path());
    assert_eq!(
        gets(&hub),
        gets_before,
        "no GET on the second run: {:?}",
        hub.log()
    );
}

#[test]
fn offline_uses_the_cache_without_connecting() {
    let hub = FakeHub::start(Faults::default());
    let cache = tempfile::tempdir().expect("tempdir");
    fetch(&hub.options(cache.path()), &repo_files(), &mut NoProgress).expect("online fetch");
    let before = hub.connections();

    let offline = DownloadOptions {
        offline: true,
        ..hub.options(cache.path())
    };
    let mut progress = Recorder::default();
    let fetched = fetch(&offline, &repo_files(), &mut progress).expect("offline fetch");
    assert_cached_correctly(&fetched, cache.path());
    assert_eq!(progress.finished, all_files());
    assert_eq!(hub.connections(), before, "offline mode must not connect");

    // Offline, pinned to the commit itself, works as well.
    let pinned = RepoFiles {
        revision: COMMIT.to_owned(),
        ..repo_files()
    };
    fetch(&offline, &pinned, &mut NoProgress).expect("offline fetch by commit");

    // Offline with an empty cache: NotCached naming the file, still no connection.
    let empty = tempfile::tempdir().expect("tempdir");
    let offline_empty = DownloadOptions {
        offline: true,
        ..hub.options(empty.path())
    };
    let error = fetch(&offline_empty, &repo_files(), &mut NoProgress).expect_err("nothing cached");
    match &error {
        DownloadError::NotCached { repo_id, file } => {
            assert_eq!(repo_id, REPO);
            assert_eq!(file, "config.json");
        }
        other => panic!("expected NotCached, got {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("config.json") && message.contains("offline"),
        "{message}"
    );
    assert_eq!(hub.connections(), before, "offline mode must not connect");
}

#[test]
fn wrong_hub_sha256_is_a_checksum_mismatch_and_the_blob_is_deleted() {
    let wrong = "f".repeat(64);
    let hub = FakeHub::start(Faults {
        wrong_big_etag: Some(wrong.clone()),
        drop_big_gets: 0,
        ..Faults::default()
    });
    let cache = tempfile::tempdir().expect("tempdir");
    let error =
        fetch(&hub.options(cache.path()), &repo_files(), &mut NoProgress).expect_err("bad etag");
    match &error {
        DownloadError::ChecksumMismatch {
            file,
            expected,
            actual,
        } => {
            assert_eq!(file, BIG_FILE);
            assert_eq!(expected, &wrong);
            assert_eq!(actual, &sha256_hex(&fake_repo()[BIG_FILE].bytes));
        }
        other => panic!("expected ChecksumMismatch, got {other:?}"),
    }
    assert!(error.to_string().contains(BIG_FILE));
    let blob = cache
        .path()
        .join("models--test-org--fake-geoclip")
        .join("blobs")
        .join(&wrong);
    assert!(!blob.exists(), "the bad blob must be deleted");
    assert!(
        !blob.with_extension("part").exists(),
        "the bad .part must be deleted"
    );

    // Offline now says the file is not cached, rather than handing out the bad copy.
    let offline = DownloadOptions {
        offline: true,
        ..hub.options(cache.path())
    };
    let error = fetch(
        &offline,
        &RepoFiles::new(REPO, "main", [BIG_FILE]),
        &mut NoProgress,
    )
    .expect_err("deleted");
    assert!(
        matches!(error, DownloadError::NotCached { .. }),
        "{error:?}"
    );
}

#[test]
fn pinned_sha256_mismatch_names_the_file() {
    let hub = FakeHub::start(Faults::default());
    let cache = tempfile::tempdir().expect("tempdir");
    let mut repo = repo_files();
    let pinned = "0".repeat(64);
    repo.expected_sha256
        .insert("gps_gallery.csv".to_owned(), pinned.clone());
    let error =
        fetch(&hub.options(cache.path()), &repo, &mut NoProgress).expect_err("pinned mismatch");
    match &error {
        DownloadError::ChecksumMismatch { file, expected, .. } => {
            assert_eq!(file, "gps_gallery.csv");
            assert_eq!(expected, &pinned);
        }
        other => panic!("expected ChecksumMismatch, got {other:?}"),
    }

    // The right pin passes (and the deleted file is downloaded again).
    let csv_sha = sha256_hex(&fake_repo()["gps_gallery.csv"].bytes);
    repo.expected_sha256
        .insert("gps_gallery.csv".to_owned(), csv_sha.to_uppercase());
    let fetched = fetch(&hub.options(cache.path()), &repo, &mut NoProgress).expect("right pin");
    assert_cached_correctly(&fetched, cache.path());
}

#[test]
fn a_dropped_connection_resumes_with_a_range_request() {
    let hub = FakeHub::start(Faults {
        drop_big_gets: 1,
        ..Faults::default()
    });
    let cache = tempfile::tempdir().expect("tempdir");
    let fetched = fetch(&hub.options(cache.path()), &repo_files(), &mut NoProgress)
        .expect("fetch after one drop");
    assert_cached_correctly(&fetched, cache.path());
    let gets = hub.cdn_gets();
    assert_eq!(
        gets.len(),
        2,
        "the broken transfer is tried again: {:?}",
        hub.log()
    );
    assert_eq!(gets[0].range, None, "the first try asks for everything");
    assert_eq!(
        gets[1].range.as_deref(),
        Some(format!("bytes={}-", BIG_BYTES / 2).as_str()),
        "the second try asks only for what is missing"
    );
    assert_eq!(
        hub.big_body_bytes(),
        BIG_BYTES,
        "the big file's bytes crossed the wire once, not 1.5 times"
    );
    let blobs = cache
        .path()
        .join("models--test-org--fake-geoclip")
        .join("blobs");
    let parts = std::fs::read_dir(&blobs)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".part")
        })
        .count();
    assert_eq!(parts, 0, "the .part was renamed into place");
}

#[test]
fn a_connection_that_keeps_dropping_still_completes_while_each_try_adds_bytes() {
    // Four drops in a row, each after half of what was asked: 1/2, 3/4, 7/8, 15/16, then the
    // rest. Every try brings new bytes, so one fetch goes on to the end.
    let hub = FakeHub::start(Faults {
        drop_big_gets: 4,
        ..Faults::default()
    });
    let cache = tempfile::tempdir().expect("tempdir");
    let fetched = fetch(&hub.options(cache.path()), &repo_files(), &mut NoProgress)
        .expect("fetch through four drops");
    assert_cached_correctly(&fetched, cache.path());
    assert_eq!(hub.cdn_gets().len(), 5, "{:?}", hub.log());
    assert_eq!(hub.big_body_bytes(), BIG_BYTES);
}

#[test]
fn a_server_that_ignores_range_restarts_the_file_and_it_is_still_right() {
    let hub = FakeHub::start(Faults {
        drop_big_gets: 1,
        ignore_range: true,
        ..Faults::default()
    });
    let cache = tempfile::tempdir().expect("tempdir");
    let fetched = fetch(&hub.options(cache.path()), &repo_files(), &mut NoProgress)
        .expect("fetch after one drop");
    assert_cached_correctly(&fetched, cache.path());
    let gets = hub.cdn_gets();
    assert_eq!(gets.len(), 2, "{:?}", hub.log());
    assert!(gets[1].range.is_some(), "a resume was asked for");
    assert_eq!(
        hub.big_body_bytes(),
        BIG_BYTES / 2 + BIG_BYTES,
        "the 200 answer was taken from its first byte"
    );
}

/// Cancels as soon as the big file's first bytes have arrived.
#[derive(Default)]
struct CancelMidFile {
    seen_bytes: u64,
}

impl DownloadProgress for CancelMidFile {
    fn file_started(&mut self, _file: &str, _total_bytes: Option<u64>) {}
    fn bytes(&mut self, file: &str, done_bytes: u64) {
        if file == BIG_FILE {
            self.seen_bytes = done_bytes;
        }
    }
    fn file_finished(&mut self, _file: &str) {}
    fn cancelled(&self) -> bool {
        self.seen_bytes > 0
    }
}

#[test]
fn cancel_stops_a_transfer_mid_file() {
    // The hub sends half of the big file and then stalls until it shuts down: the fetch can
    // only return while the hub is up if cancelling stops the transfer itself.
    let hub = FakeHub::start(Faults {
        stall_big: true,
        ..Faults::default()
    });
    let cache = tempfile::tempdir().expect("tempdir");
    let mut progress = CancelMidFile::default();
    let result = fetch(&hub.options(cache.path()), &repo_files(), &mut progress);
    assert!(
        matches!(&result, Err(DownloadError::Cancelled { file, .. }) if file == BIG_FILE),
        "{result:?}"
    );
    assert!(progress.seen_bytes > 0 && progress.seen_bytes < BIG_BYTES as u64);
    // The hub is still stalling: nothing was retried after the cancel.
    let cdn_gets = hub
        .log()
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with("/cdn/"))
        .count();
    assert_eq!(cdn_gets, 1, "{:?}", hub.log());
    drop(hub);

    // What the cancelled transfer had is kept in its .part (as when the app closes mid-file),
    // and the next run, against a hub that behaves, asks only for the rest.
    let kept = geoloupe::model::download::partial_bytes(
        &DownloadOptions {
            cache_dir: Some(cache.path().to_path_buf()),
            ..DownloadOptions::default()
        },
        REPO,
    );
    assert!(kept > 0 && kept < BIG_BYTES as u64, "{kept}");
    let hub = FakeHub::start(Faults::default());
    let mut progress = Recorder::default();
    let fetched = fetch(&hub.options(cache.path()), &repo_files(), &mut progress).expect("rerun");
    assert_cached_correctly(&fetched, cache.path());
    let gets = hub.cdn_gets();
    assert_eq!(gets.len(), 1, "{:?}", hub.log());
    assert_eq!(
        gets[0].range.as_deref(),
        Some(format!("bytes={kept}-").as_str())
    );
    assert_eq!(hub.big_body_bytes() as u64, BIG_BYTES as u64 - kept);
    assert_eq!(progress.last_bytes.get(BIG_FILE), Some(&(BIG_BYTES as u64)));
}

#[test]
fn a_transfer_that_keeps_breaking_fails_and_a_rerun_completes_it() {
    // A server that ignores Range and keeps dropping: after the first try, no try brings new
    // bytes (each starts over and breaks at the same place), so the fetch gives up after three
    // of those; a rerun completes.
    let hub = FakeHub::start(Faults {
        drop_big_gets: 4,
        ignore_range: true,
        ..Faults::default()
    });
    let cache = tempfile::tempdir().expect("tempdir");
    let mut progress = Recorder::default();
    let error = fetch(&hub.options(cache.path()), &repo_files(), &mut progress)
        .expect_err("keeps breaking");
    match &error {
        DownloadError::Interrupted {
            repo_id,
            file,
            attempts,
            ..
        } => {
            assert_eq!(
                (repo_id.as_str(), file.as_str(), *attempts),
                (REPO, BIG_FILE, 4)
            );
        }
        other => panic!("expected Interrupted, got {other:?}"),
    }
    assert!(
        error.to_string().contains("geoloupe model download"),
        "{error}"
    );
    assert_eq!(
        progress.finished,
        vec!["config.json".to_owned()],
        "the first file completed"
    );

    let fetched = fetch(&hub.options(cache.path()), &repo_files(), &mut NoProgress).expect("rerun");
    assert_cached_correctly(&fetched, cache.path());
    // A rerun does not download the files that had completed.
    let log = hub.log();
    let config_gets = log
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/config.json"))
        .count();
    assert_eq!(config_gets, 1, "{log:?}");
}

#[test]
fn an_unreachable_endpoint_is_named_in_the_error() {
    // A port nobody listens on: bind one, then free it.
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let endpoint = format!("http://127.0.0.1:{port}");
    let cache = tempfile::tempdir().expect("tempdir");
    let options = DownloadOptions {
        endpoint: Some(endpoint.clone()),
        cache_dir: Some(cache.path().to_path_buf()),
        offline: false,
        token: None,
    };
    let error = fetch(&options, &repo_files(), &mut NoProgress).expect_err("unreachable");
    assert!(
        matches!(error, DownloadError::Unreachable { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains(&endpoint), "{message}");
    assert!(
        message.contains(REPO) && message.contains("config.json"),
        "{message}"
    );
    assert!(
        message.contains("HF_ENDPOINT") && message.contains("geoloupe model import"),
        "{message}"
    );
}

#[test]
fn a_missing_file_is_not_found() {
    let hub = FakeHub::start(Faults::default());
    let cache = tempfile::tempdir().expect("tempdir");
    let repo = RepoFiles::new(REPO, "main", ["nope.bin"]);
    let error = fetch(&hub.options(cache.path()), &repo, &mut NoProgress).expect_err("missing");
    match &error {
        DownloadError::NotFound { repo_id, file, .. } => {
            assert_eq!((repo_id.as_str(), file.as_str()), (REPO, "nope.bin"))
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}
