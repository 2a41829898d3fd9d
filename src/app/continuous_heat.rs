//! The app's side of the continuous heatmap: which photo and view it is for, and talking to
//! the inference thread ([`crate::runtime::inference::InferenceWorker::request_heat`]). The
//! state and the tile layer are [`crate::app::map::continuous`]'s.

use std::sync::Arc;
use std::time::Instant;

use super::App;
use super::map::continuous::{HeatAction, HeatView, TEXTURES_PER_FRAME};
use crate::geo::heat_grid::HeatTile;
use crate::runtime::inference::{HeatJob, HeatSource};

impl App {
    /// Once a frame, before the map is drawn, with the map's view (`None` before it was
    /// drawn): asks for the selected photo's continuous heat when the view has settled,
    /// cancels it when the view moves, and makes a few textures of what came. True when the
    /// map shows the continuous layer (zoomed in past the threshold, a located photo, a model,
    /// the heatmap on, and its heat did not fail).
    pub fn update_continuous_heat(&mut self, view: Option<HeatView>) -> bool {
        let located = self
            .collection
            .selected_photo()
            .is_some_and(|p| p.result.is_some());
        // A description shown alone (issue 14) takes the layer with its own feature.
        let words = self
            .describe
            .continuous_source(located)
            .map(|(key, feature)| (key, HeatSource::Feature(feature), None));
        let photo = words.or_else(|| self.photo_heat_source());
        self.update_continuous_heat_for(view, photo)
    }

    /// The selected photo's continuous heat: its key, where its feature comes from, its region.
    fn photo_heat_source(&self) -> Option<(String, HeatSource, Option<crate::geo::Region>)> {
        self.collection.selected_photo().and_then(|p| {
            let result = p.result.as_ref()?;
            let region = self
                .regions
                .active
                .get(&p.entry.path)
                .map(|r| r.region.clone());
            // A new result or another region is another heatmap.
            let key = format!(
                "{}\u{0}{}\u{0}{}",
                p.entry.path.display(),
                result.computed_at_unix_secs,
                region.as_ref().map(|r| r.spec()).unwrap_or_default()
            );
            let source = match &result.image_feature {
                Some(feature) => HeatSource::Feature(Arc::clone(feature)),
                None => HeatSource::Photo(p.entry.path.clone()),
            };
            Some((key, source, region))
        })
    }

    fn update_continuous_heat_for(
        &mut self,
        view: Option<HeatView>,
        photo: Option<(String, HeatSource, Option<crate::geo::Region>)>,
    ) -> bool {
        let key = photo.as_ref().map(|(k, _, _)| k.as_str());
        if self.map.continuous.set_photo(key)
            && let Some(worker) = &self.model.worker
        {
            worker.cancel_heat();
        }
        let wanted = view.filter(|v| {
            v.is_continuous()
                && self.settings.show_heatmap
                && self.model.is_ready()
                && self.model.worker.is_some()
                && photo.is_some()
        });
        match self.map.continuous.update(wanted, Instant::now()) {
            HeatAction::Wait => {}
            HeatAction::Cancel => {
                if let Some(worker) = &self.model.worker {
                    worker.cancel_heat();
                }
            }
            HeatAction::Request(tiles) => {
                if let (Some(worker), Some((photo_key, source, region))) =
                    (&self.model.worker, photo)
                {
                    log::debug!(
                        "continuous heatmap: {} tiles at zoom {:.2} (tile zoom {})",
                        tiles.len(),
                        view.map_or(0.0, |v| v.zoom),
                        tiles.first().map_or(0, |t| t.zoom)
                    );
                    let generation = worker.request_heat(HeatJob {
                        photo_key,
                        source,
                        tiles,
                        region,
                    });
                    self.map.continuous.sent(generation);
                }
            }
        }
        self.map.continuous.upload(TEXTURES_PER_FRAME);
        wanted.is_some() && !self.map.continuous.has_failed()
    }

    /// A heat event from the inference thread.
    pub(super) fn continuous_heat_tile(
        &mut self,
        heat_generation: u64,
        photo_key: &str,
        tile: HeatTile,
        level: u8,
        values: Arc<[f32]>,
    ) {
        self.map
            .continuous
            .receive(heat_generation, photo_key, tile, level, values);
    }

    /// A heat request failed: the gallery layer shows instead, and the log says why.
    pub(super) fn continuous_heat_failed(
        &mut self,
        heat_generation: u64,
        photo_key: &str,
        error: &str,
    ) {
        if self.map.continuous.photo_key() == Some(photo_key) {
            self.messages
                .warning(format!("Continuous heatmap unavailable: {error}"));
        }
        self.map.continuous.fail(heat_generation, photo_key);
    }
}
