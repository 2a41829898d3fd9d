//! Asking the map in words (issue 14): the text typed over the map, its answer, which heat the
//! map shows, and how the selected photo's belief compares with the description's. Pure: no
//! egui.

use std::collections::HashMap;
use std::sync::Arc;

use crate::domain::{HeatPoint, PhotoResult};
use crate::geo::{ClaimCheck, ClaimSource, LatLon, check_claim_points, format_km, format_share};

/// Which belief the map's heat layer shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HeatShown {
    /// The selected photo's (as without a description).
    #[default]
    Photo,
    /// The description's.
    Description,
    /// Both side by side on one map: the mean of the two beliefs, so each one's places show.
    Both,
    /// Where both agree: the product of the two beliefs, renormalised.
    Agreement,
}

impl HeatShown {
    pub const ALL: [Self; 4] = [Self::Photo, Self::Description, Self::Both, Self::Agreement];

    pub fn label(self) -> &'static str {
        match self {
            Self::Photo => "Photo",
            Self::Description => "Words",
            Self::Both => "Both",
            Self::Agreement => "Where both agree",
        }
    }

    pub fn hint(self) -> &'static str {
        match self {
            Self::Photo => "The selected photo's heatmap",
            Self::Description => "The description's heatmap",
            Self::Both => "Both heatmaps at once: the mean of the two beliefs",
            Self::Agreement => {
                "Where the photo and the description agree: the product of the two beliefs, \
                 renormalised"
            }
        }
    }
}

/// A description's answer.
#[derive(Clone, Debug)]
pub struct Described {
    pub text: String,
    pub ensemble: bool,
    pub result: PhotoResult,
}

/// The text box, the query in flight and the last answer.
#[derive(Debug, Default)]
pub struct Descriptions {
    /// What is typed in the box.
    pub input: String,
    /// Ask with CLIP's prompt templates.
    pub ensemble: bool,
    /// The newest request sent, with its text; older answers are dropped.
    pub pending: Option<(u64, String)>,
    next_request: u64,
    pub answer: Option<Described>,
    pub error: Option<String>,
    pub shown: HeatShown,
}

impl Descriptions {
    /// A new request for `text`: its id, to send with it.
    pub fn ask(&mut self, text: &str) -> u64 {
        self.next_request += 1;
        self.pending = Some((self.next_request, text.to_owned()));
        self.error = None;
        self.next_request
    }

    /// Takes the answer to `request` when it is the newest one; `false` for a stale answer.
    pub fn answered(&mut self, request: u64, answer: Result<Described, String>) -> bool {
        if self.pending.as_ref().map(|(r, _)| *r) != Some(request) {
            return false;
        }
        self.pending = None;
        match answer {
            Ok(answer) => {
                self.answer = Some(answer);
                if self.shown == HeatShown::Photo {
                    self.shown = HeatShown::Description;
                }
            }
            Err(error) => self.error = Some(error),
        }
        true
    }

    /// Forgets the answer and the text; the map shows the photo's heat again.
    pub fn clear(&mut self) {
        self.pending = None;
        self.answer = None;
        self.error = None;
        self.input.clear();
        self.shown = HeatShown::Photo;
    }

    /// What the map's heat layer shows, given the selected photo's result: `None` for the
    /// photo's own (the usual layer, continuous when zoomed in), else a key that changes with
    /// what is shown. [`Self::heat_points`] gives the points (only asked for when the key
    /// changes: combining two heatmaps is not for every frame).
    pub fn heat_key(&self, photo: Option<&PhotoResult>) -> Option<String> {
        let answer = self.answer.as_ref()?;
        let what = match (self.shown, photo) {
            (HeatShown::Photo, _) => return None,
            (HeatShown::Description, _) | (_, None) => "text",
            (HeatShown::Both, Some(_)) => "both",
            (HeatShown::Agreement, Some(_)) => "agree",
        };
        Some(format!(
            "words:{what}:{}:{}:{}:{}",
            answer.result.computed_at_unix_secs,
            answer.text,
            answer.ensemble,
            photo.map(|p| p.computed_at_unix_secs).unwrap_or(0)
        ))
    }

    /// The points for [`Self::heat_key`]'s heatmap (empty for the photo's own).
    pub fn heat_points(&self, photo: Option<&PhotoResult>) -> Vec<HeatPoint> {
        let Some(answer) = &self.answer else {
            return Vec::new();
        };
        match (self.shown, photo) {
            (HeatShown::Photo, _) => Vec::new(),
            (HeatShown::Description, _) | (_, None) => answer.result.heat.clone(),
            (HeatShown::Both, Some(photo)) => {
                combine(&photo.heat, &answer.result.heat, Combine::Mean)
            }
            (HeatShown::Agreement, Some(photo)) => {
                combine(&photo.heat, &answer.result.heat, Combine::Product)
            }
        }
    }

    /// The words' feature for the continuous layer (zoomed in, the location encoder sampled
    /// between the gallery's points, as for a photo), when the map shows the words alone, with
    /// its key; `None` when the map shows the photo's heat or a combination (those stay on the
    /// gallery layer).
    pub fn continuous_source(&self, photo_located: bool) -> Option<(String, Arc<[f32]>)> {
        let answer = self.answer.as_ref()?;
        let words_alone = self.shown == HeatShown::Description
            || (self.shown != HeatShown::Photo && !photo_located);
        let feature = answer.result.image_feature.clone()?;
        words_alone.then(|| {
            (
                format!(
                    "words\u{0}{}\u{0}{}\u{0}{}",
                    answer.text, answer.ensemble, answer.result.computed_at_unix_secs
                ),
                feature,
            )
        })
    }

    /// Both as one, for tests.
    pub fn heat(&self, photo: Option<&PhotoResult>) -> Option<(String, Vec<HeatPoint>)> {
        self.heat_key(photo)
            .map(|key| (key, self.heat_points(photo)))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Combine {
    Mean,
    Product,
}

/// Probability per gallery position (the heat points of one gallery share positions; a
/// position listed twice, as the gallery's duplicate rows are, adds up).
fn by_position(points: &[HeatPoint]) -> HashMap<(u64, u64), (LatLon, f64)> {
    let mut out: HashMap<(u64, u64), (LatLon, f64)> = HashMap::with_capacity(points.len());
    for p in points {
        let key = (p.position.lat_deg.to_bits(), p.position.lon_deg.to_bits());
        out.entry(key).or_insert((p.position, 0.0)).1 += f64::from(p.probability);
    }
    out
}

/// Two beliefs over the same gallery as one, normalised to sum to 1 (most probable first).
fn combine(a: &[HeatPoint], b: &[HeatPoint], how: Combine) -> Vec<HeatPoint> {
    let (a, b) = (by_position(a), by_position(b));
    let mut out: Vec<(LatLon, f64)> = match how {
        Combine::Mean => {
            let mut all = a.clone();
            for (key, (position, p)) in &b {
                all.entry(*key).or_insert((*position, 0.0)).1 += p;
            }
            all.into_values().map(|(pos, p)| (pos, p / 2.0)).collect()
        }
        Combine::Product => a
            .iter()
            .filter_map(|(key, (position, p))| b.get(key).map(|(_, q)| (*position, p * q)))
            .collect(),
    };
    let total: f64 = out.iter().map(|(_, p)| p).sum();
    if total <= 0.0 {
        return Vec::new();
    }
    out.sort_by(|x, y| {
        y.1.total_cmp(&x.1)
            .then(x.0.lat_deg.total_cmp(&y.0.lat_deg))
    });
    out.into_iter()
        .map(|(position, p)| HeatPoint {
            position,
            probability: (p / total) as f32,
        })
        .collect()
}

/// The selected photo against a description, in the claim check's figures: the description's
/// best guess taken as the claim (distance to the photo's best guess, the photo's belief
/// within 25 and 200 km of it), plus the probability both beliefs share.
#[derive(Clone, Debug, PartialEq)]
pub struct PhotoVsWords {
    pub check: ClaimCheck,
    /// `sum(min(p_photo, p_words))` over the gallery points both heatmaps hold: 1 for the same
    /// belief, 0 for beliefs with no place in common (a lower bound: each heatmap holds most,
    /// not all, of its belief).
    pub shared_probability: f64,
}

impl PhotoVsWords {
    pub fn new(photo: &PhotoResult, words: &PhotoResult) -> Option<Self> {
        let photo_best = photo.candidates.first()?.position;
        let words_best = words.candidates.first()?.position;
        let check = check_claim_points(
            words_best,
            ClaimSource::User,
            photo_best,
            photo.heat.iter().map(|h| (h.position, h.probability)),
        )
        .ok()?;
        let (a, b) = (by_position(&photo.heat), by_position(&words.heat));
        let shared_probability = a
            .iter()
            .filter_map(|(key, (_, p))| b.get(key).map(|(_, q)| p.min(*q)))
            .sum::<f64>()
            .clamp(0.0, 1.0);
        Some(Self {
            check,
            shared_probability,
        })
    }

    fn apart(&self) -> String {
        match self.check.top1_distance_km {
            km if km < 1.0 => "under 1 km".to_owned(),
            km => format!("{} km", format_km(km)),
        }
    }

    /// The distance and the shared belief only, for a small map.
    pub fn short(&self) -> String {
        format!(
            "Best guesses {} apart; they share {} of their belief.",
            self.apart(),
            format_share(self.shared_probability)
        )
    }

    /// One sentence, no verdict (as the claim check's).
    pub fn describe(&self) -> String {
        let apart = self.apart();
        format!(
            "Best guesses {apart} apart; {} of the photo's belief lies within 25 km of the \
             description's best guess, {} within 200 km; the two beliefs share {}.",
            format_share(self.check.probability_within_25_km),
            format_share(self.check.probability_within_200_km),
            format_share(self.shared_probability)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Candidate, Provenance};

    fn result(points: &[(f64, f64, f32)], at: i64) -> PhotoResult {
        let heat: Vec<HeatPoint> = points
            .iter()
            .map(|&(lat, lon, p)| HeatPoint {
                position: LatLon::new(lat, lon),
                probability: p,
            })
            .collect();
        PhotoResult {
            candidates: heat
                .iter()
                .enumerate()
                .map(|(i, h)| Candidate {
                    rank: i + 1,
                    gallery_index: i,
                    position: h.position,
                    probability: h.probability,
                    refined: None,
                })
                .collect(),
            heat_mass: heat.iter().map(|h| h.probability).sum(),
            heat,
            gallery_len: 10,
            top_k: 5,
            provenance: Provenance::default(),
            computed_at_unix_secs: at,
            image_feature: None,
            group: None,
        }
    }

    #[test]
    fn only_the_newest_answer_is_kept_and_it_shows_the_words() {
        let mut d = Descriptions::default();
        let first = d.ask("harbour");
        let second = d.ask("desert");
        let words = |text: &str| Described {
            text: text.into(),
            ensemble: false,
            result: result(&[(10.0, 20.0, 1.0)], 1),
        };
        assert!(!d.answered(first, Ok(words("harbour"))));
        assert!(d.answer.is_none());
        assert!(d.answered(second, Ok(words("desert"))));
        assert_eq!(d.answer.as_ref().map(|a| a.text.as_str()), Some("desert"));
        assert_eq!(d.shown, HeatShown::Description);
        // A failure keeps the last answer and says why.
        let third = d.ask("sea");
        assert!(d.answered(third, Err("no text tower".into())));
        assert_eq!(d.error.as_deref(), Some("no text tower"));
        assert!(d.answer.is_some());
        d.clear();
        assert!(d.answer.is_none() && d.heat(None).is_none() && d.shown == HeatShown::Photo);
    }

    #[test]
    fn the_map_shows_the_chosen_belief() {
        let photo = result(&[(0.0, 0.0, 0.75), (10.0, 10.0, 0.25)], 5);
        let mut d = Descriptions::default();
        let request = d.ask("x");
        let words = result(&[(10.0, 10.0, 0.5), (20.0, 20.0, 0.5)], 6);
        assert!(d.answered(
            request,
            Ok(Described {
                text: "x".into(),
                ensemble: false,
                result: words.clone(),
            })
        ));
        let (_, shown) = d.heat(Some(&photo)).unwrap();
        assert_eq!(shown, words.heat);

        d.shown = HeatShown::Both;
        let (_, both) = d.heat(Some(&photo)).unwrap();
        let p = |pts: &[HeatPoint], lat: f64| {
            pts.iter()
                .find(|h| h.position.lat_deg == lat)
                .map(|h| h.probability)
                .unwrap_or(0.0)
        };
        assert!((p(&both, 0.0) - 0.375).abs() < 1e-6);
        assert!((p(&both, 10.0) - 0.375).abs() < 1e-6);
        assert!((p(&both, 20.0) - 0.25).abs() < 1e-6);

        // Only the place both hold remains, with all the belief.
        d.shown = HeatShown::Agreement;
        let (key, agree) = d.heat(Some(&photo)).unwrap();
        assert_eq!(agree.len(), 1);
        assert_eq!(agree[0].position, LatLon::new(10.0, 10.0));
        assert!((agree[0].probability - 1.0).abs() < 1e-6);
        // Without a photo, the words alone.
        assert_eq!(d.heat(None).unwrap().1, words.heat);
        assert_ne!(d.heat(None).unwrap().0, key);

        d.shown = HeatShown::Photo;
        assert!(d.heat(Some(&photo)).is_none());

        // Zoomed in, the words alone take the continuous layer: only with their feature.
        assert!(d.continuous_source(true).is_none());
        d.shown = HeatShown::Description;
        assert!(d.continuous_source(true).is_none(), "no feature kept");
        if let Some(answer) = &mut d.answer {
            answer.result.image_feature = Some(Arc::from([1.0f32, 0.0]));
        }
        let (key, feature) = d.continuous_source(true).unwrap();
        assert!(key.starts_with("words"));
        assert_eq!(&*feature, &[1.0, 0.0]);
        d.shown = HeatShown::Agreement;
        assert!(d.continuous_source(true).is_none());
        assert!(
            d.continuous_source(false).is_some(),
            "no photo: the words alone"
        );
    }

    #[test]
    fn photo_against_words_reads_like_a_claim_check() {
        let photo = result(&[(0.0, 0.0, 0.6), (0.1, 0.0, 0.3), (10.0, 10.0, 0.1)], 1);
        let words = result(&[(0.1, 0.0, 0.5), (10.0, 10.0, 0.5)], 2);
        let vs = PhotoVsWords::new(&photo, &words).unwrap();
        // The words' best guess (0.1, 0) is 11 km from the photo's.
        assert!((vs.check.top1_distance_km - 11.1).abs() < 0.1);
        assert!((vs.check.probability_within_25_km - 0.9).abs() < 1e-6);
        // min(0.3, 0.5) + min(0.1, 0.5).
        assert!((vs.shared_probability - 0.4).abs() < 1e-6);
        let text = vs.describe();
        assert!(text.contains("Best guesses 11 km apart"), "{text}");
        assert!(text.contains("90 % of the photo's belief"), "{text}");
        assert!(text.contains("share 40 %"), "{text}");
        assert_eq!(
            vs.short(),
            "Best guesses 11 km apart; they share 40 % of their belief."
        );
        // The same belief shares everything.
        let same = PhotoVsWords::new(&photo, &photo).unwrap();
        assert!((same.shared_probability - 1.0).abs() < 1e-6);
        assert!(same.describe().starts_with("Best guesses under 1 km apart"));
    }
}
