//! Markers on the map, as one walkers [`Plugin`]: EXIF GPS positions of the photos, the
//! selected photo's ranked candidates (numbered; hover for details, click to centre), and its
//! accepted location (a green pin, distinct from both). In "place by hand" mode a click on the
//! map places the photo there; the accepted pin can be dragged.
//!
//! The plugin writes what it drew and what the user did into a [`MapOutput`], which the app
//! turns into commands after the frame (and which tests read).
//!
//! Markers that would hide each other are grouped: EXIF positions closer than
//! [`EXIF_CLUSTER_PX`] become one disc with a count, candidates closer than
//! [`CANDIDATE_CLUSTER_PX`] fan out around their spot (a thin line to where each really is).
//! The world repeats east and west, so each marker is drawn on the copy nearest the view's
//! centre. Photos dragged from the browser and dropped on the map are reported in
//! [`MapOutput::dropped`].

use egui::{Align2, Color32, FontId, Pos2, Response, Sense, Stroke, Ui, Vec2};
use walkers::{MapMemory, Plugin, Projector};

use crate::app::map::cluster::{cluster_points, fan_out};
use crate::app::map::{DrawnCandidate, MapOutput, from_position, to_position};
use crate::domain::Candidate;
use crate::geo::LatLon;

pub const EXIF_COLOUR: Color32 = Color32::from_rgb(30, 110, 230);
pub const CANDIDATE_COLOUR: Color32 = Color32::from_rgb(245, 130, 20);
pub const ACCEPTED_COLOUR: Color32 = Color32::from_rgb(20, 160, 70);

/// EXIF markers closer than this (points) are drawn as one with a count.
pub const EXIF_CLUSTER_PX: f32 = 14.0;
/// Candidates closer than this (points) fan out.
pub const CANDIDATE_CLUSTER_PX: f32 = 20.0;
/// Refined candidate points (the location encoder's best point near a gallery point).
const REFINED_COLOUR: Color32 = Color32::from_rgb(40, 200, 220);

/// How far apart fanned-out candidates sit (points).
const FAN_SPACING_PX: f32 = 24.0;

/// What the browser puts in egui's drag-and-drop while photos are dragged: their indices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DraggedPhotos(pub Vec<usize>);

/// Everything the plugin draws for one frame.
pub struct MarkersPlugin<'a> {
    /// EXIF GPS positions of the photos (all of them, or none when hidden).
    pub exif_positions: &'a [LatLon],
    /// The selected photo's EXIF position.
    pub selected_exif: Option<LatLon>,
    pub candidates: &'a [Candidate],
    pub accepted: Option<LatLon>,
    pub place_mode: bool,
    pub output: &'a mut MapOutput,
}

impl Plugin for MarkersPlugin<'_> {
    fn run(
        self: Box<Self>,
        ui: &mut Ui,
        response: &Response,
        projector: &Projector,
        _memory: &MapMemory,
    ) {
        let this = *self;
        let output = this.output;
        *output = MapOutput::default();
        let painter = ui.painter().with_clip_rect(response.rect);
        let rect = response.rect;
        // One world's width on screen, to draw each marker on the copy nearest the centre.
        let world_px = projector.project(walkers::lat_lon(0.0, 180.0)).x
            - projector.project(walkers::lat_lon(0.0, -180.0)).x;
        let screen = |p: LatLon| {
            let pos = projector.project(to_position(p)).to_pos2();
            if world_px <= 0.0 {
                return pos;
            }
            let copies = ((rect.center().x - pos.x) / world_px).round();
            pos + Vec2::new(copies * world_px, 0.0)
        };
        let visible = |pos: Pos2| rect.expand(20.0).contains(pos);

        let exif_screen: Vec<Pos2> = this
            .exif_positions
            .iter()
            .map(|&p| screen(p))
            .filter(|&pos| visible(pos))
            .collect();
        output.exif_markers = this.exif_positions.len();
        for cluster in cluster_points(&exif_screen, EXIF_CLUSTER_PX) {
            let count = cluster.members.len();
            if count == 1 {
                painter.circle(
                    cluster.centre,
                    3.5,
                    EXIF_COLOUR,
                    Stroke::new(1.0, Color32::WHITE),
                );
            } else {
                let radius = 7.0 + (count as f32).log10() * 3.0;
                painter.circle(
                    cluster.centre,
                    radius,
                    EXIF_COLOUR,
                    Stroke::new(1.5, Color32::WHITE),
                );
                painter.text(
                    cluster.centre,
                    Align2::CENTER_CENTER,
                    count.to_string(),
                    FontId::proportional(10.0),
                    Color32::WHITE,
                );
                output.exif_clusters.push(count);
            }
        }
        if let Some(p) = this.selected_exif {
            let pos = screen(p);
            painter.circle(pos, 7.0, EXIF_COLOUR, Stroke::new(2.0, Color32::WHITE));
            painter.text(
                pos + Vec2::new(9.0, -9.0),
                Align2::LEFT_BOTTOM,
                "EXIF",
                FontId::proportional(12.0),
                EXIF_COLOUR,
            );
        }

        // Candidates at one spot fan out around it.
        let true_screen: Vec<Pos2> = this.candidates.iter().map(|c| screen(c.position)).collect();
        let mut drawn_at = true_screen.clone();
        for cluster in cluster_points(&true_screen, CANDIDATE_CLUSTER_PX) {
            if cluster.members.len() > 1 {
                let fanned = fan_out(cluster.centre, cluster.members.len(), FAN_SPACING_PX);
                for (&i, at) in cluster.members.iter().zip(fanned) {
                    drawn_at[i] = at;
                    painter.line_segment(
                        [true_screen[i], at],
                        Stroke::new(1.0, CANDIDATE_COLOUR.gamma_multiply(0.8)),
                    );
                    painter.circle_filled(true_screen[i], 2.5, CANDIDATE_COLOUR);
                }
            }
        }
        // Refined points (issue 11): a small white-ringed dot joined to its gallery marker by a
        // thin line, under the numbered gallery markers.
        for (candidate, &from) in this.candidates.iter().zip(&drawn_at).rev() {
            let Some(refined) = &candidate.refined else {
                continue;
            };
            let at = screen(refined.position);
            painter.line_segment(
                [from, at],
                Stroke::new(1.5, REFINED_COLOUR.gamma_multiply(0.9)),
            );
            painter.circle(at, 4.5, REFINED_COLOUR, Stroke::new(1.5, Color32::WHITE));
            ui.interact(
                egui::Rect::from_center_size(at, Vec2::splat(10.0)),
                ui.scope_id().with(("refined", candidate.rank)),
                Sense::hover(),
            )
            .on_hover_text(format!(
                "#{} refined · similarity {:.3}\n{}\n{:.2} km from the gallery point",
                candidate.rank,
                refined.similarity,
                refined.position,
                refined.position.distance_km(&candidate.position)
            ));
        }
        // Worst rank first, so the best is drawn on top.
        for (candidate, &pos) in this.candidates.iter().zip(&drawn_at).rev() {
            let radius = if candidate.rank == 1 { 11.0 } else { 9.0 };
            painter.circle(
                pos,
                radius,
                CANDIDATE_COLOUR,
                Stroke::new(1.5, Color32::WHITE),
            );
            painter.text(
                pos,
                Align2::CENTER_CENTER,
                candidate.rank.to_string(),
                FontId::proportional(11.0),
                Color32::BLACK,
            );
            let distance_to_exif_km = this
                .selected_exif
                .map(|e| e.distance_km(&candidate.position));
            let hit = ui.interact(
                egui::Rect::from_center_size(pos, Vec2::splat(radius * 2.0)),
                ui.scope_id().with(("candidate", candidate.rank)),
                Sense::click(),
            );
            if hit.hovered() {
                output.hovered_rank = Some(candidate.rank);
            }
            if hit.clicked() {
                output.clicked_rank = Some(candidate.rank);
            }
            let mut details = format!(
                "#{} · {:.1}%\n{}",
                candidate.rank,
                candidate.probability * 100.0,
                candidate.position
            );
            if let Some(d) = distance_to_exif_km {
                details.push_str(&format!("\n{d:.0} km from the EXIF position"));
            }
            hit.on_hover_text(details);
            output.candidates.push(DrawnCandidate {
                rank: candidate.rank,
                position: candidate.position,
                probability: candidate.probability,
                distance_to_exif_km,
                screen: pos,
            });
        }
        output.candidates.sort_by_key(|c| c.rank);

        if let Some(p) = this.accepted {
            let pos = screen(p);
            let pin = ui.interact(
                egui::Rect::from_center_size(pos - Vec2::new(0.0, 10.0), Vec2::splat(24.0)),
                ui.scope_id().with("accepted"),
                Sense::drag(),
            );
            let drawn_at = match pin.interact_pointer_pos() {
                Some(pointer) if pin.dragged() => pointer + Vec2::new(0.0, 10.0),
                _ => pos,
            };
            if pin.drag_stopped()
                && let Some(pointer) = pin.interact_pointer_pos()
            {
                let dropped = pointer + Vec2::new(0.0, 10.0);
                output.placed = Some(wrap_lon(from_position(
                    projector.unproject(dropped.to_vec2()),
                )));
            }
            draw_pin(&painter, drawn_at);
            output.accepted_screen = Some(drawn_at);
            pin.on_hover_text(format!("Accepted: {p}\nDrag to move"));
        }

        if let Some(photos) = response.dnd_release_payload::<DraggedPhotos>()
            && let Some(pointer) = ui.ctx().pointer_interact_pos()
        {
            output.dropped = Some((
                photos.0.clone(),
                wrap_lon(from_position(projector.unproject(pointer.to_vec2()))),
            ));
        }
        if response.dnd_hover_payload::<DraggedPhotos>().is_some() {
            painter.rect_stroke(
                rect.shrink(2.0),
                0.0,
                Stroke::new(3.0, ACCEPTED_COLOUR),
                egui::StrokeKind::Inside,
            );
        }

        if this.place_mode {
            ui.ctx().set_cursor_icon(egui::CursorIcon::Crosshair);
            if response.clicked()
                && output.clicked_rank.is_none()
                && let Some(pointer) = response.interact_pointer_pos()
            {
                output.placed = Some(wrap_lon(from_position(
                    projector.unproject(pointer.to_vec2()),
                )));
            }
        }
    }
}

/// A position unprojected from a copy of the world east or west, back into `[-180, 180]`.
fn wrap_lon(p: LatLon) -> LatLon {
    LatLon::new(p.lat_deg, (p.lon_deg + 180.0).rem_euclid(360.0) - 180.0)
}

/// A map pin whose tip is at `tip`.
fn draw_pin(painter: &egui::Painter, tip: Pos2) {
    let head = tip - Vec2::new(0.0, 16.0);
    painter.add(egui::Shape::convex_polygon(
        vec![tip, head + Vec2::new(6.0, 3.0), head + Vec2::new(-6.0, 3.0)],
        ACCEPTED_COLOUR,
        Stroke::NONE,
    ));
    painter.circle(head, 8.0, ACCEPTED_COLOUR, Stroke::new(2.0, Color32::WHITE));
    painter.circle_filled(head, 3.0, Color32::WHITE);
}
