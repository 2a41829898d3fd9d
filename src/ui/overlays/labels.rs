//! Place names on the offline basemap, as a walkers [`Plugin`]: the built-in places
//! ([`crate::geo::place_search`]) chosen by [`crate::app::map::labels::choose_labels`] for the
//! view (recomputed only when the view changes), a dot and the name. Only while the basemap is
//! what shows (network off, or OpenStreetMap tiles not arriving): OpenStreetMap has its own.

use egui::{Align2, Color32, FontId, Pos2, Response, Stroke, Ui, Vec2};
use walkers::{MapMemory, Plugin, Projector};

use crate::app::map::labels::{LABELS_MIN_ZOOM, LabelCache, choose_labels};
use crate::app::map::{from_position, to_position};
use crate::geo::LatLon;
use crate::geo::place_search::PlaceIndex;

/// At most this many names at once.
const MAX_LABELS: usize = 150;

pub struct PlaceLabelsPlugin<'a> {
    pub cache: &'a mut LabelCache,
}

impl Plugin for PlaceLabelsPlugin<'_> {
    fn run(
        self: Box<Self>,
        ui: &mut Ui,
        response: &Response,
        projector: &Projector,
        _memory: &MapMemory,
    ) {
        let cache = self.cache;
        let rect = response.rect;
        let zoom = projector.zoom();
        if zoom < LABELS_MIN_ZOOM {
            cache.labels.clear();
            cache.view_key = None;
            return;
        }
        let origin = projector.project(walkers::lat_lon(0.0, 0.0));
        let key = [
            origin.x.round() as i64,
            origin.y.round() as i64,
            (zoom * 1000.0).round() as i64,
            rect.min.x.round() as i64,
            rect.min.y.round() as i64,
            rect.max.x.round() as i64,
            rect.max.y.round() as i64,
        ];
        let Some(places) = PlaceIndex::embedded_if_ready() else {
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(200));
            return;
        };
        if cache.view_key != Some(key) {
            cache.view_key = Some(key);
            cache.labels = labels_for(places, projector, rect, zoom);
        }
        let painter = ui.painter().with_clip_rect(rect);
        let text_colour = Color32::from_rgb(60, 60, 70);
        for label in &cache.labels {
            painter.circle(
                label.screen,
                2.5,
                text_colour,
                Stroke::new(1.0, Color32::WHITE),
            );
            let galley =
                painter.layout_no_wrap(label.name.clone(), FontId::proportional(11.5), text_colour);
            let at = label.screen + Vec2::new(5.0, 0.0);
            let text_rect = Align2::LEFT_CENTER.anchor_size(at, galley.size());
            painter.rect_filled(text_rect.expand(1.0), 2.0, Color32::from_white_alpha(150));
            painter.galley(text_rect.min, galley, text_colour);
        }
    }
}

/// Chooses the labels for a view: places outside its latitude and longitude range are skipped
/// before projecting; each is drawn on the copy of the world nearest the centre.
fn labels_for(
    places: &PlaceIndex,
    projector: &Projector,
    rect: egui::Rect,
    zoom: f64,
) -> Vec<crate::app::map::labels::PlaceLabel> {
    let corner = |p: Pos2| from_position(projector.unproject(p.to_vec2()));
    let (north_west, south_east) = (corner(rect.left_top()), corner(rect.right_bottom()));
    let lon_span = south_east.lon_deg - north_west.lon_deg;
    let in_view = |p: LatLon| {
        p.lat_deg <= north_west.lat_deg
            && p.lat_deg >= south_east.lat_deg
            && (lon_span >= 360.0 || (p.lon_deg - north_west.lon_deg).rem_euclid(360.0) <= lon_span)
    };
    let world_px = projector.project(walkers::lat_lon(0.0, 180.0)).x
        - projector.project(walkers::lat_lon(0.0, -180.0)).x;
    let project = |p: LatLon| {
        if !in_view(p) {
            return None;
        }
        let pos = projector.project(to_position(p)).to_pos2();
        let copies = if world_px > 0.0 {
            ((rect.center().x - pos.x) / world_px).round()
        } else {
            0.0
        };
        Some(pos + Vec2::new(copies * world_px, 0.0))
    };
    choose_labels(places.by_importance(), project, rect, zoom, MAX_LABELS)
}
