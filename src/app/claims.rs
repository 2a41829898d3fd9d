//! Claims typed for photos: the text in the inspector's field, and the claim it was read as
//! (kept in the library with the photo, so it survives a restart). A photo's EXIF GPS is a
//! claim too: [`Claims::of`] lists both, EXIF first, and each gets its own check.
//!
//! Text is read by [`crate::geo::parse_claim`]: coordinates in any common form, or a place name
//! from the built-in places. A name shared by several places is a claim only once the user
//! picks one of them (the text then becomes that place's full label).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::geo::{ClaimParseError, ClaimSource, LatLon, ParsedClaim, parse_claim};
use crate::library::store::StoredClaim;

/// The typed claims of the collection's photos, by path.
#[derive(Default)]
pub struct Claims {
    /// The text as typed, per photo (also text that doesn't read as a claim yet).
    pub inputs: HashMap<PathBuf, String>,
    /// The claims read from the text (or picked), per photo: what is checked and saved.
    pub kept: HashMap<PathBuf, StoredClaim>,
}

/// How a claim's text reads, for the inspector.
#[derive(Clone, Debug, PartialEq)]
pub enum ClaimReading {
    /// Nothing typed.
    Empty,
    /// One position (coordinates, or the one place of that name).
    Claim(StoredClaim),
    /// Several places have this name: pick one (label and position each).
    Ambiguous(Vec<(String, LatLon)>),
    /// The text doesn't read as a claim: why.
    Invalid(String),
    /// A place name, but the place index is still being built.
    Waiting,
}

/// Reads `text` as a claim. `places_ready`: whether place names can be looked up without
/// waiting for the index (coordinates never wait).
pub fn read_claim(text: &str, places_ready: bool) -> ClaimReading {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return ClaimReading::Empty;
    }
    if !places_ready && !trimmed.chars().any(|c| c.is_ascii_digit()) {
        return ClaimReading::Waiting;
    }
    match parse_claim(trimmed) {
        Ok(ParsedClaim::Position(position)) => ClaimReading::Claim(StoredClaim {
            text: trimmed.to_owned(),
            position,
        }),
        Ok(ParsedClaim::Places(places)) if places.len() == 1 => ClaimReading::Claim(StoredClaim {
            text: trimmed.to_owned(),
            position: places[0].position,
        }),
        Ok(ParsedClaim::Places(places)) => ClaimReading::Ambiguous(
            places
                .into_iter()
                .map(|p| (full_label(&p), p.position))
                .collect(),
        ),
        Err(ClaimParseError::Empty) => ClaimReading::Empty,
        Err(e) => ClaimReading::Invalid(e.to_string()),
    }
}

/// `Springfield, Illinois, Sangamon County, United States` when the district is needed to
/// tell places apart; else name, region and country.
fn full_label(place: &crate::geo::Place) -> String {
    let mut label = place.label();
    if !place.district.is_empty() {
        label = [
            place.name.as_str(),
            place.region.as_str(),
            place.district.as_str(),
            place.country.as_str(),
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    }
    label
}

impl Claims {
    /// The typed claim of the photo at `path`.
    pub fn typed(&self, path: &Path) -> Option<&StoredClaim> {
        self.kept.get(path)
    }

    /// Every claim of a photo: its EXIF GPS (a fix, never geoloupe's own estimate), then the
    /// typed one.
    pub fn of(&self, path: &Path, exif_gps: Option<LatLon>) -> Vec<(LatLon, ClaimSource)> {
        exif_gps
            .map(|p| (p, ClaimSource::ExifGps))
            .into_iter()
            .chain(self.typed(path).map(|c| (c.position, ClaimSource::User)))
            .collect()
    }

    /// The user typed `text` (or picked `picked` from a list of places): records the text and
    /// returns the claim to keep when it changed (`Some(None)`: removed).
    pub fn set(
        &mut self,
        path: &Path,
        text: String,
        picked: Option<LatLon>,
        places_ready: bool,
    ) -> Option<Option<StoredClaim>> {
        let claim = match picked {
            Some(position) => Some(StoredClaim {
                text: text.trim().to_owned(),
                position,
            }),
            None => match read_claim(&text, places_ready) {
                ClaimReading::Claim(claim) => Some(claim),
                _ => None,
            },
        };
        self.inputs.insert(path.to_owned(), text);
        if self.kept.get(path) == claim.as_ref() {
            return None;
        }
        match &claim {
            Some(claim) => self.kept.insert(path.to_owned(), claim.clone()),
            None => self.kept.remove(path),
        };
        Some(claim)
    }

    /// A claim read back from the library for `path`; what the user typed since wins.
    pub fn restore(&mut self, path: &Path, claim: StoredClaim) {
        if self.inputs.contains_key(path) {
            return;
        }
        self.inputs.insert(path.to_owned(), claim.text.clone());
        self.kept.insert(path.to_owned(), claim);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_becomes_a_claim_once_it_reads_as_one() {
        let mut claims = Claims::default();
        let path = Path::new("/p/a.jpg");
        assert_eq!(claims.set(path, "21.9".into(), None, true), None);
        let changed = claims.set(path, "21.9, -159.5".into(), None, true);
        assert_eq!(
            changed,
            Some(Some(StoredClaim {
                text: "21.9, -159.5".into(),
                position: LatLon::new(21.9, -159.5)
            }))
        );
        // The same position again: nothing to save.
        assert_eq!(claims.set(path, "21.9, -159.5 ".into(), None, true), None);
        let exif = LatLon::new(1.0, 2.0);
        assert_eq!(
            claims.of(path, Some(exif)),
            [
                (exif, ClaimSource::ExifGps),
                (LatLon::new(21.9, -159.5), ClaimSource::User)
            ]
        );
        // Cleared: removed.
        assert_eq!(claims.set(path, String::new(), None, true), Some(None));
        assert_eq!(claims.of(path, None), []);
        // A restored claim doesn't replace what was typed since.
        claims.restore(
            path,
            StoredClaim {
                text: "0, 0".into(),
                position: LatLon::new(0.0, 0.0),
            },
        );
        assert_eq!(claims.typed(path), None);
    }

    #[test]
    fn an_ambiguous_place_waits_for_a_pick() {
        let mut claims = Claims::default();
        let path = Path::new("/p/b.jpg");
        let ClaimReading::Ambiguous(choices) = read_claim("Springfield", true) else {
            panic!("Springfield is ambiguous");
        };
        assert_eq!(claims.set(path, "Springfield".into(), None, true), None);
        let (label, position) = choices
            .iter()
            .find(|(label, _)| label.contains("Illinois"))
            .cloned()
            .unwrap();
        assert!(
            claims
                .set(path, label.clone(), Some(position), true)
                .is_some()
        );
        assert_eq!(claims.typed(path).unwrap().position, position);
        // The picked label reads as that one place again (after a restart).
        assert_eq!(
            read_claim(&label, true),
            ClaimReading::Claim(StoredClaim {
                text: label,
                position
            })
        );
        assert_eq!(read_claim("Springfield", false), ClaimReading::Waiting);
        assert!(
            matches!(read_claim("91, 0", false), ClaimReading::Invalid(e) if e.contains("latitude"))
        );
    }
}
