//! The library database: what the model said about each photo, what the user decided (with
//! undo and redo), and which model said it. SQLite (rusqlite, bundled), one file in the data
//! dir ([`default_path`]), WAL journal.
//!
//! # File identity
//! A photo row is keyed by its absolute path and carries a **content key**: sha256 of the file
//! size (u64 LE), its first 64 KiB and its last 64 KiB. [`Store::identify`] applies the rule:
//! 1. the path is known and size and mtime are unchanged: **unchanged**, without reading the
//!    file (like git's stat cache);
//! 2. the path is known but size or mtime differ: the content key is recomputed; the same key
//!    is **unchanged** (touched), a different key is **edited**: earlier results are kept but
//!    marked stale ([`ResultSummary::stale`]), decisions stay with the photo;
//! 3. the path is new, and a known row has the same content key but its file is gone: the photo
//!    was **moved**; the row follows it, with its results and decisions;
//! 4. otherwise it is **new** (a copy of a known photo whose original still exists is new too).
//!
//! An edit that keeps the size and mtime and touches only the middle of a file goes unnoticed;
//! an edit that keeps the size and touches only the middle goes unnoticed by the content key
//! (the mtime catches it first).
//!
//! # Results
//! Per photo, the latest run: its top-k candidates and, for the heatmap, the kept heat points
//! (see [`crate::domain::heat_points`]: at most 2000 points holding 99% of the probability, stored
//! as f32 lat, lon, probability, about 24 KB at most) with the provenance (model, weights and
//! gallery sha256, backbone, device) and the time. The full 100K probability vector (400 KB)
//! is not stored.
//!
//! # Decisions
//! An append-only log over all photos: accept a candidate, place by hand, place from another
//! source (a track, a neighbouring photo, the trip posterior: the entry keeps its
//! [`crate::domain::Origin`]), or clear. The photo's decision is its latest entry that is not
//! undone. [`Store::undo`] marks the newest live entry (of any photo) undone, [`Store::redo`]
//! revives the oldest undone one, and a new decision discards the undone entries (as any
//! editor's redo stack). Entries made together by [`Store::decide_many`] share a step and are
//! undone and redone as one. The log survives restarts.
//!
//! # Claims
//! Per photo, the location someone claims for it (typed in the inspector): the text as typed
//! and the position it was read as (a place picked from a list is not in the text alone). It
//! stays with the photo as decisions do (moves, edits) and is replaced or removed by
//! [`Store::set_claim`].
//!
//! # Schema
//! Versioned with `PRAGMA user_version`; [`MIGRATIONS`] run in order in one transaction each.
//! A database from a newer build is refused, never modified.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension as _, params};

use super::{LibraryError, unix_nanos};
use crate::domain::{
    Candidate, Decision, HeatPoint, Origin, PhotoResult, Provenance, now_unix_secs,
};
use crate::geo::LatLon;
use crate::model::files::DataDirs;

pub const DATABASE_FILE: &str = "library.sqlite3";
/// Bytes hashed at each end of a file for its content key.
pub const CONTENT_KEY_SPAN: u64 = 64 * 1024;

/// The schema, one step per version (`user_version` = steps applied).
pub const MIGRATIONS: &[&str] = &[
    // 1: photos, provenance, results, decisions.
    "CREATE TABLE photos (
        id INTEGER PRIMARY KEY,
        path BLOB NOT NULL UNIQUE,
        size_bytes INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        content_key TEXT NOT NULL,
        first_seen_unix_secs INTEGER NOT NULL
    );
    CREATE INDEX photos_by_content ON photos(content_key);
    CREATE TABLE provenance (
        id INTEGER PRIMARY KEY,
        model TEXT NOT NULL,
        weights_sha256 TEXT NOT NULL,
        gallery_sha256 TEXT NOT NULL,
        backbone TEXT NOT NULL,
        backbone_sha256 TEXT,
        device TEXT NOT NULL,
        UNIQUE (model, weights_sha256, gallery_sha256, backbone, backbone_sha256, device)
    );
    CREATE TABLE results (
        photo_id INTEGER PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE,
        content_key TEXT NOT NULL,
        provenance_id INTEGER NOT NULL REFERENCES provenance(id),
        computed_at_unix_secs INTEGER NOT NULL,
        top_k INTEGER NOT NULL,
        gallery_len INTEGER NOT NULL,
        candidates_json TEXT NOT NULL,
        heat BLOB NOT NULL,
        heat_mass REAL NOT NULL
    );
    CREATE TABLE decisions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('accepted', 'manual', 'cleared')),
        lat_deg REAL,
        lon_deg REAL,
        candidate_rank INTEGER,
        decided_at_unix_secs INTEGER NOT NULL,
        undone INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX decisions_by_photo ON decisions(photo_id, id);
    CREATE INDEX decisions_by_undone ON decisions(undone, id);",
    // 2: the estimates geoloupe wrote into photos' own EXIF (the evidence that a photo's GPS
    // is an estimate, apart from the file's marking).
    "CREATE TABLE exif_estimates (
        id INTEGER PRIMARY KEY,
        photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
        lat_deg REAL NOT NULL,
        lon_deg REAL NOT NULL,
        error_m REAL,
        method TEXT NOT NULL,
        written_at_unix_secs INTEGER NOT NULL
    );
    CREATE INDEX exif_estimates_by_photo ON exif_estimates(photo_id, id);",
    // 3: the location someone claims for a photo, as typed (text) and as read (position).
    "CREATE TABLE claims (
        photo_id INTEGER PRIMARY KEY REFERENCES photos(id) ON DELETE CASCADE,
        text TEXT NOT NULL,
        lat_deg REAL NOT NULL,
        lon_deg REAL NOT NULL,
        claimed_at_unix_secs INTEGER NOT NULL
    );",
    // 4: decisions remember where their position came from (issue 12): a new kind 'placed'
    // (a track, a neighbouring photo or the trip posterior) with its `Origin` as JSON, and a
    // `step` shared by decisions made together (applying a track to a selection), which undo
    // and redo take as one. SQLite cannot change a CHECK constraint in place: the table is
    // rebuilt, every row and id kept.
    "CREATE TABLE decisions_v4 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('accepted', 'manual', 'placed', 'cleared')),
        lat_deg REAL,
        lon_deg REAL,
        candidate_rank INTEGER,
        decided_at_unix_secs INTEGER NOT NULL,
        undone INTEGER NOT NULL DEFAULT 0,
        origin_json TEXT,
        step INTEGER
    );
    INSERT INTO decisions_v4 (id, photo_id, kind, lat_deg, lon_deg, candidate_rank,
        decided_at_unix_secs, undone)
        SELECT id, photo_id, kind, lat_deg, lon_deg, candidate_rank, decided_at_unix_secs, undone
        FROM decisions;
    DROP TABLE decisions;
    ALTER TABLE decisions_v4 RENAME TO decisions;
    CREATE INDEX decisions_by_photo ON decisions(photo_id, id);
    CREATE INDEX decisions_by_undone ON decisions(undone, id);
    CREATE INDEX decisions_by_step ON decisions(step);",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// `<data>/library.sqlite3`.
pub fn default_path(dirs: &DataDirs) -> PathBuf {
    dirs.data_dir.join(DATABASE_FILE)
}

/// sha256 (hex) of the file size (u64 LE), its first 64 KiB and its last 64 KiB.
pub fn content_key(path: &Path) -> Result<String, LibraryError> {
    use sha2::Digest as _;
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut file = std::fs::File::open(path).map_err(LibraryError::io("open", path))?;
    let size = file
        .metadata()
        .map_err(LibraryError::io("read the metadata of", path))?
        .len();
    let mut hasher = sha2::Sha256::new();
    hasher.update(size.to_le_bytes());
    let mut buf = Vec::with_capacity(CONTENT_KEY_SPAN as usize);
    (&mut file)
        .take(CONTENT_KEY_SPAN)
        .read_to_end(&mut buf)
        .map_err(LibraryError::io("read", path))?;
    hasher.update(&buf);
    if size > CONTENT_KEY_SPAN {
        let tail_start = size.saturating_sub(CONTENT_KEY_SPAN).max(CONTENT_KEY_SPAN);
        buf.clear();
        file.seek(SeekFrom::Start(tail_start))
            .map_err(LibraryError::io("seek in", path))?;
        file.take(CONTENT_KEY_SPAN)
            .read_to_end(&mut buf)
            .map_err(LibraryError::io("read", path))?;
        hasher.update(&buf);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// How a file relates to what the store knew.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileStatus {
    /// Never seen (or a copy of a photo whose original still exists).
    New,
    Unchanged,
    /// Same content as a known photo whose file is gone from `from`.
    Moved {
        from: PathBuf,
    },
    /// The path is known but the content changed: results are stale.
    Edited,
}

/// A stored result without its heat points (cheap to load for a whole folder).
#[derive(Clone, Debug, PartialEq)]
pub struct ResultSummary {
    pub candidates: Vec<Candidate>,
    pub computed_at_unix_secs: i64,
    /// The photo's content changed since (see "File identity").
    pub stale: bool,
}

/// A full stored result.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredResult {
    pub result: PhotoResult,
    pub stale: bool,
}

/// What the store knows about a photo, as [`Store::identify`] found it.
#[derive(Clone, Debug, PartialEq)]
pub struct PhotoRecord {
    pub id: i64,
    pub path: PathBuf,
    pub status: FileStatus,
    pub content_key: String,
    pub result: Option<ResultSummary>,
    pub decision: Option<Decision>,
    /// The location claimed for the photo (typed), if any.
    pub claim: Option<StoredClaim>,
}

/// A claimed location kept with a photo: what was typed and the position it was read as.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredClaim {
    pub text: String,
    pub position: LatLon,
}

/// A decision made, undone or redone: the photo and its decision before and after.
#[derive(Clone, Debug, PartialEq)]
pub struct DecisionChange {
    pub photo_id: i64,
    pub path: PathBuf,
    pub before: Option<Decision>,
    pub after: Option<Decision>,
}

/// An estimate geoloupe wrote into a photo's own EXIF, as recorded when it was adopted.
#[derive(Clone, Debug, PartialEq)]
pub struct ExifEstimateEntry {
    pub position: LatLon,
    /// The uncertainty radius written (`GPSHPositioningError`), in metres.
    pub error_m: Option<f64>,
    /// The `GPSProcessingMethod` text written.
    pub method: String,
    pub written_at_unix_secs: i64,
}

/// One entry of a photo's decision log.
#[derive(Clone, Debug, PartialEq)]
pub struct DecisionEntry {
    pub id: i64,
    /// `None`: the decision was cleared.
    pub decision: Option<Decision>,
    pub decided_at_unix_secs: i64,
    pub undone: bool,
}

/// The open database. Not `Sync`: keep it on one thread (the UI thread is fine: every call
/// is a few small queries; [`Store::identify_many`] reads 128 KiB only for new or changed files).
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating and migrating as needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, LibraryError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(LibraryError::io("create", parent))?;
        }
        let conn = Connection::open(path)
            .map_err(LibraryError::sqlite(format!("opening {}", path.display())))?;
        // journal_mode answers with the mode now in use; a file system without shared
        // memory may keep another one, which works too.
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
            .map_err(LibraryError::sqlite("setting WAL mode"))?;
        log::info!("library database: {}", path.display());
        Self::init(conn, path.to_owned())
    }

    /// A private database in memory (tests).
    pub fn open_in_memory() -> Result<Self, LibraryError> {
        let conn = Connection::open_in_memory().map_err(LibraryError::sqlite("opening memory"))?;
        Self::init(conn, PathBuf::from(":memory:"))
    }

    fn init(mut conn: Connection, path: PathBuf) -> Result<Self, LibraryError> {
        conn.pragma_update(None, "synchronous", "NORMAL")
            .and_then(|()| conn.pragma_update(None, "foreign_keys", "ON"))
            .and_then(|()| conn.busy_timeout(std::time::Duration::from_secs(5)))
            .map_err(LibraryError::sqlite("configuring the connection"))?;
        let found: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(LibraryError::sqlite("reading the schema version"))?;
        if found > SCHEMA_VERSION {
            return Err(LibraryError::SchemaTooNew {
                found,
                known: SCHEMA_VERSION,
                path,
            });
        }
        for (i, step) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
            let tx = conn
                .transaction()
                .map_err(LibraryError::sqlite("starting a migration"))?;
            tx.execute_batch(step)
                .map_err(LibraryError::sqlite(format!(
                    "migrating to schema {}",
                    i + 1
                )))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(LibraryError::sqlite("writing the schema version"))?;
            tx.commit()
                .map_err(LibraryError::sqlite("committing a migration"))?;
        }
        Ok(Self { conn, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn schema_version(&self) -> Result<i64, LibraryError> {
        self.conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(LibraryError::sqlite("reading the schema version"))
    }

    /// Finds (or registers) the photo at `path` by the identity rule in the module docs, and
    /// returns what is known about it. The file must exist.
    pub fn identify(&mut self, path: &Path) -> Result<PhotoRecord, LibraryError> {
        let tx = self
            .conn
            .transaction()
            .map_err(LibraryError::sqlite("starting a transaction"))?;
        let record = identify_in(&tx, path)?;
        tx.commit().map_err(LibraryError::sqlite("committing"))?;
        Ok(record)
    }

    /// [`identify`](Self::identify) for many files in one transaction (reopening a folder).
    /// A file that can't be read gets its error in place of a record.
    pub fn identify_many(
        &mut self,
        paths: &[PathBuf],
    ) -> Result<Vec<Result<PhotoRecord, LibraryError>>, LibraryError> {
        let tx = self
            .conn
            .transaction()
            .map_err(LibraryError::sqlite("starting a transaction"))?;
        let records = paths.iter().map(|p| identify_in(&tx, p)).collect();
        tx.commit().map_err(LibraryError::sqlite("committing"))?;
        Ok(records)
    }

    /// After geoloupe itself rewrote the photo's metadata (EXIF GPS written in place, pixels
    /// untouched): records the file's new size, mtime and content key, and carries a result that
    /// was current before over to the new content, so our own write is not taken for an edit
    /// that makes the result stale. The estimate now in the file (its marked EXIF GPS) is
    /// recorded too ([`Store::exif_estimates`]). A photo the store doesn't know is left alone.
    pub fn adopt_own_write(&mut self, path: &Path) -> Result<(), LibraryError> {
        let path = absolute(path);
        let meta =
            std::fs::metadata(&path).map_err(LibraryError::io("read the metadata of", &path))?;
        let size_bytes = i64::try_from(meta.len()).unwrap_or(i64::MAX);
        let mtime_ns = meta.modified().map(unix_nanos).unwrap_or(0);
        let content = content_key(&path)?;
        let tx = self
            .conn
            .transaction()
            .map_err(LibraryError::sqlite("starting a transaction"))?;
        let known: Option<(i64, String)> = tx
            .query_row(
                "SELECT id, content_key FROM photos WHERE path = ?1",
                params![path_key(&path)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(LibraryError::sqlite("finding a photo"))?;
        if let Some((id, old_content)) = known {
            tx.execute(
                "UPDATE photos SET size_bytes = ?1, mtime_ns = ?2, content_key = ?3 WHERE id = ?4",
                params![size_bytes, mtime_ns, content, id],
            )
            .map_err(LibraryError::sqlite("updating a photo"))?;
            tx.execute(
                "UPDATE results SET content_key = ?1 WHERE photo_id = ?2 AND content_key = ?3",
                params![content, id, old_content],
            )
            .map_err(LibraryError::sqlite("updating a result"))?;
            if let Some(estimate) = super::exif::read_exif(&path)
                .ok()
                .and_then(|info| info.gps_estimate)
            {
                tx.execute(
                    "INSERT INTO exif_estimates (photo_id, lat_deg, lon_deg, error_m, method,
                        written_at_unix_secs) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        id,
                        estimate.position.lat_deg,
                        estimate.position.lon_deg,
                        estimate.error_m,
                        estimate.method,
                        now_unix_secs()
                    ],
                )
                .map_err(LibraryError::sqlite("recording an estimate"))?;
            }
        }
        tx.commit().map_err(LibraryError::sqlite("committing"))
    }

    /// Stores the model's result for the photo at `path` (replacing an earlier one).
    pub fn save_result(&mut self, path: &Path, result: &PhotoResult) -> Result<(), LibraryError> {
        let tx = self
            .conn
            .transaction()
            .map_err(LibraryError::sqlite("starting a transaction"))?;
        let record = identify_in(&tx, path)?;
        let provenance_id = provenance_id(&tx, &result.provenance)?;
        let candidates = serde_json::to_string(
            &result
                .candidates
                .iter()
                .map(CandidateRow::from)
                .collect::<Vec<_>>(),
        )
        .map_err(|e| LibraryError::Decode {
            reason: format!("encoding candidates: {e}"),
            path: path.to_owned(),
        })?;
        tx.execute(
            "INSERT OR REPLACE INTO results (photo_id, content_key, provenance_id,
                computed_at_unix_secs, top_k, gallery_len, candidates_json, heat, heat_mass)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                record.id,
                record.content_key,
                provenance_id,
                result.computed_at_unix_secs,
                result.top_k as i64,
                result.gallery_len as i64,
                candidates,
                encode_heat(&result.heat),
                f64::from(result.heat_mass),
            ],
        )
        .map_err(LibraryError::sqlite("saving a result"))?;
        tx.commit().map_err(LibraryError::sqlite("committing"))
    }

    /// The stored result for `path` with its heat points, without touching the file (`None`
    /// when the path is unknown or has no result). Staleness is as of the last `identify`.
    pub fn result(&self, path: &Path) -> Result<Option<StoredResult>, LibraryError> {
        let key = path_key(&absolute(path));
        self.conn
            .query_row(
                "SELECT r.content_key = p.content_key, r.computed_at_unix_secs, r.top_k,
                        r.gallery_len, r.candidates_json, r.heat, r.heat_mass,
                        v.model, v.weights_sha256, v.gallery_sha256, v.backbone,
                        v.backbone_sha256, v.device
                 FROM photos p JOIN results r ON r.photo_id = p.id
                 JOIN provenance v ON v.id = r.provenance_id
                 WHERE p.path = ?1",
                params![key],
                |row| {
                    let fresh: bool = row.get(0)?;
                    let candidates: String = row.get(4)?;
                    let heat: Vec<u8> = row.get(5)?;
                    Ok(StoredResult {
                        stale: !fresh,
                        result: PhotoResult {
                            candidates: decode_candidates(&candidates),
                            heat: decode_heat(&heat),
                            heat_mass: row.get::<_, f64>(6)? as f32,
                            gallery_len: row.get::<_, i64>(3)? as usize,
                            top_k: row.get::<_, i64>(2)? as usize,
                            provenance: Provenance {
                                model: row.get(7)?,
                                weights_sha256: row.get(8)?,
                                gallery_sha256: row.get(9)?,
                                // Older databases stored the backbone's whole path.
                                backbone: Provenance::backbone_name(&row.get::<_, String>(10)?),
                                backbone_sha256: row.get(11)?,
                                device: row.get(12)?,
                            },
                            computed_at_unix_secs: row.get(1)?,
                            image_feature: None,
                            group: None,
                        },
                    })
                },
            )
            .optional()
            .map_err(LibraryError::sqlite("reading a result"))
    }

    /// Records a decision for the photo at `path` (`None` clears it). Discards the redo stack.
    pub fn decide(
        &mut self,
        path: &Path,
        decision: Option<Decision>,
    ) -> Result<DecisionChange, LibraryError> {
        let tx = self
            .conn
            .transaction()
            .map_err(LibraryError::sqlite("starting a transaction"))?;
        tx.execute("DELETE FROM decisions WHERE undone = 1", [])
            .map_err(LibraryError::sqlite("discarding the redo stack"))?;
        let change = insert_decision(&tx, path, decision, None)?;
        tx.commit().map_err(LibraryError::sqlite("committing"))?;
        Ok(change)
    }

    /// Records several decisions as one step: one transaction (all or none), and one
    /// [`Store::undo`] takes them all back. Discards the redo stack.
    pub fn decide_many(
        &mut self,
        decisions: &[(PathBuf, Option<Decision>)],
    ) -> Result<Vec<DecisionChange>, LibraryError> {
        let tx = self
            .conn
            .transaction()
            .map_err(LibraryError::sqlite("starting a transaction"))?;
        tx.execute("DELETE FROM decisions WHERE undone = 1", [])
            .map_err(LibraryError::sqlite("discarding the redo stack"))?;
        let step: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(step), 0) + 1 FROM decisions",
                [],
                |r| r.get(0),
            )
            .map_err(LibraryError::sqlite("reading the decision log"))?;
        let changes = decisions
            .iter()
            .map(|(path, decision)| insert_decision(&tx, path, decision.clone(), Some(step)))
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit().map_err(LibraryError::sqlite("committing"))?;
        Ok(changes)
    }

    /// The id of the photo stored at `path`, if any.
    fn photo_id(&self, path: &Path) -> Result<Option<i64>, LibraryError> {
        let key = path_key(&absolute(path));
        self.conn
            .query_row("SELECT id FROM photos WHERE path = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(LibraryError::sqlite("finding a photo"))
    }

    /// The current decision for `path` (without touching the file).
    pub fn decision(&self, path: &Path) -> Result<Option<Decision>, LibraryError> {
        match self.photo_id(path)? {
            Some(id) => current_decision(&self.conn, id),
            None => Ok(None),
        }
    }

    /// Undoes the newest live decision (of any photo), with every decision of its step
    /// ([`Store::decide_many`]); empty when there is nothing to undo.
    pub fn undo(&mut self) -> Result<Vec<DecisionChange>, LibraryError> {
        self.flip("undone = 0 ORDER BY id DESC", 1)
    }

    /// Redoes the oldest undone decision, with every undone decision of its step; empty when
    /// there is nothing to redo.
    pub fn redo(&mut self) -> Result<Vec<DecisionChange>, LibraryError> {
        self.flip("undone = 1 ORDER BY id ASC", 0)
    }

    pub fn can_undo(&self) -> Result<bool, LibraryError> {
        self.exists("SELECT EXISTS (SELECT 1 FROM decisions WHERE undone = 0)")
    }

    pub fn can_redo(&self) -> Result<bool, LibraryError> {
        self.exists("SELECT EXISTS (SELECT 1 FROM decisions WHERE undone = 1)")
    }

    /// The decision log of `path`, oldest first.
    pub fn history(&self, path: &Path) -> Result<Vec<DecisionEntry>, LibraryError> {
        let key = path_key(&absolute(path));
        let mut stmt = self
            .conn
            .prepare(
                "SELECT d.id, d.kind, d.lat_deg, d.lon_deg, d.candidate_rank,
                        d.decided_at_unix_secs, d.undone, d.origin_json
                 FROM decisions d JOIN photos p ON p.id = d.photo_id
                 WHERE p.path = ?1 ORDER BY d.id",
            )
            .map_err(LibraryError::sqlite("reading the decision log"))?;
        let rows = stmt
            .query_map(params![key], |row| {
                Ok(DecisionEntry {
                    id: row.get(0)?,
                    decision: decision_from(
                        &row.get::<_, String>(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                        row.get(7)?,
                    ),
                    decided_at_unix_secs: row.get(5)?,
                    undone: row.get(6)?,
                })
            })
            .and_then(Iterator::collect)
            .map_err(LibraryError::sqlite("reading the decision log"))?;
        Ok(rows)
    }

    /// The estimates geoloupe wrote into the EXIF of the photo at `path`, oldest first.
    pub fn exif_estimates(&self, path: &Path) -> Result<Vec<ExifEstimateEntry>, LibraryError> {
        let key = path_key(&absolute(path));
        let mut stmt = self
            .conn
            .prepare(
                "SELECT e.lat_deg, e.lon_deg, e.error_m, e.method, e.written_at_unix_secs
                 FROM exif_estimates e JOIN photos p ON p.id = e.photo_id
                 WHERE p.path = ?1 ORDER BY e.id",
            )
            .map_err(LibraryError::sqlite("reading the estimates written"))?;
        stmt.query_map(params![key], |row| {
            Ok(ExifEstimateEntry {
                position: LatLon::new(row.get(0)?, row.get(1)?),
                error_m: row.get(2)?,
                method: row.get(3)?,
                written_at_unix_secs: row.get(4)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(LibraryError::sqlite("reading the estimates written"))
    }

    /// Keeps `claim` as the claimed location of the photo at `path` (`None` removes it).
    pub fn set_claim(
        &mut self,
        path: &Path,
        claim: Option<&StoredClaim>,
    ) -> Result<(), LibraryError> {
        let tx = self
            .conn
            .transaction()
            .map_err(LibraryError::sqlite("starting a transaction"))?;
        let record = identify_in(&tx, path)?;
        match claim {
            Some(claim) => tx.execute(
                "INSERT OR REPLACE INTO claims (photo_id, text, lat_deg, lon_deg,
                    claimed_at_unix_secs) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    record.id,
                    claim.text,
                    claim.position.lat_deg,
                    claim.position.lon_deg,
                    now_unix_secs()
                ],
            ),
            None => tx.execute("DELETE FROM claims WHERE photo_id = ?1", params![record.id]),
        }
        .map_err(LibraryError::sqlite("saving a claim"))?;
        tx.commit().map_err(LibraryError::sqlite("committing"))
    }

    /// The claimed location kept for `path` (without touching the file).
    pub fn claim(&self, path: &Path) -> Result<Option<StoredClaim>, LibraryError> {
        match self.photo_id(path)? {
            Some(id) => claim_of(&self.conn, id),
            None => Ok(None),
        }
    }

    /// How many photos the store knows.
    pub fn photo_count(&self) -> Result<usize, LibraryError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM photos", [], |r| r.get::<_, i64>(0))
            .map(|n| n as usize)
            .map_err(LibraryError::sqlite("counting photos"))
    }

    fn exists(&self, sql: &str) -> Result<bool, LibraryError> {
        self.conn
            .query_row(sql, [], |r| r.get(0))
            .map_err(LibraryError::sqlite("reading the decision log"))
    }

    fn flip(&mut self, select: &str, undone: i64) -> Result<Vec<DecisionChange>, LibraryError> {
        let tx = self
            .conn
            .transaction()
            .map_err(LibraryError::sqlite("starting a transaction"))?;
        let row: Option<(i64, Option<i64>)> = tx
            .query_row(
                &format!("SELECT id, step FROM decisions WHERE {select} LIMIT 1"),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(LibraryError::sqlite("reading the decision log"))?;
        let Some((id, step)) = row else {
            return Ok(Vec::new());
        };
        // The rows to flip: this one, or every row of its step in the same state.
        let rows: Vec<(i64, i64)> = {
            let mut stmt = tx
                .prepare(
                    "SELECT id, photo_id FROM decisions
                     WHERE (id = ?1 OR (?2 IS NOT NULL AND step = ?2)) AND undone = ?3
                     ORDER BY id",
                )
                .map_err(LibraryError::sqlite("reading the decision log"))?;
            stmt.query_map(params![id, step, 1 - undone], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .and_then(Iterator::collect)
            .map_err(LibraryError::sqlite("reading the decision log"))?
        };
        let mut photo_ids: Vec<i64> = rows.iter().map(|&(_, photo_id)| photo_id).collect();
        photo_ids.dedup();
        let befores = photo_ids
            .iter()
            .map(|&photo_id| current_decision(&tx, photo_id))
            .collect::<Result<Vec<_>, _>>()?;
        for (row_id, _) in &rows {
            tx.execute(
                "UPDATE decisions SET undone = ?1 WHERE id = ?2",
                params![undone, row_id],
            )
            .map_err(LibraryError::sqlite("updating the decision log"))?;
        }
        let mut changes = Vec::with_capacity(photo_ids.len());
        for (photo_id, before) in photo_ids.into_iter().zip(befores) {
            let after = current_decision(&tx, photo_id)?;
            let path: Vec<u8> = tx
                .query_row(
                    "SELECT path FROM photos WHERE id = ?1",
                    params![photo_id],
                    |r| r.get(0),
                )
                .map_err(LibraryError::sqlite("finding a photo"))?;
            changes.push(DecisionChange {
                photo_id,
                path: path_from_key(path),
                before,
                after,
            });
        }
        tx.commit().map_err(LibraryError::sqlite("committing"))?;
        Ok(changes)
    }
}

/// Appends one decision for the photo at `path` (identified first) to the log, in `tx`.
fn insert_decision(
    tx: &Connection,
    path: &Path,
    decision: Option<Decision>,
    step: Option<i64>,
) -> Result<DecisionChange, LibraryError> {
    let record = identify_in(tx, path)?;
    let (kind, lat, lon, rank, origin_json) = match &decision {
        Some(Decision::Accepted { rank, position }) => (
            "accepted",
            Some(position.lat_deg),
            Some(position.lon_deg),
            Some(*rank as i64),
            None,
        ),
        Some(Decision::Manual { position }) => (
            "manual",
            Some(position.lat_deg),
            Some(position.lon_deg),
            None,
            None,
        ),
        Some(Decision::Placed { position, origin }) => (
            "placed",
            Some(position.lat_deg),
            Some(position.lon_deg),
            None,
            Some(
                serde_json::to_string(origin).map_err(|e| LibraryError::Sqlite {
                    context: "writing a decision's origin".to_owned(),
                    source: rusqlite::Error::ToSqlConversionFailure(Box::new(e)),
                })?,
            ),
        ),
        None => ("cleared", None, None, None, None),
    };
    tx.execute(
        "INSERT INTO decisions (photo_id, kind, lat_deg, lon_deg, candidate_rank,
            decided_at_unix_secs, origin_json, step) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            record.id,
            kind,
            lat,
            lon,
            rank,
            now_unix_secs(),
            origin_json,
            step
        ],
    )
    .map_err(LibraryError::sqlite("saving a decision"))?;
    Ok(DecisionChange {
        photo_id: record.id,
        path: record.path,
        before: record.decision,
        after: decision,
    })
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Paths are stored losslessly, so any file name round-trips: on Unix as their bytes; on
/// Windows as UTF-8 when the name is valid Unicode (as earlier versions stored every name), else
/// as its UTF-16 code units behind a tag byte ([`crate::platform::wide::key_from_wide`]), after
/// removing a verbatim `\\?\` prefix where the short form names the same file, so both spellings
/// are one photo.
fn path_key(path: &Path) -> Vec<u8> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt as _;
        path.as_os_str().as_bytes().to_vec()
    }
    #[cfg(windows)]
    {
        use std::os::windows::ffi::OsStrExt as _;
        let units: Vec<u16> = crate::platform::simplified(path)
            .as_os_str()
            .encode_wide()
            .collect();
        crate::platform::wide::key_from_wide(&units)
    }
    #[cfg(not(any(unix, windows)))]
    {
        path.to_string_lossy().into_owned().into_bytes()
    }
}

fn path_from_key(bytes: Vec<u8>) -> PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt as _;
        PathBuf::from(std::ffi::OsString::from_vec(bytes))
    }
    #[cfg(windows)]
    {
        use std::os::windows::ffi::OsStringExt as _;
        PathBuf::from(std::ffi::OsString::from_wide(
            &crate::platform::wide::wide_from_key(&bytes),
        ))
    }
    #[cfg(not(any(unix, windows)))]
    {
        PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
    }
}

struct Row {
    id: i64,
    size_bytes: i64,
    mtime_ns: i64,
    content_key: String,
}

fn identify_in(conn: &Connection, path: &Path) -> Result<PhotoRecord, LibraryError> {
    let path = absolute(path);
    let meta = std::fs::metadata(&path).map_err(LibraryError::io("read the metadata of", &path))?;
    let size_bytes = i64::try_from(meta.len()).unwrap_or(i64::MAX);
    let mtime_ns = meta.modified().map(unix_nanos).unwrap_or(0);
    let key = path_key(&path);
    let known: Option<Row> = conn
        .query_row(
            "SELECT id, size_bytes, mtime_ns, content_key FROM photos WHERE path = ?1",
            params![key],
            |r| {
                Ok(Row {
                    id: r.get(0)?,
                    size_bytes: r.get(1)?,
                    mtime_ns: r.get(2)?,
                    content_key: r.get(3)?,
                })
            },
        )
        .optional()
        .map_err(LibraryError::sqlite("finding a photo"))?;
    let (id, status, content) = match known {
        Some(row) if row.size_bytes == size_bytes && row.mtime_ns == mtime_ns => {
            (row.id, FileStatus::Unchanged, row.content_key)
        }
        Some(row) => {
            let content = content_key(&path)?;
            let status = if content == row.content_key {
                FileStatus::Unchanged
            } else {
                FileStatus::Edited
            };
            conn.execute(
                "UPDATE photos SET size_bytes = ?1, mtime_ns = ?2, content_key = ?3 WHERE id = ?4",
                params![size_bytes, mtime_ns, content, row.id],
            )
            .map_err(LibraryError::sqlite("updating a photo"))?;
            (row.id, status, content)
        }
        None => {
            let content = content_key(&path)?;
            let moved_from = moved_from(conn, &content, size_bytes)?;
            match moved_from {
                Some((id, from)) => {
                    conn.execute(
                        "UPDATE photos SET path = ?1, mtime_ns = ?2 WHERE id = ?3",
                        params![key, mtime_ns, id],
                    )
                    .map_err(LibraryError::sqlite("moving a photo"))?;
                    (id, FileStatus::Moved { from }, content)
                }
                None => {
                    conn.execute(
                        "INSERT INTO photos (path, size_bytes, mtime_ns, content_key,
                            first_seen_unix_secs) VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![key, size_bytes, mtime_ns, content, now_unix_secs()],
                    )
                    .map_err(LibraryError::sqlite("adding a photo"))?;
                    (conn.last_insert_rowid(), FileStatus::New, content)
                }
            }
        }
    };
    Ok(PhotoRecord {
        id,
        path,
        status,
        result: result_summary(conn, id, &content)?,
        decision: current_decision(conn, id)?,
        claim: claim_of(conn, id)?,
        content_key: content,
    })
}

/// A known row with this content whose file no longer exists.
/// Known photos with the same content that are looked at for a move, at most: a folder of
/// thousands of byte-identical copies would otherwise cost a file check per copy for each new
/// one (quadratic). A move among more copies than this is seen for the oldest ones only; the
/// others are registered as new photos.
pub const MOVE_CANDIDATES: i64 = 64;

fn moved_from(
    conn: &Connection,
    content: &str,
    size_bytes: i64,
) -> Result<Option<(i64, PathBuf)>, LibraryError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, path FROM photos WHERE content_key = ?1 AND size_bytes = ?2
             ORDER BY id LIMIT ?3",
        )
        .map_err(LibraryError::sqlite("finding moved photos"))?;
    let rows: Vec<(i64, Vec<u8>)> = stmt
        .query_map(params![content, size_bytes, MOVE_CANDIDATES], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .and_then(Iterator::collect)
        .map_err(LibraryError::sqlite("finding moved photos"))?;
    Ok(rows
        .into_iter()
        .map(|(id, p)| (id, path_from_key(p)))
        .find(|(_, p)| !p.exists()))
}

fn result_summary(
    conn: &Connection,
    photo_id: i64,
    content: &str,
) -> Result<Option<ResultSummary>, LibraryError> {
    conn.prepare_cached(
        "SELECT candidates_json, computed_at_unix_secs, content_key FROM results
         WHERE photo_id = ?1",
    )
    .and_then(|mut stmt| {
        stmt.query_row(params![photo_id], |r| {
            let candidates: String = r.get(0)?;
            let key: String = r.get(2)?;
            Ok(ResultSummary {
                candidates: decode_candidates(&candidates),
                computed_at_unix_secs: r.get(1)?,
                stale: key != content,
            })
        })
        .optional()
    })
    .map_err(LibraryError::sqlite("reading a result"))
}

fn current_decision(conn: &Connection, photo_id: i64) -> Result<Option<Decision>, LibraryError> {
    conn.prepare_cached(
        "SELECT kind, lat_deg, lon_deg, candidate_rank, origin_json FROM decisions
         WHERE photo_id = ?1 AND undone = 0 ORDER BY id DESC LIMIT 1",
    )
    .and_then(|mut stmt| {
        stmt.query_row(params![photo_id], |r| {
            Ok(decision_from(
                &r.get::<_, String>(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
            ))
        })
        .optional()
    })
    .map(Option::flatten)
    .map_err(LibraryError::sqlite("reading a decision"))
}

fn claim_of(conn: &Connection, photo_id: i64) -> Result<Option<StoredClaim>, LibraryError> {
    conn.prepare_cached("SELECT text, lat_deg, lon_deg FROM claims WHERE photo_id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row(params![photo_id], |r| {
                Ok(StoredClaim {
                    text: r.get(0)?,
                    position: LatLon::new(r.get(1)?, r.get(2)?),
                })
            })
            .optional()
        })
        .map_err(LibraryError::sqlite("reading a claim"))
}

fn decision_from(
    kind: &str,
    lat: Option<f64>,
    lon: Option<f64>,
    rank: Option<i64>,
    origin_json: Option<String>,
) -> Option<Decision> {
    let position = LatLon::new(lat?, lon?);
    match kind {
        // An origin this build cannot read (a newer build's kind) still keeps the position,
        // placed by hand: the decision is never dropped.
        "placed" => Some(Decision::Placed {
            position,
            origin: origin_json
                .and_then(|json| serde_json::from_str::<Origin>(&json).ok())
                .unwrap_or(Origin::Hand),
        }),
        "accepted" => Some(Decision::Accepted {
            rank: rank.unwrap_or(0) as usize,
            position,
        }),
        "manual" => Some(Decision::Manual { position }),
        _ => None,
    }
}

fn provenance_id(conn: &Connection, p: &Provenance) -> Result<i64, LibraryError> {
    conn.execute(
        "INSERT OR IGNORE INTO provenance (model, weights_sha256, gallery_sha256, backbone,
            backbone_sha256, device) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            p.model,
            p.weights_sha256,
            p.gallery_sha256,
            p.backbone,
            p.backbone_sha256,
            p.device
        ],
    )
    .map_err(LibraryError::sqlite("saving provenance"))?;
    // `IS` so a NULL backbone_sha256 matches.
    conn.query_row(
        "SELECT id FROM provenance WHERE model = ?1 AND weights_sha256 = ?2 AND
            gallery_sha256 = ?3 AND backbone = ?4 AND backbone_sha256 IS ?5 AND device = ?6",
        params![
            p.model,
            p.weights_sha256,
            p.gallery_sha256,
            p.backbone,
            p.backbone_sha256,
            p.device
        ],
        |r| r.get(0),
    )
    .map_err(LibraryError::sqlite("finding provenance"))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CandidateRow {
    rank: usize,
    gallery_index: usize,
    lat_deg: f64,
    lon_deg: f64,
    probability: f32,
    /// The refined point, when the run refined (absent in rows written before refinement).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refined: Option<RefinedRow>,
}

/// A [`RefinedPoint`](crate::domain::RefinedPoint) in `candidates_json`.
#[derive(serde::Serialize, serde::Deserialize)]
struct RefinedRow {
    lat_deg: f64,
    lon_deg: f64,
    logit: f32,
    similarity: f32,
}

impl From<&Candidate> for CandidateRow {
    fn from(c: &Candidate) -> Self {
        Self {
            rank: c.rank,
            gallery_index: c.gallery_index,
            lat_deg: c.position.lat_deg,
            lon_deg: c.position.lon_deg,
            probability: c.probability,
            refined: c.refined.map(|r| RefinedRow {
                lat_deg: r.position.lat_deg,
                lon_deg: r.position.lon_deg,
                logit: r.logit,
                similarity: r.similarity,
            }),
        }
    }
}

fn decode_candidates(json: &str) -> Vec<Candidate> {
    serde_json::from_str::<Vec<CandidateRow>>(json)
        .unwrap_or_default()
        .into_iter()
        .map(|c| Candidate {
            rank: c.rank,
            gallery_index: c.gallery_index,
            position: LatLon::new(c.lat_deg, c.lon_deg),
            probability: c.probability,
            refined: c.refined.map(|r| crate::domain::RefinedPoint {
                position: LatLon::new(r.lat_deg, r.lon_deg),
                logit: r.logit,
                similarity: r.similarity,
            }),
        })
        .collect()
}

/// Heat points as little-endian f32 triples (lat, lon, probability).
fn encode_heat(heat: &[HeatPoint]) -> Vec<u8> {
    let mut out = Vec::with_capacity(heat.len() * 12);
    for p in heat {
        out.extend_from_slice(&(p.position.lat_deg as f32).to_le_bytes());
        out.extend_from_slice(&(p.position.lon_deg as f32).to_le_bytes());
        out.extend_from_slice(&p.probability.to_le_bytes());
    }
    out
}

fn decode_heat(bytes: &[u8]) -> Vec<HeatPoint> {
    let f = |b: &[u8]| f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    bytes
        .chunks_exact(12)
        .map(|c| HeatPoint {
            position: LatLon::new(f64::from(f(&c[0..4])), f64::from(f(&c[4..8]))),
            probability: f(&c[8..12]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decision row: id, kind, latitude, rank, undone.
    type DecisionRow = (i64, String, Option<f64>, Option<i64>, i64);

    impl Store {
        /// Opens without migrating (a test writes an older schema's rows through it).
        fn open_unmigrated(path: &Path) -> Self {
            Self {
                conn: Connection::open(path).unwrap(),
                path: path.to_owned(),
            }
        }

        /// Every decision row's id, kind, latitude, rank and undone flag, in order.
        fn decision_rows(&self) -> Vec<DecisionRow> {
            let mut stmt = self
                .conn
                .prepare(
                    "SELECT id, kind, lat_deg, candidate_rank, undone FROM decisions ORDER BY id",
                )
                .unwrap();
            stmt.query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
        }
    }

    /// A refined point is kept with its candidate (the app reopens what it showed); rows
    /// written before refinement existed read back without one.
    #[test]
    fn refined_points_survive_the_store_and_old_rows_still_read() {
        let candidate = Candidate {
            rank: 1,
            gallery_index: 7,
            position: LatLon::new(50.45, 30.52),
            probability: 0.25,
            refined: Some(crate::domain::RefinedPoint {
                position: LatLon::new(50.4512, 30.5234),
                logit: 21.5,
                similarity: 0.215,
            }),
        };
        let json = serde_json::to_string(&[CandidateRow::from(&candidate)]).unwrap();
        assert_eq!(decode_candidates(&json), vec![candidate.clone()]);
        let old =
            r#"[{"rank":1,"gallery_index":7,"lat_deg":50.45,"lon_deg":30.52,"probability":0.25}]"#;
        let read = decode_candidates(old);
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].refined, None);
        assert_eq!(read[0].position, candidate.position);
    }

    #[test]
    fn heat_round_trips_through_bytes() {
        let heat = vec![
            HeatPoint {
                position: LatLon::new(22.25, -159.5),
                probability: 0.5,
            },
            HeatPoint {
                position: LatLon::new(-33.75, 151.0),
                probability: 0.125,
            },
        ];
        assert_eq!(decode_heat(&encode_heat(&heat)), heat);
    }

    /// Linux file names are bytes: names that are not UTF-8 (and would read the same if decoded
    /// lossily) are distinct photos, and every path the store gives back (undo, a move) is the
    /// exact name.
    #[cfg(unix)]
    #[test]
    fn non_utf8_names_round_trip_through_the_store() {
        use std::os::unix::ffi::OsStrExt as _;
        let dir = tempfile::tempdir().unwrap();
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/small.png");
        let name = |bytes: &[u8]| dir.path().join(std::ffi::OsStr::from_bytes(bytes));
        let (a, twin, moved) = (
            name(b"caf\xe9 \xff.png"),
            name(b"caf\xe9 \xfe.png"),
            name(b"\x80moved.png"),
        );
        assert_eq!(a.to_string_lossy(), twin.to_string_lossy());
        std::fs::copy(&fixture, &a).unwrap();
        std::fs::copy(&fixture, &twin).unwrap();
        let bytes = |p: &Path| p.as_os_str().as_bytes().to_vec();
        let mut store = Store::open(&dir.path().join("lib.sqlite3")).unwrap();
        let first = store.identify(&a).unwrap();
        assert_eq!(first.status, FileStatus::New);
        assert_eq!(bytes(&first.path), bytes(&a));
        let other = store.identify(&twin).unwrap();
        assert_ne!(other.id, first.id, "a lossy key would make them one photo");
        let result = PhotoResult {
            candidates: vec![Candidate {
                rank: 1,
                gallery_index: 3,
                position: LatLon::new(48.85, 2.35),
                probability: 0.5,
                refined: None,
            }],
            heat: Vec::new(),
            heat_mass: 0.0,
            gallery_len: 10,
            top_k: 1,
            provenance: Provenance::default(),
            computed_at_unix_secs: 1,
            image_feature: None,
            group: None,
        };
        store.save_result(&a, &result).unwrap();
        assert_eq!(
            store.result(&a).unwrap().unwrap().result.candidates,
            result.candidates
        );
        assert!(store.result(&twin).unwrap().is_none());
        let position = LatLon::new(1.0, 2.0);
        store
            .decide(&a, Some(Decision::Manual { position }))
            .unwrap();
        let undone = store.undo().unwrap().pop().unwrap();
        assert_eq!(bytes(&undone.path), bytes(&a));
        // Moved to another such name: found by content, `from` is the exact old name.
        std::fs::rename(&a, &moved).unwrap();
        let found = store.identify(&moved).unwrap();
        assert_eq!(found.id, first.id);
        assert_eq!(found.status, FileStatus::Moved { from: a.clone() });
        assert!(store.result(&moved).unwrap().is_some());
    }

    /// Windows (run under Wine): a name with an unpaired surrogate keeps its exact code units
    /// through the key; the verbatim spelling of a path is the same key as the short one.
    #[cfg(windows)]
    #[test]
    fn windows_keys_are_lossless() {
        use std::os::windows::ffi::{OsStrExt as _, OsStringExt as _};
        let mut units: Vec<u16> = r"C:\photos\a".encode_utf16().collect();
        units.push(0xDC00);
        let lone = PathBuf::from(std::ffi::OsString::from_wide(&units));
        let back = path_from_key(path_key(&lone));
        assert_eq!(back.as_os_str().encode_wide().collect::<Vec<_>>(), units);
        assert_eq!(
            path_key(Path::new(r"\\?\C:\photos\a.jpg")),
            path_key(Path::new(r"C:\photos\a.jpg"))
        );
        assert_eq!(path_key(Path::new(r"C:\photos\a.jpg")), br"C:\photos\a.jpg");
    }

    #[test]
    fn a_version_2_database_gains_the_claims_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lib.sqlite3");
        {
            let conn = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..2] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 2).unwrap();
        }
        let photo = dir.path().join("a.png");
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/small.png"),
            &photo,
        )
        .unwrap();
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let claim = StoredClaim {
            text: "1, 2".into(),
            position: LatLon::new(1.0, 2.0),
        };
        store.set_claim(&photo, Some(&claim)).unwrap();
        assert_eq!(store.claim(&photo).unwrap(), Some(claim));
    }

    fn copy_fixture(dir: &Path, name: &str) -> PathBuf {
        let photo = dir.join(name);
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/small.png"),
            &photo,
        )
        .unwrap();
        photo
    }

    #[test]
    fn a_version_3_library_migrates_and_keeps_every_decision() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lib.sqlite3");
        let (a, b) = (
            copy_fixture(dir.path(), "a.png"),
            copy_fixture(dir.path(), "b.png"),
        );
        // A library as schema 3 wrote it: a's log has an accept, a manual placement and a
        // clear that was undone (on the redo stack); b has one manual placement.
        let rows_before: Vec<DecisionRow>;
        {
            let conn = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..3] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 3).unwrap();
            drop(conn);
            let store = Store::open_unmigrated(&path);
            let ids = [1_i64, 2];
            for (id, photo) in ids.iter().zip([&a, &b]) {
                store
                    .conn
                    .execute(
                        "INSERT INTO photos (id, path, size_bytes, mtime_ns, content_key,
                            first_seen_unix_secs) VALUES (?1, ?2, 0, 0, 'k', 7)",
                        params![id, path_key(&absolute(photo))],
                    )
                    .unwrap();
            }
            for (photo, kind, lat_lon, rank, undone) in [
                (ids[0], "accepted", Some((10.0, 20.0)), Some(2), 0),
                (ids[1], "manual", Some((-33.9, 151.2)), None, 0),
                (ids[0], "manual", Some((11.0, 21.0)), None, 0),
                (ids[0], "cleared", None, None, 1),
            ] {
                store
                    .conn
                    .execute(
                        "INSERT INTO decisions (photo_id, kind, lat_deg, lon_deg, candidate_rank,
                            decided_at_unix_secs, undone) VALUES (?1, ?2, ?3, ?4, ?5, 7, ?6)",
                        params![
                            photo,
                            kind,
                            lat_lon.map(|(lat, _): (f64, f64)| lat),
                            lat_lon.map(|(_, lon)| lon),
                            rank,
                            undone
                        ],
                    )
                    .unwrap();
            }
            rows_before = store.decision_rows();
        }
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(store.decision_rows(), rows_before);
        assert_eq!(
            store.decision(&a).unwrap(),
            Some(Decision::Manual {
                position: LatLon::new(11.0, 21.0)
            })
        );
        assert_eq!(store.history(&a).unwrap().len(), 3);
        // The undone clear is still there to redo.
        assert!(store.can_redo().unwrap());
        let redone = store.redo().unwrap();
        assert_eq!(redone.len(), 1);
        assert_eq!(redone[0].after, None);
        // The new kind is accepted by the rebuilt table, and ids keep counting up.
        let placed = Decision::Placed {
            position: LatLon::new(1.5, 2.5),
            origin: Origin::Track {
                track: "walk.gpx".into(),
                offset_secs: -3600.0,
                altitude_m: Some(12.5),
            },
        };
        store.decide(&b, Some(placed.clone())).unwrap();
        assert_eq!(store.decision(&b).unwrap(), Some(placed));
        let max_id: i64 = store
            .conn
            .query_row("SELECT MAX(id) FROM decisions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(max_id, rows_before.len() as i64 + 1);
    }

    #[test]
    fn decisions_made_together_are_undone_and_redone_as_one_step() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("lib.sqlite3")).unwrap();
        let (a, b, c) = (
            copy_fixture(dir.path(), "a.png"),
            copy_fixture(dir.path(), "b.png"),
            copy_fixture(dir.path(), "c.png"),
        );
        let by_hand = Decision::Manual {
            position: LatLon::new(5.0, 6.0),
        };
        store.decide(&a, Some(by_hand.clone())).unwrap();
        let trip = |lat_deg| Decision::Placed {
            position: LatLon::new(lat_deg, 0.0),
            origin: Origin::Trip {
                max_speed_kmh: 120.0,
                single_photo: LatLon::new(lat_deg + 1.0, 1.0),
            },
        };
        let changes = store
            .decide_many(&[
                (a.clone(), Some(trip(1.0))),
                (b.clone(), Some(trip(2.0))),
                (c.clone(), Some(trip(3.0))),
            ])
            .unwrap();
        assert_eq!(changes.len(), 3);
        assert_eq!(changes[0].before, Some(by_hand.clone()));
        assert_eq!(store.decision(&c).unwrap(), Some(trip(3.0)));
        // One undo takes the whole step back, origins and all.
        let undone = store.undo().unwrap();
        assert_eq!(undone.len(), 3);
        assert_eq!(store.decision(&a).unwrap(), Some(by_hand.clone()));
        assert_eq!(store.decision(&b).unwrap(), None);
        assert_eq!(store.decision(&c).unwrap(), None);
        // One redo brings it back with the origins.
        let redone = store.redo().unwrap();
        assert_eq!(redone.len(), 3);
        assert_eq!(store.decision(&a).unwrap(), Some(trip(1.0)));
        assert_eq!(store.decision(&b).unwrap(), Some(trip(2.0)));
        assert!(!store.can_redo().unwrap());
        // The next undo goes back past the step to the single decision only after it.
        assert_eq!(store.undo().unwrap().len(), 3);
        assert_eq!(store.undo().unwrap().len(), 1);
        assert_eq!(store.decision(&a).unwrap(), None);
    }

    #[test]
    fn migrations_set_the_version_and_refuse_newer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lib.sqlite3");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        drop(store);
        // Reopening runs nothing and keeps the version.
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        store
            .conn
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(store);
        assert!(matches!(
            Store::open(&path),
            Err(LibraryError::SchemaTooNew { .. })
        ));
    }

    #[test]
    fn content_key_reads_both_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        let mut bytes = vec![7u8; 300 * 1024];
        std::fs::write(&path, &bytes).unwrap();
        let a = content_key(&path).unwrap();
        // The tail changes the key, the middle does not.
        *bytes.last_mut().unwrap() = 8;
        std::fs::write(&path, &bytes).unwrap();
        let b = content_key(&path).unwrap();
        assert_ne!(a, b);
        bytes[150 * 1024] = 9;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(content_key(&path).unwrap(), b);
    }
}
