//! The model panel, driven headless through egui_kittest with the installed model (no network):
//! each missing part shown once with its buttons, an install made elsewhere (as
//! `geoloupe model import` does) noticed without any click and the model loaded, a CLIP folder
//! imported from the app, and a stand-in backbone named as such.
#![allow(clippy::unwrap_used)] // test helpers, as `allow-unwrap-in-tests` allows in #[test] fns

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use geoloupe::app::{App, AppOptions, Command, ModelChoice, ModelState};
use geoloupe::model::files::{self, DataDirs};

use common::app::{SMALL_WINDOW, TestApp, start_app_sized};

/// A loading model keeps a spinner turning: never stable, so few steps at the start.
fn start_app(options: AppOptions) -> Harness<'static, TestApp> {
    start_app_sized(options, SMALL_WINDOW, 20)
}

fn installed_options(data_dir: &Path) -> AppOptions {
    let mut options = AppOptions::new(DataDirs::resolve(Some(data_dir)).unwrap());
    options.model = ModelChoice::Installed;
    options.network_allowed = false;
    options
}

/// Steps the app until `done` holds, for at most `limit` of real time (loading the model
/// encodes the gallery when it is not cached).
fn step_until(
    harness: &mut Harness<'_, TestApp>,
    what: &str,
    limit: Duration,
    done: impl Fn(&App) -> bool,
) {
    let start = Instant::now();
    while start.elapsed() < limit {
        harness.step();
        if done(harness.state().app()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!(
        "gave up waiting for: {what}; state {:?}, messages {:?}",
        harness.state().app().model.state,
        harness.state().app().messages
    );
}

fn count(harness: &Harness<'_, TestApp>, label: &str) -> usize {
    harness.query_all_by_label(label).count()
}

fn installed(app: &App, component: files::Component) -> bool {
    app.model
        .info
        .as_ref()
        .is_some_and(|info| info.iter().any(|c| c.component == component && c.installed))
}

/// The gallery features of the shared test install, linked into `dirs`' cache when they are
/// there, so loading the model need not encode 100K points again.
fn share_gallery_cache(dirs: &DataDirs) {
    let shared = common::data_dirs().gallery_cache_dir();
    let Ok(entries) = std::fs::read_dir(&shared) else {
        return;
    };
    std::fs::create_dir_all(dirs.gallery_cache_dir()).unwrap();
    for entry in entries.flatten() {
        let to = dirs.gallery_cache_dir().join(entry.file_name());
        if std::fs::hard_link(entry.path(), &to).is_err() {
            let _ = std::fs::copy(entry.path(), &to);
        }
    }
}

#[test]
fn an_install_made_elsewhere_is_noticed_and_loaded_without_a_click() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let mut harness = start_app(installed_options(&data_dir));
    step_until(
        &mut harness,
        "the model files check",
        Duration::from_secs(30),
        |app| app.model.info.is_some(),
    );
    harness.step();
    assert!(matches!(
        harness.state().app().model.state,
        ModelState::NotLoaded(_)
    ));
    // Both parts missing: each once, with its buttons, and no terminal commands.
    assert_eq!(count(&harness, "Missing"), 2);
    for button in [
        "Import geoclip wheel…",
        "Import GeoCLIP folder…",
        "Download (1.9 GB)…",
        "Import CLIP folder…",
    ] {
        assert_eq!(count(&harness, button), 1, "{button}");
    }
    assert!(
        harness
            .query_all_by_label_contains("geoloupe model")
            .next()
            .is_none(),
        "no terminal commands in the panel"
    );

    // Meanwhile, in a terminal: `geoloupe model import` of a release folder and a CLIP folder.
    let dirs = DataDirs::resolve(Some(&data_dir)).unwrap();
    share_gallery_cache(&dirs);
    files::import(&common::data_dirs().release_dir(), &dirs).unwrap();
    files::import(&common::tiny_clip(), &dirs).unwrap();

    // No click: the panel notices and the model loads.
    step_until(
        &mut harness,
        "the panel to notice the install",
        Duration::from_secs(30),
        |app| {
            installed(app, files::Component::Release) && installed(app, files::Component::Backbone)
        },
    );
    step_until(
        &mut harness,
        "the model to load",
        Duration::from_secs(300),
        |app| matches!(app.model.state, ModelState::Ready(_)),
    );
    harness.step();
    let ModelState::Ready(provenance) = harness.state().app().model.state.clone() else {
        unreachable!()
    };
    // The tiny test backbone is named for what it is wherever results are shown.
    assert!(provenance.backbone_is_stand_in(), "{provenance:?}");
    assert_eq!(count(&harness, "Installed"), 2);
    assert_eq!(count(&harness, "Missing"), 0);
    assert!(
        harness
            .query_all_by_label_contains("NOT CLIP ViT-L/14")
            .count()
            >= 2,
        "in the backbone's row and under Ready"
    );
    assert!(
        harness
            .query_all_by_label_contains("results are not GeoCLIP's")
            .next()
            .is_some()
    );
    assert_eq!(count(&harness, "Download (1.9 GB)…"), 0);
    assert!(
        harness
            .state()
            .app()
            .messages
            .iter()
            .any(|m| m.contains("changed on disk")),
        "{:?}",
        harness.state().app().messages
    );

    // A result of the stand-in says so in the inspector as well.
    let photo = common::image_path("kauai.jpg");
    {
        let app = harness.state_mut().app_mut();
        app.collection.pending_select = Some(photo.clone());
        app.commands.push(Command::Open(vec![photo]));
    }
    step_until(
        &mut harness,
        "the photo selected",
        Duration::from_secs(30),
        |app| app.collection.selected.is_some(),
    );
    harness.get_by_label("Run on selection (1)").click();
    step_until(
        &mut harness,
        "the result",
        Duration::from_secs(120),
        |app| app.model.batch.is_none() && app.collection.photos.iter().any(|p| p.result.is_some()),
    );
    harness.step();
    harness.step();
    assert!(
        harness
            .query_all_by_label_contains("results are not GeoCLIP's")
            .count()
            >= 2,
        "under Ready and in the inspector"
    );

    // Fast mode, chosen in the panel: the model reloads and every result says so.
    assert_eq!(
        harness.state().app().settings.precision,
        geoloupe::model::Precision::Exact
    );
    harness.get_by_label("Precision").click();
    for _ in 0..3 {
        // The popup is laid out on the frame after the click, then shown.
        harness.step();
    }
    harness.get_by_label("Fast (bf16)").click();
    harness.step();
    assert_eq!(
        harness.state().app().settings.precision,
        geoloupe::model::Precision::Bf16
    );
    step_until(
        &mut harness,
        "the model to reload",
        Duration::from_secs(30),
        |app| !matches!(app.model.state, ModelState::Ready(_)),
    );
    step_until(
        &mut harness,
        "the model to load in fast mode",
        Duration::from_secs(300),
        |app| matches!(app.model.state, ModelState::Ready(_)),
    );
    harness.step();
    let ModelState::Ready(provenance) = harness.state().app().model.state.clone() else {
        unreachable!()
    };
    if geoloupe::model::bf16::Bf16Kernel::detect().is_ok() {
        assert_eq!(provenance.device, "cpu+bf16");
        assert_eq!(count(&harness, "Ready: GeoCLIP on cpu+bf16"), 1);
    } else {
        assert_eq!(provenance.device, "cpu");
        assert!(
            harness
                .query_all_by_label_contains("Fast mode is not available")
                .next()
                .is_some()
        );
    }
}

#[test]
fn a_clip_folder_is_imported_from_the_app() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let mut harness = start_app(installed_options(&data_dir));
    step_until(
        &mut harness,
        "the model files check",
        Duration::from_secs(30),
        |app| app.model.info.is_some(),
    );
    // What the folder dialog behind "Import CLIP folder…" answers with.
    harness
        .state_mut()
        .app_mut()
        .commands
        .push(Command::ImportModel(common::tiny_clip()));
    step_until(&mut harness, "the import", Duration::from_secs(60), |app| {
        app.jobs.import.is_none() && installed(app, files::Component::Backbone)
    });
    harness.step();
    let app = harness.state().app();
    assert!(
        // config, weights, preprocessor config and the tokenizer.
        app.messages.iter().any(|m| m.contains("Imported 4 files")),
        "{:?}",
        app.messages
    );
    assert!(files::Backbone::open(&app.dirs.backbone_dir()).is_ok());
    // The backbone is installed (and said to be a stand-in); only the release is missing,
    // with its own buttons.
    assert_eq!(count(&harness, "Missing"), 1);
    assert_eq!(count(&harness, "Installed"), 1);
    assert_eq!(count(&harness, "Import CLIP folder…"), 0);
    assert_eq!(count(&harness, "Download (1.9 GB)…"), 0);
    assert_eq!(count(&harness, "Import geoclip wheel…"), 1);
    assert!(
        harness
            .query_all_by_label_contains("NOT CLIP ViT-L/14")
            .next()
            .is_some()
    );
    assert!(matches!(
        harness.state().app().model.state,
        ModelState::NotLoaded(_)
    ));
}

/// A fake Hugging Face Hub on 127.0.0.1 serving the two repos `Download` fetches (the release
/// from the shared test install, the tiny CLIP as the backbone): `HEAD` answers with the commit,
/// the sha256 (`X-Linked-Etag`) and the size; `GET` honours `Range: bytes=N-` with `206`. While
/// `stall` is set, the backbone's weights get half their body and then nothing (a hotel
/// connection), until `stall` is cleared or the hub is dropped.
struct FakeHub {
    addr: std::net::SocketAddr,
    shared: std::sync::Arc<HubShared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct HubShared {
    /// `(repo_id, file)` -> bytes.
    files: std::collections::BTreeMap<(String, String), Vec<u8>>,
    stall: std::sync::atomic::AtomicBool,
    shutdown: std::sync::atomic::AtomicBool,
    /// `(method, path, Range header)` of every request.
    log: std::sync::Mutex<Vec<(String, String, Option<String>)>>,
}

const STALLED_FILE: (&str, &str) = (files::BACKBONE_REPO_ID, files::WEIGHTS_FILE);

impl FakeHub {
    fn start() -> Self {
        use std::sync::atomic::AtomicBool;
        let release = common::data_dirs().release_dir();
        let mut served = std::collections::BTreeMap::new();
        for name in [files::CONFIG_FILE, files::WEIGHTS_FILE, files::GALLERY_FILE] {
            served.insert(
                (files::RELEASE_REPO_ID.to_owned(), name.to_owned()),
                std::fs::read(release.join(name)).unwrap(),
            );
        }
        for name in [
            files::CONFIG_FILE,
            files::WEIGHTS_FILE,
            files::PREPROCESSOR_FILE,
            files::TOKENIZER_FILE,
        ] {
            served.insert(
                (files::BACKBONE_REPO_ID.to_owned(), name.to_owned()),
                std::fs::read(common::tiny_clip().join(name)).unwrap(),
            );
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = std::sync::Arc::new(HubShared {
            files: served,
            stall: AtomicBool::new(true),
            shutdown: AtomicBool::new(false),
            log: std::sync::Mutex::new(Vec::new()),
        });
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fake-hub".into())
            .spawn(move || {
                // Bounded: at most 200 connections; each on its own thread, so a stalled
                // transfer doesn't hold up the next request.
                let mut handlers = Vec::new();
                for _ in 0..200 {
                    let Ok((stream, _)) = listener.accept() else {
                        continue;
                    };
                    if thread_shared
                        .shutdown
                        .load(std::sync::atomic::Ordering::SeqCst)
                    {
                        break;
                    }
                    let shared = thread_shared.clone();
                    handlers.push(
                        std::thread::Builder::new()
                            .name("fake-hub-conn".into())
                            .spawn(move || {
                                let _ = serve_one(stream, &shared);
                            })
                            .unwrap(),
                    );
                }
                for handler in handlers {
                    let _ = handler.join();
                }
            })
            .unwrap();
        Self {
            addr,
            shared,
            thread: Some(thread),
        }
    }

    fn options(&self, hf_cache: &Path) -> geoloupe::model::download::DownloadOptions {
        geoloupe::model::download::DownloadOptions {
            endpoint: Some(format!("http://{}", self.addr)),
            cache_dir: Some(hf_cache.to_path_buf()),
            offline: false,
            token: None,
        }
    }

    fn gets_of(&self, repo_id: &str, file: &str) -> Vec<Option<String>> {
        let suffix = format!("/{file}");
        self.shared
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|(method, path, _)| {
                method == "GET"
                    && path.starts_with(&format!("/{repo_id}/"))
                    && path.ends_with(&suffix)
            })
            .map(|(_, _, range)| range.clone())
            .collect()
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.stall.store(false, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve_one(stream: std::net::TcpStream, shared: &HubShared) -> std::io::Result<()> {
    use sha2::Digest as _;
    use std::io::{BufRead as _, Write as _};
    use std::sync::atomic::Ordering;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = std::io::BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Ok(());
    };
    let mut range = None;
    for _ in 0..100 {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("range")
        {
            range = Some(value.trim().to_owned());
        }
    }
    shared
        .log
        .lock()
        .unwrap()
        .push((method.to_owned(), path.to_owned(), range.clone()));
    let mut out = &stream;
    // /{owner}/{name}/resolve/{revision}/{file}
    let found = path.split_once("/resolve/").and_then(|(repo, rest)| {
        let (revision, file) = rest.split_once('/')?;
        let repo = repo.trim_start_matches('/');
        let bytes = shared.files.get(&(repo.to_owned(), file.to_owned()))?;
        Some((repo.to_owned(), revision.to_owned(), file.to_owned(), bytes))
    });
    let Some((repo, revision, file, bytes)) = found else {
        return out.write_all(
            b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nX-Error-Code: EntryNotFound\r\nContent-Length: 0\r\n\r\n",
        );
    };
    let commit = if revision.len() == 40 {
        revision
    } else {
        "c".repeat(40)
    };
    let sha = hex::encode(sha2::Sha256::digest(bytes));
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&n| n < bytes.len() && method == "GET");
    let body = &bytes[start.unwrap_or(0)..];
    let mut head = format!(
        "HTTP/1.1 {}\r\nConnection: close\r\nX-Repo-Commit: {commit}\r\nX-Linked-Etag: \"{sha}\"\r\nX-Linked-Size: {}\r\nContent-Length: {}\r\n",
        if start.is_some() {
            "206 Partial Content"
        } else {
            "200 OK"
        },
        bytes.len(),
        body.len()
    );
    if let Some(n) = start {
        head.push_str(&format!(
            "Content-Range: bytes {n}-{}/{}\r\n",
            bytes.len() - 1,
            bytes.len()
        ));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    if method != "GET" {
        return out.flush();
    }
    if (repo.as_str(), file.as_str()) == STALLED_FILE && shared.stall.load(Ordering::SeqCst) {
        out.write_all(&body[..body.len() / 2])?;
        out.flush()?;
        // Bounded: 60 s at most.
        for _ in 0..600 {
            if !shared.stall.load(Ordering::SeqCst) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        return stream.shutdown(std::net::Shutdown::Both);
    }
    out.write_all(body)?;
    out.flush()
}

/// "Download" as confirmed in the dialog (the tests keep the network switch off, so the map
/// fetches no tiles: it is on only while the command is applied).
fn start_download(harness: &mut Harness<'_, TestApp>) {
    let app = harness.state_mut().app_mut();
    app.settings.network_enabled = true;
    app.commands.push(Command::StartDownload);
    app.end_frame();
    app.settings.network_enabled = false;
    assert!(app.jobs.download.is_some(), "{:?}", app.messages);
}

#[test]
fn a_download_cut_off_by_closing_the_app_resumes_in_the_next_one() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let hf_cache = tmp.path().join("hf");
    let hub = FakeHub::start();
    let dirs = DataDirs::resolve(Some(&data_dir)).unwrap();
    share_gallery_cache(&dirs);
    let mut options = installed_options(&data_dir);
    options.download_options = Some(hub.options(&hf_cache));
    let mut harness = start_app(options);
    step_until(
        &mut harness,
        "the model files check",
        Duration::from_secs(30),
        |app| app.model.info.is_some(),
    );
    let backbone_bytes = std::fs::metadata(common::tiny_clip().join(files::WEIGHTS_FILE))
        .unwrap()
        .len();
    start_download(&mut harness);
    // The release arrives and is installed; the backbone's weights stall half-way.
    step_until(
        &mut harness,
        "half of the backbone's weights",
        Duration::from_secs(60),
        |app| {
            app.jobs.download.as_ref().is_some_and(|d| {
                d.progress.lock().is_ok_and(|s| {
                    s.file == files::WEIGHTS_FILE
                        && s.done_bytes > 0
                        && s.total_bytes == Some(backbone_bytes)
                })
            })
        },
    );
    harness.step();
    assert!(
        harness
            .query_all_by_label_contains(&format!(
                "of {} MB",
                (backbone_bytes as f64 / 1e6).round()
            ))
            .next()
            .is_some(),
        "the progress bar says how much of how much"
    );
    assert_eq!(count(&harness, "Cancel download"), 1);

    // Close the window mid-file: the download thread is cancelled and joined, not waited out.
    drop(harness);
    let options = hub.options(&hf_cache);
    let kept = geoloupe::model::download::partial_bytes(&options, files::BACKBONE_REPO_ID);
    assert!(kept > 0 && kept < backbone_bytes, "{kept}");

    // The next app shows what is kept, and its Download asks only for the rest.
    hub.shared
        .stall
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let mut options = installed_options(&data_dir);
    options.download_options = Some(hub.options(&hf_cache));
    let mut harness = start_app(options);
    step_until(
        &mut harness,
        "the model files check",
        Duration::from_secs(30),
        |app| app.model.info.is_some() && installed(app, files::Component::Release),
    );
    harness.step();
    assert!(
        harness
            .query_all_by_label_contains("An interrupted download left")
            .next()
            .is_some()
    );
    start_download(&mut harness);
    step_until(
        &mut harness,
        "the download and the model",
        Duration::from_secs(300),
        |app| app.jobs.download.is_none() && matches!(app.model.state, ModelState::Ready(_)),
    );
    let gets = hub.gets_of(files::BACKBONE_REPO_ID, files::WEIGHTS_FILE);
    assert_eq!(
        gets,
        vec![None, Some(format!("bytes={kept}-"))],
        "the second app resumed the backbone's weights"
    );
    assert_eq!(
        hub.gets_of(files::RELEASE_REPO_ID, files::WEIGHTS_FILE)
            .len(),
        1,
        "files that completed are not fetched again"
    );
    assert_eq!(
        geoloupe::model::download::partial_bytes(&hub.options(&hf_cache), files::BACKBONE_REPO_ID),
        0
    );
    // The backbone's tokenizer came with it, for text queries.
    assert!(
        data_dir
            .join("models/clip-vit-large-patch14")
            .join(files::TOKENIZER_FILE)
            .is_file()
    );
    assert!(files::Backbone::open(&dirs.backbone_dir()).is_ok());
}
