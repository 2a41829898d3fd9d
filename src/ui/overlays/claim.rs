//! The selected photo's claims on the map, as one walkers [`Plugin`]: a marker at each claimed
//! location (the typed claim; the EXIF position has its own marker in [`super::markers`]) and
//! its distance rings at 25 km and 200 km, the radii of the claim check. The rings are
//! geodesic circles projected point by point ([`geodesic_circle`]), not screen circles, so they
//! are right on Web Mercator at every latitude.

use egui::{Align2, Color32, FontId, Pos2, Response, Shape, Stroke, Ui, Vec2};
use walkers::{MapMemory, Plugin, Projector};

use crate::app::map::to_position;
use crate::geo::{
    CLAIM_NEAR_RADIUS_KM, CLAIM_REGION_RADIUS_KM, ClaimSource, LatLon, geodesic_circle,
};
use crate::ui::overlays::markers::EXIF_COLOUR;

/// The typed claim: magenta, apart from EXIF (blue), candidates (orange) and accepted (green).
pub const CLAIM_COLOUR: Color32 = Color32::from_rgb(200, 40, 160);
/// Points per ring.
const RING_POINTS: usize = 128;
/// Rings smaller than this on screen (pixels across) are not drawn.
const MIN_RING_PX: f32 = 6.0;

/// Draws the claims of the selected photo (`App::claims_of`).
pub struct ClaimPlugin<'a> {
    pub claims: &'a [(LatLon, ClaimSource)],
}

impl Plugin for ClaimPlugin<'_> {
    fn run(
        self: Box<Self>,
        ui: &mut Ui,
        response: &Response,
        projector: &Projector,
        _memory: &MapMemory,
    ) {
        let painter = ui.painter().with_clip_rect(response.rect);
        let screen = |p: LatLon| projector.project(to_position(p)).to_pos2();
        for &(claimed, source) in self.claims {
            let colour = match source {
                ClaimSource::ExifGps => EXIF_COLOUR,
                ClaimSource::User => CLAIM_COLOUR,
            };
            for (radius_km, dashed) in [
                (CLAIM_NEAR_RADIUS_KM, false),
                (CLAIM_REGION_RADIUS_KM, true),
            ] {
                let ring: Vec<Pos2> = geodesic_circle(claimed, radius_km, RING_POINTS)
                    .into_iter()
                    .map(screen)
                    .collect();
                let bounds = egui::Rect::from_points(&ring);
                if bounds.width().max(bounds.height()) < MIN_RING_PX
                    || !bounds.intersects(response.rect)
                {
                    continue;
                }
                let stroke = Stroke::new(1.5, colour);
                let mut closed = ring.clone();
                closed.push(ring[0]);
                if dashed {
                    painter.extend(Shape::dashed_line(&closed, stroke, 6.0, 4.0));
                } else {
                    painter.add(Shape::line(closed, stroke));
                }
                // The radius at the ring's top (due north), when there is room for it.
                if bounds.height() > 40.0 {
                    painter.text(
                        ring[0] + Vec2::new(0.0, -2.0),
                        Align2::CENTER_BOTTOM,
                        format!("{radius_km:.0} km"),
                        FontId::proportional(11.0),
                        colour,
                    );
                }
            }
            if source == ClaimSource::User {
                let pos = screen(claimed);
                let r = 7.0;
                let diamond = vec![
                    pos + Vec2::new(0.0, -r),
                    pos + Vec2::new(r, 0.0),
                    pos + Vec2::new(0.0, r),
                    pos + Vec2::new(-r, 0.0),
                ];
                painter.add(Shape::convex_polygon(
                    diamond,
                    CLAIM_COLOUR,
                    Stroke::new(1.5, Color32::WHITE),
                ));
                painter.text(
                    pos + Vec2::new(9.0, -9.0),
                    Align2::LEFT_BOTTOM,
                    "Claim",
                    FontId::proportional(12.0),
                    CLAIM_COLOUR,
                );
            }
        }
    }
}
