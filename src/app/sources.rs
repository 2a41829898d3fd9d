//! The app's other sources of a location (issue 12): a GPS track with its offset preview, and
//! the trip posterior over a selection. The state lives in [`Sources`]; [`App`]'s methods here
//! load, preview and apply them (the pure parts are [`super::track`] and [`super::trip`]).

use std::path::PathBuf;

use super::App;
use super::track::{LoadedTrack, PhotoTime, PreviewItem};
use super::trip::{DEFAULT_MAX_SPEED_KMH, TripInput, TripView, locate_trip};
use crate::domain::Decision;
use crate::geo::LatLon;
use crate::runtime::library::LibraryCommand;
use crate::runtime::task::Task;
use crate::track::{TimeWindows, TrackSet, load_tracks};

/// A track being read on the `track` thread: the paths and the fixes, or the error.
pub type TrackLoad = Task<Result<(Vec<PathBuf>, TrackSet), String>>;

/// Tracks and trips in the app.
pub struct Sources {
    /// The loaded track, if any.
    pub track: Option<LoadedTrack>,
    /// The track being read.
    pub loading: Option<TrackLoad>,
    /// "Set offset from this photo": the next click on the map picks where the selected photo
    /// was taken.
    pub picking_offset: bool,
    /// The solved trip shown on the map, if any.
    pub trip: Option<TripView>,
    /// The top speed "Locate as trip" uses, km/h.
    pub trip_speed_kmh: f64,
    /// What the panel and the map show of [`App::track_preview`], brought up to date once a
    /// frame by [`App::refresh_track_preview`] only when its inputs changed (parsing every
    /// selected photo's time twice a frame would cost a large selection its frame rate).
    pub preview: Vec<PreviewItem>,
    preview_key: Option<PreviewKey>,
}

/// What a track preview depends on.
#[derive(Clone, Debug, PartialEq)]
struct PreviewKey {
    selection: Vec<usize>,
    offset_bits: u64,
    zone: String,
    fixes: usize,
    name: String,
}

impl Default for Sources {
    fn default() -> Self {
        Self {
            track: None,
            loading: None,
            picking_offset: false,
            trip: None,
            trip_speed_kmh: DEFAULT_MAX_SPEED_KMH,
            preview: Vec::new(),
            preview_key: None,
        }
    }
}

impl App {
    /// The selected photos (the shown one when nothing else is selected), in index order.
    pub fn selected_indices(&self) -> Vec<usize> {
        let mut indices: Vec<usize> = self.collection.selection.iter().copied().collect();
        if indices.is_empty() {
            indices.extend(self.collection.selected);
        }
        indices
    }

    fn photo_time(&self, index: usize) -> Option<PhotoTime> {
        let photo = self.collection.get(index)?;
        Some(PhotoTime {
            index,
            name: photo.entry.file_name(),
            taken_at: photo.entry.exif.taken_at.clone(),
            taken_subsec: photo.entry.exif.taken_subsec.clone(),
            own_gps: photo.entry.gps(),
        })
    }

    /// Where each selected photo lands on the loaded track at its current offset (empty
    /// without a track).
    pub fn track_preview(&self) -> Vec<PreviewItem> {
        let Some(track) = &self.sources.track else {
            return Vec::new();
        };
        let photos: Vec<PhotoTime> = self
            .selected_indices()
            .into_iter()
            .filter_map(|i| self.photo_time(i))
            .collect();
        track.preview(&photos)
    }

    /// Recomputes [`Sources::preview`] when the selection, the offset, the zone or the track
    /// changed since the last frame.
    pub(super) fn refresh_track_preview(&mut self) {
        let key = self.sources.track.as_ref().map(|t| PreviewKey {
            selection: self.selected_indices(),
            offset_bits: t.offset_secs.to_bits(),
            zone: t.zone_text.clone(),
            fixes: t.set.fixes.len(),
            name: t.name(),
        });
        if key != self.sources.preview_key {
            self.sources.preview = self.track_preview();
            self.sources.preview_key = key;
        }
    }

    /// Reads tracks on the `track` thread (every fix kept: the offset can move anywhere).
    pub(super) fn load_track(&mut self, paths: Vec<PathBuf>) {
        if paths.is_empty() || self.sources.loading.is_some() {
            return;
        }
        let label = format!("Reading track {}", paths[0].display());
        self.sources.loading = Task::spawn("track", label, self.repaint_fn(), move || {
            load_tracks(&paths, &TimeWindows::all())
                .map(|set| (paths, set))
                .map_err(|e| e.to_string())
        })
        .map_err(|e| {
            self.messages
                .push(format!("starting the track thread: {e}"))
        })
        .ok();
    }

    /// Polls the track being read.
    pub(super) fn drain_track(&mut self) {
        let Some(answer) = Self::take_answer(&mut self.sources.loading, &mut self.messages) else {
            return;
        };
        match answer {
            Ok((paths, set)) => {
                let track = LoadedTrack::new(paths, set);
                self.messages.info(format!(
                    "Loaded track {}: {} points",
                    track.name(),
                    track.set.fixes.len()
                ));
                let line = track.polyline();
                self.sources.track = Some(track);
                self.map.fit(&line);
            }
            Err(e) => self.messages.push(e),
        }
    }

    /// A click on the map while picking: the offset that puts the selected photo at the track
    /// point nearest the click.
    pub(super) fn track_offset_from_click(&mut self, clicked: LatLon) {
        self.sources.picking_offset = false;
        let Some(index) = self.collection.selected else {
            self.messages
                .warning("Select the photo first, then click the track where it was taken");
            return;
        };
        let Some(photo) = self.photo_time(index) else {
            return;
        };
        let Some(track) = self.sources.track.as_mut() else {
            return;
        };
        match track.offset_for_click(&photo, clicked) {
            Ok(offset) => {
                track.offset_secs = offset;
                self.messages.info(format!(
                    "Clock offset {} puts {} there",
                    crate::domain::format_offset(offset),
                    photo.name
                ));
            }
            Err(refusal) => self.messages.warning(format!(
                "No offset from {}: {}",
                photo.name,
                refusal.describe()
            )),
        }
    }

    /// "Apply to selection": each selected photo that lands on the track gets a decision with
    /// `Origin::Track`, as one undo step; refused photos and photos with their own GPS are
    /// left as they are (and said so).
    pub(super) fn apply_track(&mut self) {
        let Some(track) = &self.sources.track else {
            return;
        };
        let preview = self.track_preview();
        let decisions = track.decisions(&preview);
        let counts = super::track::counts(&preview);
        if decisions.is_empty() {
            self.messages
                .warning("No selected photo lands on the track at this offset: nothing applied");
            return;
        }
        let n = decisions.len();
        let mut note = format!(
            "Placed {n} photo{} from the track",
            if n == 1 { "" } else { "s" }
        );
        if counts.refused > 0 {
            note.push_str(&format!(", {} refused", counts.refused));
        }
        if counts.own_gps > 0 {
            note.push_str(&format!(", {} kept their own GPS", counts.own_gps));
        }
        self.decide_many(decisions);
        self.messages.info(note);
    }

    /// "Locate as trip" on the selection.
    pub(super) fn locate_as_trip(&mut self) {
        let inputs: Vec<TripInput> = self
            .selected_indices()
            .into_iter()
            .filter_map(|index| {
                let photo = self.collection.get(index)?;
                Some(TripInput {
                    index,
                    name: photo.entry.file_name(),
                    taken_at: photo.entry.exif.taken_at.clone(),
                    taken_subsec: photo.entry.exif.taken_subsec.clone(),
                    candidates: photo
                        .result
                        .as_ref()
                        .map(|r| {
                            r.candidates
                                .iter()
                                .map(|c| (c.position, c.probability))
                                .collect()
                        })
                        .unwrap_or_default(),
                })
            })
            .collect();
        match locate_trip(&inputs, self.sources.trip_speed_kmh) {
            Ok(view) => {
                self.messages.info(format!(
                    "Trip through {} photos: {} moved from their own best guess, {} jumps over {:.0} km/h",
                    view.points.len(),
                    view.moved(),
                    view.breaks,
                    view.max_speed_kmh
                ));
                self.sources.trip = Some(view);
            }
            Err(e) => self.messages.warning(e),
        }
    }

    /// Accepts the trip's points as decisions with `Origin::Trip` (one undo step).
    pub(super) fn accept_trip(&mut self) {
        let Some(view) = self.sources.trip.take() else {
            return;
        };
        let decisions = view.decisions();
        let n = decisions.len();
        self.decide_many(decisions);
        self.messages
            .info(format!("Accepted the trip's points for {n} photos"));
    }

    /// Shows the decisions at once and sends them to the library thread as one step.
    pub(super) fn decide_many(&mut self, decisions: Vec<(usize, Decision)>) {
        let mut batch = Vec::with_capacity(decisions.len());
        for (index, decision) in decisions {
            let Some(photo) = self.collection.get_mut(index) else {
                continue;
            };
            let before = photo.decision.take();
            photo.decision = Some(decision.clone());
            batch.push((photo.entry.path.clone(), Some(decision)));
            let pending = self
                .pending_decisions
                .entry(index)
                .or_insert(super::PendingDecision {
                    in_flight: 0,
                    confirmed: before,
                });
            pending.in_flight += 1;
        }
        if batch.is_empty() {
            return;
        }
        self.library.send(LibraryCommand::DecideMany(batch));
        self.collection.photo_state_changed(&self.settings);
    }
}
