//! The photo collection: every photo opened, what is known about each (its scan entry, the
//! model's result, the user's decision), the filtered and sorted view the browser shows, and
//! the selection. Pure state: no egui, no threads, no files; the app feeds it events.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::settings::{Settings, SortKey, StateFilter};
use crate::domain::{Decision, PhotoResult};
use crate::geo::LatLon;
use crate::library::PhotoEntry;

/// One photo of the collection.
#[derive(Clone, Debug)]
pub struct Photo {
    pub entry: PhotoEntry,
    /// The model's latest result (from this session or the database). Heat points are loaded
    /// when the photo is selected.
    pub result: Option<PhotoResult>,
    /// Whether `result` came from the database (not computed in this session).
    pub result_from_store: bool,
    /// The result is older than the file's content.
    pub result_stale: bool,
    pub decision: Option<Decision>,
    /// Why the model could not run on it.
    pub run_error: Option<String>,
    /// Why its thumbnail could not be made (a truncated or corrupt file).
    pub decode_error: Option<String>,
}

impl Photo {
    pub fn new(entry: PhotoEntry) -> Self {
        Self {
            entry,
            result: None,
            result_from_store: false,
            result_stale: false,
            decision: None,
            run_error: None,
            decode_error: None,
        }
    }

    pub fn error(&self) -> Option<&str> {
        self.entry
            .error
            .as_deref()
            .or(self.run_error.as_deref())
            .or(self.decode_error.as_deref())
    }

    pub fn is_located(&self) -> bool {
        self.result.is_some()
    }

    /// Whether the photo has a location that needs no model run: placed from a GPS track or
    /// a neighbouring photo (exports and write-backs take it like a located photo).
    pub fn is_placed_without_model(&self) -> bool {
        matches!(&self.decision, Some(Decision::Placed { origin, .. }) if !origin.is_from_pixels())
    }

    pub fn matches(&self, filter: StateFilter) -> bool {
        match filter {
            StateFilter::All => true,
            StateFilter::HasExifGps => self.entry.gps().is_some(),
            StateFilter::NoExifGps => self.entry.gps().is_none(),
            StateFilter::Located => self.is_located(),
            StateFilter::NotLocated => !self.is_located(),
            StateFilter::Accepted => self.decision.is_some(),
            StateFilter::Failed => self.error().is_some(),
        }
    }

    /// Where the map goes for this photo: the accepted location, else the EXIF position, else
    /// the model's best candidate.
    pub fn focus(&self) -> Option<LatLon> {
        self.decision
            .as_ref()
            .map(|d| d.position())
            .or(self.entry.gps())
            .or(self.best_position())
    }

    /// Where Enter centres the map: the accepted location, else the best candidate, else the
    /// EXIF position.
    pub fn focus_on_enter(&self) -> Option<LatLon> {
        self.decision
            .as_ref()
            .map(|d| d.position())
            .or(self.best_position())
            .or(self.entry.gps())
    }

    /// The model's best candidate, when located.
    pub fn best_position(&self) -> Option<LatLon> {
        self.result
            .as_ref()
            .and_then(|r| r.best())
            .map(|c| c.position)
    }
}

/// All photos, the view and the selection. See the module docs.
#[derive(Debug, Default)]
pub struct Collection {
    pub photos: Vec<Photo>,
    by_path: HashMap<PathBuf, usize>,
    /// Indices into `photos`, filtered and sorted as the browser shows them.
    pub view: Vec<usize>,
    view_dirty: bool,
    /// How often the view was rebuilt (filtered and sorted), for tests and the frame-time work.
    pub view_rebuilds: u64,
    /// The photo the inspector and the map show.
    pub selected: Option<usize>,
    /// All selected photos (Ctrl-click adds).
    pub selection: BTreeSet<usize>,
    /// A photo given by name at start, selected once a scan lists it.
    pub pending_select: Option<PathBuf>,
}

impl Collection {
    pub fn len(&self) -> usize {
        self.photos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.photos.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<&Photo> {
        self.photos.get(index)
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut Photo> {
        self.photos.get_mut(index)
    }

    /// The index of the photo at `path`, also when `path` is the absolute form of a relative
    /// path the collection holds (the database keys photos by absolute path).
    pub fn index_of(&self, path: &Path) -> Option<usize> {
        self.by_path.get(path).copied().or_else(|| {
            self.photos
                .iter()
                .position(|p| std::path::absolute(&p.entry.path).is_ok_and(|a| a == path))
        })
    }

    pub fn selected_photo(&self) -> Option<&Photo> {
        self.selected.and_then(|i| self.photos.get(i))
    }

    /// What an action on photo `index` applies to: the located photos of the selection when
    /// the photo is part of it, else the photo alone.
    pub fn targets_of(&self, index: usize) -> Vec<PathBuf> {
        if self.selection.contains(&index) {
            self.selection
                .iter()
                .filter_map(|&i| self.photos.get(i))
                .filter(|p| p.result.is_some())
                .map(|p| p.entry.path.clone())
                .collect()
        } else {
            self.photos
                .get(index)
                .map(|p| vec![p.entry.path.clone()])
                .unwrap_or_default()
        }
    }

    /// Adds the entries not already there; returns the paths of the new usable photos (to look
    /// up in the database).
    pub fn add_entries(&mut self, entries: Vec<PhotoEntry>) -> Vec<PathBuf> {
        let mut new_paths = Vec::new();
        for entry in entries {
            if self.by_path.contains_key(&entry.path) {
                continue;
            }
            if entry.is_ok() {
                new_paths.push(entry.path.clone());
            }
            self.by_path.insert(entry.path.clone(), self.photos.len());
            self.photos.push(Photo::new(entry));
        }
        self.view_dirty = true;
        new_paths
    }

    /// Forgets every photo.
    pub fn clear(&mut self) {
        *self = Self {
            view_rebuilds: self.view_rebuilds,
            ..Self::default()
        };
    }

    /// Something the view depends on changed (a filter, the sort, photos added).
    pub fn mark_view_dirty(&mut self) {
        self.view_dirty = true;
    }

    /// A photo's result or decision changed: the view is rebuilt only when the filter or the
    /// sort looks at them (a result arriving for one of 10,000 photos sorted by path re-sorts
    /// nothing).
    pub fn photo_state_changed(&mut self, settings: &Settings) {
        let filter_reads_state = !matches!(
            settings.state_filter,
            StateFilter::All | StateFilter::HasExifGps | StateFilter::NoExifGps
        );
        if filter_reads_state || settings.sort == SortKey::State {
            self.view_dirty = true;
        }
    }

    /// Recomputes the filtered, sorted view when something it depends on changed. Returns the
    /// photo to select when nothing was selected yet (the first of the view).
    pub fn refresh_view(&mut self, settings: &Settings) -> Option<usize> {
        if !self.view_dirty {
            return None;
        }
        self.view_dirty = false;
        self.view_rebuilds += 1;
        let name = settings.name_filter.to_lowercase();
        let folder = settings.folder_filter.clone();
        let filter = settings.state_filter;
        let photos = &self.photos;
        let mut view: Vec<usize> = (0..photos.len())
            .filter(|&i| {
                let p = &photos[i];
                p.matches(filter)
                    && (name.is_empty() || p.entry.file_name().to_lowercase().contains(&name))
                    && folder
                        .as_deref()
                        .is_none_or(|f| p.entry.path.starts_with(f))
            })
            .collect();
        let state_rank = |p: &Photo| {
            u8::from(p.decision.is_some()) * 4
                + u8::from(p.is_located()) * 2
                + u8::from(p.entry.gps().is_some())
        };
        match settings.sort {
            SortKey::Path => view.sort_by(|&a, &b| photos[a].entry.path.cmp(&photos[b].entry.path)),
            SortKey::Name => {
                view.sort_by_cached_key(|&i| photos[i].entry.file_name().to_lowercase())
            }
            SortKey::Date => view.sort_by_key(|&i| {
                (
                    photos[i].entry.exif.taken_at.clone(),
                    photos[i].entry.modified,
                )
            }),
            SortKey::State => view.sort_by_key(|&i| std::cmp::Reverse(state_rank(&photos[i]))),
        }
        if settings.sort_descending {
            view.reverse();
        }
        self.view = view;
        // A photo the filters hide is no longer a target of "Run on selection" (the inspector
        // may still show it as `selected`).
        if !self.selection.is_empty() {
            let shown: std::collections::HashSet<usize> = self.view.iter().copied().collect();
            self.selection.retain(|i| shown.contains(i));
        }
        self.selected
            .is_none()
            .then(|| self.view.first().copied())
            .flatten()
    }

    /// Selects the photo at `index` (`extend`: adds it to the selection). `false` when there
    /// is no such photo.
    pub fn select(&mut self, index: usize, extend: bool) -> bool {
        if index >= self.photos.len() {
            return false;
        }
        if !extend {
            self.selection.clear();
        }
        self.selection.insert(index);
        self.selected = Some(index);
        true
    }

    /// The photo `delta` rows away from the selected one in the view (clamped to the view).
    pub fn moved_selection(&self, delta: isize) -> Option<usize> {
        let at = self
            .selected
            .and_then(|s| self.view.iter().position(|&i| i == s));
        let next = match at {
            Some(at) => at
                .saturating_add_signed(delta)
                .min(self.view.len().saturating_sub(1)),
            None => 0,
        };
        self.view.get(next).copied()
    }

    /// The folders of the collection (for the folder filter).
    pub fn folders(&self) -> Vec<PathBuf> {
        let set: BTreeSet<PathBuf> = self
            .photos
            .iter()
            .map(|p| p.entry.folder().to_owned())
            .collect();
        set.into_iter().collect()
    }

    /// Whether the view shows a located photo, or one placed from a track or a neighbour (what
    /// the export and write buttons need).
    pub fn view_has_located(&self) -> bool {
        self.view.iter().any(|&i| {
            self.photos
                .get(i)
                .is_some_and(|p| p.is_located() || p.is_placed_without_model())
        })
    }

    /// Whether the model has no current result for this photo: never located, or located
    /// before its file changed.
    fn is_new_or_stale(photo: &Photo) -> bool {
        photo.entry.is_ok() && (photo.result.is_none() || photo.result_stale)
    }

    /// How many photos of the view have no current result (what "only new or stale" runs).
    pub fn new_or_stale_count(&self) -> usize {
        self.view
            .iter()
            .filter(|&&i| self.photos.get(i).is_some_and(Self::is_new_or_stale))
            .count()
    }

    /// The photos of the view without a current result, in view order.
    pub fn runnable_new_or_stale(&self) -> Vec<PathBuf> {
        self.view
            .iter()
            .filter_map(|&i| self.photos.get(i))
            .filter(|p| Self::is_new_or_stale(p))
            .map(|p| p.entry.path.clone())
            .collect()
    }

    /// The usable photos of the view (`all`) or of the selection, in that order. The selection
    /// holds only photos the view shows (see [`Collection::refresh_view`]).
    pub fn runnable(&self, all: bool) -> Vec<PathBuf> {
        let indices: Vec<usize> = if all {
            self.view.clone()
        } else {
            self.selection.iter().copied().collect()
        };
        indices
            .iter()
            .filter_map(|&i| self.photos.get(i))
            .filter(|p| p.entry.is_ok())
            .map(|p| p.entry.path.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> PhotoEntry {
        PhotoEntry {
            path: PathBuf::from(path),
            size_bytes: 1,
            modified: None,
            format: None,
            exif: Default::default(),
            error: None,
        }
    }

    fn result() -> PhotoResult {
        PhotoResult {
            candidates: Vec::new(),
            heat: Vec::new(),
            heat_mass: 0.0,
            gallery_len: 0,
            top_k: 1,
            provenance: Default::default(),
            computed_at_unix_secs: 0,
            image_feature: None,
            group: None,
        }
    }

    #[test]
    fn a_result_re_sorts_only_when_the_view_looks_at_results() {
        let mut collection = Collection::default();
        let mut settings = Settings::default();
        collection.add_entries((0..100).map(|i| entry(&format!("/p/{i:03}.jpg"))).collect());
        collection.refresh_view(&settings);
        let rebuilds = collection.view_rebuilds;
        collection.photos[5].result = Some(result());
        collection.photo_state_changed(&settings);
        assert_eq!(collection.refresh_view(&settings), None);
        assert_eq!(
            collection.view_rebuilds, rebuilds,
            "sorted by path: no re-sort"
        );

        settings.state_filter = StateFilter::Located;
        collection.mark_view_dirty();
        collection.refresh_view(&settings);
        assert_eq!(collection.view, vec![5]);
        collection.photos[7].result = Some(result());
        collection.photo_state_changed(&settings);
        collection.refresh_view(&settings);
        assert_eq!(
            collection.view,
            vec![5, 7],
            "the filter reads results: rebuilt"
        );
    }

    fn entry_with_gps(path: &str) -> PhotoEntry {
        let mut e = entry(path);
        e.exif.gps = Some(LatLon::new(10.0, 20.0));
        e
    }

    #[test]
    fn a_photo_placed_from_a_track_counts_as_located_for_exports() {
        let mut collection = Collection::default();
        let settings = Settings::default();
        collection.add_entries(vec![entry("/p/a.jpg")]);
        collection.refresh_view(&settings);
        assert!(!collection.view_has_located());
        let placed = |origin| Decision::Placed {
            position: LatLon::new(46.5, 7.9),
            origin,
        };
        collection.photos[0].decision = Some(placed(crate::domain::Origin::Track {
            track: "hike.gpx".into(),
            offset_secs: 0.0,
            altitude_m: None,
        }));
        assert!(collection.view_has_located());
        // A trip's point comes from results, so without one there is nothing to export.
        collection.photos[0].decision = Some(placed(crate::domain::Origin::Trip {
            max_speed_kmh: 120.0,
            single_photo: LatLon::new(0.0, 0.0),
        }));
        assert!(!collection.view_has_located());
    }

    #[test]
    fn the_without_gps_filter_shows_only_photos_without_a_fix() {
        let mut collection = Collection::default();
        let mut settings = Settings::default();
        collection.add_entries(vec![entry("/p/a.jpg"), entry_with_gps("/p/b.jpg")]);
        settings.state_filter = StateFilter::NoExifGps;
        collection.refresh_view(&settings);
        assert_eq!(collection.view, vec![0]);
        settings.state_filter = StateFilter::HasExifGps;
        collection.mark_view_dirty();
        collection.refresh_view(&settings);
        assert_eq!(collection.view, vec![1]);
    }

    #[test]
    fn a_photo_hidden_by_a_filter_is_not_run_on() {
        let mut collection = Collection::default();
        let mut settings = Settings::default();
        collection.add_entries(vec![entry("/p/a.jpg"), entry_with_gps("/p/b.jpg")]);
        collection.refresh_view(&settings);
        collection.select(0, false);
        collection.select(1, true);
        assert_eq!(collection.runnable(false).len(), 2);
        settings.state_filter = StateFilter::NoExifGps;
        collection.mark_view_dirty();
        collection.refresh_view(&settings);
        assert_eq!(collection.runnable(false), vec![PathBuf::from("/p/a.jpg")]);
    }

    #[test]
    fn only_new_or_stale_photos_are_picked() {
        let mut collection = Collection::default();
        let settings = Settings::default();
        collection.add_entries(vec![
            entry("/p/a.jpg"),
            entry("/p/b.jpg"),
            entry("/p/c.jpg"),
        ]);
        collection.refresh_view(&settings);
        collection.photos[0].result = Some(result());
        collection.photos[1].result = Some(result());
        collection.photos[1].result_stale = true;
        assert_eq!(collection.new_or_stale_count(), 2);
        assert_eq!(
            collection.runnable_new_or_stale(),
            vec![PathBuf::from("/p/b.jpg"), PathBuf::from("/p/c.jpg")]
        );
        assert_eq!(collection.runnable(true).len(), 3);
    }

    #[test]
    fn entries_are_added_once_and_found_by_absolute_path() {
        let mut collection = Collection::default();
        let new = collection.add_entries(vec![entry("rel/a.jpg"), entry("rel/b.jpg")]);
        assert_eq!(new.len(), 2);
        assert!(collection.add_entries(vec![entry("rel/a.jpg")]).is_empty());
        assert_eq!(collection.len(), 2);
        let absolute = std::path::absolute("rel/b.jpg").unwrap();
        assert_eq!(collection.index_of(&absolute), Some(1));
    }
}
