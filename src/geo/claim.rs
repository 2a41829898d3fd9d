//! Claimed vs predicted: how well the model's answer agrees with a location someone claims
//! for a photo (its EXIF GPS, or a place typed or clicked as "claimed").
//!
//! The journalist's verification view: the distance from the claim to the model's top-1
//! candidate, and how much of the model's probability (over the whole gallery, not only the
//! top-k) lies within [`CLAIM_NEAR_RADIUS_KM`] and [`CLAIM_REGION_RADIUS_KM`] of the claim.

use super::LatLon;

/// "Same place": within 25 km of the claim.
pub const CLAIM_NEAR_RADIUS_KM: f64 = 25.0;
/// "Same region": within 200 km of the claim.
pub const CLAIM_REGION_RADIUS_KM: f64 = 200.0;

/// Where a claimed location came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClaimSource {
    /// The photo's own EXIF GPS position.
    ExifGps,
    /// Typed or clicked by the user.
    User,
}

impl ClaimSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExifGps => "exif-gps",
            Self::User => "user",
        }
    }
}

/// The model's answer compared with a claimed location.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClaimCheck {
    pub claimed: LatLon,
    pub source: ClaimSource,
    /// Great-circle distance from the claim to the top-1 candidate, in kilometres.
    pub top1_distance_km: f64,
    /// Share (0..=1) of the model's probability on gallery points within 25 km of the claim.
    pub probability_within_25_km: f64,
    /// Share (0..=1) of the model's probability on gallery points within 200 km of the claim.
    pub probability_within_200_km: f64,
}

/// Why a claim could not be checked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClaimError {
    #[error("the claimed location is not a valid latitude/longitude: {0:?}")]
    InvalidClaim(LatLon),
    #[error("{probabilities} probabilities but {gallery} gallery points: they must match")]
    LengthMismatch {
        probabilities: usize,
        gallery: usize,
    },
}

/// Compares a claim with the model's answer.
///
/// `probabilities` is the full probability vector over the gallery (`Prediction::probabilities`)
/// and `gallery_coords_lat_lon_deg` the gallery's points in the same order, `[lat, lon]` degrees
/// (`Gallery::coords_lat_lon_deg`). Sums are in f64.
pub fn check_claim(
    claimed: LatLon,
    source: ClaimSource,
    top1: LatLon,
    probabilities: &[f32],
    gallery_coords_lat_lon_deg: &[[f32; 2]],
) -> Result<ClaimCheck, ClaimError> {
    if probabilities.len() != gallery_coords_lat_lon_deg.len() {
        return Err(ClaimError::LengthMismatch {
            probabilities: probabilities.len(),
            gallery: gallery_coords_lat_lon_deg.len(),
        });
    }
    check_claim_points(
        claimed,
        source,
        top1,
        probabilities
            .iter()
            .zip(gallery_coords_lat_lon_deg)
            .map(|(p, [lat, lon])| (LatLon::new(f64::from(*lat), f64::from(*lon)), *p)),
    )
}

/// [`check_claim`] over any weighted points, `(position, probability)`: for example the app's
/// heat points, which hold most but not all of the probability (the shares are then lower
/// bounds, short by at most the missing mass).
pub fn check_claim_points(
    claimed: LatLon,
    source: ClaimSource,
    top1: LatLon,
    points: impl IntoIterator<Item = (LatLon, f32)>,
) -> Result<ClaimCheck, ClaimError> {
    if !claimed.is_valid() {
        return Err(ClaimError::InvalidClaim(claimed));
    }
    let (mut near, mut region) = (0.0f64, 0.0f64);
    for (position, p) in points {
        let d_km = claimed.distance_km(&position);
        if d_km <= CLAIM_REGION_RADIUS_KM {
            region += f64::from(p);
            if d_km <= CLAIM_NEAR_RADIUS_KM {
                near += f64::from(p);
            }
        }
    }
    Ok(ClaimCheck {
        claimed,
        source,
        top1_distance_km: claimed.distance_km(&top1),
        probability_within_25_km: near.clamp(0.0, 1.0),
        probability_within_200_km: region.clamp(0.0, 1.0),
    })
}

/// `points` positions on the circle of `radius_km` (great-circle distance) around `center`,
/// starting due north and going clockwise, for drawing distance rings point by point on any
/// projection. Longitudes are unwrapped around the centre's (they may pass ±180), so a ring
/// across the antimeridian stays one closed line; a ring around a pole is not closed.
pub fn geodesic_circle(center: LatLon, radius_km: f64, points: usize) -> Vec<LatLon> {
    let angular = radius_km / super::EARTH_RADIUS_KM;
    let (lat1, lon1) = (center.lat_deg.to_radians(), center.lon_deg.to_radians());
    (0..points)
        .map(|i| {
            let bearing = std::f64::consts::TAU * i as f64 / points as f64;
            let lat2 = (lat1.sin() * angular.cos() + lat1.cos() * angular.sin() * bearing.cos())
                .clamp(-1.0, 1.0)
                .asin();
            let lon2 = lon1
                + (bearing.sin() * angular.sin() * lat1.cos())
                    .atan2(angular.cos() - lat1.sin() * lat2.sin());
            LatLon::new(lat2.to_degrees(), lon2.to_degrees())
        })
        .collect()
}

/// One plain sentence that reads a check's figures, without a verdict: the model's belief
/// near the claim is evidence about the model, not proof about the photo.
///
/// `"The model puts 0.3 % of its belief within 200 km of the claim (under 0.1 % within 25 km);
/// its best guess is 4,000 km away."` The claim is called "the EXIF position" when it is one.
pub fn describe_claim_check(check: &ClaimCheck) -> String {
    let what = match check.source {
        ClaimSource::ExifGps => "the EXIF position",
        ClaimSource::User => "the claim",
    };
    format!(
        "The model puts {} of its belief within {} km of {what} ({} within {} km); its best guess is {}.",
        format_share(check.probability_within_200_km),
        CLAIM_REGION_RADIUS_KM,
        format_share(check.probability_within_25_km),
        CLAIM_NEAR_RADIUS_KM,
        distance(check.top1_distance_km),
    )
}

/// `"0.3 %"`, `"under 0.1 %"`, `"42 %"`.
pub fn format_share(p: f64) -> String {
    let percent = 100.0 * p;
    if percent < 0.05 {
        "under 0.1 %".to_owned()
    } else if percent < 10.0 {
        format!("{percent:.1} %")
    } else {
        format!("{percent:.0} %")
    }
}

/// `"4,000 km away"`, `"12 km away"`, `"within 1 km of it"`.
fn distance(km: f64) -> String {
    if km < 1.0 {
        return "within 1 km of it".to_owned();
    }
    format!("{} km away", format_km(km))
}

/// A distance of 1 km or more as people write it: `"4,000"`, `"12"` (two significant figures
/// from 100 km: the model's top guess is no more exact than that).
pub fn format_km(km: f64) -> String {
    let whole = if km >= 100.0 {
        // Two significant figures: the model's top guess is no more exact than that.
        let magnitude = 10f64.powi(km.log10().floor() as i32 - 1);
        (km / magnitude).round() * magnitude
    } else {
        km.round()
    } as u64;
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    #[test]
    fn shares_within_radii() {
        // Claim at the equator/prime meridian; points at 0, ~11 km, ~111 km, ~1113 km east.
        let gallery = [[0.0f32, 0.0], [0.0, 0.1], [0.0, 1.0], [0.0, 10.0]];
        let probabilities = [0.1f32, 0.2, 0.3, 0.4];
        let check = check_claim(
            LatLon::new(0.0, 0.0),
            ClaimSource::User,
            LatLon::new(0.0, 10.0),
            &probabilities,
            &gallery,
        )
        .unwrap();
        assert_relative_eq!(check.probability_within_25_km, 0.3, epsilon = 1e-6);
        assert_relative_eq!(check.probability_within_200_km, 0.6, epsilon = 1e-6);
        assert_relative_eq!(check.top1_distance_km, 1111.95, epsilon = 0.1);
    }

    #[test]
    fn across_the_antimeridian() {
        let gallery = [[0.0f32, 179.9], [0.0, -179.9]];
        let check = check_claim(
            LatLon::new(0.0, 180.0),
            ClaimSource::ExifGps,
            LatLon::new(0.0, -179.9),
            &[0.5, 0.5],
            &gallery,
        )
        .unwrap();
        assert_relative_eq!(check.probability_within_25_km, 1.0, epsilon = 1e-6);
        assert!(check.top1_distance_km < 12.0);
    }

    #[test]
    fn rejects_bad_input() {
        let top1 = LatLon::new(0.0, 0.0);
        assert!(matches!(
            check_claim(LatLon::new(95.0, 0.0), ClaimSource::User, top1, &[], &[]),
            Err(ClaimError::InvalidClaim(_))
        ));
        assert!(matches!(
            check_claim(top1, ClaimSource::User, top1, &[1.0], &[]),
            Err(ClaimError::LengthMismatch { .. })
        ));
    }

    fn check(source: ClaimSource, km: f64, p25: f64, p200: f64) -> ClaimCheck {
        ClaimCheck {
            claimed: LatLon::new(0.0, 0.0),
            source,
            top1_distance_km: km,
            probability_within_25_km: p25,
            probability_within_200_km: p200,
        }
    }

    #[test]
    fn one_sentence_reads_the_figures_without_a_verdict() {
        assert_eq!(
            describe_claim_check(&check(ClaimSource::User, 4023.7, 0.0001, 0.003)),
            "The model puts 0.3 % of its belief within 200 km of the claim (under 0.1 % within \
             25 km); its best guess is 4,000 km away."
        );
        assert_eq!(
            describe_claim_check(&check(ClaimSource::ExifGps, 12.4, 0.42, 0.875)),
            "The model puts 88 % of its belief within 200 km of the EXIF position (42 % within \
             25 km); its best guess is 12 km away."
        );
        let close = describe_claim_check(&check(ClaimSource::User, 0.2, 1.0, 1.0));
        assert!(close.ends_with("(100 % within 25 km); its best guess is within 1 km of it."));
        assert!(
            describe_claim_check(&check(ClaimSource::User, 12_345.0, 0.0, 0.0))
                .contains("12,000 km away")
        );
        for text in [
            close,
            describe_claim_check(&check(ClaimSource::User, 9000.0, 0.0, 0.0)),
        ] {
            for verdict in ["true", "false", "fake", "genuine", "confirm", "prove"] {
                assert!(!text.to_lowercase().contains(verdict), "{text}");
            }
        }
    }

    #[test]
    fn geodesic_circles_keep_their_radius_even_across_the_antimeridian() {
        for center in [
            LatLon::new(21.98, -159.37),
            LatLon::new(-65.0, 10.0),
            LatLon::new(0.0, 179.9),
        ] {
            for radius_km in [CLAIM_NEAR_RADIUS_KM, CLAIM_REGION_RADIUS_KM] {
                let ring = geodesic_circle(center, radius_km, 96);
                assert_eq!(ring.len(), 96);
                for p in &ring {
                    assert_relative_eq!(center.distance_km(p), radius_km, epsilon = 1e-6);
                    // Unwrapped around the centre: no jump of 360°.
                    assert!((p.lon_deg - center.lon_deg).abs() < 90.0, "{p:?}");
                }
                // The first point is due north.
                assert_relative_eq!(ring[0].lon_deg, center.lon_deg, epsilon = 1e-9);
                assert!(ring[0].lat_deg > center.lat_deg);
            }
        }
        // Near 180°E, the eastern half of the ring passes 180.
        let ring = geodesic_circle(LatLon::new(0.0, 179.9), 200.0, 8);
        assert!(ring[2].lon_deg > 180.0);
    }
}
