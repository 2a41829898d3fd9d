//! The app's side of the model files: a download in progress (its status with speed and time
//! left, cancelled and joined when dropped, e.g. when the window closes) and the watch that
//! notices installs made elsewhere (`geoloupe model import` in a terminal) while the app runs.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::model::download::{self, DownloadProgress, RateMeter};
use crate::model::files::{self, DataDirs};
use crate::runtime::task::Task;

/// A model download in progress. Dropping it (closing the window) cancels the transfer and
/// joins its thread: the file in progress keeps its `.part` in the Hugging Face cache, and the
/// next download resumes it.
pub struct Download {
    pub task: Task<Result<String, String>>,
    pub progress: Arc<Mutex<DownloadStatus>>,
    pub cancel: Arc<AtomicBool>,
}

impl Drop for Download {
    fn drop(&mut self) {
        // Before the task's own drop joins the thread: the transfer stops at its next chunk
        // (or within 50 ms while it waits for one).
        self.cancel.store(true, Ordering::SeqCst);
    }
}

/// What the download thread reports, for the model panel.
#[derive(Clone, Debug, Default)]
pub struct DownloadStatus {
    pub file: String,
    pub done_bytes: u64,
    pub total_bytes: Option<u64>,
    /// Over the last few seconds, once known.
    pub bytes_per_sec: Option<f64>,
    pub time_left: Option<Duration>,
}

impl DownloadStatus {
    /// Done over total (`None` while the total is unknown).
    pub fn fraction(&self) -> Option<f32> {
        self.total_bytes
            .filter(|&t| t > 0)
            .map(|t| (self.done_bytes as f64 / t as f64) as f32)
    }

    /// "model.safetensors 812 of 1710 MB · 4.2 MB/s · 3 min 34 s left".
    pub fn describe(&self) -> String {
        let mut text = format!("{} {:.0}", self.file, self.done_bytes as f64 / 1e6);
        match self.total_bytes {
            Some(total) => text.push_str(&format!(" of {:.0} MB", total as f64 / 1e6)),
            None => text.push_str(" MB"),
        }
        if let Some(rate) = self.bytes_per_sec {
            text.push_str(&format!(" · {:.1} MB/s", rate / 1e6));
        }
        if let Some(left) = self.time_left {
            text.push_str(&format!(" · {} left", format_secs(left)));
        }
        text
    }
}

/// "45 s", "3 min 4 s", "1 h 12 min".
pub fn format_secs(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, (secs % 3600) / 60),
    }
}

/// Forwards the download's progress into the shared status, with speed and time left.
struct StatusProgress<'a> {
    status: &'a Mutex<DownloadStatus>,
    meter: RateMeter,
}

impl DownloadProgress for StatusProgress<'_> {
    fn file_started(&mut self, file: &str, total_bytes: Option<u64>) {
        self.meter.reset();
        if let Ok(mut s) = self.status.lock() {
            *s = DownloadStatus {
                file: file.to_owned(),
                done_bytes: 0,
                total_bytes,
                bytes_per_sec: None,
                time_left: None,
            };
        }
    }
    fn bytes(&mut self, _file: &str, done_bytes: u64) {
        self.meter.sample(Instant::now(), done_bytes);
        if let Ok(mut s) = self.status.lock() {
            s.done_bytes = done_bytes;
            s.bytes_per_sec = self.meter.bytes_per_sec();
            s.time_left = s.total_bytes.and_then(|t| self.meter.time_left(t));
        }
    }
    fn file_finished(&mut self, _file: &str) {}
}

/// Downloads the release and the backbone (as `geoloupe model download --yes` does), stopping
/// mid-file when `cancel` is set.
pub fn download_models(
    dirs: &DataDirs,
    options: &download::DownloadOptions,
    status: &Mutex<DownloadStatus>,
    cancel: &AtomicBool,
) -> Result<String, String> {
    let mut progress = StatusProgress {
        status,
        meter: RateMeter::default(),
    };
    let reports = files::download_and_install(dirs, options, &mut progress, cancel)
        .map_err(|e| format!("{e}"))?;
    Ok(reports
        .iter()
        .map(|r| format!("{} installed in {}", r.kind, r.dir.display()))
        .collect::<Vec<_>>()
        .join("; "))
}

/// One manifest as seen on disk: its modification time and size (`None`: not there).
type Seen = Option<(SystemTime, u64)>;

/// Notices model files installed, replaced or removed by someone else (the command line, a file
/// manager) by looking at the two install manifests at most every [`ModelFilesWatch::PERIOD`]:
/// two `stat`s, cheap enough for the UI thread.
#[derive(Debug, Default)]
pub struct ModelFilesWatch {
    next_check: Option<Instant>,
    seen: Option<[Seen; 2]>,
}

impl ModelFilesWatch {
    pub const PERIOD: Duration = Duration::from_secs(2);

    /// Whether the manifests changed since the last look (the first look only remembers).
    pub fn changed(&mut self, now: Instant, dirs: &DataDirs) -> bool {
        if self.next_check.is_some_and(|next| now < next) {
            return false;
        }
        self.next_check = Some(now + Self::PERIOD);
        let current = Self::look(dirs);
        let before = self.seen.replace(current);
        before.is_some_and(|before| before != current)
    }

    /// Takes the files as they are now as known (after the app's own install and reload).
    pub fn remember(&mut self, dirs: &DataDirs) {
        self.seen = Some(Self::look(dirs));
    }

    fn look(dirs: &DataDirs) -> [Seen; 2] {
        let seen = |dir: &Path| -> Seen {
            let meta = std::fs::metadata(dir.join(files::MANIFEST_FILE)).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        };
        [seen(&dirs.release_dir()), seen(&dirs.backbone_dir())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watch_sees_a_manifest_appear_change_and_go() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = DataDirs::resolve(Some(tmp.path())).unwrap();
        let mut watch = ModelFilesWatch::default();
        let t0 = Instant::now();
        assert!(!watch.changed(t0, &dirs), "the first look only remembers");
        let manifest = dirs.backbone_dir().join(files::MANIFEST_FILE);
        std::fs::create_dir_all(dirs.backbone_dir()).unwrap();
        std::fs::write(&manifest, "{}").unwrap();
        assert!(
            !watch.changed(t0 + Duration::from_millis(500), &dirs),
            "not looked at again within the period"
        );
        assert!(watch.changed(t0 + ModelFilesWatch::PERIOD, &dirs));
        assert!(!watch.changed(t0 + 2 * ModelFilesWatch::PERIOD, &dirs));
        std::fs::write(&manifest, "{\"longer\": true}").unwrap();
        assert!(watch.changed(t0 + 3 * ModelFilesWatch::PERIOD, &dirs));
        // The app's own install is remembered, not reported.
        std::fs::remove_file(&manifest).unwrap();
        watch.remember(&dirs);
        assert!(!watch.changed(t0 + 4 * ModelFilesWatch::PERIOD, &dirs));
    }

    #[test]
    fn dropping_a_download_cancels_it_before_joining() {
        let cancel = Arc::new(AtomicBool::new(false));
        let saw_cancel = Arc::new(AtomicBool::new(false));
        let (job_cancel, job_saw) = (cancel.clone(), saw_cancel.clone());
        let task = Task::spawn(
            "model-files",
            "test download",
            crate::domain::no_repaint(),
            move || {
                // Bounded: at most 10 s, like a transfer that never ends on its own.
                for _ in 0..1000 {
                    if job_cancel.load(Ordering::SeqCst) {
                        job_saw.store(true, Ordering::SeqCst);
                        return Err("cancelled".to_owned());
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok("finished".to_owned())
            },
        )
        .unwrap();
        drop(Download {
            task,
            progress: Arc::default(),
            cancel,
        });
        assert!(
            saw_cancel.load(Ordering::SeqCst),
            "the thread was told to stop and had stopped when drop returned"
        );
    }

    #[test]
    fn status_text_has_speed_and_time_left() {
        let status = DownloadStatus {
            file: "model.safetensors".into(),
            done_bytes: 812_000_000,
            total_bytes: Some(1_710_000_000),
            bytes_per_sec: Some(4_200_000.0),
            time_left: Some(Duration::from_secs(214)),
        };
        assert_eq!(
            status.describe(),
            "model.safetensors 812 of 1710 MB · 4.2 MB/s · 3 min 34 s left"
        );
        assert!((status.fraction().unwrap() - 0.4749).abs() < 1e-3);
        assert_eq!(format_secs(Duration::from_secs(4_350)), "1 h 12 min");
    }
}
