//! Place names on the offline basemap: which of the built-in places
//! ([`crate::geo::place_search`]) to label in the current view, the most important first, none
//! overlapping, more as the map zooms in. Drawn as text over the tiles by `ui::map`.

use egui::{Pos2, Rect, Vec2};

use crate::geo::LatLon;
use crate::geo::place_search::PlaceEntry;

/// Below this zoom the basemap shows no names: without populations to rank by, a continent's
/// worth of places would be labelled by chance.
pub const LABELS_MIN_ZOOM: f64 = 5.0;

/// A place name to draw.
#[derive(Clone, Debug, PartialEq)]
pub struct PlaceLabel {
    pub name: String,
    /// Where the place is on screen (points).
    pub screen: Pos2,
    /// The text's box (to the right of the dot).
    pub rect: Rect,
}

/// The labels of the last view, kept until the view changes (choosing walks every place).
#[derive(Debug, Default)]
pub struct LabelCache {
    /// The view the labels are for (quantised: where (0°, 0°) is on screen, the zoom, the rect).
    pub view_key: Option<[i64; 7]>,
    pub labels: Vec<PlaceLabel>,
}

/// How wide a name is drawn, estimated (the text is measured only for the ones chosen).
fn text_size(name: &str) -> Vec2 {
    Vec2::new(6.5 * name.chars().count() as f32 + 4.0, 15.0)
}

/// Chooses labels for `viewport`: places in importance order, each kept if its box overlaps
/// no kept one, at most `max` (more when zoomed in, up to `max`). `project` gives the screen
/// position of a place (or `None` when it cannot be shown).
pub fn choose_labels<'a>(
    places_by_importance: impl Iterator<Item = &'a PlaceEntry>,
    project: impl Fn(LatLon) -> Option<Pos2>,
    viewport: Rect,
    zoom: f64,
    max: usize,
) -> Vec<PlaceLabel> {
    if zoom < LABELS_MIN_ZOOM {
        return Vec::new();
    }
    // Roughly one label per 160x60 points when zoomed in, fewer at continent scale.
    let density = ((zoom - LABELS_MIN_ZOOM) / 4.0 + 0.25).clamp(0.25, 1.0);
    let room = (viewport.area() / (160.0 * 60.0) * density as f32) as usize;
    let limit = room.clamp(1, max);
    let mut kept: Vec<PlaceLabel> = Vec::new();
    for place in places_by_importance {
        if kept.len() >= limit {
            break;
        }
        let Some(at) = project(place.position) else {
            continue;
        };
        if !viewport.contains(at) {
            continue;
        }
        let rect =
            Rect::from_min_size(at + Vec2::new(5.0, -8.0), text_size(&place.name)).expand(3.0);
        if !viewport.contains_rect(rect) || kept.iter().any(|k| k.rect.intersects(rect)) {
            continue;
        }
        kept.push(PlaceLabel {
            name: place.name.clone(),
            screen: at,
            rect,
        });
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui::pos2;

    fn place(name: &str, lat: f64, lon: f64, importance: u32) -> PlaceEntry {
        PlaceEntry {
            name: name.into(),
            region: String::new(),
            district: String::new(),
            country_code: "XX".into(),
            position: LatLon::new(lat, lon),
            importance,
        }
    }

    /// 10 points per degree, origin at (0, 0).
    fn project(p: LatLon) -> Option<Pos2> {
        Some(pos2(
            (p.lon_deg * 10.0) as f32,
            (-p.lat_deg * 10.0) as f32 + 500.0,
        ))
    }

    #[test]
    fn labels_never_overlap_and_the_important_ones_win() {
        let places = [
            place("Big", 10.0, 10.0, 50),
            place("Beside", 10.1, 10.2, 40), // on top of Big's label
            place("Far", 30.0, 50.0, 10),
            place("Outside", 10.0, 200.0, 90), // off screen
        ];
        let viewport = Rect::from_min_size(pos2(0.0, 0.0), Vec2::new(1000.0, 800.0));
        let labels = choose_labels(places.iter(), project, viewport, 8.0, 100);
        let names: Vec<&str> = labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["Big", "Far"]);
        for (i, a) in labels.iter().enumerate() {
            for b in &labels[i + 1..] {
                assert!(!a.rect.intersects(b.rect));
            }
        }
    }

    #[test]
    fn no_labels_zoomed_out_and_more_zoomed_in() {
        let places: Vec<PlaceEntry> = (0..400)
            .map(|i| {
                place(
                    &format!("P{i}"),
                    f64::from(i / 20) * 3.0,
                    f64::from(i % 20) * 5.0,
                    400 - i,
                )
            })
            .collect();
        let viewport = Rect::from_min_size(pos2(0.0, 0.0), Vec2::new(1000.0, 800.0));
        let at = |zoom| choose_labels(places.iter(), project, viewport, zoom, 500).len();
        assert_eq!(at(2.0), 0);
        assert_eq!(at(4.5), 0);
        assert!(at(5.5) > 0);
        assert!(at(10.0) > at(5.5), "{} vs {}", at(10.0), at(5.5));
    }
}
