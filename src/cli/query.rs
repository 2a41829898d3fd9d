//! `geoloupe query TEXT`: where a description looks likely (issue 14). The text's CLIP feature
//! goes through GeoCLIP's image MLP and is ranked over the gallery as a photo is
//! ([`predict_features`]), so the answer reads like `locate`'s: ranked candidates with the
//! nearest place, a claim check, and the same exports.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use serde::Serialize;

use crate::domain::{Prediction, Provenance, predict_features};
use crate::export::{self, ExportFormat, xml_escape};
use crate::geo::{ClaimCheck, ClaimSource, LatLon, PLACES_ATTRIBUTION, Place};
use crate::model::GeoClip;
use crate::model::engine::{LoadEvent, Towers};
use crate::model::files::DataDirs;

#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// What the place looks like, in words ("a snowy harbour with red roofs"). CLIP reads at
    /// most 75 tokens; longer text is cut, with a warning.
    #[arg(value_name = "TEXT")]
    pub text: String,
    /// Candidates to list.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub top_k: u32,
    /// What to print.
    #[arg(long, value_enum, default_value_t = QueryFormat::Table)]
    pub format: QueryFormat,
    /// Also write the candidates to FILE: GPX (.gpx), CSV (.csv) or GeoJSON (.geojson, .json),
    /// by extension. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub export: Vec<PathBuf>,
    /// Ask with CLIP's prompt ensemble: the text put into 8 templates ("a photo taken in
    /// {}.", ...) whose features are averaged. Suits a place's name ("Kyoto") more than a
    /// description.
    #[arg(long)]
    pub ensemble: bool,
    /// A claimed location to check the answer against, as `locate --claimed` does.
    #[arg(long, value_name = "LAT,LON", value_parser = super::parse_claimed, allow_hyphen_values = true)]
    pub claimed: Option<LatLon>,
    #[command(flatten)]
    pub model: super::ModelArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum QueryFormat {
    /// For people: the candidates with the nearest place.
    Table,
    /// One JSON document: `query`, `provenance`, `candidates`, `claim`.
    Json,
    /// One row per candidate: `rank,lat_deg,lon_deg,probability,gallery_index,place`.
    Csv,
    /// GPX 1.1 waypoints, one per candidate.
    Gpx,
    /// A GeoJSON FeatureCollection, one point per candidate.
    Geojson,
}

/// One answered query, as every format writes it.
#[derive(Debug, Serialize)]
pub struct QueryDocument {
    pub query: QueryInfo,
    pub provenance: Provenance,
    /// When the answer was made, UTC, RFC 3339.
    pub estimated_at: String,
    pub candidates: Vec<QueryCandidate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim: Option<ClaimCheck>,
    pub places_attribution: &'static str,
}

#[derive(Debug, Serialize)]
pub struct QueryInfo {
    pub text: String,
    /// The prompts run: the text, or the ensemble's templates filled with it.
    pub prompts: Vec<String>,
    /// Tokens cut from the end of the text (CLIP's context is 77 with the two markers).
    pub truncated_tokens: usize,
}

#[derive(Debug, Serialize)]
pub struct QueryCandidate {
    pub rank: usize,
    pub lat_deg: f64,
    pub lon_deg: f64,
    pub probability: f32,
    pub gallery_index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<Place>,
}

impl QueryDocument {
    pub fn new(
        text: &str,
        prompts: Vec<String>,
        truncated_tokens: usize,
        prediction: &Prediction,
        claim: Option<ClaimCheck>,
        provenance: Provenance,
    ) -> Self {
        Self {
            query: QueryInfo {
                text: text.to_owned(),
                prompts,
                truncated_tokens,
            },
            provenance,
            estimated_at: export::utc_now_rfc3339(),
            candidates: prediction
                .candidates
                .iter()
                .map(|c| QueryCandidate {
                    rank: c.rank,
                    lat_deg: c.position.lat_deg,
                    lon_deg: c.position.lon_deg,
                    probability: c.probability,
                    gallery_index: c.gallery_index,
                    place: crate::geo::nearest_place(c.position),
                })
                .collect(),
            claim,
            places_attribution: PLACES_ATTRIBUTION,
        }
    }

    pub fn write(&self, format: QueryFormat, out: &mut impl Write) -> anyhow::Result<()> {
        match format {
            QueryFormat::Table => self.write_table(out)?,
            QueryFormat::Json => {
                serde_json::to_writer_pretty(&mut *out, self)?;
                writeln!(out)?;
            }
            QueryFormat::Csv => self.write_csv(out)?,
            QueryFormat::Gpx => self.write_gpx(out)?,
            QueryFormat::Geojson => {
                serde_json::to_writer_pretty(&mut *out, &self.geojson())?;
                writeln!(out)?;
            }
        }
        Ok(())
    }

    fn place_text(c: &QueryCandidate) -> String {
        c.place.as_ref().map(Place::describe).unwrap_or_default()
    }

    fn write_table(&self, out: &mut impl Write) -> std::io::Result<()> {
        let q = &self.query;
        if q.prompts.len() > 1 {
            writeln!(
                out,
                "{:?} (ensemble of {} prompts)",
                q.text,
                q.prompts.len()
            )?;
        } else {
            writeln!(out, "{:?}", q.text)?;
        }
        if let Some(warning) = self.provenance.stand_in_warning() {
            writeln!(out, "  warning: {warning}")?;
        }
        writeln!(
            out,
            "  {:>4}  {:>10}  {:>11}  {:>11}  nearest place",
            "rank", "lat_deg", "lon_deg", "probability"
        )?;
        for c in &self.candidates {
            writeln!(
                out,
                "  {:>4}  {:>10.5}  {:>11.5}  {:>11.6}  {}",
                c.rank,
                c.lat_deg,
                c.lon_deg,
                c.probability,
                Self::place_text(c)
            )?;
        }
        if let Some(claim) = &self.claim {
            writeln!(out, "  {}", crate::geo::describe_claim_check(claim))?;
        }
        Ok(())
    }

    fn write_csv(&self, out: &mut impl Write) -> std::io::Result<()> {
        let line_end = crate::export::csv::CSV_LINE_END;
        write!(
            out,
            "rank,lat_deg,lon_deg,probability,gallery_index,place{line_end}"
        )?;
        for c in &self.candidates {
            write!(
                out,
                "{},{},{},{},{},{}{line_end}",
                c.rank,
                c.lat_deg,
                c.lon_deg,
                c.probability,
                c.gallery_index,
                crate::export::csv::csv_field(&Self::place_text(c))
            )?;
        }
        Ok(())
    }

    fn write_gpx(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
        writeln!(
            out,
            r#"<gpx version="1.1" creator="geoloupe" xmlns="http://www.topografix.com/GPX/1/1">"#
        )?;
        writeln!(out, "  <metadata>")?;
        writeln!(
            out,
            "    <desc>{}</desc>",
            xml_escape(&format!(
                "Where the text {:?} looks likely: GeoCLIP's candidates, {}. {}",
                self.query.text, self.provenance.model, PLACES_ATTRIBUTION
            ))
        )?;
        writeln!(out, "    <time>{}</time>", xml_escape(&self.estimated_at))?;
        writeln!(out, "  </metadata>")?;
        for c in &self.candidates {
            writeln!(out, r#"  <wpt lat="{}" lon="{}">"#, c.lat_deg, c.lon_deg)?;
            writeln!(
                out,
                "    <name>{}</name>",
                xml_escape(&format!("{} #{}", self.query.text, c.rank))
            )?;
            writeln!(
                out,
                "    <desc>{}</desc>",
                xml_escape(&format!(
                    "probability {:.6}; {}",
                    c.probability,
                    Self::place_text(c)
                ))
            )?;
            writeln!(out, "    <src>geoloupe query</src>")?;
            writeln!(out, "  </wpt>")?;
        }
        writeln!(out, "</gpx>")
    }

    fn geojson(&self) -> serde_json::Value {
        let features: Vec<serde_json::Value> = self
            .candidates
            .iter()
            .map(|c| {
                serde_json::json!({
                    "type": "Feature",
                    // GeoJSON is [lon, lat].
                    "geometry": {"type": "Point", "coordinates": [c.lon_deg, c.lat_deg]},
                    "properties": {
                        "query": self.query.text,
                        "rank": c.rank,
                        "probability": c.probability,
                        "gallery_index": c.gallery_index,
                        "place": c.place,
                    },
                })
            })
            .collect();
        serde_json::json!({
            "type": "FeatureCollection",
            "query": self.query,
            "provenance": self.provenance,
            "estimated_at": self.estimated_at,
            "claim": self.claim,
            "places_attribution": self.places_attribution,
            "features": features,
        })
    }
}

fn format_of_export(path: &Path) -> anyhow::Result<QueryFormat> {
    match ExportFormat::from_path(path) {
        Some(ExportFormat::Gpx) => Ok(QueryFormat::Gpx),
        Some(ExportFormat::Csv) => Ok(QueryFormat::Csv),
        Some(ExportFormat::GeoJson) => Ok(QueryFormat::Geojson),
        None => Err(anyhow!(
            "--export needs a .gpx, .csv or .geojson file name: {}",
            path.display()
        )),
    }
}

pub fn query(dirs: &DataDirs, args: &QueryArgs) -> anyhow::Result<bool> {
    let exports = args
        .export
        .iter()
        .map(|p| format_of_export(p).map(|f| (p, f)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let device = args.model.device.device()?;
    let paths = args.model.paths(dirs);
    let mut gallery_bar: Option<indicatif::ProgressBar> = None;
    // The text tower only: a query never needs the image tower's 1.2 GB.
    let engine = GeoClip::load_towers(
        &paths,
        &device,
        args.model.precision,
        Towers::TextOnly,
        &mut |event| {
            if let LoadEvent::EncodingGallery { done, total } = event {
                let bar = gallery_bar.get_or_insert_with(|| {
                    eprintln!("Encoding the GPS gallery once (cached for later runs)...");
                    super::progress_bar(total as u64, "gallery")
                });
                bar.set_position(done as u64);
            }
            true
        },
    )
    .context("could not load the model")?;
    if let Some(bar) = gallery_bar {
        bar.finish_and_clear();
    }
    if let Some(note) = engine.precision_note() {
        eprintln!("warning: {note}");
    }
    let encoder = engine
        .text_encoder()
        .context("could not load the text tower")?;
    let prompts = crate::model::text::TextEncoder::prompts(&args.text, args.ensemble);
    let truncated = prompts
        .iter()
        .map(|p| encoder.tokenizer().truncated(p))
        .max()
        .unwrap_or(0);
    if truncated > 0 {
        eprintln!(
            "warning: the text is longer than CLIP reads: its last {truncated} tokens were left out"
        );
    }
    let feature = engine.text_feature(&args.text, args.ensemble)?;
    let (prediction, _) = predict_features(
        &[&feature],
        args.top_k as usize,
        |f| {
            engine
                .gallery_logits(&[f])
                .map_err(|e| e.to_string())?
                .pop()
                .ok_or_else(|| "the model returned no logits".to_owned())
        },
        |i| engine.gallery().lat_lon(i),
        None,
        None,
    )
    .map_err(|e| anyhow!(e))?;
    let claim = match (args.claimed, prediction.candidates.first()) {
        (Some(claimed), Some(top1)) => Some(crate::geo::check_claim(
            claimed,
            ClaimSource::User,
            top1.position,
            &prediction.probabilities,
            &engine.gallery().coords_lat_lon_deg,
        )?),
        _ => None,
    };
    let document = QueryDocument::new(
        &args.text,
        prompts,
        truncated,
        &prediction,
        claim,
        engine.provenance(args.model.device),
    );
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    document.write(args.format, &mut out)?;
    out.flush()?;
    for (path, format) in exports {
        let mut bytes = Vec::new();
        document.write(format, &mut bytes)?;
        export::write_atomic(path, &bytes)
            .with_context(|| format!("could not write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(true)
}
