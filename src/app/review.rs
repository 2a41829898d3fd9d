//! Review mode: steps through the located photos of the view that nobody has decided on, one
//! key press each (accept a candidate, place by hand, skip, back). Pure state over collection
//! indices: the app applies the decisions and moves the selection.

use super::collection::Collection;

/// What a key press in review mode asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewAction {
    /// Enter review mode over the view's unreviewed results.
    Start,
    /// Accept the current photo's candidate of this rank (1 = best) and go on.
    Accept { rank: usize },
    /// Place the current photo by hand on the map (the map's place mode), then go on.
    PlaceByHand,
    /// Leave the current photo undecided and go on.
    Skip,
    /// Back to the previous photo.
    Back,
    /// Leave review mode.
    Leave,
}

/// The photos to review and where the user is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Review {
    /// Collection indices, in view order: located, no decision when review started.
    pub queue: Vec<usize>,
    /// The position in `queue` (== `queue.len()` once past the last).
    pub at: usize,
    /// Place mode was started for the current photo: the next manual decision goes on.
    pub placing: bool,
    pub accepted: usize,
    pub skipped: usize,
}

impl Review {
    /// The view's located photos without a decision, in view order; `None` when there are none.
    pub fn start(collection: &Collection) -> Option<Self> {
        let queue: Vec<usize> = collection
            .view
            .iter()
            .copied()
            .filter(|&i| {
                collection
                    .get(i)
                    .is_some_and(|p| p.is_located() && p.decision.is_none())
            })
            .collect();
        (!queue.is_empty()).then_some(Self {
            queue,
            at: 0,
            placing: false,
            accepted: 0,
            skipped: 0,
        })
    }

    /// The photo under review (`None` once past the last).
    pub fn current(&self) -> Option<usize> {
        self.queue.get(self.at).copied()
    }

    /// Goes on to the next photo; `false` when there was none (review is over).
    pub fn advance(&mut self) -> bool {
        self.placing = false;
        self.at = (self.at + 1).min(self.queue.len());
        self.at < self.queue.len()
    }

    /// Goes back one photo (stays on the first).
    pub fn back(&mut self) {
        self.placing = false;
        self.at = self.at.saturating_sub(1);
    }

    /// "3 of 12".
    pub fn progress(&self) -> String {
        format!(
            "{} of {}",
            (self.at + 1).min(self.queue.len()),
            self.queue.len()
        )
    }

    /// The note when review ends.
    pub fn summary(&self) -> String {
        format!(
            "Review: {} accepted, {} skipped, {} not reached",
            self.accepted,
            self.skipped,
            self.queue.len().saturating_sub(self.at)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::settings::Settings;
    use crate::domain::{Decision, PhotoResult};
    use crate::geo::LatLon;
    use crate::library::PhotoEntry;

    fn collection() -> Collection {
        let mut collection = Collection::default();
        collection.add_entries(
            (0..4)
                .map(|i| PhotoEntry {
                    path: format!("/p/{i}.jpg").into(),
                    size_bytes: 1,
                    modified: None,
                    format: None,
                    exif: Default::default(),
                    error: None,
                })
                .collect(),
        );
        let result = PhotoResult {
            candidates: Vec::new(),
            heat: Vec::new(),
            heat_mass: 0.0,
            gallery_len: 0,
            top_k: 1,
            provenance: Default::default(),
            computed_at_unix_secs: 0,
            image_feature: None,
            group: None,
        };
        for i in [0, 1, 3] {
            collection.photos[i].result = Some(result.clone());
        }
        collection.photos[1].decision = Some(Decision::Manual {
            position: LatLon::new(1.0, 2.0),
        });
        collection.refresh_view(&Settings::default());
        collection
    }

    #[test]
    fn review_steps_through_the_unreviewed_results_only() {
        let collection = collection();
        let mut review = Review::start(&collection).expect("two to review");
        assert_eq!(review.queue, vec![0, 3], "1 is decided, 2 not located");
        assert_eq!(review.current(), Some(0));
        assert_eq!(review.progress(), "1 of 2");
        review.back();
        assert_eq!(review.current(), Some(0), "stays on the first");
        assert!(review.advance());
        assert_eq!(review.current(), Some(3));
        assert!(!review.advance(), "past the last");
        assert_eq!(review.current(), None);
        review.back();
        assert_eq!(review.current(), Some(3));
    }

    #[test]
    fn nothing_to_review_is_no_review() {
        let mut collection = collection();
        for p in &mut collection.photos {
            p.result = None;
        }
        assert_eq!(Review::start(&collection), None);
    }
}
