//! Regions the selected photo's answer is restricted to ("the claim says Ukraine: where in
//! Ukraine?"): the text typed per photo, the requests sent to the inference thread, and each
//! restricted photo's unconstrained result, put back when the region is cleared. No egui.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::domain::{PhotoResult, RegionConstraint};
use crate::geo::{LatLon, Region};

/// A photo shown restricted to a region.
#[derive(Clone, Debug)]
pub struct Restricted {
    pub region: Region,
    /// The region and the share of the model's belief that lay inside.
    pub constraint: RegionConstraint,
    /// The result before the restriction: what clearing the region restores.
    pub unconstrained: PhotoResult,
}

/// A region being drawn on the map: its corners so far (two for a box), or a polygon's
/// vertices (closed by a double click or Enter).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Drawing {
    pub vertices: Vec<LatLon>,
    pub polygon: bool,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Regions {
    /// The region text typed per photo (a country or a box).
    pub inputs: HashMap<PathBuf, String>,
    /// Photos shown restricted.
    pub active: HashMap<PathBuf, Restricted>,
    /// Requests in flight, per photo (only the newest one's answer is used).
    pending: HashMap<PathBuf, (u64, Region)>,
    /// The last failure per photo (no model, no gallery point inside, ...).
    pub errors: HashMap<PathBuf, String>,
    /// The box being drawn on the map, when the draw mode is on.
    pub drawing: Option<Drawing>,
    next_request: u64,
}

impl Regions {
    /// A new request for `path` within `region`; older requests for it are now stale.
    pub fn begin(&mut self, path: &Path, region: Region) -> u64 {
        self.next_request += 1;
        self.errors.remove(path);
        self.pending
            .insert(path.to_owned(), (self.next_request, region));
        self.next_request
    }

    pub fn is_pending(&self, path: &Path) -> bool {
        self.pending.contains_key(path)
    }

    /// The answer to `request`: `Some(region)` when it is the newest for `path`.
    pub fn answered(&mut self, path: &Path, request: u64) -> Option<Region> {
        match self.pending.get(path) {
            Some((r, _)) if *r == request => self.pending.remove(path).map(|(_, region)| region),
            _ => None,
        }
    }

    /// Forgets a photo's restriction (its result was replaced by a new run, or it was cleared);
    /// returns the unconstrained result when it was restricted.
    pub fn clear(&mut self, path: &Path) -> Option<PhotoResult> {
        self.pending.remove(path);
        self.errors.remove(path);
        self.active.remove(path).map(|r| r.unconstrained)
    }

    pub fn constraint(&self, path: &Path) -> Option<&RegionConstraint> {
        self.active.get(path).map(|r| &r.constraint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_newest_request_is_answered() {
        let mut regions = Regions::default();
        let path = Path::new("a.jpg");
        let ua = crate::geo::parse_region("UA").unwrap();
        let first = regions.begin(path, ua.clone());
        let second = regions.begin(path, ua.clone());
        assert!(regions.is_pending(path));
        assert_eq!(regions.answered(path, first), None);
        assert_eq!(regions.answered(path, second), Some(ua));
        assert!(!regions.is_pending(path));
        assert_eq!(regions.clear(path), None);
    }
}
