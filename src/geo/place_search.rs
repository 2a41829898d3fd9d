//! The one place table: GeoNames `cities1000` (the places [`super::places`] reverse-geocodes
//! with), from `assets/places.zip` (made by `scripts/make_places.py`, because the
//! reverse_geocoder crate does not list its places). The map's search box and the offline
//! basemap's labels read it, and claims typed as place names are looked up in it
//! ([`super::find_places`], through [`PlaceIndex::named`]).
//!
//! Search is a case-insensitive prefix match on the name; `"name, region or country"` narrows
//! it. GeoNames' list has no population, so hits are ranked by how many places lie around
//! each one ([`PlaceEntry::importance`], the places in its 0.5° cell): cities come before the
//! villages that share their name. Pure: no egui.

use std::collections::HashMap;
use std::io::Read as _;
use std::sync::OnceLock;

use super::LatLon;
use super::countries::country_name;

/// The embedded place list (zipped TSV).
pub const PLACES_ZIP: &[u8] = include_bytes!("../../assets/places.zip");

/// The grid [`PlaceEntry::importance`] counts places in, in degrees.
const IMPORTANCE_CELL_DEG: f64 = 0.5;

/// One place of the list.
#[derive(Clone, Debug, PartialEq)]
pub struct PlaceEntry {
    pub name: String,
    /// First-level region (state, province); may be empty.
    pub region: String,
    /// Second-level region (county, district); may be empty.
    pub district: String,
    /// ISO 3166-1 alpha-2.
    pub country_code: String,
    pub position: LatLon,
    /// How many places lie in its 0.5° cell (itself included): a stand-in for size, since the
    /// list has no population.
    pub importance: u32,
}

impl PlaceEntry {
    /// `"Lihue, Hawaii, United States"`.
    pub fn label(&self) -> String {
        let country = country_name(&self.country_code).unwrap_or(&self.country_code);
        [self.name.as_str(), self.region.as_str(), country]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A search hit: the place and its label, which names region and country to tell apart
/// places of the same name.
#[derive(Clone, Debug, PartialEq)]
pub struct PlaceHit {
    pub label: String,
    pub position: LatLon,
    pub importance: u32,
}

static EMBEDDED: OnceLock<PlaceIndex> = OnceLock::new();

/// Why the place list could not be read (a build problem: search then finds nothing).
#[derive(Debug, thiserror::Error)]
#[error("invalid place list: {0}")]
pub struct PlaceListError(String);

/// The place list, searchable by name.
#[derive(Debug, Default)]
pub struct PlaceIndex {
    entries: Vec<PlaceEntry>,
    /// Indices into `entries`, ordered by lower-case name.
    by_name: Vec<u32>,
    /// Lower-case names, in `by_name`'s order (binary search).
    names_lower: Vec<String>,
    /// Indices into `entries`, most important first.
    by_importance: Vec<u32>,
}

impl PlaceIndex {
    /// Builds the index from `name \t region \t district \t cc \t lat \t lon` lines.
    pub fn from_tsv(tsv: &str) -> Result<Self, PlaceListError> {
        let mut entries = Vec::new();
        for (i, line) in tsv.lines().enumerate() {
            let fields: Vec<&str> = line.split('\t').collect();
            let [name, region, district, cc, lat, lon] = fields[..] else {
                return Err(PlaceListError(format!("line {}: 6 fields expected", i + 1)));
            };
            let coordinate = |s: &str| {
                s.parse::<f64>()
                    .map_err(|e| PlaceListError(format!("line {}: {e}", i + 1)))
            };
            entries.push(PlaceEntry {
                name: name.to_owned(),
                region: region.to_owned(),
                district: district.to_owned(),
                country_code: cc.to_owned(),
                position: LatLon::new(coordinate(lat)?, coordinate(lon)?),
                importance: 0,
            });
        }
        Ok(Self::new(entries))
    }

    /// Builds the index; the entries' `importance` is computed here.
    pub fn new(mut entries: Vec<PlaceEntry>) -> Self {
        let cell = |p: LatLon| {
            (
                (p.lat_deg / IMPORTANCE_CELL_DEG).floor() as i32,
                (p.lon_deg / IMPORTANCE_CELL_DEG).floor() as i32,
            )
        };
        let mut counts: HashMap<(i32, i32), u32> = HashMap::new();
        for e in &entries {
            *counts.entry(cell(e.position)).or_default() += 1;
        }
        // Ties (places of one cell) go to the place with the most neighbours within ~10 km.
        let fine = |p: LatLon| {
            (
                (p.lat_deg / 0.1).floor() as i32,
                (p.lon_deg / 0.1).floor() as i32,
            )
        };
        let mut fine_counts: HashMap<(i32, i32), u32> = HashMap::new();
        for e in &entries {
            *fine_counts.entry(fine(e.position)).or_default() += 1;
        }
        let mut local = Vec::with_capacity(entries.len());
        for e in &mut entries {
            e.importance = counts.get(&cell(e.position)).copied().unwrap_or(1);
            let (y, x) = fine(e.position);
            let around: u32 = (-1..=1)
                .flat_map(|dy| (-1..=1).map(move |dx| (y + dy, x + dx)))
                .filter_map(|c| fine_counts.get(&c))
                .sum();
            local.push(around);
        }
        let mut by_name: Vec<u32> = (0..entries.len() as u32).collect();
        let lower = |i: u32| entries[i as usize].name.to_lowercase();
        by_name.sort_by_cached_key(|&i| lower(i));
        let names_lower = by_name.iter().map(|&i| lower(i)).collect();
        let mut by_importance: Vec<u32> = (0..entries.len() as u32).collect();
        by_importance.sort_by_key(|&i| {
            let e = &entries[i as usize];
            (
                std::cmp::Reverse(e.importance),
                std::cmp::Reverse(local[i as usize]),
                e.name.len(),
            )
        });
        Self {
            entries,
            by_name,
            names_lower,
            by_importance,
        }
    }

    /// The embedded list (unpacked once, on first use: well under a second; warm it on a
    /// worker thread with [`warm_up_place_search`]).
    pub fn embedded() -> &'static PlaceIndex {
        EMBEDDED.get_or_init(|| Self::from_zip(PLACES_ZIP).unwrap_or_default())
    }

    /// The embedded list if it is unpacked already (a frame never waits for it).
    pub fn embedded_if_ready() -> Option<&'static PlaceIndex> {
        EMBEDDED.get()
    }

    fn from_zip(bytes: &[u8]) -> Result<Self, PlaceListError> {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
            .map_err(|e| PlaceListError(e.to_string()))?;
        let mut file = archive
            .by_index(0)
            .map_err(|e| PlaceListError(e.to_string()))?;
        let mut tsv = String::new();
        file.read_to_string(&mut tsv)
            .map_err(|e| PlaceListError(e.to_string()))?;
        Self::from_tsv(&tsv)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every place, most important first.
    pub fn by_importance(&self) -> impl Iterator<Item = &PlaceEntry> {
        self.by_importance
            .iter()
            .map(|&i| &self.entries[i as usize])
    }

    /// The places called `name` (case-insensitive; runs of spaces count as one) whose region,
    /// district or country (name or code) equals each of `qualifiers` (case-insensitive), in
    /// the list's order.
    pub fn named<'a>(
        &'a self,
        name: &str,
        qualifiers: &[&str],
    ) -> impl Iterator<Item = &'a PlaceEntry> + 'a {
        let name = fold(name);
        let qualifiers: Vec<String> = qualifiers
            .iter()
            .map(|q| fold(q))
            .filter(|q| !q.is_empty())
            .collect();
        let start = self
            .names_lower
            .partition_point(|n| n.as_str() < name.as_str());
        let end =
            start + self.names_lower[start..].partition_point(|n| n.as_str() <= name.as_str());
        let mut found: Vec<u32> = self.by_name[start..end].to_vec();
        found.sort_unstable();
        found
            .into_iter()
            .map(|i| &self.entries[i as usize])
            .filter(move |e| {
                let country = country_name(&e.country_code).unwrap_or_default();
                qualifiers.iter().all(|q| {
                    [
                        e.region.as_str(),
                        e.district.as_str(),
                        e.country_code.as_str(),
                        country,
                    ]
                    .iter()
                    .any(|field| !field.is_empty() && fold(field) == *q)
                })
            })
    }

    /// Places whose name starts with `query` (case-insensitive), at most `limit`: exact names
    /// first, then by importance. After a comma, the rest must start the region's or the
    /// country's name (or be the country code): `"paris, tex"` finds Paris, Texas.
    pub fn search(&self, query: &str, limit: usize) -> Vec<PlaceHit> {
        let mut parts = query.splitn(2, ',');
        let name = parts.next().unwrap_or("").trim().to_lowercase();
        let within = parts.next().map(|s| s.trim().to_lowercase());
        if name.is_empty() {
            return Vec::new();
        }
        let start = self
            .names_lower
            .partition_point(|n| n.as_str() < name.as_str());
        let mut found: Vec<&PlaceEntry> = self.names_lower[start..]
            .iter()
            .take_while(|n| n.starts_with(&name))
            .zip(&self.by_name[start..])
            .map(|(_, &i)| &self.entries[i as usize])
            .filter(|e| match &within {
                None => true,
                Some(w) if w.is_empty() => true,
                Some(w) => {
                    e.region.to_lowercase().starts_with(w.as_str())
                        || e.country_code.eq_ignore_ascii_case(w)
                        || country_name(&e.country_code)
                            .is_some_and(|c| c.to_lowercase().starts_with(w.as_str()))
                }
            })
            .collect();
        found.sort_by_key(|e| {
            (
                e.name.to_lowercase() != name,
                std::cmp::Reverse(e.importance),
                e.name.len(),
            )
        });
        found
            .into_iter()
            .take(limit)
            .map(|e| PlaceHit {
                label: e.label(),
                position: e.position,
                importance: e.importance,
            })
            .collect()
    }
}

/// Names compared: lower case, runs of spaces as one, no surrounding space.
fn fold(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Unpacks the embedded list now (it is otherwise unpacked on the first search).
pub fn warm_up_place_search() {
    let _ = PlaceIndex::embedded();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, region: &str, cc: &str, lat: f64, lon: f64) -> PlaceEntry {
        PlaceEntry {
            name: name.into(),
            region: region.into(),
            district: String::new(),
            country_code: cc.into(),
            position: LatLon::new(lat, lon),
            importance: 0,
        }
    }

    fn small_index() -> PlaceIndex {
        let mut entries = vec![
            entry("Paris", "Texas", "US", 33.66, -95.55),
            entry("Parish", "New York", "US", 43.41, -76.13),
            entry("Lihue", "Hawaii", "US", 21.98, -159.37),
        ];
        // Paris, France with its suburbs around it: more important than Paris, Texas.
        entries.push(entry("Paris", "Ile-de-France", "FR", 48.85, 2.35));
        for i in 0..5 {
            entries.push(entry(
                &format!("Suburb {i}"),
                "Ile-de-France",
                "FR",
                48.80 + 0.01 * f64::from(i),
                2.30,
            ));
        }
        PlaceIndex::new(entries)
    }

    #[test]
    fn prefix_search_is_case_insensitive_and_ranked_by_importance() {
        let index = small_index();
        let labels: Vec<String> = index
            .search("PAR", 10)
            .into_iter()
            .map(|h| h.label)
            .collect();
        assert_eq!(
            labels,
            [
                "Paris, Ile-de-France, France",
                "Paris, Texas, United States",
                "Parish, New York, United States",
            ]
        );
        // An exact name comes before longer names, whatever their importance.
        assert_eq!(index.search("parish", 10).len(), 1);
        assert_eq!(
            index.search("li", 10)[0].label,
            "Lihue, Hawaii, United States"
        );
        assert!(index.search("", 10).is_empty());
        assert!(index.search("zzz", 10).is_empty());
        assert_eq!(index.search("p", 2).len(), 2);
    }

    #[test]
    fn a_comma_narrows_by_region_or_country() {
        let index = small_index();
        let texas = index.search("paris, tex", 10);
        assert_eq!(texas.len(), 1);
        assert_eq!(texas[0].label, "Paris, Texas, United States");
        assert_eq!(index.search("paris, fr", 10).len(), 1);
        // Paris, Texas and Parish, New York.
        assert_eq!(index.search("paris, US", 10).len(), 2);
    }

    #[test]
    fn the_embedded_list_finds_lihue_and_big_cities_first() {
        let index = PlaceIndex::embedded();
        assert!(index.len() > 100_000, "{} places", index.len());
        let lihue = index.search("lihue", 5);
        assert_eq!(lihue[0].label, "Lihue, Hawaii, United States");
        assert!(lihue[0].position.distance_km(&LatLon::new(21.98, -159.37)) < 2.0);
        // London, England before London, Ontario.
        let london = index.search("London", 5);
        assert!(london[0].label.ends_with("United Kingdom"), "{london:?}");
        assert!(london.len() > 1);
        let texas = index.search("paris, tex", 5);
        assert_eq!(texas.len(), 1, "{texas:?}");
        assert_eq!(texas[0].label, "Paris, Texas, United States");
        let first = index.by_importance().next().expect("places");
        assert!(first.importance > 50, "{first:?}");
    }

    #[test]
    fn malformed_lines_are_an_error() {
        assert!(PlaceIndex::from_tsv("Paris\tX\t\tFR\t48.8\n").is_err());
        // The list before it had districts: 5 fields.
        assert!(PlaceIndex::from_tsv("Paris\tX\tFR\t48.8\t2.3\n").is_err());
        assert!(PlaceIndex::from_tsv("Paris\tX\t\tFR\tnorth\t2.3\n").is_err());
        let ok = PlaceIndex::from_tsv("Paris\tX\tParis\tFR\t48.8\t2.3\n").expect("valid");
        assert_eq!(ok.len(), 1);
        assert_eq!(ok.named("paris", &["paris"]).count(), 1);
    }
}
