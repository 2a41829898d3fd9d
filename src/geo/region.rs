//! Regions a photo's answer can be restricted to ("the claim says Ukraine: where in Ukraine?"):
//! a country (Natural Earth 1:50m outlines, embedded from `assets/countries.zip`, made by
//! `scripts/make_countries.py`), a latitude/longitude box, or a polygon drawn by the user.
//!
//! [`Region::contains`] is even-odd ray casting with a bounding-box pre-filter per ring. Rings
//! are kept with continuous longitudes (a ring crossing the antimeridian, as Russia's Chukotka
//! or Fiji, runs past ±180°), so a point is tried at its longitude and ±360°; a ring that winds
//! once around a pole (Antarctica's coast) is closed over that pole. [`renormalise`] restricts
//! gallery probabilities to the points inside.

use std::io::Read;
use std::sync::{Arc, OnceLock};

use super::LatLon;
use super::countries::country_name;

/// The embedded country outlines (see `scripts/make_countries.py` for the format).
pub const COUNTRIES_ZIP: &[u8] = include_bytes!("../../assets/countries.zip");

/// Where the outlines come from, for notes and the About text.
pub const COUNTRIES_ATTRIBUTION: &str =
    "Country outlines: Natural Earth 1:50m (public domain), via world-atlas 2.0.2";

/// One closed ring, longitudes continuous (may run past ±180°), closing point not repeated.
#[derive(Clone, Debug, PartialEq)]
pub struct Ring {
    points: Vec<LatLon>,
    lat_min: f64,
    lat_max: f64,
    lon_min: f64,
    lon_max: f64,
}

impl Ring {
    /// A ring through `points` (at least 3), with longitudes unwrapped so no edge is longer
    /// than 180° in longitude; a ring that winds around a pole is closed over the pole on the
    /// side of its mean latitude. `None` for fewer than 3 points.
    pub fn new(points: &[LatLon]) -> Option<Self> {
        if points.len() < 3 {
            return None;
        }
        let mut unwrapped = Vec::with_capacity(points.len() + 2);
        let mut lon = points[0].lon_deg;
        unwrapped.push(LatLon::new(points[0].lat_deg, lon));
        for pair in points.windows(2) {
            lon += wrap_delta(pair[1].lon_deg - pair[0].lon_deg);
            unwrapped.push(LatLon::new(pair[1].lat_deg, lon));
        }
        let closing = wrap_delta(points[0].lon_deg - points[points.len() - 1].lon_deg);
        let winding = lon + closing - points[0].lon_deg;
        if winding.abs() > 180.0 {
            // Around a pole: down (or up) to it, along it, and back.
            let mean_lat = points.iter().map(|p| p.lat_deg).sum::<f64>() / points.len() as f64;
            let pole = if mean_lat < 0.0 { -90.0 } else { 90.0 };
            unwrapped.push(LatLon::new(pole, lon + closing));
            unwrapped.push(LatLon::new(pole, points[0].lon_deg));
        }
        let (mut lat_min, mut lat_max) = (f64::INFINITY, f64::NEG_INFINITY);
        let (mut lon_min, mut lon_max) = (f64::INFINITY, f64::NEG_INFINITY);
        for p in &unwrapped {
            lat_min = lat_min.min(p.lat_deg);
            lat_max = lat_max.max(p.lat_deg);
            lon_min = lon_min.min(p.lon_deg);
            lon_max = lon_max.max(p.lon_deg);
        }
        Some(Self {
            points: unwrapped,
            lat_min,
            lat_max,
            lon_min,
            lon_max,
        })
    }

    /// The ring's points (longitudes continuous, possibly past ±180°).
    pub fn points(&self) -> &[LatLon] {
        &self.points
    }

    /// Whether `p` lies inside (even-odd), trying its longitude and ±360°.
    pub fn contains(&self, p: LatLon) -> bool {
        if p.lat_deg < self.lat_min || p.lat_deg > self.lat_max {
            return false;
        }
        [0.0, 360.0, -360.0].into_iter().any(|shift| {
            let lon = p.lon_deg + shift;
            lon >= self.lon_min && lon <= self.lon_max && self.crossings_odd(p.lat_deg, lon)
        })
    }

    fn crossings_odd(&self, lat: f64, lon: f64) -> bool {
        let mut inside = false;
        let n = self.points.len();
        let mut j = n - 1;
        for i in 0..n {
            let (a, b) = (self.points[i], self.points[j]);
            if (a.lat_deg > lat) != (b.lat_deg > lat) {
                let t = (lat - a.lat_deg) / (b.lat_deg - a.lat_deg);
                if lon < a.lon_deg + t * (b.lon_deg - a.lon_deg) {
                    inside = !inside;
                }
            }
            j = i;
        }
        inside
    }
}

/// A longitude difference brought into (-180, 180].
fn wrap_delta(d: f64) -> f64 {
    if d > 180.0 {
        d - 360.0
    } else if d <= -180.0 {
        d + 360.0
    } else {
        d
    }
}

/// Rings combined even-odd: outer rings and holes of one or more polygons.
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    rings: Vec<Ring>,
    lat_min: f64,
    lat_max: f64,
}

impl Shape {
    pub fn new(rings: Vec<Ring>) -> Self {
        let lat_min = rings
            .iter()
            .map(|r| r.lat_min)
            .fold(f64::INFINITY, f64::min);
        let lat_max = rings
            .iter()
            .map(|r| r.lat_max)
            .fold(f64::NEG_INFINITY, f64::max);
        Self {
            rings,
            lat_min,
            lat_max,
        }
    }

    pub fn rings(&self) -> &[Ring] {
        &self.rings
    }

    /// Inside an odd number of rings (a hole's point is inside two: its outer ring and it).
    pub fn contains(&self, p: LatLon) -> bool {
        if p.lat_deg < self.lat_min || p.lat_deg > self.lat_max {
            return false;
        }
        self.rings.iter().filter(|r| r.contains(p)).count() % 2 == 1
    }
}

/// One country of the embedded outlines.
#[derive(Debug)]
pub struct Country {
    /// ISO 3166-1 alpha-2 (`UA`); empty for the few Natural Earth units without one.
    pub alpha2: String,
    /// ISO 3166-1 alpha-3 (`UKR`); empty likewise.
    pub alpha3: String,
    /// The ISO name when there is one (`geo::countries`), else Natural Earth's.
    pub name: String,
    /// Natural Earth's short name (`Russia`, `Dem. Rep. Congo`).
    pub short_name: String,
    pub shape: Shape,
}

impl Country {
    /// `Ukraine (UA)`.
    pub fn label(&self) -> String {
        if self.alpha2.is_empty() {
            self.name.clone()
        } else {
            format!("{} ({})", self.name, self.alpha2)
        }
    }
}

/// The embedded countries, read once on first use.
pub fn countries() -> &'static [Arc<Country>] {
    static COUNTRIES: OnceLock<Vec<Arc<Country>>> = OnceLock::new();
    COUNTRIES.get_or_init(|| {
        read_countries(COUNTRIES_ZIP).unwrap_or_else(|e| {
            log::error!("the embedded country outlines are unreadable: {e}");
            Vec::new()
        })
    })
}

fn read_countries(zip_bytes: &[u8]) -> Result<Vec<Arc<Country>>, String> {
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).map_err(|e| e.to_string())?;
    let mut text = String::new();
    archive
        .by_index(0)
        .map_err(|e| e.to_string())?
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    parse_countries(&text)
}

/// Reads `countries.txt` (see `scripts/make_countries.py`).
fn parse_countries(text: &str) -> Result<Vec<Arc<Country>>, String> {
    let mut transform = [1.0, 1.0, 0.0, 0.0];
    let mut out = Vec::new();
    let mut current: Option<(Country, Vec<Ring>)> = None;
    let finish = |c: Option<(Country, Vec<Ring>)>, out: &mut Vec<Arc<Country>>| {
        if let Some((mut country, rings)) = c {
            country.shape = Shape::new(rings);
            out.push(Arc::new(country));
        }
    };
    for (n, line) in text.lines().enumerate() {
        let bad = |what: &str| format!("countries.txt line {}: {what}", n + 1);
        let mut fields = line.split('\t');
        match fields.next() {
            Some("T") => {
                for t in &mut transform {
                    *t = fields
                        .next()
                        .and_then(|f| f.parse().ok())
                        .ok_or_else(|| bad("bad transform"))?;
                }
            }
            Some("C") => {
                finish(current.take(), &mut out);
                let f: Vec<&str> = fields.collect();
                if f.len() != 4 {
                    return Err(bad("a country needs 4 fields"));
                }
                let name = country_name(f[0]).unwrap_or(f[3]).to_owned();
                current = Some((
                    Country {
                        alpha2: f[0].to_owned(),
                        alpha3: f[1].to_owned(),
                        name,
                        short_name: f[3].to_owned(),
                        shape: Shape::new(Vec::new()),
                    },
                    Vec::new(),
                ));
            }
            Some("P") => {}
            Some("R") => {
                let Some((_, rings)) = current.as_mut() else {
                    return Err(bad("a ring before any country"));
                };
                let (mut x, mut y) = (0i64, 0i64);
                let mut points = Vec::new();
                for pair in fields.next().unwrap_or("").split(' ') {
                    let (dx, dy) = pair
                        .split_once(',')
                        .and_then(|(a, b)| Some((a.parse::<i64>().ok()?, b.parse::<i64>().ok()?)))
                        .ok_or_else(|| bad("bad point"))?;
                    x += dx;
                    y += dy;
                    points.push(LatLon::new(
                        y as f64 * transform[1] + transform[3],
                        x as f64 * transform[0] + transform[2],
                    ));
                }
                rings.extend(Ring::new(&points));
            }
            _ => return Err(bad("unknown record")),
        }
    }
    finish(current, &mut out);
    Ok(out)
}

/// A latitude/longitude box; it crosses the antimeridian when `lon_min_deg > lon_max_deg`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GeoBox {
    pub lat_min_deg: f64,
    pub lon_min_deg: f64,
    pub lat_max_deg: f64,
    pub lon_max_deg: f64,
}

impl GeoBox {
    pub fn contains(&self, p: LatLon) -> bool {
        let lat_ok = p.lat_deg >= self.lat_min_deg && p.lat_deg <= self.lat_max_deg;
        let lon_ok = if self.lon_min_deg <= self.lon_max_deg {
            p.lon_deg >= self.lon_min_deg && p.lon_deg <= self.lon_max_deg
        } else {
            p.lon_deg >= self.lon_min_deg || p.lon_deg <= self.lon_max_deg
        };
        lat_ok && lon_ok
    }

    /// The box spanned by two corners (dragged on the map): the shorter way round in longitude.
    pub fn from_corners(a: LatLon, b: LatLon) -> Self {
        let (lat_min_deg, lat_max_deg) = (a.lat_deg.min(b.lat_deg), a.lat_deg.max(b.lat_deg));
        let (west, east) = if wrap_delta(b.lon_deg - a.lon_deg) >= 0.0 {
            (a.lon_deg, b.lon_deg)
        } else {
            (b.lon_deg, a.lon_deg)
        };
        Self {
            lat_min_deg,
            lon_min_deg: west,
            lat_max_deg,
            lon_max_deg: east,
        }
    }

    /// `LAT_MIN,LON_MIN,LAT_MAX,LON_MAX`, as `--within` takes it.
    pub fn spec(&self) -> String {
        format!(
            "{},{},{},{}",
            trim_num(self.lat_min_deg),
            trim_num(self.lon_min_deg),
            trim_num(self.lat_max_deg),
            trim_num(self.lon_max_deg)
        )
    }

    /// The corners, clockwise from the south-west, for drawing (east may be past 180°).
    pub fn outline(&self) -> [LatLon; 4] {
        let east = if self.lon_max_deg < self.lon_min_deg {
            self.lon_max_deg + 360.0
        } else {
            self.lon_max_deg
        };
        [
            LatLon::new(self.lat_min_deg, self.lon_min_deg),
            LatLon::new(self.lat_max_deg, self.lon_min_deg),
            LatLon::new(self.lat_max_deg, east),
            LatLon::new(self.lat_min_deg, east),
        ]
    }
}

fn trim_num(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// Where a photo's answer is restricted to.
#[derive(Clone, Debug)]
pub enum Region {
    Country(Arc<Country>),
    Box(GeoBox),
    /// A polygon drawn by the user (its vertices as clicked, and its ring).
    Polygon {
        vertices: Vec<LatLon>,
        ring: Ring,
    },
}

impl PartialEq for Region {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Region::Country(a), Region::Country(b)) => Arc::ptr_eq(a, b) || a.name == b.name,
            (Region::Box(a), Region::Box(b)) => a == b,
            (Region::Polygon { vertices: a, .. }, Region::Polygon { vertices: b, .. }) => a == b,
            _ => false,
        }
    }
}

impl Region {
    /// A drawn polygon; `None` for fewer than 3 vertices.
    pub fn polygon(vertices: Vec<LatLon>) -> Option<Self> {
        let ring = Ring::new(&vertices)?;
        Some(Region::Polygon { vertices, ring })
    }

    /// Cheap: a bounding-box test first, then ray casting.
    pub fn contains(&self, p: LatLon) -> bool {
        match self {
            Region::Country(c) => c.shape.contains(p),
            Region::Box(b) => b.contains(p),
            Region::Polygon { ring, .. } => ring.contains(p),
        }
    }

    /// Which of `points` ([lat, lon] in degrees, as the gallery holds them) lie inside.
    pub fn mask(&self, points_lat_lon_deg: &[[f32; 2]]) -> Vec<bool> {
        points_lat_lon_deg
            .iter()
            .map(|&[lat, lon]| self.contains(LatLon::new(f64::from(lat), f64::from(lon))))
            .collect()
    }

    /// What to call it in a sentence: `Ukraine (UA)`, `the box 44,22,52.5,40.3`,
    /// `the drawn polygon (5 points)`.
    pub fn label(&self) -> String {
        match self {
            Region::Country(c) => c.label(),
            Region::Box(b) => format!("the box {}", b.spec()),
            Region::Polygon { vertices, .. } => {
                format!("the drawn polygon ({} points)", vertices.len())
            }
        }
    }

    /// The constraint as recorded in exports: `country:UA`, `box:44,22,52.5,40.3`,
    /// `polygon:lat lon;lat lon;...`.
    pub fn spec(&self) -> String {
        match self {
            Region::Country(c) if !c.alpha2.is_empty() => format!("country:{}", c.alpha2),
            Region::Country(c) => format!("country:{}", c.name),
            Region::Box(b) => format!("box:{}", b.spec()),
            Region::Polygon { vertices, .. } => {
                let parts: Vec<String> = vertices
                    .iter()
                    .map(|v| format!("{} {}", trim_num(v.lat_deg), trim_num(v.lon_deg)))
                    .collect();
                format!("polygon:{}", parts.join(";"))
            }
        }
    }

    /// The outline's rings for drawing (longitudes continuous).
    pub fn outline(&self) -> Vec<Vec<LatLon>> {
        match self {
            Region::Country(c) => c
                .shape
                .rings()
                .iter()
                .map(|r| r.points().to_vec())
                .collect(),
            Region::Box(b) => vec![b.outline().to_vec()],
            Region::Polygon { ring, .. } => vec![ring.points().to_vec()],
        }
    }
}

/// Why `--within` (or the app's region field) could not be read. One line naming the input.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RegionParseError {
    #[error("unknown country {input:?}{}", suggest(.suggestions))]
    UnknownCountry {
        input: String,
        suggestions: Vec<String>,
    },
    #[error(
        "box {input:?}: needs 4 numbers LAT_MIN,LON_MIN,LAT_MAX,LON_MAX (degrees), got {count}"
    )]
    BoxParts { input: String, count: usize },
    #[error("box {input:?}: {part} {value:?} is not a number")]
    BoxNumber {
        input: String,
        part: &'static str,
        value: String,
    },
    #[error("box {input:?}: {part} {value} is outside {range}")]
    BoxRange {
        input: String,
        part: &'static str,
        value: f64,
        range: &'static str,
    },
    #[error("box {input:?}: lat_min {lat_min} is above lat_max {lat_max}")]
    BoxLatOrder {
        input: String,
        lat_min: f64,
        lat_max: f64,
    },
    #[error(
        "empty region: give a country (name, alpha-2 or alpha-3) or a box LAT_MIN,LON_MIN,LAT_MAX,LON_MAX"
    )]
    Empty,
}

fn suggest(names: &[String]) -> String {
    if names.is_empty() {
        "; give a country's name, ISO alpha-2 (UA) or alpha-3 (UKR) code, or a box LAT_MIN,LON_MIN,LAT_MAX,LON_MAX".into()
    } else {
        format!("; did you mean {}?", names.join(", "))
    }
}

const BOX_PARTS: [&str; 4] = ["lat_min", "lon_min", "lat_max", "lon_max"];

/// Reads `--within`: a country by name (ISO or Natural Earth's short one), alpha-2 or alpha-3
/// (ignoring case, accents and punctuation), or a box `LAT_MIN,LON_MIN,LAT_MAX,LON_MAX` in
/// degrees (lat first; crossing the antimeridian when lon_min > lon_max).
pub fn parse_region(text: &str) -> Result<Region, RegionParseError> {
    let input = text.trim();
    if input.is_empty() {
        return Err(RegionParseError::Empty);
    }
    let parts: Vec<&str> = input.split(',').map(str::trim).collect();
    let looks_numeric =
        |s: &str| s.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+' || c == '.');
    if parts.iter().any(|p| looks_numeric(p)) {
        return parse_box(input, &parts).map(Region::Box);
    }
    find_country(input).map(Region::Country)
}

fn parse_box(input: &str, parts: &[&str]) -> Result<GeoBox, RegionParseError> {
    if parts.len() != 4 {
        return Err(RegionParseError::BoxParts {
            input: input.into(),
            count: parts.len(),
        });
    }
    let mut v = [0.0f64; 4];
    for (i, part) in parts.iter().enumerate() {
        let value: f64 = part
            .parse()
            .ok()
            .filter(|x: &f64| x.is_finite())
            .ok_or_else(|| RegionParseError::BoxNumber {
                input: input.into(),
                part: BOX_PARTS[i],
                value: (*part).into(),
            })?;
        let (limit, range) = if i % 2 == 0 {
            (90.0, "-90..90")
        } else {
            (180.0, "-180..180")
        };
        if value.abs() > limit {
            return Err(RegionParseError::BoxRange {
                input: input.into(),
                part: BOX_PARTS[i],
                value,
                range,
            });
        }
        v[i] = value;
    }
    if v[0] > v[2] {
        return Err(RegionParseError::BoxLatOrder {
            input: input.into(),
            lat_min: v[0],
            lat_max: v[2],
        });
    }
    Ok(GeoBox {
        lat_min_deg: v[0],
        lon_min_deg: v[1],
        lat_max_deg: v[2],
        lon_max_deg: v[3],
    })
}

/// A country by name, alpha-2 or alpha-3; an unknown one lists up to 3 close names.
pub fn find_country(input: &str) -> Result<Arc<Country>, RegionParseError> {
    let key = fold(input);
    let all = countries();
    if let Some(c) = all.iter().find(|c| {
        [&c.alpha2, &c.alpha3, &c.name, &c.short_name]
            .iter()
            .any(|n| !n.is_empty() && fold(n) == key)
    }) {
        return Ok(c.clone());
    }
    let mut scored: Vec<(usize, &str)> = all
        .iter()
        .filter_map(|c| {
            let d = [&c.name, &c.short_name]
                .iter()
                .map(|n| {
                    let n = fold(n);
                    if !key.is_empty() && n.starts_with(&key) {
                        0
                    } else {
                        levenshtein(&key, &n)
                    }
                })
                .min()?;
            (d <= (key.chars().count() / 3).max(2)).then_some((d, c.name.as_str()))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    Err(RegionParseError::UnknownCountry {
        input: input.into(),
        suggestions: scored
            .iter()
            .take(3)
            .map(|(_, n)| (*n).to_owned())
            .collect(),
    })
}

/// Countries whose name, short name or code starts with `prefix` (folded), for completion;
/// at most `limit`, names first.
pub fn complete_country(prefix: &str, limit: usize) -> Vec<Arc<Country>> {
    let key = fold(prefix);
    if key.is_empty() {
        return Vec::new();
    }
    let mut hits: Vec<(u8, &Arc<Country>)> = countries()
        .iter()
        .filter_map(|c| {
            let rank = if fold(&c.name).starts_with(&key) || fold(&c.short_name).starts_with(&key) {
                0
            } else if fold(&c.alpha2) == key || fold(&c.alpha3) == key {
                1
            } else if fold(&c.name).contains(&key) {
                2
            } else {
                return None;
            };
            Some((rank, c))
        })
        .collect();
    hits.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.name.cmp(&b.1.name)));
    hits.into_iter()
        .take(limit)
        .map(|(_, c)| c.clone())
        .collect()
}

/// Lower case, common Latin accents dropped, only letters and digits kept (one space between
/// words).
fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars().flat_map(char::to_lowercase) {
        let base = match ch {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => 'a',
            'ç' | 'č' | 'ć' => 'c',
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ě' => 'e',
            'ì' | 'í' | 'î' | 'ï' | 'ī' => 'i',
            'ñ' | 'ń' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' => 'o',
            'ù' | 'ú' | 'û' | 'ü' | 'ū' => 'u',
            'ý' | 'ÿ' => 'y',
            'š' | 'ś' => 's',
            'ž' | 'ź' | 'ż' => 'z',
            c => c,
        };
        if base.is_alphanumeric() {
            out.push(base);
        } else if !out.is_empty() && !out.ends_with(' ') {
            out.push(' ');
        }
    }
    out.trim_end().to_owned()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Gallery probabilities restricted to a region.
#[derive(Clone, Debug, PartialEq)]
pub struct Renormalised {
    /// Same length as the input: renormalised inside (sums to 1), 0 outside.
    pub probabilities: Vec<f32>,
    /// The sum of the original probabilities inside: the model's belief in the region.
    pub share_inside: f64,
    /// Gallery points inside.
    pub points_inside: usize,
}

/// The region holds no gallery point: nothing to rank.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error(
    "no gallery point lies inside {region}; draw a larger region or give the country or a box around it"
)]
pub struct EmptyRegion {
    pub region: String,
}

/// Restricts `probabilities` to the points where `inside` is true (see [`Renormalised`]).
/// `region_label` names the region in the error when no point is inside.
pub fn renormalise(
    probabilities: &[f32],
    inside: &[bool],
    region_label: &str,
) -> Result<Renormalised, EmptyRegion> {
    let mut share_inside = 0.0f64;
    let mut points_inside = 0;
    for (p, &inside) in probabilities.iter().zip(inside) {
        if inside {
            share_inside += f64::from(*p);
            points_inside += 1;
        }
    }
    if points_inside == 0 {
        return Err(EmptyRegion {
            region: region_label.to_owned(),
        });
    }
    let probabilities = if share_inside > 0.0 {
        probabilities
            .iter()
            .zip(inside)
            .map(|(p, &inside)| {
                if inside {
                    (f64::from(*p) / share_inside) as f32
                } else {
                    0.0
                }
            })
            .collect()
    } else {
        // Every inside point underflowed to 0: spread evenly rather than divide by zero.
        let even = 1.0 / points_inside as f32;
        inside.iter().map(|&i| if i { even } else { 0.0 }).collect()
    };
    Ok(Renormalised {
        probabilities,
        share_inside,
        points_inside,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(text: &str) -> Region {
        parse_region(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn all_countries_read() {
        let all = countries();
        assert!(all.len() > 230, "{}", all.len());
        let ua = find_country("ua").unwrap();
        assert_eq!((ua.alpha3.as_str(), ua.name.as_str()), ("UKR", "Ukraine"));
        assert_eq!(find_country("XK").unwrap().short_name, "Kosovo");
    }

    #[test]
    fn ukraine_holds_kyiv_and_lviv_not_warsaw() {
        let ua = within("Ukraine");
        assert!(ua.contains(LatLon::new(50.4501, 30.5234)), "Kyiv");
        assert!(ua.contains(LatLon::new(49.8397, 24.0297)), "Lviv");
        assert!(!ua.contains(LatLon::new(52.2297, 21.0122)), "Warsaw");
        assert!(within("POL").contains(LatLon::new(52.2297, 21.0122)));
    }

    #[test]
    fn lesotho_is_a_hole_in_south_africa() {
        let maseru = LatLon::new(-29.31, 27.48);
        let ls = within("Lesotho");
        let za = within("South Africa");
        assert!(ls.contains(maseru));
        assert!(!za.contains(maseru));
        assert!(za.contains(LatLon::new(-26.2041, 28.0473)), "Johannesburg");
    }

    #[test]
    fn russia_and_fiji_across_the_antimeridian() {
        let ru = within("russia");
        assert!(ru.contains(LatLon::new(55.7558, 37.6173)), "Moscow");
        assert!(
            ru.contains(LatLon::new(66.0, 178.0)),
            "Chukotka east of 180"
        );
        assert!(ru.contains(LatLon::new(67.5, 172.0)), "Chukotka");
        assert!(
            ru.contains(LatLon::new(66.0, -175.0)),
            "Chukotka west of 180"
        );
        assert!(ru.contains(LatLon::new(71.25, -179.5)), "Wrangel Island");
        assert!(!ru.contains(LatLon::new(64.5, -165.4)), "Nome, Alaska");
        assert!(!ru.contains(LatLon::new(0.0, 179.9)), "the Pacific");
        let fj = within("FJI");
        assert!(fj.contains(LatLon::new(-18.1248, 178.4501)), "Suva");
        assert!(fj.contains(LatLon::new(-16.6, 179.9)), "Vanua Levu east");
        assert!(
            fj.contains(LatLon::new(-16.5, -179.97)),
            "Vanua Levu past 180"
        );
        assert!(!fj.contains(LatLon::new(-17.0, -175.0)));
        let aq = within("Antarctica");
        assert!(aq.contains(LatLon::new(-85.0, 0.0)));
        assert!(aq.contains(LatLon::new(-89.0, 120.0)));
        assert!(!aq.contains(LatLon::new(-50.0, 0.0)));
    }

    #[test]
    fn names_codes_and_accents() {
        for name in ["Ukraine", "ukraine", "UA", "ukr", " Ukraine ", "UKRAINE"] {
            assert_eq!(within(name).label(), "Ukraine (UA)");
        }
        assert_eq!(within("Cote d'Ivoire").label(), "Côte d'Ivoire (CI)");
        assert_eq!(within("côte d’ivoire").label(), "Côte d'Ivoire (CI)");
        assert_eq!(within("Russian Federation").spec(), "country:RU");
        assert_eq!(within("United States of America").spec(), "country:US");
    }

    #[test]
    fn bad_country_suggests_close_names() {
        let e = parse_region("Ukrane").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("\"Ukrane\""), "{text}");
        assert!(text.contains("did you mean Ukraine"), "{text}");
        assert!(!text.contains('\n'));
        let e = parse_region("Atlantis").unwrap_err().to_string();
        assert!(e.starts_with("unknown country \"Atlantis\""), "{e}");
    }

    #[test]
    fn boxes_and_their_errors() {
        let b = within("44,22,52.5,40.3");
        assert!(b.contains(LatLon::new(50.45, 30.52)));
        assert!(!b.contains(LatLon::new(52.6, 30.0)));
        assert_eq!(b.spec(), "box:44,22,52.5,40.3");
        // Across the antimeridian.
        let pacific = within("-20,170,-10,-170");
        assert!(pacific.contains(LatLon::new(-15.0, 179.0)));
        assert!(pacific.contains(LatLon::new(-15.0, -175.0)));
        assert!(!pacific.contains(LatLon::new(-15.0, 0.0)));

        let e = parse_region("44,22,52.5").unwrap_err().to_string();
        assert!(e.contains("needs 4 numbers") && e.contains("got 3"), "{e}");
        let e = parse_region("44,abc,52.5,40").unwrap_err().to_string();
        assert!(e.contains("lon_min \"abc\" is not a number"), "{e}");
        let e = parse_region("44,22,95,40").unwrap_err().to_string();
        assert!(e.contains("lat_max 95 is outside -90..90"), "{e}");
        let e = parse_region("50,22,40,40").unwrap_err().to_string();
        assert!(e.contains("lat_min 50 is above lat_max 40"), "{e}");
    }

    #[test]
    fn corners_take_the_short_way_round() {
        let b = GeoBox::from_corners(LatLon::new(-10.0, 175.0), LatLon::new(-20.0, -175.0));
        assert_eq!(b.spec(), "-20,175,-10,-175");
        assert!(b.contains(LatLon::new(-15.0, 180.0)));
        let b = GeoBox::from_corners(LatLon::new(50.0, 30.0), LatLon::new(45.0, 20.0));
        assert_eq!(b.spec(), "45,20,50,30");
    }

    #[test]
    fn drawn_polygon_contains() {
        let tri = Region::polygon(vec![
            LatLon::new(0.0, 0.0),
            LatLon::new(10.0, 0.0),
            LatLon::new(0.0, 10.0),
        ])
        .unwrap();
        assert!(tri.contains(LatLon::new(2.0, 2.0)));
        assert!(!tri.contains(LatLon::new(8.0, 8.0)));
        assert!(Region::polygon(vec![LatLon::new(0.0, 0.0), LatLon::new(1.0, 1.0)]).is_none());
        // Drawn across the antimeridian.
        let across = Region::polygon(vec![
            LatLon::new(-10.0, 170.0),
            LatLon::new(-10.0, -170.0),
            LatLon::new(-20.0, -170.0),
            LatLon::new(-20.0, 170.0),
        ])
        .unwrap();
        assert!(across.contains(LatLon::new(-15.0, 179.5)));
        assert!(across.contains(LatLon::new(-15.0, -179.5)));
        assert!(!across.contains(LatLon::new(-15.0, 0.0)));
    }

    #[test]
    fn renormalised_probabilities_sum_to_one_inside() {
        let probs = [0.5f32, 0.2, 0.2, 0.1];
        let inside = [false, true, false, true];
        let r = renormalise(&probs, &inside, "x").unwrap();
        let sum: f32 = r.probabilities.iter().sum();
        assert!((sum - 1.0).abs() < 1e-6, "{sum}");
        assert_eq!(r.probabilities[0], 0.0);
        assert!((r.probabilities[1] - 2.0 / 3.0).abs() < 1e-6);
        assert!((r.share_inside - 0.3).abs() < 1e-6);
        assert_eq!(r.points_inside, 2);
    }

    #[test]
    fn a_region_without_gallery_points_is_a_clear_error() {
        let region = within("Lesotho");
        let gallery = [[50.45f32, 30.52], [-26.2, 28.05]];
        let mask = region.mask(&gallery);
        assert_eq!(mask, [false, false]);
        let e = renormalise(&[0.5, 0.5], &mask, &region.label()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("no gallery point lies inside Lesotho (LS);"),
            "{e}"
        );
    }

    #[test]
    fn completion_by_prefix_and_code() {
        let names: Vec<String> = complete_country("ukr", 5)
            .iter()
            .map(|c| c.name.clone())
            .collect();
        assert_eq!(names, ["Ukraine"]);
        let names: Vec<String> = complete_country("south", 10)
            .iter()
            .map(|c| c.name.clone())
            .collect();
        assert!(names.iter().any(|n| n == "South Africa"), "{names:?}");
        assert!(complete_country("", 5).is_empty());
    }
}
