//! Reading a claimed location as people write it: decimal `lat, lon` (`21.97, -159.37`),
//! hemisphere letters (`22.07 N, 159.5 W`, `N22.07 W159.5`), degrees-minutes-seconds
//! (`22°04'12"N 159°30'W`, with `′ ″`, `d m s` or spaces), or a place name from the built-in
//! places (`Lihue, Hawaii`; `Springfield` gives every Springfield to pick from).
//!
//! Text with a digit is read as coordinates, text without one as a place name. Errors say
//! which part is wrong.

use super::{LatLon, Place, find_places};

/// What a claim's text names.
#[derive(Clone, Debug, PartialEq)]
pub enum ParsedClaim {
    /// Coordinates.
    Position(LatLon),
    /// The built-in places with this name (at least one; more than one: the user picks).
    Places(Vec<Place>),
}

/// Why a claim's text could not be read.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ClaimParseError {
    #[error("type a place name or a latitude, longitude")]
    Empty,
    #[error("latitude {0} is out of range: it must be between -90 and 90 (90°S and 90°N)")]
    LatitudeOutOfRange(f64),
    #[error("longitude {0} is out of range: it must be between -180 and 180 (180°W and 180°E)")]
    LongitudeOutOfRange(f64),
    #[error("the {part} has {value} {unit}: {unit} must be below 60")]
    SixtyOrMore {
        part: &'static str,
        unit: &'static str,
        value: f64,
    },
    #[error("the {part} has both a minus sign and {letter}: use one")]
    SignAndHemisphere { part: &'static str, letter: char },
    #[error("{0:?} is not a number, a unit (° ' \") or a hemisphere (N S E W)")]
    Unreadable(String),
    #[error("both parts say {0}: one must be a latitude (N/S), the other a longitude (E/W)")]
    SameAxis(&'static str),
    #[error("{0}: expected a latitude and a longitude, e.g. 21.97, -159.37 or 22°04'N 159°30'W")]
    Shape(&'static str),
    #[error(
        "no place called {0:?} in the built-in places (GeoNames towns of 1000 people or more); \
         type the name, then a region or country after a comma"
    )]
    UnknownPlace(String),
}

/// Reads a claim: coordinates when the text has a digit, else a place name (`name`,
/// optionally followed by `, region` and/or `, country`).
pub fn parse_claim(text: &str) -> Result<ParsedClaim, ClaimParseError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ClaimParseError::Empty);
    }
    if text.chars().any(|c| c.is_ascii_digit()) {
        return parse_coordinates(text).map(ParsedClaim::Position);
    }
    let mut parts = text.split([',', ';']).map(str::trim);
    let name = parts.next().unwrap_or_default();
    let qualifiers: Vec<&str> = parts.filter(|p| !p.is_empty()).collect();
    let mut places = find_places(name, &qualifiers);
    if places.is_empty() && qualifiers.is_empty() {
        // Without a comma, `Lihue Hawaii`: the last words may be the region or country.
        let words: Vec<&str> = name.split_whitespace().collect();
        for split in (1..words.len()).rev() {
            places = find_places(&words[..split].join(" "), &[&words[split..].join(" ")]);
            if !places.is_empty() {
                break;
            }
        }
    }
    if places.is_empty() {
        Err(ClaimParseError::UnknownPlace(text.to_owned()))
    } else {
        Ok(ParsedClaim::Places(places))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
enum Unit {
    Degrees,
    Minutes,
    Seconds,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Token {
    Number { value: f64, unit: Option<Unit> },
    Hemisphere(char),
    Separator,
}

/// Coordinates in any of the forms of the module docs.
pub fn parse_coordinates(text: &str) -> Result<LatLon, ClaimParseError> {
    let tokens = tokenize(text)?;
    let separators = tokens.iter().filter(|t| **t == Token::Separator).count();
    let parts: Vec<Vec<Token>> = match separators {
        0 => split_without_separator(&tokens)?,
        1 => tokens
            .split(|t| *t == Token::Separator)
            .map(<[Token]>::to_vec)
            .collect(),
        _ => return Err(ClaimParseError::Shape("more than one comma")),
    };
    let [first, second] = parts.as_slice() else {
        return Err(ClaimParseError::Shape("not two parts"));
    };
    let first = Component::read(first)?;
    let second = Component::read(second)?;
    let (lat, lon) = match (first.axis(), second.axis()) {
        (Some(Axis::Longitude), Some(Axis::Latitude) | None) | (None, Some(Axis::Latitude)) => {
            (second, first)
        }
        (Some(a), Some(b)) if a == b => {
            return Err(ClaimParseError::SameAxis(match a {
                Axis::Latitude => "N/S",
                Axis::Longitude => "E/W",
            }));
        }
        _ => (first, second),
    };
    let lat_deg = lat.degrees("latitude")?;
    let lon_deg = lon.degrees("longitude")?;
    if !(-90.0..=90.0).contains(&lat_deg) {
        return Err(ClaimParseError::LatitudeOutOfRange(lat_deg));
    }
    if !(-180.0..=180.0).contains(&lon_deg) {
        return Err(ClaimParseError::LongitudeOutOfRange(lon_deg));
    }
    Ok(LatLon::new(lat_deg, lon_deg))
}

fn tokenize(text: &str) -> Result<Vec<Token>, ClaimParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if matches!(c, ',' | ';' | '/') {
            tokens.push(Token::Separator);
            i += 1;
        } else if c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | '−') {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let number: String = chars[start..i]
                .iter()
                .map(|&c| if c == '−' { '-' } else { c })
                .collect();
            let value: f64 = number
                .parse()
                .map_err(|_| ClaimParseError::Unreadable(number.clone()))?;
            // A unit right after the number (spaces allowed before a symbol).
            let mut j = i;
            while j < chars.len() && chars[j] == ' ' {
                j += 1;
            }
            let (unit, len) = unit_at(&chars[j..], j > i);
            if unit.is_some() {
                i = j + len;
            }
            tokens.push(Token::Number { value, unit });
        } else if c.is_alphabetic() {
            let start = i;
            while i < chars.len() && chars[i].is_alphabetic() {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect::<String>().to_lowercase();
            let letter = match word.as_str() {
                "n" | "north" => 'N',
                "s" | "south" => 'S',
                "e" | "east" => 'E',
                "w" | "west" => 'W',
                _ => {
                    return Err(ClaimParseError::Unreadable(
                        chars[start..i].iter().collect(),
                    ));
                }
            };
            tokens.push(Token::Hemisphere(letter));
        } else {
            let (unit, _) = unit_at(&chars[i..], false);
            return Err(ClaimParseError::Unreadable(if unit.is_some() {
                format!("{c} (a unit without a number before it)")
            } else {
                c.to_string()
            }));
        }
    }
    Ok(tokens)
}

/// The unit symbol at the start of `chars` and its length. Letters (`d`, `deg`, `m`, `min`,
/// `s`, `sec`, lower case only) count only right after the number (`after_space` false), and
/// not when another letter follows (`s` then `outh`).
fn unit_at(chars: &[char], after_space: bool) -> (Option<Unit>, usize) {
    let Some(&c) = chars.first() else {
        return (None, 0);
    };
    match c {
        '°' | 'º' | '˚' => return (Some(Unit::Degrees), 1),
        '\'' | '′' | '’' if chars.get(1) == Some(&c) => return (Some(Unit::Seconds), 2),
        '\'' | '′' | '’' | '‘' => return (Some(Unit::Minutes), 1),
        '"' | '″' | '”' | '“' => return (Some(Unit::Seconds), 1),
        _ => {}
    }
    if after_space {
        return (None, 0);
    }
    // The unit's letters, up to the next non-lower-case character (`12sN`: `s`, then `N`).
    let word: String = chars.iter().take_while(|c| c.is_lowercase()).collect();
    let unit = match word.as_str() {
        "d" | "deg" => Some(Unit::Degrees),
        "m" | "min" => Some(Unit::Minutes),
        "s" | "sec" => Some(Unit::Seconds),
        _ => None,
    };
    (
        unit,
        if unit.is_some() {
            word.chars().count()
        } else {
            0
        },
    )
}

/// Without a comma: hemisphere letters end or start a part; else a degrees unit after a
/// number starts the next part; else exactly two plain numbers.
fn split_without_separator(tokens: &[Token]) -> Result<Vec<Vec<Token>>, ClaimParseError> {
    let has_hemisphere = tokens.iter().any(|t| matches!(t, Token::Hemisphere(_)));
    let has_units = tokens
        .iter()
        .any(|t| matches!(t, Token::Number { unit: Some(_), .. }));
    let mut parts: Vec<Vec<Token>> = Vec::new();
    let mut current: Vec<Token> = Vec::new();
    let has_number = |part: &[Token]| part.iter().any(|t| matches!(t, Token::Number { .. }));
    if has_hemisphere {
        for &token in tokens {
            match token {
                Token::Hemisphere(_) if !has_number(&current) => {
                    if !current.is_empty() {
                        return Err(ClaimParseError::Shape("two hemisphere letters in a row"));
                    }
                    current.push(token);
                }
                Token::Hemisphere(_) => {
                    if matches!(current.first(), Some(Token::Hemisphere(_))) {
                        // The part started with its letter: this one starts the next part.
                        parts.push(std::mem::take(&mut current));
                        current.push(token);
                    } else {
                        current.push(token);
                        parts.push(std::mem::take(&mut current));
                    }
                }
                _ => current.push(token),
            }
        }
    } else if has_units {
        let mut last_unit: Option<Unit> = None;
        for &token in tokens {
            if let Token::Number { unit, .. } = token {
                let unit = unit.unwrap_or(match last_unit {
                    None => Unit::Degrees,
                    Some(Unit::Degrees) => Unit::Minutes,
                    Some(_) => Unit::Seconds,
                });
                if last_unit.is_some_and(|last| unit <= last) {
                    parts.push(std::mem::take(&mut current));
                }
                last_unit = Some(unit);
            }
            current.push(token);
        }
    } else {
        if tokens.len() != 2 {
            return Err(ClaimParseError::Shape(
                "can't tell where the latitude ends: separate it from the longitude with a comma",
            ));
        }
        return Ok(tokens.iter().map(|&t| vec![t]).collect());
    }
    if !current.is_empty() {
        parts.push(current);
    }
    Ok(parts)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Axis {
    Latitude,
    Longitude,
}

/// One coordinate: up to three numbers (degrees, minutes, seconds) and a hemisphere letter.
struct Component {
    numbers: Vec<(f64, Option<Unit>)>,
    hemisphere: Option<char>,
}

impl Component {
    fn read(tokens: &[Token]) -> Result<Self, ClaimParseError> {
        let mut numbers = Vec::new();
        let mut hemisphere = None;
        for token in tokens {
            match *token {
                Token::Number { value, unit } => numbers.push((value, unit)),
                Token::Hemisphere(letter) => {
                    if hemisphere.replace(letter).is_some() {
                        return Err(ClaimParseError::Shape("two hemisphere letters in one part"));
                    }
                }
                Token::Separator => return Err(ClaimParseError::Shape("an extra comma")),
            }
        }
        if numbers.is_empty() {
            return Err(ClaimParseError::Shape("a part without a number"));
        }
        if numbers.len() > 3 {
            return Err(ClaimParseError::Shape(
                "more than degrees, minutes and seconds",
            ));
        }
        Ok(Self {
            numbers,
            hemisphere,
        })
    }

    fn axis(&self) -> Option<Axis> {
        match self.hemisphere? {
            'N' | 'S' => Some(Axis::Latitude),
            _ => Some(Axis::Longitude),
        }
    }

    /// Signed decimal degrees.
    fn degrees(&self, part: &'static str) -> Result<f64, ClaimParseError> {
        let mut total = 0.0;
        let mut negative = false;
        let mut expected = Unit::Degrees;
        for (i, &(value, unit)) in self.numbers.iter().enumerate() {
            let unit = unit.unwrap_or(expected);
            if unit < expected {
                return Err(ClaimParseError::Shape(
                    "units out of order (degrees, minutes, seconds)",
                ));
            }
            if value.is_sign_negative() {
                if i > 0 {
                    return Err(ClaimParseError::Shape("a minus sign inside a coordinate"));
                }
                negative = true;
            }
            let value = value.abs();
            let (divisor, name) = match unit {
                Unit::Degrees => (1.0, ""),
                Unit::Minutes => (60.0, "minutes"),
                Unit::Seconds => (3600.0, "seconds"),
            };
            if unit != Unit::Degrees && value >= 60.0 {
                return Err(ClaimParseError::SixtyOrMore {
                    part,
                    unit: name,
                    value,
                });
            }
            total += value / divisor;
            expected = match unit {
                Unit::Degrees => Unit::Minutes,
                _ => Unit::Seconds,
            };
        }
        if let Some(letter) = self.hemisphere {
            if negative {
                return Err(ClaimParseError::SignAndHemisphere { part, letter });
            }
            negative = matches!(letter, 'S' | 'W');
        }
        Ok(if negative { -total } else { total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    fn at(text: &str) -> LatLon {
        parse_coordinates(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn assert_at(text: &str, lat_deg: f64, lon_deg: f64) {
        let p = at(text);
        assert_relative_eq!(p.lat_deg, lat_deg, epsilon = 1e-9);
        assert_relative_eq!(p.lon_deg, lon_deg, epsilon = 1e-9);
    }

    #[test]
    fn decimal_lat_then_lon() {
        assert_at("21.9, -159.5", 21.9, -159.5);
        assert_at(" 10 20 ", 10.0, 20.0);
        assert_at("10;20", 10.0, 20.0);
        assert_at("-33.8,151.2", -33.8, 151.2);
        assert_at("+45, −3.5", 45.0, -3.5);
    }

    #[test]
    fn hemisphere_letters_before_or_after() {
        assert_at("22.07 N, 159.5 W", 22.07, -159.5);
        assert_at("22.07N 159.5W", 22.07, -159.5);
        assert_at("N22.07 W159.5", 22.07, -159.5);
        assert_at("33.8 S 151.2 E", -33.8, 151.2);
        assert_at("s 33.8, e 151.2", -33.8, 151.2);
        assert_at("22.07 north, 159.5 west", 22.07, -159.5);
        // The letters say which is which, in either order.
        assert_at("159.5 W, 22.07 N", 22.07, -159.5);
        assert_at("W159.5 N22.07", 22.07, -159.5);
    }

    #[test]
    fn degrees_minutes_seconds_in_many_spellings() {
        let lihue = (22.0 + 4.0 / 60.0 + 12.0 / 3600.0, -(159.0 + 30.0 / 60.0));
        for text in [
            "22°04'12\"N 159°30'W",
            "22°04'12\"N, 159°30'W",
            "22° 04′ 12″ N 159° 30′ W",
            "22d04m12sN 159d30mW",
            "22 04 12 N 159 30 W",
            "N 22 4 12, W 159 30",
            "22°04'12''N 159°30'00\"W",
            "22º 4' 12\" N / 159º 30' W",
        ] {
            assert_at(text, lihue.0, lihue.1);
        }
        // Units without letters: the second degrees sign starts the longitude.
        assert_at("22°04' -159°30'", 22.0 + 4.0 / 60.0, -159.5);
        assert_at("22°30'S 0°", -22.5, 0.0);
    }

    #[test]
    fn bad_coordinates_say_what_is_wrong() {
        let err = |text: &str| parse_coordinates(text).unwrap_err();
        assert_eq!(err("91, 0"), ClaimParseError::LatitudeOutOfRange(91.0));
        assert_eq!(err("95 N, 10 E"), ClaimParseError::LatitudeOutOfRange(95.0));
        assert_eq!(err("0, 200"), ClaimParseError::LongitudeOutOfRange(200.0));
        assert_eq!(err("10 W, 20 E"), ClaimParseError::SameAxis("E/W"));
        assert!(matches!(
            err("22°61'N 159°W"),
            ClaimParseError::SixtyOrMore {
                part: "latitude",
                unit: "minutes",
                ..
            }
        ));
        assert_eq!(
            err("-22 S, 159 W"),
            ClaimParseError::SignAndHemisphere {
                part: "latitude",
                letter: 'S'
            }
        );
        assert!(matches!(err("1, 2, 3"), ClaimParseError::Shape(_)));
        assert!(matches!(err("1 2 3"), ClaimParseError::Shape(_)));
        assert!(matches!(err("12"), ClaimParseError::Shape(_)));
        assert!(matches!(err("12 x 3"), ClaimParseError::Unreadable(_)));
        assert!(matches!(err("1.2.3, 4"), ClaimParseError::Unreadable(_)));
        // The messages name the part.
        assert!(
            err("91, 0")
                .to_string()
                .starts_with("latitude 91 is out of range")
        );
        assert!(
            err("0, -181")
                .to_string()
                .starts_with("longitude -181 is out of range")
        );
    }

    #[test]
    fn place_names() {
        let Ok(ParsedClaim::Places(places)) = parse_claim("Lihue, Hawaii") else {
            panic!("Lihue, Hawaii is a place");
        };
        assert_eq!(places.len(), 1);
        assert_eq!(places[0].region, "Hawaii");
        assert!(places[0].position.distance_km(&LatLon::new(21.98, -159.37)) < 2.0);
        // Ambiguous: every Springfield, to pick from.
        let Ok(ParsedClaim::Places(springfields)) = parse_claim("springfield") else {
            panic!("Springfield is a place");
        };
        assert!(springfields.len() > 5);
        assert!(springfields.iter().any(|p| p.region == "Illinois"));
        assert!(springfields.iter().any(|p| p.country_code == "AU"));
        let Ok(ParsedClaim::Places(one)) = parse_claim("Springfield, Illinois, US") else {
            panic!("Springfield, Illinois is a place");
        };
        assert_eq!(one.len(), 1);
        // Without a comma, the last words may name the region or country.
        assert_eq!(parse_claim("Lihue Hawaii"), parse_claim("Lihue, Hawaii"));
        let Ok(ParsedClaim::Places(paris)) = parse_claim("paris  france") else {
            panic!("Paris is a place");
        };
        assert_eq!(paris.len(), 1, "{paris:?}");
        assert_eq!(paris[0].region, "Ile-de-France");
        assert_eq!(
            parse_claim("Atlantis, Ocean"),
            Err(ClaimParseError::UnknownPlace("Atlantis, Ocean".into()))
        );
        assert_eq!(parse_claim("  "), Err(ClaimParseError::Empty));
        assert_eq!(
            parse_claim("22.07 N, 159.5 W"),
            Ok(ParsedClaim::Position(LatLon::new(22.07, -159.5)))
        );
    }
}
