//! The selected photo's region on the map, as a walkers [`Plugin`]: the outline of the country,
//! box or polygon its answer is restricted to, and, in the draw mode, the box being drawn
//! (its first corner, then a rubber band to the pointer). A click in the draw mode is reported
//! in `clicked`.

use egui::{Color32, Pos2, Response, Shape, Stroke, Ui};
use walkers::{MapMemory, Plugin, Projector};

use crate::app::map::{from_position, to_position};
use crate::geo::{GeoBox, LatLon};

/// Regions: teal, apart from EXIF (blue), candidates (orange), accepted (green), claims
/// (magenta).
pub const REGION_COLOUR: Color32 = Color32::from_rgb(0, 150, 150);

pub struct RegionPlugin<'a> {
    /// The outline's rings (longitudes continuous, possibly past ±180°).
    pub outline: &'a [Vec<LatLon>],
    /// The corners clicked so far in the draw mode; `None` when not drawing.
    pub drawing: Option<&'a [LatLon]>,
    /// Whether a polygon (not a box) is drawn.
    pub polygon: bool,
    /// Set to the point clicked in the draw mode.
    pub clicked: &'a mut Option<LatLon>,
    /// Set on a double click in the draw mode (closes a polygon).
    pub double_clicked: &'a mut bool,
}

impl Plugin for RegionPlugin<'_> {
    fn run(
        self: Box<Self>,
        ui: &mut Ui,
        response: &Response,
        projector: &Projector,
        _memory: &MapMemory,
    ) {
        let painter = ui.painter().with_clip_rect(response.rect);
        let screen = |p: LatLon| projector.project(to_position(p)).to_pos2();
        let stroke = Stroke::new(2.0, REGION_COLOUR);
        for ring in self.outline {
            let mut points: Vec<Pos2> = ring.iter().map(|&p| screen(p)).collect();
            if points.len() < 2 {
                continue;
            }
            let bounds = egui::Rect::from_points(&points);
            if !bounds.intersects(response.rect) {
                continue;
            }
            points.push(points[0]);
            painter.add(Shape::line(points, stroke));
        }
        let Some(corners) = self.drawing else {
            return;
        };
        ui.ctx().set_cursor_icon(egui::CursorIcon::Crosshair);
        let pointer = response
            .hover_pos()
            .map(|p| from_position(projector.unproject(p.to_vec2())));
        if self.polygon {
            let mut points: Vec<Pos2> = corners.iter().map(|&p| screen(p)).collect();
            if let Some(pointer) = pointer {
                points.push(screen(pointer));
            }
            if points.len() >= 2 {
                painter.add(Shape::dashed_line(&points, stroke, 6.0, 4.0));
            }
        } else if let (Some(&first), Some(pointer)) = (corners.first(), pointer) {
            let rubber = GeoBox::from_corners(first, wrap_lon(pointer));
            let mut points: Vec<Pos2> = rubber.outline().iter().map(|&p| screen(p)).collect();
            points.push(points[0]);
            painter.add(Shape::dashed_line(&points, stroke, 6.0, 4.0));
        }
        for &c in corners {
            painter.circle(
                screen(c),
                4.0,
                REGION_COLOUR,
                Stroke::new(1.5, Color32::WHITE),
            );
        }
        if response.double_clicked() {
            *self.double_clicked = true;
        } else if response.clicked()
            && let Some(pointer) = response.interact_pointer_pos()
        {
            *self.clicked = Some(wrap_lon(from_position(
                projector.unproject(pointer.to_vec2()),
            )));
        }
    }
}

/// A position unprojected from a copy of the world east or west, back into `[-180, 180]`.
fn wrap_lon(p: LatLon) -> LatLon {
    LatLon::new(p.lat_deg, (p.lon_deg + 180.0).rem_euclid(360.0) - 180.0)
}
