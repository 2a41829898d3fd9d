//! The workbench's viewing state: the photo preview (cache, zoom, the photo it is compared
//! with), review mode, which panels are shown, and where last frame's panels were (so tests
//! and the layout can check that nothing overlaps).

use super::preview::{Previews, ZoomPan};
use super::review::{Review, ReviewAction};
use super::{App, DecisionSource};
use crate::domain::Decision;

/// Where the panels were drawn last frame (screen rects).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PanelRects {
    pub browser: Option<egui::Rect>,
    pub side: Option<egui::Rect>,
    pub preview: Option<egui::Rect>,
    pub map: Option<egui::Rect>,
}

impl PanelRects {
    /// The panels that were drawn.
    pub fn drawn(&self) -> Vec<(&'static str, egui::Rect)> {
        [
            ("browser", self.browser),
            ("side", self.side),
            ("preview", self.preview),
            ("map", self.map),
        ]
        .into_iter()
        .filter_map(|(name, rect)| rect.map(|r| (name, r)))
        .collect()
    }

    /// Pairs of panels whose areas overlap (by more than a pixel: neighbours share an edge).
    pub fn overlaps(&self) -> Vec<(&'static str, &'static str)> {
        let drawn = self.drawn();
        let mut out = Vec::new();
        for (i, (a, ra)) in drawn.iter().enumerate() {
            for (b, rb) in &drawn[i + 1..] {
                let common = ra.intersect(*rb);
                if common.width() > 1.0 && common.height() > 1.0 {
                    out.push((*a, *b));
                }
            }
        }
        out
    }
}

/// See the module docs.
pub struct Viewer {
    pub previews: Previews,
    /// The preview pane's zoom, for the photo `zoom_for`.
    pub zoom: ZoomPan,
    pub zoom_for: Option<usize>,
    /// Compare mode: this photo is shown beside the selected one, with its own zoom.
    pub compare_with: Option<usize>,
    pub compare_zoom: ZoomPan,
    pub review: Option<Review>,
    pub show_browser: bool,
    pub show_side: bool,
    pub show_preview: bool,
    pub rects: PanelRects,
}

impl Default for Viewer {
    fn default() -> Self {
        Self {
            previews: Previews::default(),
            zoom: ZoomPan::FIT,
            zoom_for: None,
            compare_with: None,
            compare_zoom: ZoomPan::FIT,
            review: None,
            show_browser: true,
            show_side: true,
            show_preview: true,
            rects: PanelRects::default(),
        }
    }
}

impl App {
    /// Review mode's keys and buttons.
    pub(super) fn apply_review(&mut self, action: ReviewAction) {
        if action == ReviewAction::Start {
            self.refresh_view();
            match Review::start(&self.collection) {
                Some(review) => {
                    self.viewer.review = Some(review);
                    self.viewer.show_preview = true;
                    self.review_select();
                }
                None => self
                    .messages
                    .warning("Nothing to review: every located photo shown has a decision"),
            }
            return;
        }
        let Some(review) = &mut self.viewer.review else {
            return;
        };
        let current = review.current();
        match action {
            ReviewAction::Start => {}
            ReviewAction::Accept { rank } => {
                let Some(index) = current else {
                    return;
                };
                let position = self
                    .collection
                    .get(index)
                    .and_then(|p| p.result.as_ref())
                    .and_then(|r| r.candidates.iter().find(|c| c.rank == rank))
                    .map(|c| c.position);
                match position {
                    Some(position) => {
                        review.accepted += 1;
                        self.decide(index, Some(Decision::Accepted { rank, position }));
                        self.review_next();
                    }
                    None => self
                        .messages
                        .warning(format!("There is no candidate #{rank}")),
                }
            }
            ReviewAction::PlaceByHand => {
                if current.is_some() {
                    review.placing = true;
                    self.map.place_mode = true;
                }
            }
            ReviewAction::Skip => {
                if current.is_some() {
                    review.skipped += 1;
                }
                self.review_next();
            }
            ReviewAction::Back => {
                review.back();
                self.map.place_mode = false;
                self.review_select();
            }
            ReviewAction::Leave => {
                let summary = review.summary();
                self.viewer.review = None;
                self.map.place_mode = false;
                self.messages.info(summary);
            }
        }
    }

    /// A decision was applied: placing by hand in review mode goes on to the next photo.
    pub(super) fn review_decided(&mut self, index: usize, source: DecisionSource) {
        let Some(review) = &mut self.viewer.review else {
            return;
        };
        if source == DecisionSource::Manual && review.placing && review.current() == Some(index) {
            review.accepted += 1;
            self.review_next();
        }
    }

    fn review_next(&mut self) {
        let Some(review) = &mut self.viewer.review else {
            return;
        };
        self.map.place_mode = false;
        if review.advance() {
            self.review_select();
        } else {
            let summary = format!("{} — all reviewed", review.summary());
            self.messages.info(summary);
        }
    }

    /// Selects the photo under review and frames its candidates, EXIF position and claims on
    /// the map, so each key press shows the next photo's whole answer.
    fn review_select(&mut self) {
        if let Some(index) = self.viewer.review.as_ref().and_then(Review::current) {
            self.select(index, false);
            let points = self.fit_points();
            self.map.fit(&points);
        }
    }
}
