//! Exports from the app: what is gathered from the app's state on the UI thread (cheap:
//! [`ExportInput`]s), and the pure steps that a background thread runs on them (place look-ups,
//! EXIF times, rendering, writing). Tests call these without any dialog.

use std::path::{Path, PathBuf};

use crate::export::{self, ExportProvenance, ExportRecord, PlannedWrite, PointSet};
use crate::geo::{ClaimCheck, ClaimSource, LatLon, check_claim_points};
use crate::model::Candidate;
use crate::model::worker::PhotoResult;

/// One located photo as the app shows it, before place names and EXIF times are looked up.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportInput {
    pub path: PathBuf,
    pub candidates: Vec<Candidate>,
    pub provenance: ExportProvenance,
    /// The user's accepted location, if any (else the top-1 candidate is exported).
    pub accepted: Option<LatLon>,
    pub claim: Option<ClaimCheck>,
    /// A claim still to check because the result's heat points were not loaded (a summary
    /// from the database): [`complete_claims`] reads them off the UI thread.
    pub unchecked_claim: Option<(LatLon, ClaimSource)>,
}

/// The export provenance of a stored result (its `RunProvenance` and computation time).
pub fn provenance_of(result: &PhotoResult) -> ExportProvenance {
    ExportProvenance {
        model: result.provenance.model.clone(),
        weights_sha256: result.provenance.weights_sha256.clone(),
        gallery_sha256: result.provenance.gallery_sha256.clone(),
        backbone: result.provenance.backbone.clone(),
        estimated_at: format!(
            "{}Z",
            export::format_unix_secs(result.computed_at_unix_secs)
        ),
    }
}

/// The claim check of `claimed` against a result's heat points (the shares are lower bounds:
/// the heat points hold ~99% of the probability). `None` without a top-1 candidate or for an
/// invalid claim.
pub fn claim_check(
    result: &PhotoResult,
    claimed: LatLon,
    source: ClaimSource,
) -> Option<ClaimCheck> {
    let top1 = result.candidates.first()?.position;
    check_claim_points(
        claimed,
        source,
        top1,
        result.heat.iter().map(|h| (h.position, h.probability)),
    )
    .ok()
}

/// A claimed location typed by the user: `lat, lon` in degrees (comma and/or spaces).
pub fn parse_claim(text: &str) -> Option<LatLon> {
    let mut parts = text
        .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|s| !s.is_empty());
    let lat_deg = parts.next()?.parse::<f64>().ok()?;
    let lon_deg = parts.next()?.parse::<f64>().ok()?;
    if parts.next().is_some() {
        return None;
    }
    let position = LatLon::new(lat_deg, lon_deg);
    position.is_valid().then_some(position)
}

/// Checks the claims left unchecked in `inputs` with heat points read from the database at
/// `store_path` (its own connection: call it on a worker thread). A photo whose result can't be
/// read keeps no claim.
pub fn complete_claims(inputs: &mut [ExportInput], store_path: &Path) {
    if inputs.iter().all(|i| i.unchecked_claim.is_none()) {
        return;
    }
    let Ok(store) = crate::library::store::Store::open(store_path) else {
        return;
    };
    for input in inputs.iter_mut() {
        if let Some((claimed, source)) = input.unchecked_claim.take()
            && let Ok(Some(stored)) = store.result(&input.path)
        {
            input.claim = claim_check(&stored.result, claimed, source);
        }
    }
}

/// Export records from the inputs: looks up places (offline) and reads EXIF times, so run it
/// off the UI thread for many photos.
pub fn build_records(inputs: Vec<ExportInput>) -> Vec<ExportRecord> {
    inputs
        .into_iter()
        .filter_map(|i| {
            ExportRecord::new(&i.path, &i.candidates, i.provenance, i.accepted, i.claim)
        })
        .collect()
}

/// The export formats, chosen by the file's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Gpx,
    Csv,
    GeoJson,
}

impl ExportFormat {
    /// From `path`'s extension (any case); `None` for an unknown one.
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_string_lossy().to_ascii_lowercase();
        match ext.as_str() {
            "gpx" => Some(Self::Gpx),
            "csv" => Some(Self::Csv),
            "geojson" | "json" => Some(Self::GeoJson),
            _ => None,
        }
    }

    pub fn render(self, records: &[ExportRecord]) -> String {
        match self {
            Self::Gpx => export::gpx::render_gpx(records, PointSet::Chosen),
            Self::Csv => export::csv::render_csv(records, PointSet::Chosen),
            Self::GeoJson => export::geojson::render_geojson(records, PointSet::Chosen),
        }
    }
}

/// Builds, renders (by `path`'s extension; a name without one gets `.gpx`) and writes
/// atomically. Returns the note for the status line.
pub fn export_to(path: &Path, inputs: Vec<ExportInput>) -> Result<String, String> {
    let path = if path.extension().is_none() {
        path.with_extension("gpx")
    } else {
        path.to_owned()
    };
    let format = ExportFormat::from_path(&path).ok_or_else(|| {
        format!(
            "choose a file name ending in .gpx, .csv or .geojson: {}",
            path.display()
        )
    })?;
    let records = build_records(inputs);
    let text = format.render(&records);
    export::write_atomic(&path, text.as_bytes()).map_err(|e| e.to_string())?;
    Ok(format!(
        "Exported {} photos to {}",
        records.len(),
        path.display()
    ))
}

/// What the "Write …" actions put into the photos' metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteTarget {
    /// `photo.jpg.xmp` beside each photo, merged with what other tools wrote there.
    XmpSidecars,
    /// EXIF GPS written into each JPEG (pixels untouched, the original backed up first).
    ExifGps,
}

impl WriteTarget {
    pub fn menu_label(self) -> &'static str {
        match self {
            Self::XmpSidecars => "Write XMP sidecars…",
            Self::ExifGps => "Write EXIF GPS…",
        }
    }

    pub fn menu_hint(self) -> &'static str {
        match self {
            Self::XmpSidecars => {
                "Lists the sidecars first (photo.jpg.xmp); writes only after you confirm"
            }
            Self::ExifGps => {
                "Lists the JPEGs first; writes only after you confirm. Each original is backed up \
                 (`geoloupe backups restore` puts it back); photos with a GPS fix of their own \
                 and no accepted location are skipped"
            }
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::XmpSidecars => "Write XMP sidecars?",
            Self::ExifGps => "Write EXIF GPS into the photos?",
        }
    }

    pub fn confirm_label(self) -> &'static str {
        match self {
            Self::XmpSidecars => "Write sidecars",
            Self::ExifGps => "Write EXIF GPS",
        }
    }

    /// The dialog's line above the dry run.
    pub fn plan_note(self, writes: usize) -> String {
        match self {
            Self::XmpSidecars => format!(
                "{writes} sidecars would be written (existing ones are merged: other tools' tags \
                 are kept). Nothing is written until you press Write."
            ),
            Self::ExifGps => format!(
                "{writes} photos would get EXIF GPS written into the file (the pixels are not \
                 re-encoded; each original is backed up first). Nothing is written until you \
                 press Write."
            ),
        }
    }
}

/// Writes the user is asked to confirm: the records and the dry-run plan.
#[derive(Clone, Debug)]
pub struct WritePlan {
    pub target: WriteTarget,
    pub records: Vec<ExportRecord>,
    pub plan: Vec<PlannedWrite>,
}

/// What a background export or write reports back to the UI thread.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// For the status line.
    pub note: String,
    /// Photos whose own bytes geoloupe rewrote (EXIF GPS): the library re-reads their EXIF and
    /// adopts the new content so their results don't turn stale.
    pub rewritten: Vec<PathBuf>,
}

/// Plans the writes (the dry run); touches nothing.
pub fn plan_writes(target: WriteTarget, records: Vec<ExportRecord>) -> WritePlan {
    let plan = match target {
        WriteTarget::XmpSidecars => {
            export::xmp::plan_sidecars(&records, export::xmp::SidecarStyle::default())
        }
        WriteTarget::ExifGps => export::exif_write::plan_exif_writes(&records),
    };
    WritePlan {
        target,
        records,
        plan,
    }
}

/// Carries out a confirmed plan; EXIF backups go to `backups`.
pub fn write_confirmed(
    confirmed: &WritePlan,
    backups: &export::exif_write::BackupStore,
) -> WriteOutcome {
    let results = match confirmed.target {
        WriteTarget::XmpSidecars => {
            export::xmp::write_sidecars(&confirmed.records, export::xmp::SidecarStyle::default())
        }
        WriteTarget::ExifGps => export::exif_write::write_exif_gps_all(&confirmed.records, backups),
    };
    let rewritten = match confirmed.target {
        WriteTarget::XmpSidecars => Vec::new(),
        WriteTarget::ExifGps => results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .filter(|p| !p.action.is_skip())
            .map(|p| p.path.clone())
            .collect(),
    };
    WriteOutcome {
        note: summarise_writes(confirmed.target, &results),
        rewritten,
    }
}

/// The note for the status line after writing.
pub fn summarise_writes(
    target: WriteTarget,
    results: &[Result<PlannedWrite, export::ExportError>],
) -> String {
    let written = results
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|p| !p.action.is_skip()))
        .count();
    let skipped = results
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|p| p.action.is_skip()))
        .count();
    let errors: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(ToString::to_string))
        .collect();
    let mut note = match target {
        WriteTarget::XmpSidecars => format!("Wrote {written} XMP sidecars"),
        WriteTarget::ExifGps => {
            format!("Wrote EXIF GPS into {written} photos (originals backed up)")
        }
    };
    if skipped > 0 {
        note.push_str(&format!(", skipped {skipped}"));
    }
    if let Some(first) = errors.first() {
        note.push_str(&format!(", {} failed: {first}", errors.len()));
    }
    note
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_parse_lat_then_lon() {
        assert_eq!(parse_claim("21.9, -159.5"), Some(LatLon::new(21.9, -159.5)));
        assert_eq!(parse_claim(" 10 20 "), Some(LatLon::new(10.0, 20.0)));
        assert_eq!(parse_claim("91, 0"), None);
        assert_eq!(parse_claim("1, 2, 3"), None);
        assert_eq!(parse_claim("abc"), None);
        assert_eq!(parse_claim(""), None);
    }

    #[test]
    fn formats_follow_the_extension() {
        assert_eq!(
            ExportFormat::from_path(Path::new("a.GPX")),
            Some(ExportFormat::Gpx)
        );
        assert_eq!(
            ExportFormat::from_path(Path::new("a.csv")),
            Some(ExportFormat::Csv)
        );
        assert_eq!(
            ExportFormat::from_path(Path::new("a.geojson")),
            Some(ExportFormat::GeoJson)
        );
        assert_eq!(ExportFormat::from_path(Path::new("a.txt")), None);
    }
}
