//! "Locate as trip" in the app (issue 12): the selected photos with results and capture times
//! as one trip ([`crate::geo::trip`]: each photo's stored candidates combined with its
//! neighbours' in capture time under a travel model), the path the map draws, and the
//! decisions accepting it makes. Pure: no egui.

use crate::domain::{Decision, Origin};
use crate::geo::LatLon;
use crate::geo::trip::{TravelModel, TripError, TripPhoto, solve};
use crate::track::CaptureTime;

/// The default top speed of "Locate as trip", km/h (a car on main roads).
pub const DEFAULT_MAX_SPEED_KMH: f64 = 120.0;

/// A photo as the trip needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct TripInput {
    /// The photo's index in the collection.
    pub index: usize,
    pub name: String,
    /// EXIF DateTimeOriginal (+ offset) as the library reads it.
    pub taken_at: Option<String>,
    pub taken_subsec: Option<String>,
    /// The stored candidates: position and probability, best first.
    pub candidates: Vec<(LatLon, f32)>,
}

/// One photo's point on the solved trip.
#[derive(Clone, Debug, PartialEq)]
pub struct TripPoint {
    pub index: usize,
    pub name: String,
    /// The point on the most probable path.
    pub position: LatLon,
    /// Its posterior probability.
    pub posterior: f32,
    /// The photo's own best candidate (what it says alone).
    pub single_photo: LatLon,
}

/// A solved trip as the app shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct TripView {
    pub max_speed_kmh: f64,
    /// In capture-time order: the path the map draws.
    pub points: Vec<TripPoint>,
    /// Consecutive pairs of the path that break the travel bound.
    pub breaks: usize,
    /// Photos left out, with why (no result, no capture time).
    pub skipped: Vec<(String, &'static str)>,
}

/// Solves the trip through `photos` (at least two with candidates and capture times).
/// One clock for the whole trip, as `locate --trip` reads it: UTC when every photo has an
/// OffsetTimeOriginal, else the camera's own clock for all (mixing the two would put photos
/// hours apart that were taken minutes apart).
pub fn locate_trip(photos: &[TripInput], max_speed_kmh: f64) -> Result<TripView, String> {
    let captured: Vec<Option<CaptureTime>> = photos
        .iter()
        .map(|p| {
            p.taken_at
                .as_deref()
                .and_then(|t| CaptureTime::from_exif_text(t, p.taken_subsec.as_deref()))
        })
        .collect();
    let utc = captured
        .iter()
        .flatten()
        .all(|c| c.offset_minutes.is_some());
    let mut used = Vec::new();
    let mut skipped = Vec::new();
    for (photo, captured) in photos.iter().zip(&captured) {
        let time = captured.as_ref().and_then(|c| {
            if utc {
                c.utc_secs(None)
            } else {
                Some(c.local_secs + c.subsec)
            }
        });
        match (time, photo.candidates.is_empty()) {
            (_, true) => skipped.push((photo.name.clone(), "no result")),
            (None, false) => skipped.push((photo.name.clone(), "no capture time")),
            (Some(time), false) => used.push((photo, time)),
        }
    }
    if used.len() < 2 {
        return Err(format!(
            "a trip needs at least two selected photos with results and capture times ({} here)",
            used.len()
        ));
    }
    let trip_photos: Vec<TripPhoto> = used
        .iter()
        .map(|(photo, time)| TripPhoto::from_probabilities(*time, photo.candidates.iter().copied()))
        .collect();
    let trip = solve(&trip_photos, &TravelModel::new(max_speed_kmh))
        .map_err(|e: TripError| format!("the trip could not be solved: {e}"))?;
    let points = trip
        .order
        .iter()
        .map(|&i| {
            let (photo, _) = used[i];
            TripPoint {
                index: photo.index,
                name: photo.name.clone(),
                position: photo.candidates[trip.path[i]].0,
                posterior: trip.path_posterior(i),
                single_photo: photo.candidates[0].0,
            }
        })
        .collect();
    Ok(TripView {
        max_speed_kmh,
        points,
        breaks: trip.breaks,
        skipped,
    })
}

impl TripView {
    /// The decisions accepting the trip makes: each photo at its point on the path, with
    /// [`Origin::Trip`].
    pub fn decisions(&self) -> Vec<(usize, Decision)> {
        self.points
            .iter()
            .map(|p| {
                (
                    p.index,
                    Decision::Placed {
                        position: p.position,
                        origin: Origin::Trip {
                            max_speed_kmh: self.max_speed_kmh,
                            single_photo: p.single_photo,
                        },
                    },
                )
            })
            .collect()
    }

    /// How many photos the path moved away from their own best candidate.
    pub fn moved(&self) -> usize {
        self.points
            .iter()
            .filter(|p| p.position != p.single_photo)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(index: usize, taken_at: Option<&str>, candidates: &[(f64, f64, f32)]) -> TripInput {
        TripInput {
            index,
            name: format!("p{index}.jpg"),
            taken_at: taken_at.map(str::to_owned),
            taken_subsec: None,
            candidates: candidates
                .iter()
                .map(|&(lat, lon, p)| (LatLon::new(lat, lon), p))
                .collect(),
        }
    }

    #[test]
    fn one_clock_for_the_whole_trip() {
        // 10:00 at +02:00 and 09:30 with no offset: on the camera's clock the second came
        // first (read as UTC, it would come 1.5 h after the first).
        let photos = [
            input(1, Some("2024-05-01T10:00:00+02:00"), &[(45.76, 4.84, 0.9)]),
            input(2, Some("2024-05-01T09:30:00"), &[(45.75, 4.85, 0.9)]),
        ];
        let view = locate_trip(&photos, DEFAULT_MAX_SPEED_KMH).unwrap();
        let order: Vec<usize> = view.points.iter().map(|p| p.index).collect();
        assert_eq!(order, [2, 1]);
        // With an offset on both, UTC decides: 10:00+02:00 is before 09:30+00:00.
        let photos = [
            input(1, Some("2024-05-01T10:00:00+02:00"), &[(45.76, 4.84, 0.9)]),
            input(2, Some("2024-05-01T09:30:00+00:00"), &[(45.75, 4.85, 0.9)]),
        ];
        let view = locate_trip(&photos, DEFAULT_MAX_SPEED_KMH).unwrap();
        let order: Vec<usize> = view.points.iter().map(|p| p.index).collect();
        assert_eq!(order, [1, 2]);
    }

    #[test]
    fn a_photo_whose_best_guess_is_far_off_is_pulled_onto_the_path() {
        // Three photos ten minutes apart around Lyon; the middle one's best guess is in
        // Australia, its second candidate in Lyon.
        let photos = [
            input(7, Some("2024-05-01T10:20:00"), &[(45.76, 4.84, 0.9)]),
            input(
                2,
                Some("2024-05-01T10:10:00"),
                &[(-33.87, 151.21, 0.6), (45.75, 4.85, 0.3)],
            ),
            input(4, Some("2024-05-01T10:00:00"), &[(45.74, 4.83, 0.8)]),
            input(9, None, &[(0.0, 0.0, 1.0)]),
            input(11, Some("2024-05-01T10:30:00"), &[]),
        ];
        let view = locate_trip(&photos, DEFAULT_MAX_SPEED_KMH).unwrap();
        let order: Vec<usize> = view.points.iter().map(|p| p.index).collect();
        assert_eq!(order, [4, 2, 7], "capture-time order");
        assert_eq!(view.points[1].position, LatLon::new(45.75, 4.85));
        assert_eq!(view.points[1].single_photo, LatLon::new(-33.87, 151.21));
        assert_eq!(view.moved(), 1);
        assert_eq!(view.breaks, 0);
        assert_eq!(
            view.skipped,
            [
                ("p9.jpg".to_owned(), "no capture time"),
                ("p11.jpg".to_owned(), "no result")
            ]
        );
        let decisions = view.decisions();
        assert_eq!(decisions.len(), 3);
        assert_eq!(
            decisions[1],
            (
                2,
                Decision::Placed {
                    position: LatLon::new(45.75, 4.85),
                    origin: Origin::Trip {
                        max_speed_kmh: DEFAULT_MAX_SPEED_KMH,
                        single_photo: LatLon::new(-33.87, 151.21),
                    },
                }
            )
        );
    }

    #[test]
    fn fewer_than_two_usable_photos_is_an_error() {
        let photos = [
            input(0, Some("2024-05-01T10:00:00"), &[(1.0, 2.0, 1.0)]),
            input(1, None, &[(1.0, 2.0, 1.0)]),
        ];
        assert!(
            locate_trip(&photos, 100.0)
                .unwrap_err()
                .contains("at least two")
        );
    }
}
