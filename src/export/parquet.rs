//! Results of large runs as Parquet (`locate --output part.parquet`, `geoloupe merge`): one row
//! per photo, typed columns for data tools (DuckDB, pandas, Spark read them as they are) and the
//! whole [`ExportRecord`] as JSON for `geoloupe library import`; the run's provenance in the
//! file's key-value metadata.
//!
//! Written through the parquet crate's column writers (no Arrow). A part file is only ever
//! complete: while a run goes on, each group of rows is committed as its own small file in a
//! journal folder beside the part ([`PartWriter`]), and the part is written once, atomically, at
//! the end. A killed worker loses at most the group it had not committed; a restarted one reads
//! the part and the journal and skips the photos in them.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::basic::Compression;
use parquet::data_type::{
    ByteArray, ByteArrayType, DataType, DoubleType, FloatType, Int32Type, Int64Type,
};
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader as _, SerializedFileReader};
use parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use parquet::record::Field;
use parquet::schema::types::Type;

use super::{ExportError, ExportRecord};
use crate::domain::Provenance;
use crate::geo::LatLon;

/// The format's name and version, in the metadata under [`KEY_FORMAT`].
pub const FORMAT: &str = "geoloupe-results/1";
/// Metadata keys.
pub const KEY_FORMAT: &str = "geoloupe.format";
pub const KEY_VERSION: &str = "geoloupe.version";
pub const KEY_PROVENANCE: &str = "geoloupe.provenance";
pub const KEY_RUN: &str = "geoloupe.run";

/// Rows per row group (and per journal commit) unless the run asks otherwise.
pub const DEFAULT_GROUP_ROWS: usize = 64;

/// The columns, in order. `candidates` is a list of structs, best first; `record_json` is the
/// photo's whole [`ExportRecord`] (absent for a photo that failed).
const SCHEMA: &str = "
message geoloupe_photo {
  required binary path (STRING);
  required binary status (STRING);
  optional binary error (STRING);
  optional int64 file_size;
  optional binary sha256 (STRING);
  optional binary taken_at (STRING);
  optional double exif_lat_deg;
  optional double exif_lon_deg;
  optional double lat_deg;
  optional double lon_deg;
  optional binary place (STRING);
  optional binary claim_source (STRING);
  optional double claim_lat_deg;
  optional double claim_lon_deg;
  optional double claim_top1_distance_km;
  optional double claim_probability_within_25_km;
  optional double claim_probability_within_200_km;
  required group candidates (LIST) {
    repeated group list {
      required group element {
        required int32 rank;
        required double lat_deg;
        required double lon_deg;
        required float probability;
        required int32 gallery_index;
        optional binary place (STRING);
      }
    }
  }
  optional binary record_json (STRING);
}
";

/// Errors reading or writing results files. Paths come last.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error("could not {action}: {path}: {source}")]
    Parquet {
        action: &'static str,
        path: PathBuf,
        source: ParquetError,
    },
    #[error("not a geoloupe results file ({reason}): {path}")]
    NotResults { reason: String, path: PathBuf },
    #[error(
        "{path} holds results of another model or gallery ({theirs}; this run: {ours}); \
         use another --output, or delete it and its journal to start over"
    )]
    OtherModel {
        theirs: String,
        ours: String,
        path: PathBuf,
    },
    #[error(
        "{path} holds results of shard {theirs} and this run is shard {ours}: a part resumes \
         only the same shard; use another --output"
    )]
    OtherShard {
        theirs: String,
        ours: String,
        path: PathBuf,
    },
}

impl ResultsError {
    fn parquet(action: &'static str, path: &Path) -> impl FnOnce(ParquetError) -> Self {
        let path = path.to_owned();
        move |source| Self::Parquet {
            action,
            path,
            source,
        }
    }
}

/// Whether a photo was located.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
        }
    }
}

/// One photo's row.
#[derive(Clone, Debug, PartialEq)]
pub struct PhotoRow {
    /// The photo's path as the run found it (lossy UTF-8): the row's key.
    pub path: String,
    pub status: Status,
    /// Why it failed.
    pub error: Option<String>,
    pub file_size: Option<u64>,
    /// sha256 of the file's bytes, lower-case hex.
    pub sha256: Option<String>,
    /// EXIF DateTimeOriginal, `YYYY-MM-DDTHH:MM:SS` with the offset when recorded.
    pub taken_at: Option<String>,
    /// EXIF GPS, when the photo has a valid fix.
    pub exif_gps: Option<LatLon>,
    /// The answer (every typed column after `exif_lon_deg` comes from it).
    pub record: Option<ExportRecord>,
}

impl PhotoRow {
    /// A photo that could not be located.
    pub fn failed(path: &Path, error: impl Into<String>) -> Self {
        Self {
            path: path.to_string_lossy().into_owned(),
            status: Status::Failed,
            error: Some(error.into()),
            file_size: None,
            sha256: None,
            taken_at: None,
            exif_gps: None,
            record: None,
        }
    }

    /// A located photo.
    pub fn located(record: ExportRecord) -> Self {
        Self {
            path: record.path.to_string_lossy().into_owned(),
            status: Status::Ok,
            error: None,
            file_size: None,
            sha256: None,
            taken_at: record.taken_at.as_ref().map(|t| t.local_with_offset()),
            exif_gps: None,
            record: Some(record),
        }
    }
}

/// What a results file says about the run that made it (its key-value metadata).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunInfo {
    /// The geoloupe version that wrote it.
    pub version: String,
    pub provenance: Provenance,
    /// The run's options and shard, free-form JSON (`{"top_k": 5, "shard": "3/8"}`).
    pub run: serde_json::Value,
}

impl RunInfo {
    /// What must be equal for two files' rows to be comparable: the model, its weights and
    /// the gallery (the device and the geoloupe version may differ).
    pub fn model_key(&self) -> String {
        let p = &self.provenance;
        format!(
            "model {} with backbone {} ({}), heads sha256 {}, gallery sha256 {}",
            p.model,
            p.backbone,
            p.backbone_sha256.as_deref().unwrap_or("sha256 unknown"),
            short(&p.weights_sha256),
            short(&p.gallery_sha256),
        )
    }

    /// The shard the run located (`"3/16"`), from [`RunInfo::run`]'s `shard`.
    pub fn shard(&self) -> Option<&str> {
        self.run["shard"].as_str()
    }

    fn key_values(&self) -> Result<Vec<KeyValue>, serde_json::Error> {
        Ok(vec![
            KeyValue::new(KEY_FORMAT.to_owned(), FORMAT.to_owned()),
            KeyValue::new(KEY_VERSION.to_owned(), self.version.clone()),
            KeyValue::new(
                KEY_PROVENANCE.to_owned(),
                serde_json::to_string(&self.provenance)?,
            ),
            KeyValue::new(KEY_RUN.to_owned(), serde_json::to_string(&self.run)?),
        ])
    }
}

fn claim(row: &PhotoRow) -> Option<&crate::geo::ClaimCheck> {
    row.record.as_ref().and_then(|x| x.claim.as_ref())
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// Writes `rows` to `path` atomically (a temporary file in the same folder, flushed and renamed),
/// `group_rows` rows to a row group.
pub fn write_file(
    path: &Path,
    info: &RunInfo,
    rows: &[PhotoRow],
    group_rows: usize,
) -> Result<(), ResultsError> {
    let schema = Arc::new(schema());
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_key_value_metadata(Some(info.key_values().map_err(ExportError::from)?))
            .set_created_by(format!("geoloupe {}", env!("CARGO_PKG_VERSION")))
            .build(),
    );
    super::write_atomic_file(path, |file| {
        let mut writer = SerializedFileWriter::new(std::io::BufWriter::new(file), schema, props)
            .map_err(std::io::Error::other)?;
        for group in rows.chunks(group_rows.max(1)) {
            let mut rg = writer.next_row_group().map_err(std::io::Error::other)?;
            write_group(&mut rg, group).map_err(std::io::Error::other)?;
            rg.close().map_err(std::io::Error::other)?;
        }
        let mut out = writer.into_inner().map_err(std::io::Error::other)?;
        out.flush()
    })
    .map_err(ResultsError::from)
}

fn schema() -> Type {
    // The schema is a constant: its tests parse it.
    parquet::schema::parser::parse_message_type(SCHEMA)
        .unwrap_or_else(|e| unreachable!("the results schema is checked by its tests: {e}"))
}

/// Present values and their definition levels (1 present, 0 absent) of an optional column.
fn optional<T>(values: impl Iterator<Item = Option<T>>) -> (Vec<T>, Vec<i16>) {
    let mut present = Vec::new();
    let mut levels = Vec::new();
    for v in values {
        levels.push(i16::from(v.is_some()));
        present.extend(v);
    }
    (present, levels)
}

fn text(s: &str) -> ByteArray {
    ByteArray::from(s.as_bytes().to_vec())
}

fn next_column<'a, 'b, T: DataType>(
    rg: &'a mut SerializedRowGroupWriter<'b, impl std::io::Write + Send>,
    values: &[T::T],
    def: Option<&[i16]>,
    rep: Option<&[i16]>,
) -> Result<(), ParquetError> {
    let mut column = rg
        .next_column()?
        .ok_or_else(|| ParquetError::General("more columns written than the schema has".into()))?;
    column.typed::<T>().write_batch(values, def, rep)?;
    column.close()
}

/// One row group's columns, in [`SCHEMA`]'s order.
fn write_group(
    rg: &mut SerializedRowGroupWriter<'_, impl std::io::Write + Send>,
    rows: &[PhotoRow],
) -> Result<(), ParquetError> {
    let paths: Vec<ByteArray> = rows.iter().map(|r| text(&r.path)).collect();
    next_column::<ByteArrayType>(rg, &paths, None, None)?;
    let status: Vec<ByteArray> = rows.iter().map(|r| text(r.status.as_str())).collect();
    next_column::<ByteArrayType>(rg, &status, None, None)?;
    let optional_text = |rg: &mut SerializedRowGroupWriter<'_, _>,
                         f: &dyn Fn(&PhotoRow) -> Option<String>| {
        let (values, def) = optional(rows.iter().map(|r| f(r).map(|s| text(&s))));
        next_column::<ByteArrayType>(rg, &values, Some(&def), None)
    };
    let optional_f64 = |rg: &mut SerializedRowGroupWriter<'_, _>,
                        f: &dyn Fn(&PhotoRow) -> Option<f64>| {
        let (values, def) = optional(rows.iter().map(f));
        next_column::<DoubleType>(rg, &values, Some(&def), None)
    };
    optional_text(rg, &|r| r.error.clone())?;
    let (sizes, def) = optional(rows.iter().map(|r| r.file_size.map(|s| s as i64)));
    next_column::<Int64Type>(rg, &sizes, Some(&def), None)?;
    optional_text(rg, &|r| r.sha256.clone())?;
    optional_text(rg, &|r| r.taken_at.clone())?;
    optional_f64(rg, &|r| r.exif_gps.map(|g| g.lat_deg))?;
    optional_f64(rg, &|r| r.exif_gps.map(|g| g.lon_deg))?;
    optional_f64(rg, &|r| r.record.as_ref().map(|x| x.location.lat_deg))?;
    optional_f64(rg, &|r| r.record.as_ref().map(|x| x.location.lon_deg))?;
    optional_text(rg, &|r| {
        r.record
            .as_ref()
            .and_then(|x| x.place.as_ref())
            .map(|p| p.label())
    })?;
    optional_text(rg, &|r| claim(r).map(|c| c.source.as_str().to_owned()))?;
    optional_f64(rg, &|r| claim(r).map(|c| c.claimed.lat_deg))?;
    optional_f64(rg, &|r| claim(r).map(|c| c.claimed.lon_deg))?;
    optional_f64(rg, &|r| claim(r).map(|c| c.top1_distance_km))?;
    optional_f64(rg, &|r| claim(r).map(|c| c.probability_within_25_km))?;
    optional_f64(rg, &|r| claim(r).map(|c| c.probability_within_200_km))?;

    // candidates: list<struct>. Repetition level 0 starts a row's list, 1 continues it;
    // definition level 0 is an empty list, 1 a candidate (2 for its place when it has one).
    let candidates: Vec<&[super::ExportCandidate]> = rows
        .iter()
        .map(|r| r.record.as_ref().map_or(&[][..], |x| &x.candidates[..]))
        .collect();
    let mut rep = Vec::new();
    let mut def = Vec::new();
    for list in &candidates {
        if list.is_empty() {
            rep.push(0);
            def.push(0);
        }
        for i in 0..list.len() {
            rep.push(i16::from(i > 0));
            def.push(1);
        }
    }
    let all = || candidates.iter().flat_map(|l| l.iter());
    let ranks: Vec<i32> = all().map(|c| c.rank as i32).collect();
    next_column::<Int32Type>(rg, &ranks, Some(&def), Some(&rep))?;
    let lats: Vec<f64> = all().map(|c| c.position.lat_deg).collect();
    next_column::<DoubleType>(rg, &lats, Some(&def), Some(&rep))?;
    let lons: Vec<f64> = all().map(|c| c.position.lon_deg).collect();
    next_column::<DoubleType>(rg, &lons, Some(&def), Some(&rep))?;
    let probabilities: Vec<f32> = all().map(|c| c.probability).collect();
    next_column::<FloatType>(rg, &probabilities, Some(&def), Some(&rep))?;
    let indices: Vec<i32> = all().map(|c| c.gallery_index as i32).collect();
    next_column::<Int32Type>(rg, &indices, Some(&def), Some(&rep))?;
    let mut places = Vec::new();
    let mut place_def = Vec::new();
    for list in &candidates {
        if list.is_empty() {
            place_def.push(0);
        }
        for c in *list {
            place_def.push(if c.place.is_some() { 2 } else { 1 });
            places.extend(c.place.as_ref().map(|p| text(&p.label())));
        }
    }
    next_column::<ByteArrayType>(rg, &places, Some(&place_def), Some(&rep))?;

    let mut json = Vec::new();
    let mut json_def = Vec::new();
    for r in rows {
        match &r.record {
            Some(record) => {
                let text = serde_json::to_string(record)
                    .map_err(|e| ParquetError::General(format!("record as JSON: {e}")))?;
                json.push(ByteArray::from(text.into_bytes()));
                json_def.push(1);
            }
            None => json_def.push(0),
        }
    }
    next_column::<ByteArrayType>(rg, &json, Some(&json_def), None)
}

/// A results file read back: its run and its rows, in the file's order.
#[derive(Clone, Debug)]
pub struct ResultsFile {
    pub info: RunInfo,
    pub rows: Vec<PhotoRow>,
}

/// Reads a results file (any geoloupe version of [`FORMAT`]).
pub fn read_file(path: &Path) -> Result<ResultsFile, ResultsError> {
    let file = File::open(path).map_err(ExportError::io("open", path))?;
    let reader = SerializedFileReader::new(file).map_err(ResultsError::parquet("read", path))?;
    let not_results = |reason: String| ResultsError::NotResults {
        reason,
        path: path.to_owned(),
    };
    let meta: HashMap<&str, &str> = reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .filter_map(|k| Some((k.key.as_str(), k.value.as_deref()?)))
                .collect()
        })
        .unwrap_or_default();
    match meta.get(KEY_FORMAT) {
        Some(&FORMAT) => {}
        Some(other) => return Err(not_results(format!("its format is {other}, not {FORMAT}"))),
        None => return Err(not_results(format!("no {KEY_FORMAT} in its metadata"))),
    }
    let json = |key: &str| -> Result<serde_json::Value, ResultsError> {
        let text = meta
            .get(key)
            .ok_or_else(|| not_results(format!("no {key} in its metadata")))?;
        serde_json::from_str(text).map_err(|e| not_results(format!("{key}: {e}")))
    };
    let info = RunInfo {
        version: meta.get(KEY_VERSION).unwrap_or(&"").to_string(),
        provenance: serde_json::from_value(json(KEY_PROVENANCE)?)
            .map_err(|e| not_results(format!("{KEY_PROVENANCE}: {e}")))?,
        run: json(KEY_RUN)?,
    };
    let mut rows = Vec::new();
    for row in reader
        .get_row_iter(None)
        .map_err(ResultsError::parquet("read", path))?
    {
        let row = row.map_err(ResultsError::parquet("read", path))?;
        rows.push(row_from_fields(row.get_column_iter()).map_err(not_results)?);
    }
    Ok(ResultsFile { info, rows })
}

/// Every value of one text column of any Parquet file (a manifest's paths), nulls skipped.
pub fn read_text_column(path: &Path, column: &str) -> Result<Vec<String>, ResultsError> {
    let file = File::open(path).map_err(ExportError::io("open", path))?;
    let reader = SerializedFileReader::new(file).map_err(ResultsError::parquet("read", path))?;
    let root = reader.metadata().file_metadata().schema();
    let fields = root.get_fields();
    let Some(field) = fields.iter().find(|f| f.name() == column) else {
        let names: Vec<&str> = fields.iter().map(|f| f.name()).collect();
        return Err(ResultsError::NotResults {
            reason: format!("no column {column:?}; its columns: {}", names.join(", ")),
            path: path.to_owned(),
        });
    };
    let projection = Type::group_type_builder(root.name())
        .with_fields(vec![field.clone()])
        .build()
        .map_err(ResultsError::parquet("read", path))?;
    let mut values = Vec::new();
    for row in reader
        .get_row_iter(Some(projection))
        .map_err(ResultsError::parquet("read", path))?
    {
        let row = row.map_err(ResultsError::parquet("read", path))?;
        for (_, field) in row.get_column_iter() {
            match field {
                Field::Str(s) => values.push(s.clone()),
                Field::Null => {}
                other => {
                    return Err(ResultsError::NotResults {
                        reason: format!("column {column:?} holds {other}, not text"),
                        path: path.to_owned(),
                    });
                }
            }
        }
    }
    Ok(values)
}

fn row_from_fields<'a>(
    fields: impl Iterator<Item = (&'a String, &'a Field)>,
) -> Result<PhotoRow, String> {
    let mut row = PhotoRow {
        path: String::new(),
        status: Status::Failed,
        error: None,
        file_size: None,
        sha256: None,
        taken_at: None,
        exif_gps: None,
        record: None,
    };
    let (mut lat, mut lon) = (None, None);
    for (name, field) in fields {
        let text = || match field {
            Field::Str(s) => Some(s.clone()),
            _ => None,
        };
        let double = || match field {
            Field::Double(d) => Some(*d),
            _ => None,
        };
        match name.as_str() {
            "path" => row.path = text().ok_or("a row without a path")?,
            "status" => {
                row.status = match text().as_deref() {
                    Some("ok") => Status::Ok,
                    Some("failed") => Status::Failed,
                    other => return Err(format!("status {other:?}")),
                }
            }
            "error" => row.error = text(),
            "file_size" => {
                row.file_size = match field {
                    Field::Long(n) => u64::try_from(*n).ok(),
                    _ => None,
                }
            }
            "sha256" => row.sha256 = text(),
            "taken_at" => row.taken_at = text(),
            "exif_lat_deg" => lat = double(),
            "exif_lon_deg" => lon = double(),
            "record_json" => {
                row.record = text()
                    .map(|t| serde_json::from_str(&t))
                    .transpose()
                    .map_err(|e| format!("record_json: {e}"))?
            }
            _ => {}
        }
    }
    row.exif_gps = lat
        .zip(lon)
        .map(|(lat_deg, lon_deg)| LatLon { lat_deg, lon_deg });
    if row.status == Status::Ok && row.record.is_none() {
        return Err(format!("a located photo without its record: {}", row.path));
    }
    Ok(row)
}

/// A part file being written: the rows committed so far (the part's and the journal's) and the
/// rows not yet committed. See the module's documentation.
pub struct PartWriter {
    path: PathBuf,
    journal: PathBuf,
    info: RunInfo,
    group_rows: usize,
    /// Committed rows by path, the newest kept: a photo retried after failing replaces its row.
    committed: Vec<PhotoRow>,
    index: HashMap<String, usize>,
    pending: Vec<PhotoRow>,
    next_group: usize,
}

/// What [`PartWriter::open`] found from an earlier run of the same part.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resumed {
    pub located: usize,
    pub failed: usize,
}

impl PartWriter {
    /// The journal folder of `part` (`part.parquet.journal`).
    pub fn journal_dir(part: &Path) -> PathBuf {
        let mut name = part.file_name().unwrap_or_default().to_os_string();
        name.push(".journal");
        part.with_file_name(name)
    }

    /// Opens `path` for this run, reading what an earlier run of it left (the part file, and
    /// the journal of an unfinished run). Refuses a part made with another model or gallery.
    pub fn open(
        path: &Path,
        info: RunInfo,
        group_rows: usize,
    ) -> Result<(Self, Resumed), ResultsError> {
        let journal = Self::journal_dir(path);
        let mut writer = Self {
            path: path.to_owned(),
            journal: journal.clone(),
            info,
            group_rows: group_rows.max(1),
            committed: Vec::new(),
            index: HashMap::new(),
            pending: Vec::new(),
            next_group: 0,
        };
        let mut earlier = Vec::new();
        if path.exists() {
            earlier.push(path.to_owned());
        }
        if journal.is_dir() {
            let mut groups: Vec<(usize, PathBuf)> = std::fs::read_dir(&journal)
                .map_err(ExportError::io("read", &journal))?
                .filter_map(|e| {
                    let path = e.ok()?.path();
                    let number = path
                        .file_name()?
                        .to_str()?
                        .strip_prefix("group-")?
                        .strip_suffix(".parquet")?
                        .parse()
                        .ok()?;
                    Some((number, path))
                })
                .collect();
            groups.sort();
            writer.next_group = groups.last().map_or(0, |(n, _)| n + 1);
            earlier.extend(groups.into_iter().map(|(_, p)| p));
        } else {
            std::fs::create_dir_all(&journal).map_err(ExportError::io("create", &journal))?;
        }
        for file in earlier {
            let results = read_file(&file)?;
            if results.info.model_key() != writer.info.model_key() {
                return Err(ResultsError::OtherModel {
                    theirs: results.info.model_key(),
                    ours: writer.info.model_key(),
                    path: file,
                });
            }
            if results.info.shard() != writer.info.shard() {
                return Err(ResultsError::OtherShard {
                    theirs: results
                        .info
                        .shard()
                        .unwrap_or("none (all photos)")
                        .to_owned(),
                    ours: writer
                        .info
                        .shard()
                        .unwrap_or("none (all photos)")
                        .to_owned(),
                    path: file,
                });
            }
            for row in results.rows {
                writer.commit(row);
            }
        }
        let resumed = Resumed {
            located: writer
                .committed
                .iter()
                .filter(|r| r.status == Status::Ok)
                .count(),
            failed: writer
                .committed
                .iter()
                .filter(|r| r.status == Status::Failed)
                .count(),
        };
        Ok((writer, resumed))
    }

    fn commit(&mut self, row: PhotoRow) {
        match self.index.get(&row.path) {
            Some(&i) => self.committed[i] = row,
            None => {
                self.index.insert(row.path.clone(), self.committed.len());
                self.committed.push(row);
            }
        }
    }

    /// Whether an earlier run located the photo at `path` (photos that failed are tried again).
    pub fn is_located(&self, path: &Path) -> bool {
        let key = path.to_string_lossy();
        self.index
            .get(key.as_ref())
            .is_some_and(|&i| self.committed[i].status == Status::Ok)
    }

    /// Adds a row; commits a group to the journal when one is full.
    pub fn push(&mut self, row: PhotoRow) -> Result<(), ResultsError> {
        self.pending.push(row);
        if self.pending.len() >= self.group_rows {
            self.flush()?;
        }
        Ok(())
    }

    /// Commits the pending rows to the journal as one group file, written atomically.
    pub fn flush(&mut self) -> Result<(), ResultsError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let file = self
            .journal
            .join(format!("group-{:06}.parquet", self.next_group));
        write_file(&file, &self.info, &self.pending, self.pending.len())?;
        self.next_group += 1;
        for row in std::mem::take(&mut self.pending) {
            self.commit(row);
        }
        Ok(())
    }

    /// Writes the part file (every committed row, each photo once) atomically, then removes
    /// the journal. Returns how many rows the part holds.
    pub fn finish(mut self) -> Result<usize, ResultsError> {
        self.flush()?;
        write_file(&self.path, &self.info, &self.committed, self.group_rows)?;
        std::fs::remove_dir_all(&self.journal).map_err(ExportError::io("remove", &self.journal))?;
        Ok(self.committed.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Candidate, Prediction};

    fn info(gallery: &str) -> RunInfo {
        RunInfo {
            version: "0.1.0".into(),
            provenance: Provenance {
                model: "GeoCLIP".into(),
                weights_sha256: "ab".repeat(32),
                gallery_sha256: gallery.repeat(32),
                backbone: "tiny".into(),
                backbone_sha256: None,
                device: "cpu".into(),
            },
            run: serde_json::json!({"top_k": 2}),
        }
    }

    fn located(path: &str, lat: f64) -> PhotoRow {
        let prediction = Prediction {
            candidates: vec![
                Candidate {
                    rank: 1,
                    gallery_index: 1,
                    position: LatLon {
                        lat_deg: lat,
                        lon_deg: 2.0,
                    },
                    probability: 0.75,
                    refined: None,
                },
                Candidate {
                    rank: 2,
                    gallery_index: 0,
                    position: LatLon {
                        lat_deg: -lat,
                        lon_deg: -2.0,
                    },
                    probability: 0.25,
                    refined: None,
                },
            ],
            probabilities: vec![0.25, 0.75].into(),
        };
        let gallery = [[-lat as f32, -2.0], [lat as f32, 2.0]];
        let record = ExportRecord::from_prediction(
            Path::new(path),
            &prediction,
            &gallery,
            info("cd").provenance,
            "2026-12-01T00:00:00Z".into(),
            None,
            Some((
                LatLon {
                    lat_deg: lat,
                    lon_deg: 2.5,
                },
                crate::geo::ClaimSource::ExifGps,
            )),
        )
        .unwrap();
        PhotoRow {
            file_size: Some(1234),
            sha256: Some("00".repeat(32)),
            exif_gps: Some(LatLon {
                lat_deg: lat,
                lon_deg: 2.5,
            }),
            ..PhotoRow::located(record)
        }
    }

    #[test]
    fn the_schema_parses_and_rows_read_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("part.parquet");
        let rows = vec![
            located("a/1.jpg", 10.0),
            PhotoRow::failed(Path::new("a/2.jpg"), "not an image"),
            located("a/3.jpg", 45.5),
        ];
        write_file(&file, &info("cd"), &rows, 2).unwrap();
        let back = read_file(&file).unwrap();
        assert_eq!(back.info, info("cd"));
        assert_eq!(back.rows, rows);
        let reader = SerializedFileReader::new(File::open(&file).unwrap()).unwrap();
        assert_eq!(reader.metadata().num_row_groups(), 2);
    }

    #[test]
    fn a_part_resumes_from_its_journal_and_keeps_each_photo_once() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("part-0.parquet");
        let (mut w, resumed) = PartWriter::open(&part, info("cd"), 2).unwrap();
        assert_eq!(resumed, Resumed::default());
        w.push(located("1.jpg", 1.0)).unwrap();
        w.push(PhotoRow::failed(Path::new("2.jpg"), "busy"))
            .unwrap();
        w.push(located("3.jpg", 3.0)).unwrap();
        // Killed here: the first group is committed, the third photo is lost.
        drop(w);
        assert!(!part.exists());
        let (mut w, resumed) = PartWriter::open(&part, info("cd"), 2).unwrap();
        assert_eq!(
            resumed,
            Resumed {
                located: 1,
                failed: 1
            }
        );
        assert!(w.is_located(Path::new("1.jpg")));
        assert!(
            !w.is_located(Path::new("2.jpg")),
            "failed photos are retried"
        );
        assert!(!w.is_located(Path::new("3.jpg")));
        w.push(located("2.jpg", 2.0)).unwrap();
        w.push(located("3.jpg", 3.0)).unwrap();
        assert_eq!(w.finish().unwrap(), 3);
        assert!(!PartWriter::journal_dir(&part).exists());
        let back = read_file(&part).unwrap();
        let paths: Vec<_> = back
            .rows
            .iter()
            .map(|r| (r.path.as_str(), r.status))
            .collect();
        assert_eq!(
            paths,
            [
                ("1.jpg", Status::Ok),
                ("2.jpg", Status::Ok),
                ("3.jpg", Status::Ok)
            ]
        );
        // A finished part is resumed too: nothing is located twice.
        let (w, resumed) = PartWriter::open(&part, info("cd"), 2).unwrap();
        assert_eq!(
            resumed,
            Resumed {
                located: 3,
                failed: 0
            }
        );
        assert_eq!(w.finish().unwrap(), 3);
    }

    #[test]
    fn a_part_of_another_gallery_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("part.parquet");
        write_file(&part, &info("cd"), &[located("1.jpg", 1.0)], 8).unwrap();
        let err = PartWriter::open(&part, info("ef"), 8).err().unwrap();
        let message = err.to_string();
        assert!(matches!(err, ResultsError::OtherModel { .. }), "{message}");
        assert!(message.contains("gallery sha256 efefefefefef"), "{message}");
        assert!(message.contains("part.parquet"), "{message}");
    }

    #[test]
    fn a_part_resumes_only_its_own_shard() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("part.parquet");
        let shard = |s: &str| RunInfo {
            run: serde_json::json!({"shard": s}),
            ..info("cd")
        };
        write_file(&part, &shard("1/4"), &[located("1.jpg", 1.0)], 8).unwrap();
        assert!(PartWriter::open(&part, shard("1/4"), 8).is_ok());
        let err = PartWriter::open(&part, shard("1/8"), 8)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("shard 1/4") && err.contains("shard 1/8"),
            "{err}"
        );
    }

    #[test]
    fn a_file_that_is_not_results_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.parquet");
        std::fs::write(&file, b"PAR1 not really").unwrap();
        let err = read_file(&file).unwrap_err().to_string();
        assert!(err.contains("x.parquet"), "{err}");
    }
}
