//! The "library" thread: the only owner of the SQLite connection ([`Store`]).
//!
//! The UI and every job send it [`LibraryCommand`]s (identify photos, save a result, decide,
//! undo, keep a claim, adopt geoloupe's own metadata write, read results) and get [`LibraryEvent`]s back, so
//! no frame ever waits on SQLite or on a file, and no two connections compete for the write
//! lock ("database is locked" cannot happen between parts of the app).
//!
//! Commands run in the order they were sent. Identifying a folder's photos (hashing new files)
//! is done in chunks of [`IDENTIFY_CHUNK`] with every other queued command run between two
//! chunks: an Accept made while 10,000 photos are read in is saved within one chunk, and the
//! events reach the UI in the order the database changed, so an older snapshot never follows a
//! newer decision.
//!
//! The UI side ([`LibraryThread`]) never blocks: commands that don't fit the bounded channel
//! wait in an outbox that [`LibraryThread::flush`] sends on (each frame). Jobs on other threads
//! use a [`LibrarySender`], which blocks while the channel is full. Dropping the handle detaches
//! the event channel first (so the thread can never wait on a UI that is gone), runs every
//! command already sent, and joins.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::thread::JoinHandle;

use crate::domain::{Decision, PhotoResult, RepaintFn};
use crate::library::exif::{ExifInfo, read_exif};
use crate::library::store::{DecisionChange, PhotoRecord, Store, StoredClaim, StoredResult};

/// Photos identified between two looks at the command queue.
pub const IDENTIFY_CHUNK: usize = 32;
/// Commands waiting for the thread, at most (more wait in the UI's outbox).
pub const COMMAND_QUEUE: usize = 256;
/// Events waiting for the UI, at most (the thread waits when the UI falls behind).
pub const EVENT_QUEUE: usize = 256;

/// What the library thread is asked to do.
pub enum LibraryCommand {
    /// Find (or register) these photos and report their earlier results and decisions.
    Identify(Vec<PathBuf>),
    SaveResult {
        path: PathBuf,
        result: Box<PhotoResult>,
    },
    /// Record a decision (`None` clears it).
    Decide {
        path: PathBuf,
        decision: Option<Decision>,
    },
    /// Record several decisions as one undo step (applying a track or a trip to a
    /// selection): all are saved or none.
    DecideMany(Vec<(PathBuf, Option<Decision>)>),
    Undo,
    Redo,
    /// Keep the location claimed for a photo (`None` removes it); identify reports it back.
    SetClaim {
        path: PathBuf,
        claim: Option<StoredClaim>,
    },
    /// geoloupe itself rewrote these photos' EXIF: adopt the new bytes (results stay current)
    /// and report their new EXIF.
    AdoptOwnWrites(Vec<PathBuf>),
    /// The full stored result (with heat points) of one photo.
    LoadResult(PathBuf),
    /// Full stored results for a job on another thread, answered on `reply`.
    ReadResults {
        paths: Vec<PathBuf>,
        reply: SyncSender<Vec<Option<StoredResult>>>,
    },
    Shutdown,
}

/// What the library thread reports.
#[derive(Debug)]
pub enum LibraryEvent {
    /// The database could not be opened: nothing will be saved.
    Unavailable(String),
    /// Earlier results and decisions of identified photos (one chunk). `processed` counts every
    /// path of the chunk, also those that could not be read (gone since the scan).
    Identified {
        records: Vec<(PathBuf, PhotoRecord)>,
        processed: usize,
    },
    /// A decision is saved; `path` is the one it was sent with.
    Decided {
        path: PathBuf,
        change: DecisionChange,
    },
    /// The newest decision was undone, or the oldest undone one redone (`change.path` is the
    /// store's absolute path); a step of several decisions sends one event each.
    UndoneOrRedone { change: DecisionChange },
    /// A decision could not be saved: the UI shows `error` and goes back to `before`.
    DecideFailed { path: PathBuf, error: String },
    /// Whether there is something to undo or redo, after every change.
    UndoState { can_undo: bool, can_redo: bool },
    /// A photo's new EXIF after geoloupe's own write was adopted.
    Adopted { path: PathBuf, exif: ExifInfo },
    /// The full result of [`LibraryCommand::LoadResult`] (`None`: nothing stored).
    Loaded {
        path: PathBuf,
        stored: Option<StoredResult>,
    },
    /// Something could not be read or saved (shown to the user once).
    Error(String),
}

/// A cloneable sender for jobs on other threads (blocks while the queue is full).
#[derive(Clone)]
pub struct LibrarySender(SyncSender<LibraryCommand>);

impl LibrarySender {
    /// `false` when the library thread is gone.
    pub fn send(&self, command: LibraryCommand) -> bool {
        self.0.send(command).is_ok()
    }

    /// Full stored results of `paths` (blocks the calling job, never a frame). `None` when the
    /// thread is gone.
    pub fn read_results(&self, paths: Vec<PathBuf>) -> Option<Vec<Option<StoredResult>>> {
        let (reply, answer) = sync_channel(1);
        self.send(LibraryCommand::ReadResults { paths, reply })
            .then(|| answer.recv().ok())
            .flatten()
    }
}

/// The UI's handle on the library thread. See the module docs.
pub struct LibraryThread {
    commands: SyncSender<LibraryCommand>,
    outbox: VecDeque<LibraryCommand>,
    events: Receiver<LibraryEvent>,
    thread: Option<JoinHandle<()>>,
}

impl LibraryThread {
    /// Starts the thread; it opens the database at `db_path` (`None`: a private in-memory
    /// database, for tests) and reports [`LibraryEvent::Unavailable`] if it can't.
    pub fn start(db_path: Option<PathBuf>, repaint: RepaintFn) -> std::io::Result<Self> {
        let (commands, command_rx) = sync_channel(COMMAND_QUEUE);
        let (event_tx, events) = sync_channel(EVENT_QUEUE);
        let thread = std::thread::Builder::new()
            .name("library".into())
            .spawn(move || {
                let store = match &db_path {
                    Some(path) => Store::open(path),
                    None => Store::open_in_memory(),
                };
                let emit = |event| {
                    // A UI that is gone (its receiver dropped) is not waited for.
                    let _ = event_tx.send(event);
                    repaint();
                };
                match store {
                    Ok(store) => LibraryLoop {
                        store,
                        emit: &emit,
                        identify: VecDeque::new(),
                    }
                    .serve(&command_rx),
                    Err(e) => {
                        emit(LibraryEvent::Unavailable(e.to_string()));
                        // Keep answering jobs so none waits for ever.
                        for command in command_rx {
                            match command {
                                LibraryCommand::Shutdown => break,
                                LibraryCommand::ReadResults { paths, reply } => {
                                    let _ = reply.send(vec![None; paths.len()]);
                                }
                                _ => {}
                            }
                        }
                    }
                }
            })?;
        Ok(Self {
            commands,
            outbox: VecDeque::new(),
            events,
            thread: Some(thread),
        })
    }

    /// Queues a command (never blocks: see the module docs).
    pub fn send(&mut self, command: LibraryCommand) {
        self.outbox.push_back(command);
        self.flush();
    }

    /// Sends what waits in the outbox, as far as the channel takes it (call each frame).
    pub fn flush(&mut self) {
        while let Some(command) = self.outbox.pop_front() {
            match self.commands.try_send(command) {
                Ok(()) => {}
                Err(TrySendError::Full(command)) => {
                    self.outbox.push_front(command);
                    break;
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.outbox.clear();
                    break;
                }
            }
        }
    }

    /// A sender for jobs on other threads.
    pub fn sender(&self) -> LibrarySender {
        LibrarySender(self.commands.clone())
    }

    /// The events so far, without blocking (call each frame).
    pub fn events(&self) -> std::sync::mpsc::TryIter<'_, LibraryEvent> {
        self.events.try_iter()
    }

    /// A handle to no thread, when none could be started: commands go nowhere, no event comes,
    /// and jobs asking for results get none.
    pub fn unavailable() -> Self {
        let (commands, _) = sync_channel(0);
        let (_, events) = sync_channel(0);
        Self {
            commands,
            outbox: VecDeque::new(),
            events,
            thread: None,
        }
    }

    /// Stops taking events: from now on the thread never waits for the UI to read one (the
    /// app is closing, or a test reads nothing).
    pub fn detach_events(&mut self) {
        let (_, detached) = sync_channel(0);
        drop(std::mem::replace(&mut self.events, detached));
    }

    /// Blocks for the next event up to `timeout` (tests).
    pub fn recv_timeout(&self, timeout: std::time::Duration) -> Option<LibraryEvent> {
        self.events.recv_timeout(timeout).ok()
    }
}

impl Drop for LibraryThread {
    fn drop(&mut self) {
        // Detach the events first: the thread never waits on a UI that is gone.
        self.detach_events();
        // Everything sent before runs first (the channel is FIFO), then Shutdown.
        for command in std::mem::take(&mut self.outbox) {
            if self.commands.send(command).is_err() {
                break;
            }
        }
        let _ = self.commands.send(LibraryCommand::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct LibraryLoop<'a> {
    store: Store,
    emit: &'a dyn Fn(LibraryEvent),
    /// Photos still to identify (worked off in chunks between commands).
    identify: VecDeque<PathBuf>,
}

impl LibraryLoop<'_> {
    fn serve(mut self, commands: &Receiver<LibraryCommand>) {
        self.emit_undo_state();
        loop {
            let command = if self.identify.is_empty() {
                match commands.recv() {
                    Ok(command) => command,
                    Err(_) => return,
                }
            } else {
                match commands.try_recv() {
                    Ok(command) => command,
                    Err(TryRecvError::Empty) => {
                        self.identify_chunk();
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => return,
                }
            };
            if matches!(command, LibraryCommand::Shutdown) {
                return;
            }
            self.handle(command);
        }
    }

    fn handle(&mut self, command: LibraryCommand) {
        match command {
            LibraryCommand::Shutdown => {}
            LibraryCommand::Identify(paths) => self.identify.extend(paths),
            LibraryCommand::SaveResult { path, result } => {
                if let Err(e) = self.store.save_result(&path, &result) {
                    (self.emit)(LibraryEvent::Error(format!(
                        "could not save the result: {e}"
                    )));
                }
            }
            LibraryCommand::Decide { path, decision } => {
                match self.store.decide(&path, decision) {
                    Ok(change) => (self.emit)(LibraryEvent::Decided { path, change }),
                    Err(e) => (self.emit)(LibraryEvent::DecideFailed {
                        path,
                        error: format!("could not save the decision: {e}"),
                    }),
                }
                self.emit_undo_state();
            }
            LibraryCommand::DecideMany(decisions) => {
                match self.store.decide_many(&decisions) {
                    Ok(changes) => {
                        for ((path, _), change) in decisions.into_iter().zip(changes) {
                            (self.emit)(LibraryEvent::Decided { path, change });
                        }
                    }
                    Err(e) => {
                        let error = format!("could not save the decisions: {e}");
                        for (path, _) in decisions {
                            (self.emit)(LibraryEvent::DecideFailed {
                                path,
                                error: error.clone(),
                            });
                        }
                    }
                }
                self.emit_undo_state();
            }
            LibraryCommand::Undo | LibraryCommand::Redo => {
                let undo = matches!(command, LibraryCommand::Undo);
                let change = if undo {
                    self.store.undo()
                } else {
                    self.store.redo()
                };
                match change {
                    Ok(changes) => {
                        for change in changes {
                            (self.emit)(LibraryEvent::UndoneOrRedone { change });
                        }
                    }
                    Err(e) => (self.emit)(LibraryEvent::Error(e.to_string())),
                }
                self.emit_undo_state();
            }
            LibraryCommand::SetClaim { path, claim } => {
                if let Err(e) = self.store.set_claim(&path, claim.as_ref()) {
                    (self.emit)(LibraryEvent::Error(format!(
                        "could not save the claim: {e}"
                    )));
                }
            }
            LibraryCommand::AdoptOwnWrites(paths) => {
                for path in paths {
                    if let Err(e) = self.store.adopt_own_write(&path) {
                        (self.emit)(LibraryEvent::Error(format!("library: {e}")));
                    }
                    if let Ok(exif) = read_exif(&path) {
                        (self.emit)(LibraryEvent::Adopted { path, exif });
                    }
                }
            }
            LibraryCommand::LoadResult(path) => match self.store.result(&path) {
                Ok(stored) => (self.emit)(LibraryEvent::Loaded { path, stored }),
                Err(e) => (self.emit)(LibraryEvent::Error(e.to_string())),
            },
            LibraryCommand::ReadResults { paths, reply } => {
                let results = paths
                    .iter()
                    .map(|p| self.store.result(p).ok().flatten())
                    .collect();
                let _ = reply.send(results);
            }
        }
    }

    fn identify_chunk(&mut self) {
        let take = self.identify.len().min(IDENTIFY_CHUNK);
        let chunk: Vec<PathBuf> = self.identify.drain(..take).collect();
        let processed = chunk.len();
        let records = match self.store.identify_many(&chunk) {
            Ok(records) => chunk
                .into_iter()
                .zip(records)
                .filter_map(|(path, record)| record.ok().map(|r| (path, r)))
                .collect(),
            Err(e) => {
                (self.emit)(LibraryEvent::Error(format!(
                    "could not read earlier results: {e}"
                )));
                Vec::new()
            }
        };
        (self.emit)(LibraryEvent::Identified { records, processed });
    }

    fn emit_undo_state(&self) {
        let can_undo = self.store.can_undo().unwrap_or(false);
        let can_redo = self.store.can_redo().unwrap_or(false);
        (self.emit)(LibraryEvent::UndoState { can_undo, can_redo });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::no_repaint;
    use crate::geo::LatLon;
    use std::time::Duration;

    fn next(library: &LibraryThread) -> LibraryEvent {
        library
            .recv_timeout(Duration::from_secs(30))
            .expect("the library thread answers")
    }

    #[test]
    fn every_identified_path_is_accounted_for_even_a_vanished_one() {
        let mut library = LibraryThread::start(None, no_repaint()).unwrap();
        library.send(LibraryCommand::Identify(vec![PathBuf::from(
            "/no/such/photo.jpg",
        )]));
        loop {
            match next(&library) {
                LibraryEvent::Identified { records, processed } => {
                    assert!(records.is_empty());
                    assert_eq!(processed, 1);
                    break;
                }
                LibraryEvent::UndoState { .. } | LibraryEvent::Error(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn a_decision_reports_its_change_and_the_undo_state() {
        let dir = tempfile::tempdir().unwrap();
        let photo = dir.path().join("a.png");
        std::fs::copy(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/images/small.png"),
            &photo,
        )
        .unwrap();
        let mut library = LibraryThread::start(None, no_repaint()).unwrap();
        let decision = Decision::Manual {
            position: LatLon::new(1.0, 2.0),
        };
        library.send(LibraryCommand::Decide {
            path: photo.clone(),
            decision: Some(decision.clone()),
        });
        let mut decided = false;
        while !decided {
            match next(&library) {
                LibraryEvent::Decided { path, change } => {
                    assert_eq!(path, photo);
                    assert_eq!(change.after, Some(decision.clone()));
                    decided = true;
                }
                LibraryEvent::UndoState { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(matches!(
            next(&library),
            LibraryEvent::UndoState {
                can_undo: true,
                can_redo: false
            }
        ));
    }
}
