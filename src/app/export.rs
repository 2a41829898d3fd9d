//! Exports from the app: what is gathered from the app's state on the UI thread (cheap:
//! [`ExportInput`]s), and the pure steps that a background thread runs on them (place look-ups,
//! EXIF times, rendering, writing). Tests call these without any dialog.

use std::path::{Path, PathBuf};

use crate::domain::{PhotoResult, Provenance};
use crate::export::{self, ExportRecord, PathStyle, PlannedWrite, PointSet, WriteBack};
use crate::geo::{ClaimCheck, ClaimSource, LatLon, check_claim_points};
use crate::model::Candidate;

/// One located photo as the app shows it, before place names and EXIF times are looked up.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportInput {
    pub path: PathBuf,
    pub candidates: Vec<Candidate>,
    pub provenance: Provenance,
    /// When the estimate was made, UTC, RFC 3339.
    pub estimated_at: String,
    /// The user's accepted location, if any (else the top-1 candidate is exported).
    pub accepted: Option<LatLon>,
    /// The typed claim checked, else the EXIF GPS ([`ExportRecord::claim`]).
    pub claim: Option<ClaimCheck>,
    /// A claim still to check because the result's heat points were not loaded (a summary
    /// from the database): [`complete_claims`] reads them off the UI thread.
    pub unchecked_claim: Option<(LatLon, ClaimSource)>,
    /// The photo's other claims (its EXIF GPS when a claim was typed too), checked or not yet,
    /// as `claim` and `unchecked_claim` ([`ExportRecord::other_claims`]).
    pub other_claims: Vec<ClaimCheck>,
    pub unchecked_other_claims: Vec<(LatLon, ClaimSource)>,
    /// The region the photo's answer is restricted to, with the share of belief inside.
    pub within: Option<crate::domain::RegionConstraint>,
    /// Where the accepted location came from, when a decision says so (a track, a
    /// neighbour, a trip: [`crate::domain::Decision::Placed`]); `None` lets
    /// [`ExportRecord::new`] tell an accepted candidate (estimate) from a hand-placed point.
    pub origin: Option<crate::domain::Origin>,
}

/// When a result was computed, UTC, RFC 3339 (what exports call `estimated_at`).
pub fn estimated_at(result: &PhotoResult) -> String {
    format!(
        "{}Z",
        export::format_unix_secs(result.computed_at_unix_secs)
    )
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

/// Checks the claims left unchecked in `inputs` with heat points from the database: `read`
/// gets the stored results of the given photos (in the app, from the library thread, which
/// holds the only connection: call this on a worker thread). A photo whose result can't be read
/// keeps no claim.
pub fn complete_claims(
    inputs: &mut [ExportInput],
    read: impl FnOnce(Vec<PathBuf>) -> Vec<Option<crate::library::StoredResult>>,
) {
    let unchecked: Vec<usize> = (0..inputs.len())
        .filter(|&i| {
            inputs[i].unchecked_claim.is_some() || !inputs[i].unchecked_other_claims.is_empty()
        })
        .collect();
    if unchecked.is_empty() {
        return;
    }
    let stored = read(unchecked.iter().map(|&i| inputs[i].path.clone()).collect());
    for (i, stored) in unchecked.into_iter().zip(stored) {
        let input = &mut inputs[i];
        let others = std::mem::take(&mut input.unchecked_other_claims);
        let Some(stored) = stored else {
            input.unchecked_claim = None;
            continue;
        };
        if let Some((claimed, source)) = input.unchecked_claim.take() {
            input.claim = claim_check(&stored.result, claimed, source);
        }
        input.other_claims.extend(
            others
                .into_iter()
                .filter_map(|(claimed, source)| claim_check(&stored.result, claimed, source)),
        );
    }
}

/// Export records from the inputs: looks up places (offline) and reads EXIF times, so run it
/// off the UI thread for many photos.
pub fn build_records(inputs: Vec<ExportInput>) -> Vec<ExportRecord> {
    inputs
        .into_iter()
        .filter_map(|i| {
            let mut record = ExportRecord::new(
                &i.path,
                &i.candidates,
                i.provenance,
                i.estimated_at,
                i.accepted,
                i.claim,
            )?;
            record.other_claims = i.other_claims;
            record.within = i.within;
            if let Some(origin) = i.origin {
                record.origin = origin;
            }
            Some(record)
        })
        .collect()
}

/// The export formats, chosen by the file's extension (shared with the command line).
pub use crate::export::ExportFormat;

/// [`export_to_with_paths`] with the default [`PathStyle`]: photo paths relative to the
/// exported file.
pub fn export_to(path: &Path, inputs: Vec<ExportInput>) -> Result<String, String> {
    export_to_with_paths(path, inputs, PathStyle::default())
}

/// Builds the records and writes them with [`export::write_export`] (format by `path`'s
/// extension; a name without one gets `.gpx`), photo paths as `style` says. Returns the note
/// for the status line.
pub fn export_to_with_paths(
    path: &Path,
    inputs: Vec<ExportInput>,
    style: PathStyle,
) -> Result<String, String> {
    let path = if path.extension().is_none() {
        path.with_extension("gpx")
    } else {
        path.to_owned()
    };
    if ExportFormat::from_path(&path).is_none() {
        return Err(export::ExportError::UnknownFormat { path }.to_string());
    }
    let records = build_records(inputs);
    export::write_export(&path, &records, PointSet::Chosen, style).map_err(|e| e.to_string())?;
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
    /// The write-back it runs (sidecars named `photo.jpg.xmp`).
    pub fn write_back(self) -> WriteBack {
        match self {
            Self::XmpSidecars => WriteBack::XmpSidecars(export::xmp::SidecarStyle::default()),
            Self::ExifGps => WriteBack::ExifGps,
        }
    }

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

/// Which located photos a write or an export takes. Review comes before writing: the default is
/// the accepted locations only; unreviewed estimates (the model's top-1 nobody accepted) are
/// included only when the user asks, each time, and are then marked `estimate (unreviewed)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WriteScope {
    #[default]
    AcceptedOnly,
    WithEstimates,
}

impl WriteScope {
    /// Whether a photo with (`true`) or without an accepted location is taken.
    pub fn takes(self, accepted: bool) -> bool {
        accepted || self == Self::WithEstimates
    }
}

/// How many located photos of the view have an accepted location, and how many only the
/// model's unreviewed estimate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReviewCounts {
    pub accepted: usize,
    pub unreviewed: usize,
}

impl ReviewCounts {
    /// How many photos `scope` takes.
    pub fn taken(self, scope: WriteScope) -> usize {
        match scope {
            WriteScope::AcceptedOnly => self.accepted,
            WriteScope::WithEstimates => self.accepted + self.unreviewed,
        }
    }
}

/// The line that says which photos a write or an export takes.
pub fn scope_note(scope: WriteScope, counts: ReviewCounts) -> String {
    match scope {
        WriteScope::AcceptedOnly if counts.unreviewed == 0 => {
            format!("{} accepted locations.", counts.accepted)
        }
        WriteScope::AcceptedOnly => format!(
            "{} accepted locations only: the {} unreviewed estimates are left out (review them \
             first, or include them explicitly).",
            counts.accepted, counts.unreviewed
        ),
        WriteScope::WithEstimates => format!(
            "{} accepted locations and {} unreviewed estimates, each marked \
             “estimate (unreviewed)”.",
            counts.accepted, counts.unreviewed
        ),
    }
}

/// Writes the user is asked to confirm: the records and the dry-run plan.
#[derive(Clone, Debug)]
pub struct WritePlan {
    pub target: WriteTarget,
    pub records: Vec<ExportRecord>,
    pub plan: Vec<PlannedWrite>,
    /// Which photos the plan takes, and the view's counts when it was made.
    pub scope: WriteScope,
    pub counts: ReviewCounts,
}

/// What a background export or write reports back to the UI thread.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// For the status line.
    pub note: String,
    /// Photos whose own bytes geoloupe rewrote (EXIF GPS): the library re-reads their EXIF and
    /// adopts the new content so their results don't turn stale.
    pub rewritten: Vec<PathBuf>,
    /// Files that could not be written (the note names the first): the status line shows the
    /// note as an error, until dismissed.
    pub failed: usize,
}

/// Marks the records whose sidecars get the IPTC location: with `on` (the user's setting),
/// those whose location the user accepted; never an estimate nobody accepted.
pub fn with_iptc_location(mut records: Vec<ExportRecord>, on: bool) -> Vec<ExportRecord> {
    for record in &mut records {
        record.iptc_location = on && record.location_source == export::LocationSource::Accepted;
    }
    records
}

/// Plans the writes (the dry run); touches nothing.
impl WritePlan {
    /// Whether the plan replaces invalid EXIF GPS (the user asked for it).
    pub fn overwrite_invalid_gps(&self) -> bool {
        self.records.iter().any(|r| r.overwrite_invalid_gps)
    }
}

/// Plans the writes of `records` (taken with `scope` out of a view with these `counts`).
pub fn plan_writes(
    target: WriteTarget,
    records: Vec<ExportRecord>,
    scope: WriteScope,
    counts: ReviewCounts,
) -> WritePlan {
    let plan = target.write_back().plan(&records);
    WritePlan {
        target,
        records,
        plan,
        scope,
        counts,
    }
}

/// Carries out a confirmed plan; EXIF backups go to `backups`.
pub fn write_confirmed(
    confirmed: &WritePlan,
    backups: &export::exif_write::BackupStore,
) -> WriteOutcome {
    let results = confirmed
        .target
        .write_back()
        .write(&confirmed.records, backups);
    let rewritten = match confirmed.target {
        WriteTarget::XmpSidecars => Vec::new(),
        WriteTarget::ExifGps => results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .filter(|p| !p.is_skip())
            .map(|p| p.path.clone())
            .collect(),
    };
    WriteOutcome {
        note: summarise_writes(confirmed.target, &results),
        rewritten,
        failed: results.iter().filter(|r| r.is_err()).count(),
    }
}

/// The note for the status line after writing.
pub fn summarise_writes(
    target: WriteTarget,
    results: &[Result<PlannedWrite, export::ExportError>],
) -> String {
    let written = results
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|p| !p.is_skip()))
        .count();
    let skipped = results
        .iter()
        .filter(|r| r.as_ref().is_ok_and(PlannedWrite::is_skip))
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
    fn estimates_are_taken_only_when_asked() {
        assert!(WriteScope::AcceptedOnly.takes(true));
        assert!(!WriteScope::AcceptedOnly.takes(false));
        assert!(WriteScope::WithEstimates.takes(false));
        let counts = ReviewCounts {
            accepted: 2,
            unreviewed: 202,
        };
        assert_eq!(counts.taken(WriteScope::default()), 2);
        assert_eq!(counts.taken(WriteScope::WithEstimates), 204);
        assert!(scope_note(WriteScope::AcceptedOnly, counts).contains("202 unreviewed"));
        assert!(scope_note(WriteScope::WithEstimates, counts).contains("estimate (unreviewed)"));
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
