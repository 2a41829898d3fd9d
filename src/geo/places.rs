//! Offline reverse geocoding: the nearest populated place, its region and country, for any
//! [`LatLon`].
//!
//! The data is GeoNames' `cities1000` (every place with at least 1000 people, about 145,000
//! places; CC BY 4.0, <https://www.geonames.org>) embedded in the `reverse_geocoder` crate, so
//! nothing is read from disk or the network. The index is built once, on first use (a few
//! hundred milliseconds), and shared. Country names come from ISO 3166-1 (Debian `iso-codes`,
//! common names where ISO has one) plus Kosovo (`XK`), which GeoNames uses.

use std::sync::OnceLock;

use super::LatLon;

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

/// Builds the index now (it is otherwise built on the first lookup), e.g. on a worker thread.
pub fn warm_up_places() {
    let _ = geocoder();
    let _ = name_index();
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

mod data {
    // `PLACES_CSV`: reverse_geocoder's `cities.csv` (found by build.rs; empty if it wasn't).
    include!(concat!(env!("OUT_DIR"), "/places_csv.rs"));
}

/// One place of the name index (forward look-ups), as reverse_geocoder's `cities.csv` has it.
struct NamedPlace {
    name: String,
    region: String,
    district: String,
    country_code: String,
    position: LatLon,
}

/// Every place by its lower-case name.
struct NameIndex {
    places: Vec<NamedPlace>,
    by_name: std::collections::HashMap<String, Vec<usize>>,
}

fn name_index() -> &'static NameIndex {
    static INDEX: OnceLock<NameIndex> = OnceLock::new();
    INDEX.get_or_init(|| {
        let places: Vec<NamedPlace> = data::PLACES_CSV
            .lines()
            .skip(1)
            .filter_map(parse_places_line)
            .collect();
        let mut by_name: std::collections::HashMap<String, Vec<usize>> =
            std::collections::HashMap::new();
        for (i, place) in places.iter().enumerate() {
            by_name.entry(fold(&place.name)).or_default().push(i);
        }
        NameIndex { places, by_name }
    })
}

/// `lat,lon,name,admin1,admin2,cc`, fields quoted where they hold a comma.
fn parse_places_line(line: &str) -> Option<NamedPlace> {
    let fields = split_csv_line(line);
    let [lat, lon, name, region, district, cc] = fields.as_slice() else {
        return None;
    };
    Some(NamedPlace {
        name: name.clone(),
        region: region.clone(),
        district: district.clone(),
        country_code: cc.clone(),
        position: LatLon::new(lat.parse().ok()?, lon.parse().ok()?),
    })
}

/// One CSV line's fields (RFC 4180 quoting: `"a, b"`, `""` for a quote).
fn split_csv_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// Names compared: lower case, runs of spaces as one, no surrounding space.
fn fold(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Whether the built-in places can be looked up by name (the build found them).
pub fn place_names_available() -> bool {
    !data::PLACES_CSV.is_empty()
}

/// The places called `name` (case-insensitive) whose region, district or country (name or
/// code) match every one of `qualifiers` (`["Hawaii"]`, `["Illinois", "US"]`), ordered by
/// country, region and district. `distance_km` is 0. Empty when none is called so.
pub fn find_places(name: &str, qualifiers: &[&str]) -> Vec<Place> {
    let index = name_index();
    let qualifiers: Vec<String> = qualifiers
        .iter()
        .map(|q| fold(q))
        .filter(|q| !q.is_empty())
        .collect();
    let mut found: Vec<Place> = index
        .by_name
        .get(&fold(name))
        .into_iter()
        .flatten()
        .map(|&i| &index.places[i])
        .filter(|p| {
            let country = country_name(&p.country_code).unwrap_or_default();
            qualifiers.iter().all(|q| {
                [
                    p.region.as_str(),
                    p.district.as_str(),
                    p.country_code.as_str(),
                    country,
                ]
                .iter()
                .any(|field| !field.is_empty() && fold(field) == *q)
            })
        })
        .map(|p| Place {
            name: p.name.clone(),
            region: p.region.clone(),
            district: p.district.clone(),
            country_code: p.country_code.clone(),
            country: country_name(&p.country_code)
                .map(str::to_owned)
                .unwrap_or_else(|| p.country_code.clone()),
            position: p.position,
            distance_km: 0.0,
        })
        .collect();
    found.sort_by(|a, b| {
        (&a.country, &a.region, &a.district).cmp(&(&b.country, &b.region, &b.district))
    });
    found
}

/// The English name of an ISO 3166-1 alpha-2 country code (case-insensitive).
pub fn country_name(alpha2: &str) -> Option<&'static str> {
    let code = alpha2.to_ascii_uppercase();
    COUNTRIES
        .binary_search_by(|(c, _)| (*c).cmp(code.as_str()))
        .ok()
        .map(|i| COUNTRIES[i].1)
}

/// ISO 3166-1 alpha-2 code -> English name, sorted by code.
const COUNTRIES: &[(&str, &str)] = &[
    ("AD", "Andorra"),
    ("AE", "United Arab Emirates"),
    ("AF", "Afghanistan"),
    ("AG", "Antigua and Barbuda"),
    ("AI", "Anguilla"),
    ("AL", "Albania"),
    ("AM", "Armenia"),
    ("AO", "Angola"),
    ("AQ", "Antarctica"),
    ("AR", "Argentina"),
    ("AS", "American Samoa"),
    ("AT", "Austria"),
    ("AU", "Australia"),
    ("AW", "Aruba"),
    ("AX", "Åland Islands"),
    ("AZ", "Azerbaijan"),
    ("BA", "Bosnia and Herzegovina"),
    ("BB", "Barbados"),
    ("BD", "Bangladesh"),
    ("BE", "Belgium"),
    ("BF", "Burkina Faso"),
    ("BG", "Bulgaria"),
    ("BH", "Bahrain"),
    ("BI", "Burundi"),
    ("BJ", "Benin"),
    ("BL", "Saint Barthélemy"),
    ("BM", "Bermuda"),
    ("BN", "Brunei Darussalam"),
    ("BO", "Bolivia"),
    ("BQ", "Bonaire, Sint Eustatius and Saba"),
    ("BR", "Brazil"),
    ("BS", "Bahamas"),
    ("BT", "Bhutan"),
    ("BV", "Bouvet Island"),
    ("BW", "Botswana"),
    ("BY", "Belarus"),
    ("BZ", "Belize"),
    ("CA", "Canada"),
    ("CC", "Cocos (Keeling) Islands"),
    ("CD", "Congo, The Democratic Republic of the"),
    ("CF", "Central African Republic"),
    ("CG", "Congo"),
    ("CH", "Switzerland"),
    ("CI", "Côte d'Ivoire"),
    ("CK", "Cook Islands"),
    ("CL", "Chile"),
    ("CM", "Cameroon"),
    ("CN", "China"),
    ("CO", "Colombia"),
    ("CR", "Costa Rica"),
    ("CU", "Cuba"),
    ("CV", "Cabo Verde"),
    ("CW", "Curaçao"),
    ("CX", "Christmas Island"),
    ("CY", "Cyprus"),
    ("CZ", "Czechia"),
    ("DE", "Germany"),
    ("DJ", "Djibouti"),
    ("DK", "Denmark"),
    ("DM", "Dominica"),
    ("DO", "Dominican Republic"),
    ("DZ", "Algeria"),
    ("EC", "Ecuador"),
    ("EE", "Estonia"),
    ("EG", "Egypt"),
    ("EH", "Western Sahara"),
    ("ER", "Eritrea"),
    ("ES", "Spain"),
    ("ET", "Ethiopia"),
    ("FI", "Finland"),
    ("FJ", "Fiji"),
    ("FK", "Falkland Islands (Malvinas)"),
    ("FM", "Micronesia, Federated States of"),
    ("FO", "Faroe Islands"),
    ("FR", "France"),
    ("GA", "Gabon"),
    ("GB", "United Kingdom"),
    ("GD", "Grenada"),
    ("GE", "Georgia"),
    ("GF", "French Guiana"),
    ("GG", "Guernsey"),
    ("GH", "Ghana"),
    ("GI", "Gibraltar"),
    ("GL", "Greenland"),
    ("GM", "Gambia"),
    ("GN", "Guinea"),
    ("GP", "Guadeloupe"),
    ("GQ", "Equatorial Guinea"),
    ("GR", "Greece"),
    ("GS", "South Georgia and the South Sandwich Islands"),
    ("GT", "Guatemala"),
    ("GU", "Guam"),
    ("GW", "Guinea-Bissau"),
    ("GY", "Guyana"),
    ("HK", "Hong Kong"),
    ("HM", "Heard Island and McDonald Islands"),
    ("HN", "Honduras"),
    ("HR", "Croatia"),
    ("HT", "Haiti"),
    ("HU", "Hungary"),
    ("ID", "Indonesia"),
    ("IE", "Ireland"),
    ("IL", "Israel"),
    ("IM", "Isle of Man"),
    ("IN", "India"),
    ("IO", "British Indian Ocean Territory"),
    ("IQ", "Iraq"),
    ("IR", "Iran"),
    ("IS", "Iceland"),
    ("IT", "Italy"),
    ("JE", "Jersey"),
    ("JM", "Jamaica"),
    ("JO", "Jordan"),
    ("JP", "Japan"),
    ("KE", "Kenya"),
    ("KG", "Kyrgyzstan"),
    ("KH", "Cambodia"),
    ("KI", "Kiribati"),
    ("KM", "Comoros"),
    ("KN", "Saint Kitts and Nevis"),
    ("KP", "North Korea"),
    ("KR", "South Korea"),
    ("KW", "Kuwait"),
    ("KY", "Cayman Islands"),
    ("KZ", "Kazakhstan"),
    ("LA", "Laos"),
    ("LB", "Lebanon"),
    ("LC", "Saint Lucia"),
    ("LI", "Liechtenstein"),
    ("LK", "Sri Lanka"),
    ("LR", "Liberia"),
    ("LS", "Lesotho"),
    ("LT", "Lithuania"),
    ("LU", "Luxembourg"),
    ("LV", "Latvia"),
    ("LY", "Libya"),
    ("MA", "Morocco"),
    ("MC", "Monaco"),
    ("MD", "Moldova"),
    ("ME", "Montenegro"),
    ("MF", "Saint Martin (French part)"),
    ("MG", "Madagascar"),
    ("MH", "Marshall Islands"),
    ("MK", "North Macedonia"),
    ("ML", "Mali"),
    ("MM", "Myanmar"),
    ("MN", "Mongolia"),
    ("MO", "Macao"),
    ("MP", "Northern Mariana Islands"),
    ("MQ", "Martinique"),
    ("MR", "Mauritania"),
    ("MS", "Montserrat"),
    ("MT", "Malta"),
    ("MU", "Mauritius"),
    ("MV", "Maldives"),
    ("MW", "Malawi"),
    ("MX", "Mexico"),
    ("MY", "Malaysia"),
    ("MZ", "Mozambique"),
    ("NA", "Namibia"),
    ("NC", "New Caledonia"),
    ("NE", "Niger"),
    ("NF", "Norfolk Island"),
    ("NG", "Nigeria"),
    ("NI", "Nicaragua"),
    ("NL", "Netherlands"),
    ("NO", "Norway"),
    ("NP", "Nepal"),
    ("NR", "Nauru"),
    ("NU", "Niue"),
    ("NZ", "New Zealand"),
    ("OM", "Oman"),
    ("PA", "Panama"),
    ("PE", "Peru"),
    ("PF", "French Polynesia"),
    ("PG", "Papua New Guinea"),
    ("PH", "Philippines"),
    ("PK", "Pakistan"),
    ("PL", "Poland"),
    ("PM", "Saint Pierre and Miquelon"),
    ("PN", "Pitcairn"),
    ("PR", "Puerto Rico"),
    ("PS", "Palestine, State of"),
    ("PT", "Portugal"),
    ("PW", "Palau"),
    ("PY", "Paraguay"),
    ("QA", "Qatar"),
    ("RE", "Réunion"),
    ("RO", "Romania"),
    ("RS", "Serbia"),
    ("RU", "Russian Federation"),
    ("RW", "Rwanda"),
    ("SA", "Saudi Arabia"),
    ("SB", "Solomon Islands"),
    ("SC", "Seychelles"),
    ("SD", "Sudan"),
    ("SE", "Sweden"),
    ("SG", "Singapore"),
    ("SH", "Saint Helena, Ascension and Tristan da Cunha"),
    ("SI", "Slovenia"),
    ("SJ", "Svalbard and Jan Mayen"),
    ("SK", "Slovakia"),
    ("SL", "Sierra Leone"),
    ("SM", "San Marino"),
    ("SN", "Senegal"),
    ("SO", "Somalia"),
    ("SR", "Suriname"),
    ("SS", "South Sudan"),
    ("ST", "Sao Tome and Principe"),
    ("SV", "El Salvador"),
    ("SX", "Sint Maarten (Dutch part)"),
    ("SY", "Syria"),
    ("SZ", "Eswatini"),
    ("TC", "Turks and Caicos Islands"),
    ("TD", "Chad"),
    ("TF", "French Southern Territories"),
    ("TG", "Togo"),
    ("TH", "Thailand"),
    ("TJ", "Tajikistan"),
    ("TK", "Tokelau"),
    ("TL", "Timor-Leste"),
    ("TM", "Turkmenistan"),
    ("TN", "Tunisia"),
    ("TO", "Tonga"),
    ("TR", "Türkiye"),
    ("TT", "Trinidad and Tobago"),
    ("TV", "Tuvalu"),
    ("TW", "Taiwan"),
    ("TZ", "Tanzania"),
    ("UA", "Ukraine"),
    ("UG", "Uganda"),
    ("UM", "United States Minor Outlying Islands"),
    ("US", "United States"),
    ("UY", "Uruguay"),
    ("UZ", "Uzbekistan"),
    ("VA", "Holy See (Vatican City State)"),
    ("VC", "Saint Vincent and the Grenadines"),
    ("VE", "Venezuela"),
    ("VG", "Virgin Islands, British"),
    ("VI", "Virgin Islands, U.S."),
    ("VN", "Vietnam"),
    ("VU", "Vanuatu"),
    ("WF", "Wallis and Futuna"),
    ("WS", "Samoa"),
    ("XK", "Kosovo"),
    ("YE", "Yemen"),
    ("YT", "Mayotte"),
    ("ZA", "South Africa"),
    ("ZM", "Zambia"),
    ("ZW", "Zimbabwe"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_table_is_sorted_and_complete() {
        assert!(COUNTRIES.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(country_name("us"), Some("United States"));
        assert_eq!(country_name("XK"), Some("Kosovo"));
        assert_eq!(country_name("ZZ"), None);
    }

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
    fn csv_lines_with_quoted_commas() {
        assert_eq!(
            split_csv_line(r#"1.5,2,"Washington, D.C.",District of Columbia,,US"#),
            [
                "1.5",
                "2",
                "Washington, D.C.",
                "District of Columbia",
                "",
                "US"
            ]
        );
        assert_eq!(split_csv_line(r#""a ""b""",c"#), [r#"a "b""#, "c"]);
    }

    #[test]
    fn places_by_name() {
        assert!(place_names_available());
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
    }
}
