//! Deferred actions: panels push a [`Command`] instead of mutating the app while it is being
//! drawn; [`super::App`] applies them after the frame.

use std::path::PathBuf;

use crate::app::export::WriteTarget;
use crate::geo::LatLon;

/// Where an accepted location came from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DecisionSource {
    /// The model's candidate with this rank (1 = best).
    Candidate { rank: usize },
    /// Placed by hand on the map.
    Manual,
}

#[must_use = "a Command does nothing until the app applies it"]
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Open the native dialog for files (`false`) or a folder (`true`).
    PickPaths {
        folders: bool,
    },
    /// Add these photos or folders (recursively) to the collection.
    Open(Vec<PathBuf>),
    /// Forget the collection (results stay in the database).
    CloseAll,
    /// Select the photo at this index of the collection; `extend` adds it to the selection.
    Select {
        index: usize,
        extend: bool,
    },
    /// Move the selection by this many rows of the current view (arrows).
    MoveSelection {
        delta: isize,
    },
    /// Run the model on the selected photos, or on every photo in the view.
    Run {
        all: bool,
    },
    /// Run the model only on the photos in the view without a current result (never located,
    /// or located before the file changed).
    RunNewOrStale,
    /// Locate the selected photos together, as views of one place: one set of candidates
    /// (their logits summed) given to every one of them.
    LocateTogether,
    /// Cancel the batch in progress.
    CancelRun,
    /// Load (or reload) the installed model on the chosen device.
    LoadModel,
    /// Accept a location for the photo at this index.
    Accept {
        index: usize,
        position: LatLon,
        source: DecisionSource,
    },
    /// Remove the accepted location of the photo at this index.
    ClearDecision {
        index: usize,
    },
    Undo,
    Redo,
    /// A review-mode step (start, accept, place by hand, skip, back, leave).
    Review(crate::app::review::ReviewAction),
    /// Show this photo beside the selected one in the preview (`None`: stop comparing).
    CompareWith(Option<usize>),
    /// Centre the map here.
    CenterMap(LatLon),
    /// Rank a description over the gallery (issue 14); `ensemble`: CLIP's prompt templates.
    Describe {
        text: String,
        ensemble: bool,
    },
    /// Forget the description and its heatmap.
    ClearDescription,
    /// Import model files: a dialog asks for a file (the geoclip wheel) or a folder (`true`).
    PickModelImport {
        folder: bool,
    },
    ImportModel(PathBuf),
    /// Start downloading the model (only after the user confirmed).
    StartDownload,
    CancelDownload,
    /// Open the export window: which photos (accepted only, or also the unreviewed
    /// estimates), then the file.
    OpenExport,
    /// Open the save dialog for an export of the photos the export window chose.
    PickExport,
    /// Close the export window.
    CancelExport,
    /// Export the located photos in the view here (GPX, CSV or GeoJSON by extension).
    ExportTo(PathBuf),
    /// List what would be written (the dry run: XMP sidecars or EXIF GPS) and ask to confirm.
    PlanWrites(WriteTarget),
    /// Plan the shown writes again for these photos (unreviewed estimates included only after
    /// the user confirmed it, with their count).
    WriteScope(crate::app::export::WriteScope),
    /// Write what the user confirmed.
    WriteConfirmed,
    /// Close the confirmation without writing.
    CancelWrites,
    /// Plan the writes again, replacing invalid EXIF GPS (`true`) or skipping it.
    OverwriteInvalidGps(bool),
    /// Write the IPTC location of accepted locations into XMP sidecars (`true`) or not: the
    /// setting, and the pending plan made again.
    IptcLocation(bool),
    /// The claim typed for a photo (`picked`: the place chosen from a list for this text).
    SetClaim {
        path: PathBuf,
        text: String,
        picked: Option<LatLon>,
    },
    /// The region text typed for a photo (nothing is re-ranked until `RestrictTo`).
    SetRegionText {
        path: PathBuf,
        text: String,
    },
    /// Re-rank these photos within a region (their candidates and heat from inside only).
    RestrictTo {
        paths: Vec<PathBuf>,
        region: crate::geo::Region,
    },
    /// Put back these photos' unconstrained results.
    ClearRegion(Vec<PathBuf>),
    /// Start (`true`) or stop drawing a box on the map.
    DrawRegion(bool),
    /// Start drawing a polygon on the map (click vertices; double click or Enter closes it).
    DrawPolygon,
    /// Open the native dialog for GPS tracks.
    PickTrack,
    /// Read these GPS tracks (GPX, KML, NMEA) on the `track` thread and show them.
    LoadTrack(Vec<PathBuf>),
    /// Forget the loaded track.
    CloseTrack,
    /// The camera clock's offset, seconds added to each photo's time.
    SetTrackOffset(f64),
    /// The time zone typed for photos without one.
    SetTrackZone(String),
    /// "Set offset from this photo": the next map click (`true`) picks where it was taken.
    PickTrackOffset(bool),
    /// The map was clicked while picking the offset.
    TrackClicked(LatLon),
    /// Place the selected photos that land on the track (one undo step).
    ApplyTrack,
    /// Solve the selected photos as one trip and show its path.
    LocateAsTrip,
    /// The top speed of the trip's travel model, km/h.
    SetTripSpeed(f64),
    /// Accept the shown trip's points (one undo step).
    AcceptTrip,
    /// Stop showing the trip.
    ClearTrip,
}
