//! Neighbouring photos as fixes (issue 12, item 2): photos of the same set with their own EXIF
//! GPS and a capture time place the ones without, with the same interpolation and limits as a
//! track (exiftool's semantics, [`super::correlate`]). The result's origin names the nearer
//! neighbour in time.

use crate::domain::Origin;
use crate::geo::LatLon;

use super::{Fix, Limits, Placement, TrackSet, correlate};

/// A photo with its own GPS fix and a capture time.
#[derive(Clone, Debug, PartialEq)]
pub struct Neighbour {
    /// The file name (no folder), as the origin shows it.
    pub name: String,
    pub utc_secs: f64,
    pub position: LatLon,
}

/// The neighbours as one track: sorted by time; of photos taken in the same second (and
/// fraction) the later in `photos` wins, as a track's later fix does. No altitude is used.
pub fn neighbour_set(photos: &[Neighbour]) -> TrackSet {
    let mut fixes: Vec<Fix> = photos
        .iter()
        .enumerate()
        .filter(|(_, p)| p.utc_secs.is_finite())
        .map(|(i, p)| Fix {
            time_secs: p.utc_secs,
            position: p.position,
            altitude_m: None,
            first_of_file: false,
            source: u32::try_from(i).unwrap_or(u32::MAX),
        })
        .collect();
    fixes.sort_by(|a, b| {
        a.time_secs
            .total_cmp(&b.time_secs)
            .then(a.source.cmp(&b.source))
    });
    let mut unique: Vec<Fix> = Vec::with_capacity(fixes.len());
    for fix in fixes {
        match unique.last_mut() {
            Some(last) if last.time_secs == fix.time_secs => *last = fix,
            _ => unique.push(fix),
        }
    }
    TrackSet {
        fixes: unique,
        sources: photos.iter().map(|p| p.name.clone()).collect(),
        has_altitude: false,
    }
}

/// Places a photo taken at `utc_secs` by its neighbours: the placement, and when matched the
/// origin `Neighbour { photo, seconds }` with the nearer neighbour and how many seconds the
/// photo was taken after it (negative: before).
pub fn place_by_neighbours(
    set: &TrackSet,
    utc_secs: f64,
    limits: Limits,
) -> (Placement, Option<Origin>) {
    let placement = correlate(set, utc_secs, 0.0, limits);
    let origin = match &placement {
        Placement::Matched { nearest_fix, .. } => {
            set.fixes.get(*nearest_fix).map(|fix| Origin::Neighbour {
                photo: set.source_name(fix).to_owned(),
                seconds: utc_secs - fix.time_secs,
            })
        }
        Placement::Refused(_) => None,
    };
    (placement, origin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::Refusal;
    use approx::assert_abs_diff_eq;

    fn n(name: &str, t: f64, lat: f64, lon: f64) -> Neighbour {
        Neighbour {
            name: name.into(),
            utc_secs: t,
            position: LatLon::new(lat, lon),
        }
    }

    #[test]
    fn interpolates_between_neighbours_and_names_the_nearer() {
        let set = neighbour_set(&[n("b.jpg", 100.0, 2.0, 2.0), n("a.jpg", 0.0, 0.0, 0.0)]);
        let (placement, origin) = place_by_neighbours(&set, 70.0, Limits::default());
        let Placement::Matched { position, .. } = placement else {
            panic!("{placement:?}")
        };
        assert_abs_diff_eq!(position.lat_deg, 1.4, epsilon = 1e-12);
        assert_eq!(
            origin,
            Some(Origin::Neighbour {
                photo: "b.jpg".into(),
                seconds: -30.0
            })
        );
        let (_, origin) = place_by_neighbours(&set, 20.0, Limits::default());
        assert_eq!(
            origin,
            Some(Origin::Neighbour {
                photo: "a.jpg".into(),
                seconds: 20.0
            })
        );
    }

    #[test]
    fn same_limits_as_a_track() {
        let set = neighbour_set(&[n("a.jpg", 0.0, 0.0, 0.0), n("b.jpg", 10_000.0, 2.0, 2.0)]);
        let (placement, origin) = place_by_neighbours(&set, 5_000.0, Limits::default());
        assert_eq!(
            placement,
            Placement::Refused(Refusal::InGap { gap_secs: 10_000.0 })
        );
        assert_eq!(origin, None);
        let (placement, _) = place_by_neighbours(&neighbour_set(&[]), 5.0, Limits::default());
        assert_eq!(placement, Placement::Refused(Refusal::NoFixes));
    }
}
