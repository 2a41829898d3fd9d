//! Pure geographic logic: coordinates, distances, the Equal Earth projection, ranking.
//!
//! Nothing here knows about candle, egui or files. GeoCLIP's order is `[lat, lon]` in degrees;
//! [`LatLon`] names both fields so the order can't be mixed up.

mod claim;
mod claim_parse;
mod countries;
mod equal_earth;
pub mod group;
pub mod heat_grid;
pub mod heatmap;
pub mod place_search;
mod places;
mod ranking;
pub mod refine;
pub mod region;
pub mod trip;

pub use equal_earth::{
    EQUAL_EARTH_A1, EQUAL_EARTH_A2, EQUAL_EARTH_A3, EQUAL_EARTH_A4, EQUAL_EARTH_SF,
    equal_earth_projection_f32,
};
pub use ranking::{Ranked, softmax, top_k};
pub use region::{
    EmptyRegion, GeoBox, Region, RegionParseError, Renormalised, parse_region, renormalise,
};

pub use claim::{
    CLAIM_NEAR_RADIUS_KM, CLAIM_REGION_RADIUS_KM, ClaimCheck, ClaimError, ClaimSource, check_claim,
    check_claim_points, describe_claim_check, format_km, format_share, geodesic_circle,
};
pub use claim_parse::{ClaimParseError, ParsedClaim, parse_claim, parse_coordinates};
pub use countries::country_name;
pub use places::{PLACES_ATTRIBUTION, Place, find_places, nearest_place, warm_up_places};

/// Mean Earth radius (IUGG), in kilometres.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// A point on Earth, latitude first, in degrees (WGS 84).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LatLon {
    pub lat_deg: f64,
    pub lon_deg: f64,
}

impl LatLon {
    pub const fn new(lat_deg: f64, lon_deg: f64) -> Self {
        Self { lat_deg, lon_deg }
    }

    /// Whether latitude is within [-90, 90] and longitude within [-180, 180], both finite.
    pub fn is_valid(&self) -> bool {
        self.lat_deg.is_finite()
            && self.lon_deg.is_finite()
            && (-90.0..=90.0).contains(&self.lat_deg)
            && (-180.0..=180.0).contains(&self.lon_deg)
    }

    /// Great-circle distance (haversine) in kilometres.
    pub fn distance_km(&self, other: &LatLon) -> f64 {
        let (lat1, lat2) = (self.lat_deg.to_radians(), other.lat_deg.to_radians());
        let d_lat = lat2 - lat1;
        let d_lon = (other.lon_deg - self.lon_deg).to_radians();
        let a = (d_lat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (d_lon / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
    }
}

impl std::fmt::Display for LatLon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ns = if self.lat_deg >= 0.0 { 'N' } else { 'S' };
        let ew = if self.lon_deg >= 0.0 { 'E' } else { 'W' };
        write!(
            f,
            "{:.5}°{ns} {:.5}°{ew}",
            self.lat_deg.abs(),
            self.lon_deg.abs()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    #[test]
    fn distance_paris_new_york() {
        let paris = LatLon::new(48.8566, 2.3522);
        let new_york = LatLon::new(40.7128, -74.0060);
        // Reference: 5837 km great-circle distance (haversine, mean radius).
        assert_relative_eq!(paris.distance_km(&new_york), 5837.2, epsilon = 1.0);
        assert_relative_eq!(paris.distance_km(&paris), 0.0);
    }

    #[test]
    fn distance_across_antimeridian_and_poles() {
        let a = LatLon::new(0.0, 179.5);
        let b = LatLon::new(0.0, -179.5);
        assert_relative_eq!(a.distance_km(&b), 111.19, epsilon = 0.05);
        let north = LatLon::new(90.0, 0.0);
        let south = LatLon::new(-90.0, 123.0);
        assert_relative_eq!(
            north.distance_km(&south),
            std::f64::consts::PI * EARTH_RADIUS_KM,
            epsilon = 1e-6
        );
    }

    #[test]
    fn validity() {
        assert!(LatLon::new(90.0, -180.0).is_valid());
        assert!(!LatLon::new(90.1, 0.0).is_valid());
        assert!(!LatLon::new(0.0, f64::NAN).is_valid());
    }

    #[test]
    fn display_names_hemispheres() {
        assert_eq!(
            LatLon::new(-33.5, 151.25).to_string(),
            "33.50000°S 151.25000°E"
        );
    }
}
