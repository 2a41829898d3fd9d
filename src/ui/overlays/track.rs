//! GPS tracks and trips on the map, as a walkers [`Plugin`] (issue 12): the loaded track as a
//! polyline, where each selected photo lands on it at the current offset (the live preview),
//! and the trip's path through its chosen points. While "Set offset from this photo" is on, a
//! click is reported in `clicked`.

use egui::{Color32, Pos2, Response, Shape, Stroke, Ui};
use walkers::{MapMemory, Plugin, Projector};

use crate::app::map::{from_position, to_position};
use crate::geo::LatLon;

/// Tracks: dark blue-violet, apart from the other layers; previews are white-ringed dots on it.
pub const TRACK_COLOUR: Color32 = Color32::from_rgb(80, 60, 200);
/// The trip's path: deep pink.
pub const TRIP_COLOUR: Color32 = Color32::from_rgb(210, 40, 130);

pub struct TrackPlugin<'a> {
    /// The track's points in time order (thinned for drawing).
    pub track: &'a [LatLon],
    /// Where the selected photos land at the current offset.
    pub landings: &'a [LatLon],
    /// The trip's points in capture-time order.
    pub trip: &'a [LatLon],
    /// Whether a click picks the offset (the cursor is a crosshair).
    pub picking: bool,
    /// Set to the point clicked while picking.
    pub clicked: &'a mut Option<LatLon>,
}

impl Plugin for TrackPlugin<'_> {
    fn run(
        self: Box<Self>,
        ui: &mut Ui,
        response: &Response,
        projector: &Projector,
        _memory: &MapMemory,
    ) {
        let painter = ui.painter().with_clip_rect(response.rect);
        let screen = |p: LatLon| projector.project(to_position(p)).to_pos2();
        if self.track.len() >= 2 {
            let points: Vec<Pos2> = self.track.iter().map(|&p| screen(p)).collect();
            painter.add(Shape::line(points, Stroke::new(3.0, TRACK_COLOUR)));
        }
        if let (Some(&first), Some(&last)) = (self.track.first(), self.track.last()) {
            painter.circle_filled(screen(first), 4.0, TRACK_COLOUR);
            painter.circle_stroke(screen(last), 5.0, Stroke::new(2.0, TRACK_COLOUR));
        }
        if self.trip.len() >= 2 {
            let points: Vec<Pos2> = self.trip.iter().map(|&p| screen(p)).collect();
            painter.add(Shape::dashed_line(
                &points,
                Stroke::new(2.5, TRIP_COLOUR),
                8.0,
                4.0,
            ));
        }
        for &p in self.trip {
            painter.circle(
                screen(p),
                5.0,
                TRIP_COLOUR,
                Stroke::new(1.5, Color32::WHITE),
            );
        }
        for &p in self.landings {
            painter.circle(
                screen(p),
                6.0,
                TRACK_COLOUR,
                Stroke::new(2.0, Color32::WHITE),
            );
        }
        if self.picking {
            ui.ctx().set_cursor_icon(egui::CursorIcon::Crosshair);
            if response.clicked()
                && let Some(pointer) = response.interact_pointer_pos()
            {
                *self.clicked = Some(from_position(projector.unproject(pointer.to_vec2())));
            }
        }
    }
}
