//! Offline geocoding: the nearest populated place, its region and country, for any
//! [`LatLon`] ([`nearest_place`]), and the places of a name ([`find_places`]).
//!
//! The data is GeoNames' `cities1000` (every place with at least 1000 people, about 145,000
//! places; CC BY 4.0, <https://www.geonames.org>): reverse look-ups use the copy embedded in the
//! `reverse_geocoder` crate, look-ups by name the same places from `assets/places.zip`
//! ([`PlaceIndex::embedded`], the table the map's search box reads too). Nothing is read from
//! disk or the network. Both indexes are built once, on first use, and shared.

use std::sync::OnceLock;

use super::LatLon;
use super::countries::country_name;
use super::place_search::{PlaceEntry, PlaceIndex};

/// The attribution GeoNames' licence (CC BY 4.0) asks for; exports and about boxes show it.
pub const PLACES_ATTRIBUTION: &str = "Place names: GeoNames (geonames.org), CC BY 4.0";

/// The populated place nearest to a position.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Place {
    /// The place's own name (a city, town or village).
    pub name: String,
    /// First-level administrative region (a state, province, region); may be empty.
    pub region: String,
    /// Second-level administrative area (a county, district); may be empty.
    pub district: String,
    /// ISO 3166-1 alpha-2 code (`US`), as GeoNames gives it.
    pub country_code: String,
    /// The country's name in English (`United States`); the code when unknown.
    pub country: String,
    /// Where GeoNames puts the place.
    pub position: LatLon,
    /// Great-circle distance from the queried position to the place, in kilometres.
    pub distance_km: f64,
}

impl Place {
    /// `"Lihue, Hawaii, United States"`: name, region and country, empty parts left out.
    pub fn label(&self) -> String {
        [&self.name, &self.region, &self.country]
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The label with how far the position is from the place (`"12 km from Lihue, Hawaii, United States"`);
    /// just the label when closer than 1 km.
    pub fn describe(&self) -> String {
        if self.distance_km < 1.0 {
            self.label()
        } else {
            format!("{:.0} km from {}", self.distance_km, self.label())
        }
    }
}

fn geocoder() -> &'static reverse_geocoder::ReverseGeocoder {
    static GEOCODER: OnceLock<reverse_geocoder::ReverseGeocoder> = OnceLock::new();
    GEOCODER.get_or_init(reverse_geocoder::ReverseGeocoder::new)
}

/// Builds both indexes now (they are otherwise built on the first lookup), e.g. on a worker
/// thread.
pub fn warm_up_places() {
    let _ = geocoder();
    let _ = PlaceIndex::embedded();
}

/// The nearest populated place to `position`, or `None` for an invalid position.
///
/// Nearest is measured on the unit sphere (chord distance, which orders like great-circle
/// distance), so it is correct across the antimeridian and near the poles.
pub fn nearest_place(position: LatLon) -> Option<Place> {
    if !position.is_valid() {
        return None;
    }
    let found = geocoder().search((position.lat_deg, position.lon_deg));
    let record = found.record;
    let place_position = LatLon::new(record.lat, record.lon);
    Some(Place {
        name: record.name.clone(),
        region: record.admin1.clone(),
        district: record.admin2.clone(),
        country_code: record.cc.clone(),
        country: country_name(&record.cc)
            .map(str::to_owned)
            .unwrap_or_else(|| record.cc.clone()),
        position: place_position,
        distance_km: position.distance_km(&place_position),
    })
}

/// The places called `name` (case-insensitive) whose region, district or country (name or
/// code) match every one of `qualifiers` (`["Hawaii"]`, `["Illinois", "US"]`), ordered by
/// country, region and district. `distance_km` is 0. Empty when none is called so.
pub fn find_places(name: &str, qualifiers: &[&str]) -> Vec<Place> {
    let mut found: Vec<Place> = PlaceIndex::embedded()
        .named(name, qualifiers)
        .map(Place::from_entry)
        .collect();
    found.sort_by(|a, b| {
        (&a.country, &a.region, &a.district).cmp(&(&b.country, &b.region, &b.district))
    });
    found
}

impl Place {
    /// A place of the list as found by name: `distance_km` 0.
    fn from_entry(entry: &PlaceEntry) -> Self {
        Self {
            name: entry.name.clone(),
            region: entry.region.clone(),
            district: entry.district.clone(),
            country_code: entry.country_code.clone(),
            country: country_name(&entry.country_code)
                .map(str::to_owned)
                .unwrap_or_else(|| entry.country_code.clone()),
            position: entry.position,
            distance_km: 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_places() {
        let paris = nearest_place(LatLon::new(48.8566, 2.3522)).unwrap();
        assert_eq!(paris.country_code, "FR");
        assert_eq!(paris.country, "France");
        assert!(paris.distance_km < 5.0, "{paris:?}");
        let lihue = nearest_place(LatLon::new(21.9811, -159.3711)).unwrap();
        assert_eq!(lihue.country_code, "US");
        assert_eq!(lihue.region, "Hawaii");
        // Across the antimeridian: Fiji's Taveuni (east of 180) from just west of it.
        let fiji = nearest_place(LatLon::new(-16.85, 179.99)).unwrap();
        assert_eq!(fiji.country_code, "FJ");
        assert!(fiji.label().ends_with("Fiji"), "{}", fiji.label());
        assert!(nearest_place(LatLon::new(91.0, 0.0)).is_none());
    }

    #[test]
    fn places_by_name() {
        let lihue = find_places("lihue", &["Hawaii"]);
        assert_eq!(lihue.len(), 1, "{lihue:?}");
        assert_eq!(lihue[0].label(), "Lihue, Hawaii, United States");
        assert!(lihue[0].position.distance_km(&LatLon::new(21.98, -159.37)) < 2.0);
        let springfields = find_places("Springfield", &[]);
        assert!(springfields.len() >= 10, "{springfields:?}");
        let illinois = find_places("springfield", &["illinois", "united states"]);
        assert_eq!(illinois.len(), 1, "{illinois:?}");
        let in_us = find_places("Springfield", &["US"]);
        assert!(
            in_us.len() > 1 && in_us.len() < springfields.len(),
            "{in_us:?}"
        );
        assert!(find_places("Nowhereville Qq", &[]).is_empty());
        assert!(find_places("Lihue", &["France"]).is_empty());
        // The district (county) tells apart places of one name in one region.
        let sangamon = find_places("Springfield", &["Illinois", "Sangamon County", "US"]);
        assert_eq!(sangamon.len(), 1, "{sangamon:?}");
        assert_eq!(sangamon[0].district, "Sangamon County");
        assert!(find_places("Springfield", &["Illinois", "Cook County"]).is_empty());
    }
}
