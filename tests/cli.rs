//! The command line, run as a user would: `geoloupe locate` with the tiny test backbone and
//! the real GeoCLIP heads, every output format, and bad inputs that must each give one error
//! line naming the file while the rest go on.
#![allow(clippy::unwrap_used)] // test helpers, as `allow-unwrap-in-tests` allows in #[test] fns

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

fn geoloupe(args: &[&str]) -> Output {
    let dirs = data_dirs();
    Command::new(env!("CARGO_BIN_EXE_geoloupe"))
        .arg("--data-dir")
        .arg(&dirs.data_dir)
        .args(args)
        .output()
        .expect("run geoloupe")
}

fn locate(extra: &[&str], photos: &[PathBuf]) -> Output {
    let backbone = tiny_clip();
    let mut args = vec!["locate", "--backbone", backbone.to_str().unwrap()];
    args.extend_from_slice(extra);
    let photos: Vec<&str> = photos.iter().map(|p| p.to_str().unwrap()).collect();
    args.extend(photos);
    geoloupe(&args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn locate_prints_five_ranked_candidates() {
    let out = locate(&[], &[image_path("kauai.jpg")]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            l.trim_start()
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
        .collect();
    assert_eq!(rows.len(), 5, "{stdout}");
    assert!(
        rows[0].trim_start().starts_with('1') && rows[4].trim_start().starts_with('5'),
        "{stdout}"
    );
}

#[test]
fn json_and_csv_carry_the_same_candidates() {
    let photo = image_path("landscape.jpg");
    let json = locate(
        &["--format", "json", "--top-k", "3"],
        std::slice::from_ref(&photo),
    );
    assert!(json.status.success(), "{}", text(&json.stderr));
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let candidates = value["photos"][0]["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 3);
    assert!(
        value["provenance"]["weights_sha256"]
            .as_str()
            .unwrap()
            .len()
            == 64
    );

    let csv = locate(&["--format", "csv", "--top-k", "3"], &[photo]);
    let csv_text = text(&csv.stdout);
    let lines: Vec<&str> = csv_text.lines().collect();
    // `path_bytes_hex` (issue 8, item 11): a path that isn't plain UTF-8 text, byte for byte.
    // Issue 11 added columns at the end (refined points, groups); the first ones stay.
    assert_eq!(
        lines[0],
        "path,rank,lat_deg,lon_deg,probability,gallery_index,path_bytes_hex,\
         refined_lat_deg,refined_lon_deg,refined_similarity,group_size"
    );
    assert_eq!(lines.len(), 4);
    for (line, c) in lines[1..].iter().zip(candidates) {
        let fields: Vec<&str> = line.split(',').collect();
        let lat: f64 = fields[2].parse().unwrap();
        approx::assert_abs_diff_eq!(
            lat,
            c["position"]["lat_deg"].as_f64().unwrap(),
            epsilon = 1e-5
        );
        assert_eq!(fields[5], c["gallery_index"].to_string());
    }
}

#[test]
fn gpx_output_is_wellformed_gpx_1_1() {
    let out = locate(
        &["--format", "gpx", "--top-k", "2"],
        &[image_path("portrait.png")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let gpx = text(&out.stdout);
    assert!(gpx.contains(r#"<gpx version="1.1""#));
    assert_eq!(gpx.matches("<wpt ").count(), 2);
    assert!(gpx.contains("<name>portrait.png</name>"));
}

/// A PNG that declares 30000 x 30000 pixels (2.7 GB decoded) in a few hundred bytes.
fn write_decompression_bomb(path: &Path) {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&30_000u32.to_be_bytes());
    ihdr.extend_from_slice(&30_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    // A zlib stream of a few empty stored blocks: far too little data, as bombs go.
    chunk(
        &mut png,
        b"IDAT",
        &[
            0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01,
        ],
    );
    chunk(&mut png, b"IEND", &[]);
    std::fs::write(path, png).unwrap();
}

/// A file that exists as a name but can't be opened. Unix (tests run as root, where permissions
/// don't stop reads): a symbolic link to itself, which fails with ELOOP.
#[cfg(unix)]
fn make_unreadable(path: &Path) -> Option<std::fs::File> {
    std::os::unix::fs::symlink(path, path).unwrap();
    None
}

/// A file that exists as a name but can't be opened. Windows: a file held open with no sharing
/// (as by a program that locks the photo), so opening it fails with a sharing violation while
/// the returned handle lives.
#[cfg(windows)]
fn make_unreadable(path: &Path) -> Option<std::fs::File> {
    use std::os::windows::fs::OpenOptionsExt as _;
    let held = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .share_mode(0)
        .open(path)
        .unwrap();
    Some(held)
}

#[test]
fn bad_inputs_each_get_one_error_line_and_the_rest_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = dir.path().join("bomb.png");
    write_decompression_bomb(&bomb);
    let unreadable = dir.path().join("unreadable.jpg");
    let _held = make_unreadable(&unreadable);
    let bad = fixtures().join("images").join("bad");
    let inputs = vec![
        image_path("small.png"),
        bad.join("empty.jpg"),
        bad.join("not_an_image.jpg"),
        bad.join("truncated.jpg"),
        bomb.clone(),
        dir.path().join("missing.jpg"),
        image_path("grey.png"),
    ];
    let mut explicit = inputs.clone();
    explicit.push(unreadable.clone());
    let out = locate(&["--top-k", "1"], &explicit);
    let stderr = text(&out.stderr);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "some failed -> exit 1; stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    for name in [
        "empty.jpg",
        "not_an_image.jpg",
        "truncated.jpg",
        "bomb.png",
        "missing.jpg",
        "unreadable.jpg",
    ] {
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("error:") && l.contains(name))
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "one error line for {name}; stderr: {stderr}"
        );
    }
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("bomb.png") && l.contains("too large")),
        "{stderr}"
    );
    assert!(
        stdout.contains("small.png") && stdout.contains("grey.png"),
        "good photos still ranked: {stdout}"
    );
}

#[test]
fn folders_are_searched_recursively() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a").join("b");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::copy(image_path("small.png"), nested.join("one.PNG")).unwrap();
    std::fs::copy(image_path("grey.png"), dir.path().join("two.png")).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a photo").unwrap();
    let out = locate(
        &["--format", "json", "--top-k", "1"],
        &[dir.path().to_owned()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["photos"].as_array().unwrap().len(), 2);
}

/// A HEIC in a folder: found by its extension, located, with its EXIF GPS (read from the HEIF's
/// Exif item) as the claim and its capture time; a build without the `heif` feature names the
/// file and says how to get a build that reads it.
#[test]
fn heic_photos_are_located_with_their_exif_claim() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        image_path("heic_gps.heic"),
        dir.path().join("IMG_0001.HEIC"),
    )
    .unwrap();
    let out = locate(
        &["--format", "json", "--top-k", "1"],
        &[dir.path().to_owned()],
    );
    let stderr = text(&out.stderr);
    if cfg!(feature = "heif") {
        assert!(out.status.success(), "{stderr}");
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let photo = &value["photos"][0];
        assert!(
            photo["path"].as_str().unwrap().ends_with("IMG_0001.HEIC"),
            "{photo}"
        );
        assert_eq!(photo["candidates"].as_array().unwrap().len(), 1, "{photo}");
        assert_eq!(photo["claim"]["source"], "exif-gps", "{photo}");
        let lat_deg = photo["claim"]["claimed"]["lat_deg"].as_f64().unwrap();
        assert!((lat_deg - 48.8566).abs() < 1e-4, "{photo}");
        assert_eq!(photo["taken_at"], "2024-05-18T09:41:07+01:00", "{photo}");
    } else {
        assert!(
            stderr.contains("no HEIC/HEIF support") && stderr.contains("IMG_0001.HEIC"),
            "{stderr}"
        );
    }
}

#[test]
fn missing_backbone_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = geoloupe(&[
        "locate",
        "--backbone",
        dir.path().to_str().unwrap(),
        image_path("small.png").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("CLIP backbone") && stderr.contains("geoloupe model download"),
        "{stderr}"
    );
}

#[test]
fn model_info_lists_installed_and_missing() {
    let out = geoloupe(&["model", "info"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("GeoCLIP release (heads + gallery): installed"),
        "{stdout}"
    );
    assert!(stdout.contains("model.safetensors"), "{stdout}");
    assert!(
        stdout.contains("CLIP backbone: MISSING") && stdout.contains("geoloupe model download"),
        "{stdout}"
    );
}

#[test]
fn model_info_describes_the_installed_backbone() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_geoloupe"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    let import = run(&["model", "import", tiny_clip().to_str().unwrap()]);
    assert!(import.status.success(), "{}", text(&import.stderr));
    let stdout = text(&run(&["model", "info"]).stdout);
    // The tiny test backbone is installed, and said not to be GeoCLIP's ViT-L/14.
    assert!(stdout.contains("CLIP backbone: installed"), "{stdout}");
    assert!(
        stdout.contains("model:  not ViT-L/14, GeoCLIP's backbone: 2 layers"),
        "{stdout}"
    );
    // The import took the tokenizer along, and info says text queries can run.
    assert!(
        dir.path()
            .join("models/clip-vit-large-patch14/tokenizer.json")
            .is_file()
    );
    assert!(
        stdout.contains("text queries: 2 layers, width 32, 4 heads, context 77, vocabulary 49408")
            && stdout.contains("+ tokenizer.json"),
        "{stdout}"
    );
}

fn query(extra: &[&str]) -> Output {
    let backbone = tiny_clip();
    let mut args = vec!["query", "--backbone", backbone.to_str().unwrap()];
    args.extend_from_slice(extra);
    geoloupe(&args)
}

fn recorded_query(i: usize) -> serde_json::Value {
    let path = fixtures().join("text").join("expected.json");
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    value["queries"][i].clone()
}

#[test]
fn query_ranks_a_description_as_pytorch_and_exports_it() {
    let recorded = recorded_query(0);
    let text_arg = recorded["text"].as_str().unwrap();
    let out = query(&[text_arg, "--format", "json"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["query"]["text"], text_arg);
    let got: Vec<u64> = value["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["gallery_index"].as_u64().unwrap())
        .collect();
    let want: Vec<u64> = recorded["top5_indices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_u64().unwrap())
        .collect();
    assert_eq!(got, want);
    assert!(
        value["provenance"]["backbone"]
            .as_str()
            .unwrap()
            .contains("NOT CLIP ViT-L/14")
    );

    // The table says what it is, and an export is read back by gpsbabel.
    let dir = tempfile::tempdir().unwrap();
    let gpx = dir.path().join("q.gpx");
    let geojson = dir.path().join("q.geojson");
    let out = query(&[
        text_arg,
        "--top-k",
        "3",
        "--export",
        gpx.to_str().unwrap(),
        "--export",
        geojson.to_str().unwrap(),
        "--claimed",
        "48.85,2.35",
    ]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.starts_with(&format!("{text_arg:?}")), "{table}");
    assert!(
        table.contains("warning: "),
        "a stand-in backbone is said: {table}"
    );
    assert!(table.contains("the claim"), "{table}");
    let csv = std::process::Command::new("gpsbabel")
        .args(["-i", "gpx", "-f"])
        .arg(&gpx)
        .args(["-o", "unicsv", "-F", "-"])
        .output()
        .expect("gpsbabel (apt-get install gpsbabel)");
    assert!(csv.status.success(), "{}", text(&csv.stderr));
    assert_eq!(
        text(&csv.stdout).lines().count(),
        1 + 3,
        "{}",
        text(&csv.stdout)
    );
    let geo: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&geojson).unwrap()).unwrap();
    let first = &geo["features"][0]["geometry"]["coordinates"];
    let top1 = &recorded["top5_latlon"][0];
    // GeoJSON is [lon, lat]; the fixture [lat, lon].
    assert!((first[0].as_f64().unwrap() - top1[1].as_f64().unwrap()).abs() < 1e-4);
    assert!((first[1].as_f64().unwrap() - top1[0].as_f64().unwrap()).abs() < 1e-4);
    assert!(geo["claim"]["top1_distance_km"].as_f64().unwrap() > 0.0);
}

#[test]
fn query_ensembles_and_long_texts() {
    let out = query(&["Kyoto", "--ensemble", "--format", "json", "--top-k", "1"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["query"]["prompts"].as_array().unwrap().len(), 8);
    assert_eq!(value["query"]["prompts"][0], "a photo taken in Kyoto.");

    let long = "a harbour ".repeat(60);
    let out = query(&[&long, "--format", "csv"]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("warning: the text is longer than CLIP reads"),
        "{stderr}"
    );
    assert_eq!(text(&out.stdout).lines().count(), 1 + 5);
}

#[test]
fn download_without_consent_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_geoloupe"))
        .args([
            "--data-dir",
            dir.path().to_str().unwrap(),
            "model",
            "download",
            "--endpoint",
            "http://127.0.0.1:9",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--yes"), "{}", text(&out.stderr));
    assert!(!dir.path().join("models").exists());
}

/// `geoloupe locate` run from `cwd` (where relative output paths start).
fn locate_in(cwd: &Path, extra: &[&str], photos: &[&Path]) -> Output {
    let dirs = data_dirs();
    Command::new(env!("CARGO_BIN_EXE_geoloupe"))
        .current_dir(cwd)
        .arg("--data-dir")
        .arg(&dirs.data_dir)
        .args(["locate", "--backbone"])
        .arg(tiny_clip())
        .args(extra)
        .args(photos)
        .output()
        .expect("run geoloupe")
}

/// `path` made absolute against `cwd` (already-absolute paths stay as they are).
fn resolved(cwd: &Path, path: &Path) -> PathBuf {
    let joined = cwd.join(path);
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[test]
fn locate_finds_the_same_photos_as_the_app() {
    use std::sync::atomic::AtomicBool;

    use geoloupe::library::scan::{ScanOptions, scan_paths};

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let hidden_dir = root.join("sub").join(".hiddendir");
    std::fs::create_dir_all(&hidden_dir).unwrap();
    for name in ["a.jpe", "b.jfif", ".hidden.jpg", "sub/d.JPG"] {
        std::fs::copy(image_path("kauai.jpg"), root.join(name)).unwrap();
    }
    std::fs::copy(image_path("small.png"), hidden_dir.join("c.jpg")).unwrap();
    std::fs::write(root.join("notes.txt"), "not a photo").unwrap();

    let scanned: Vec<PathBuf> = scan_paths(
        &[root.to_owned()],
        ScanOptions { read_exif: false },
        &AtomicBool::new(false),
        &mut |_| {},
        &mut |_| {},
    )
    .unwrap()
    .into_iter()
    .map(|e| e.path)
    .collect();
    assert_eq!(scanned.len(), 3, "a.jpe, b.jfif, sub/d.JPG: {scanned:?}");

    let out = locate_in(root, &["--format", "json", "--top-k", "1"], &[root]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed: Vec<PathBuf> = value["photos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| resolved(root, Path::new(p["path"].as_str().unwrap())))
        .collect();
    assert_eq!(listed, scanned);
}

/// Hex digits -> bytes.
#[cfg_attr(windows, allow(dead_code))] // used by the Unix-only non-UTF-8 test
fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[cfg(unix)]
#[test]
fn non_utf8_file_names_are_written_losslessly_in_every_format() {
    use std::os::unix::ffi::OsStrExt as _;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let latin1 = std::ffi::OsStr::from_bytes(b"caf\xe9.jpg");
    std::fs::copy(image_path("kauai.jpg"), root.join(latin1)).unwrap();
    std::fs::copy(image_path("small.png"), root.join("plain.png")).unwrap();
    let wanted: &[u8] = b"caf\xe9.jpg";
    // Relative to the current folder (the default): the file names themselves.
    let recovered = |path: &str, hex: Option<&str>| -> Vec<u8> {
        match hex {
            Some(h) if !h.is_empty() => unhex(h),
            _ => path.as_bytes().to_vec(),
        }
    };
    for format in ["json", "jsonl", "csv", "table", "gpx", "geojson"] {
        let out = locate_in(root, &["--format", format, "--top-k", "2"], &[root]);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "{format}: {stderr}");
        assert!(!stderr.contains("panicked"), "{format}: {stderr}");
        let mut paths: Vec<Vec<u8>> = match format {
            "json" => {
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                v["photos"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| recovered(p["path"].as_str().unwrap(), p["path_bytes_hex"].as_str()))
                    .collect()
            }
            "jsonl" => stdout
                .lines()
                .map(|line| {
                    let p: serde_json::Value = serde_json::from_str(line).unwrap();
                    recovered(p["path"].as_str().unwrap(), p["path_bytes_hex"].as_str())
                })
                .collect(),
            "csv" => {
                let rows = parse_csv(&stdout);
                let header = &rows[0];
                let hex = header.iter().position(|h| h == "path_bytes_hex").unwrap();
                rows[1..]
                    .iter()
                    .filter(|r| r[1] == "1")
                    .map(|r| recovered(&r[0], Some(&r[hex])))
                    .collect()
            }
            "table" => {
                let lines: Vec<&str> = stdout.lines().collect();
                lines
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| !l.starts_with(' '))
                    .map(|(i, l)| {
                        let hex = lines
                            .get(i + 1)
                            .and_then(|next| next.trim().strip_prefix("path bytes (hex): "));
                        recovered(l, hex)
                    })
                    .collect()
            }
            "gpx" => {
                let mut found = Vec::new();
                for wpt in stdout.split("<wpt ").skip(1) {
                    let field = |name: &str| {
                        let open = format!("<geoloupe:{name}>");
                        let start = wpt.find(&open)? + open.len();
                        let end = wpt[start..].find('<')? + start;
                        Some(wpt[start..end].to_owned())
                    };
                    found.push(recovered(
                        &field("photo").unwrap(),
                        field("photoBytesHex").as_deref(),
                    ));
                }
                found.dedup();
                found
            }
            _ => {
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                let mut found: Vec<Vec<u8>> = v["features"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| {
                        let p = &f["properties"];
                        recovered(p["photo"].as_str().unwrap(), p["photo_bytes_hex"].as_str())
                    })
                    .collect();
                found.dedup();
                found
            }
        };
        paths.sort();
        assert_eq!(
            paths,
            vec![wanted.to_vec(), b"plain.png".to_vec()],
            "{format}: {stdout}"
        );
    }
}

/// The `photo` fields (GPX `geoloupe:photo`, CSV `photo`, GeoJSON `properties.photo`) of the
/// three export files in `dir`.
fn exported_photo_paths(dir: &Path) -> [Vec<String>; 3] {
    let gpx = std::fs::read_to_string(dir.join("out.gpx")).unwrap();
    let from_gpx = gpx
        .split("<geoloupe:photo>")
        .skip(1)
        .map(|s| s[..s.find('<').unwrap()].to_owned())
        .collect();
    let rows = parse_csv(&std::fs::read_to_string(dir.join("out.csv")).unwrap());
    let col = rows[0].iter().position(|h| h == "photo").unwrap();
    let from_csv = rows[1..].iter().map(|r| r[col].clone()).collect();
    let geojson: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("out.geojson")).unwrap()).unwrap();
    let from_geojson = geojson["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["photo"].as_str().unwrap().to_owned())
        .collect();
    [from_gpx, from_csv, from_geojson]
}

#[test]
fn exports_write_photo_paths_relative_by_default_names_or_full_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let photos = root.join("photos");
    let exports = root.join("exports");
    std::fs::create_dir_all(photos.join("trip")).unwrap();
    std::fs::create_dir_all(&exports).unwrap();
    std::fs::copy(image_path("kauai.jpg"), photos.join("kauai.jpg")).unwrap();
    std::fs::copy(
        image_path("small.png"),
        photos.join("trip").join("small.png"),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let targets: Vec<String> = ["out.gpx", "out.csv", "out.geojson"]
            .iter()
            .map(|n| exports.join(n).to_str().unwrap().to_owned())
            .collect();
        let mut args = vec!["--top-k", "1", "--best-only"];
        args.extend_from_slice(extra);
        for target in &targets {
            args.extend(["--export", target.as_str()]);
        }
        // Run from elsewhere: the paths follow the export file, not the current folder.
        let out = locate_in(Path::new("/"), &args, &[&photos]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let files: Vec<String> = ["out.gpx", "out.csv", "out.geojson"]
            .iter()
            .map(|n| std::fs::read_to_string(exports.join(n)).unwrap())
            .collect();
        (exported_photo_paths(&exports), files)
    };
    let private = root.to_str().unwrap();

    // Relative paths use the system's separator (`..\\photos\\kauai.jpg` on Windows).
    let sep = std::path::MAIN_SEPARATOR_STR;
    let (by_default, files) = run(&[]);
    for (paths, file) in by_default.iter().zip(&files) {
        assert_eq!(
            paths,
            &[
                format!("..{sep}photos{sep}kauai.jpg"),
                format!("..{sep}photos{sep}trip{sep}small.png")
            ]
        );
        assert!(!file.contains(private), "{file}");
    }
    let (relative, _) = run(&["--paths", "relative"]);
    assert_eq!(relative, by_default);

    let (names, files) = run(&["--paths", "name"]);
    for (paths, file) in names.iter().zip(&files) {
        assert_eq!(paths, &["kauai.jpg", "small.png"]);
        assert!(!file.contains(private), "{file}");
    }

    let (full, _) = run(&["--paths", "full"]);
    let expected = [
        photos.join("kauai.jpg").to_str().unwrap().to_owned(),
        photos
            .join("trip")
            .join("small.png")
            .to_str()
            .unwrap()
            .to_owned(),
    ];
    for paths in &full {
        assert_eq!(paths, &expected);
    }
}

/// Issue 8, item 4: what `locate` prints and every file it writes (GPX, CSV, GeoJSON, XMP
/// sidecars) name the backbone by its folder name only: neither the data folder's path nor the
/// backbone's appears in a file meant to be shared.
#[test]
fn outputs_and_exports_carry_no_private_model_path() {
    let tmp = tempfile::tempdir().unwrap();
    let photo = tmp.path().join("kauai.jpg");
    std::fs::copy(image_path("kauai.jpg"), &photo).unwrap();
    let exports: Vec<PathBuf> = ["out.gpx", "out.csv", "out.geojson"]
        .iter()
        .map(|name| tmp.path().join(name))
        .collect();
    let mut extra = vec!["--format", "json", "--xmp-sidecars"];
    for export in &exports {
        extra.extend(["--export", export.to_str().unwrap()]);
    }
    let out = locate(&extra, std::slice::from_ref(&photo));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let private = [
        data_dirs().data_dir.display().to_string(),
        tiny_clip().display().to_string(),
    ];
    let mut shared = vec![("stdout".to_owned(), text(&out.stdout))];
    for file in exports.iter().chain([&tmp.path().join("kauai.jpg.xmp")]) {
        shared.push((
            file.display().to_string(),
            std::fs::read_to_string(file).unwrap(),
        ));
    }
    for (name, content) in &shared {
        for path in &private {
            assert!(!content.contains(path.as_str()), "{name} contains {path}");
        }
        assert!(content.contains("tiny_clip"), "{name} names the backbone");
        assert!(
            content.contains("NOT CLIP ViT-L/14"),
            "{name} says the backbone is a stand-in"
        );
    }
}

/// `geoloupe backups restore` puts back only photos still as geoloupe left them and says which
/// it skipped and why.
#[test]
fn backups_restore_skips_photos_edited_since() {
    use geoloupe::export::exif_write::{BackupStore, write_exif_gps};
    let data = tempfile::tempdir().unwrap();
    let photos = tempfile::tempdir().unwrap();
    let backups = BackupStore::in_data_dir(data.path());
    let kept = photos.path().join("kept.jpg");
    let edited = photos.path().join("edited.jpg");
    std::fs::copy(image_path("kauai.jpg"), &kept).unwrap();
    std::fs::copy(image_path("rotated.jpg"), &edited).unwrap();
    let original = std::fs::read(&kept).unwrap();
    write_exif_gps(&kept, geoloupe::geo::LatLon::new(1.0, 2.0), None, &backups).unwrap();
    write_exif_gps(
        &edited,
        geoloupe::geo::LatLon::new(3.0, 4.0),
        None,
        &backups,
    )
    .unwrap();
    let mut edit = std::fs::read(&edited).unwrap();
    edit.extend_from_slice(b"trailing bytes another tool added");
    std::fs::write(&edited, &edit).unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_geoloupe"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["backups", "restore"])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(std::fs::read(&kept).unwrap() == original);
    assert!(std::fs::read(&edited).unwrap() == edit);
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no line for {name}: {stdout}"))
            .to_owned()
    };
    assert!(line("kept.jpg").starts_with("restored"), "{stdout}");
    let skipped = line("edited.jpg");
    assert!(
        skipped.starts_with("skipped") && skipped.contains("changed since"),
        "{stdout}"
    );
    assert!(
        stdout.contains("restored 1, skipped 1, failed 0"),
        "{stdout}"
    );
    assert_eq!(
        BackupStore::in_data_dir(data.path()).list().unwrap().len(),
        1
    );
}

#[test]
fn rust_log_info_prints_what_locate_does_and_the_default_prints_no_info() {
    let backbone = tiny_clip();
    let photo = image_path("kauai.jpg");
    let run = |rust_log: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_geoloupe"));
        command
            .arg("--data-dir")
            .arg(&data_dirs().data_dir)
            .args(["locate", "--top-k", "2", "--backbone"])
            .arg(&backbone)
            .arg(&photo)
            .env_remove("RUST_LOG");
        if let Some(level) = rust_log {
            command.env("RUST_LOG", level);
        }
        command.output().expect("run geoloupe")
    };
    let info = run(Some("info"));
    assert!(info.status.success(), "{}", text(&info.stderr));
    let stderr = text(&info.stderr);
    for line in [
        "locate: 1 photos found",
        "loading GeoCLIP from",
        "locate: model loaded",
        "locate: 1 photos located, 0 failed",
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(" INFO ") && l.contains(line)),
            "{line:?} not in {stderr}"
        );
    }
    let quiet = run(None);
    assert!(quiet.status.success(), "{}", text(&quiet.stderr));
    assert!(
        !text(&quiet.stderr).contains(" INFO "),
        "{}",
        text(&quiet.stderr)
    );
}

/// `--refine` (issue 11, item 2): every candidate keeps its gallery point and gains a refined
/// point nearby, with its similarity; the top-1 location is the refined point, marked so in
/// JSON, CSV, the table and GPX.
#[test]
fn refine_reports_both_points_in_every_format() {
    let photo = image_path("kauai.jpg");
    let json = locate(
        &["--refine", "--format", "json", "--top-k", "2"],
        std::slice::from_ref(&photo),
    );
    assert!(json.status.success(), "{}", text(&json.stderr));
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let photo_json = &value["photos"][0];
    let candidates = photo_json["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 2);
    let point = |v: &serde_json::Value| {
        geoloupe::geo::LatLon::new(
            v["lat_deg"].as_f64().unwrap(),
            v["lon_deg"].as_f64().unwrap(),
        )
    };
    for c in candidates {
        let gallery = point(&c["position"]);
        let refined = &c["refined"];
        let at = point(&refined["position"]);
        // Within the search's reach (12.8 + 3.2 + 0.8 + 0.2 km on each axis).
        assert!(at.distance_km(&gallery) < 25.0, "{c}");
        let similarity = refined["similarity"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&similarity), "{c}");
        assert!(refined["logit"].as_f64().unwrap() > 0.0, "{c}");
    }
    assert_eq!(photo_json["location_kind"], "refined");
    let top_refined = point(&candidates[0]["refined"]["position"]);
    assert!(point(&photo_json["location"]).distance_km(&top_refined) < 1e-6);

    let csv = locate(
        &["--refine", "--format", "csv", "--top-k", "2"],
        std::slice::from_ref(&photo),
    );
    let csv_text = text(&csv.stdout);
    let rows = parse_csv(&csv_text);
    assert_eq!(rows.len(), 3, "{csv_text}");
    for (row, c) in rows[1..].iter().zip(candidates) {
        let lat: f64 = row[7].parse().unwrap();
        approx::assert_abs_diff_eq!(
            lat,
            c["refined"]["position"]["lat_deg"].as_f64().unwrap(),
            epsilon = 1e-5
        );
        let similarity: f64 = row[9].parse().unwrap();
        approx::assert_abs_diff_eq!(
            similarity,
            c["refined"]["similarity"].as_f64().unwrap(),
            epsilon = 1e-5
        );
    }

    let table = locate(&["--refine", "--top-k", "2"], std::slice::from_ref(&photo));
    let table_text = text(&table.stdout);
    assert_eq!(
        table_text
            .lines()
            .filter(|l| l.trim_start().starts_with("ref "))
            .count(),
        2,
        "{table_text}"
    );

    let gpx = locate(&["--refine", "--format", "gpx", "--top-k", "2"], &[photo]);
    let gpx_text = text(&gpx.stdout);
    // The chosen (top-1 refined) point, then each candidate's gallery point and the other
    // candidate's refined point.
    assert_eq!(gpx_text.matches("<wpt ").count(), 4, "{gpx_text}");
    assert_eq!(
        gpx_text.matches(":pointKind>refined<").count(),
        2,
        "{gpx_text}"
    );
    assert_eq!(
        gpx_text.matches(":pointKind>gallery<").count(),
        2,
        "{gpx_text}"
    );
}

/// `--together` (issue 11, item 4): one set of candidates for the group, carried by every
/// member; two copies of one photo rank as that photo does (its logits doubled), more sharply.
#[test]
fn together_gives_every_member_the_group_candidates() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.jpg"), tmp.path().join("b.jpg"));
    std::fs::copy(image_path("kauai.jpg"), &a).unwrap();
    std::fs::copy(image_path("kauai.jpg"), &b).unwrap();
    let json = |extra: &[&str], photos: &[PathBuf]| -> serde_json::Value {
        let mut args = vec!["--format", "json"];
        args.extend_from_slice(extra);
        let out = locate(&args, photos);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let one = json(&["--top-k", "5"], std::slice::from_ref(&a));
    let group = json(&["--together", "--top-k", "5"], &[a.clone(), b.clone()]);
    let photos = group["photos"].as_array().unwrap();
    assert_eq!(photos.len(), 2);
    assert_eq!(photos[0]["candidates"], photos[1]["candidates"]);
    for p in photos {
        assert_eq!(p["group"]["size"], 2, "{p}");
        assert_eq!(p["group"]["members"].as_array().unwrap().len(), 2);
    }
    let indices = |v: &serde_json::Value| -> Vec<u64> {
        v["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["gallery_index"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(indices(&photos[0]), indices(&one["photos"][0]));
    let top = |v: &serde_json::Value| v["candidates"][0]["probability"].as_f64().unwrap();
    assert!(top(&photos[0]) > top(&one["photos"][0]));

    // With --refine too: the group's refined points, the same for both.
    let refined = json(&["--together", "--refine", "--top-k", "1"], &[a, b]);
    let photos = refined["photos"].as_array().unwrap();
    assert!(photos[0]["candidates"][0]["refined"].is_object());
    assert_eq!(photos[0]["candidates"], photos[1]["candidates"]);
    assert_eq!(photos[1]["location_kind"], "refined");
}

/// The app and the CLI give the same answer for the same group (issue 11, item 4): the app's
/// "Locate together" runs `InferenceWorker::run_group` (what `Command::LocateTogether` sends),
/// here with the same model as `locate --together` (the real heads and gallery, the tiny
/// backbone), refinement on in both.
#[test]
fn the_app_worker_and_the_cli_locate_a_group_alike() {
    use geoloupe::runtime::inference::{GeoClipEmbedder, InferenceWorker, WorkerEvent};
    let photos = [image_path("kauai.jpg"), image_path("landscape.jpg")];
    let out = locate(
        &["--together", "--refine", "--format", "json", "--top-k", "3"],
        &photos,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cli: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cli_candidates = cli["photos"][0]["candidates"].as_array().unwrap().clone();

    let mut paths = geoloupe::model::engine::ModelPaths::installed(data_dirs());
    paths.backbone_dir = tiny_clip();
    let embedder = GeoClipEmbedder::load(
        &paths,
        geoloupe::model::DeviceChoice::Cpu,
        geoloupe::model::Precision::Exact,
        &mut |_| true,
    )
    .unwrap();
    let worker = InferenceWorker::start(geoloupe::domain::no_repaint()).unwrap();
    worker
        .load_model(geoloupe::runtime::inference::ready_factory(embedder))
        .unwrap();
    worker.set_refine(true);
    let generation = worker.run_group(photos.to_vec(), 3).unwrap();
    let mut ranked = Vec::new();
    loop {
        match worker.recv_timeout(std::time::Duration::from_secs(120)) {
            Some(WorkerEvent::Ranked {
                generation: g,
                path,
                result,
            }) if g == generation => ranked.push((path, result)),
            Some(WorkerEvent::Finished { generation: g, .. }) if g == generation => break,
            Some(WorkerEvent::Failed { error, .. }) => panic!("{error}"),
            Some(_) => {}
            None => panic!("the worker gave no answer"),
        }
    }
    assert_eq!(ranked.len(), 2);
    for (path, result) in &ranked {
        let group = result.group.as_ref().expect("marked as a group result");
        assert_eq!(group.len(), 2);
        assert!(group.contains(path));
        assert_eq!(result.candidates.len(), cli_candidates.len());
        for (c, want) in result.candidates.iter().zip(&cli_candidates) {
            assert_eq!(c.rank as u64, want["rank"].as_u64().unwrap());
            assert_eq!(
                c.gallery_index as u64,
                want["gallery_index"].as_u64().unwrap()
            );
            approx::assert_abs_diff_eq!(
                f64::from(c.probability),
                want["probability"].as_f64().unwrap(),
                epsilon = 1e-6
            );
            // The refined point is a fitted peak, a continuous function of the scores, so the
            // last bits of a differently batched encoder call move it by millimetres.
            let r = c.refined.expect("refined");
            let w = &want["refined"];
            approx::assert_abs_diff_eq!(
                r.position.lat_deg,
                w["position"]["lat_deg"].as_f64().unwrap(),
                epsilon = 1e-6
            );
            approx::assert_abs_diff_eq!(
                r.position.lon_deg,
                w["position"]["lon_deg"].as_f64().unwrap(),
                epsilon = 1e-6
            );
        }
    }
}

#[test]
fn within_a_bad_country_or_box_is_one_line_naming_it() {
    let photo = image_path("kauai.jpg");
    for (within, expected) in [
        (
            "Ukrane",
            "unknown country \"Ukrane\"; did you mean Ukraine?",
        ),
        ("44,22,52.5", "needs 4 numbers"),
        ("44,x,52.5,40", "lon_min \"x\" is not a number"),
        ("44,22,95,40", "lat_max 95 is outside -90..90"),
    ] {
        let out = locate(&["--within", within], std::slice::from_ref(&photo));
        assert!(!out.status.success(), "{within}");
        let stderr = text(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{within}: {stderr}");
        assert!(
            lines[0].starts_with("error: --within: ") && lines[0].contains(expected),
            "{within}: {stderr}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn within_restricts_candidates_and_every_output_records_it() {
    let photo = image_path("landscape.jpg");
    let dir = tempfile::tempdir().unwrap();
    let [gpx, csv, geojson] = ["out.gpx", "out.csv", "out.geojson"].map(|f| dir.path().join(f));
    let out = locate(
        &[
            "--format",
            "json",
            "--top-k",
            "4",
            "--within",
            "Ukraine",
            "--export",
            gpx.to_str().unwrap(),
            "--export",
            csv.to_str().unwrap(),
            "--export",
            geojson.to_str().unwrap(),
        ],
        std::slice::from_ref(&photo),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let photo_json = &value["photos"][0];
    let ukraine = geoloupe::geo::parse_region("UA").unwrap();
    let candidates = photo_json["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 4);
    for c in candidates {
        let p = geoloupe::geo::LatLon::new(
            c["position"]["lat_deg"].as_f64().unwrap(),
            c["position"]["lon_deg"].as_f64().unwrap(),
        );
        assert!(ukraine.contains(p), "{c}");
    }
    let share = photo_json["within"]["share_inside"].as_f64().unwrap();
    assert!(share > 0.0 && share < 1.0, "{share}");
    assert_eq!(photo_json["within"]["spec"], "country:UA");
    // Renormalised: the candidates' probabilities are shares of the inside belief.
    let first = candidates[0]["probability"].as_f64().unwrap();
    assert!(first > 0.0 && first <= 1.0);

    let gpx_text = std::fs::read_to_string(&gpx).unwrap();
    assert!(
        gpx_text.contains("<geoloupe:within>country:UA</geoloupe:within>"),
        "{gpx_text}"
    );
    assert!(gpx_text.contains("withinShareInside"));
    let rows = parse_csv(&std::fs::read_to_string(&csv).unwrap());
    let col = rows[0].iter().position(|c| c == "within").unwrap();
    assert_eq!(rows[1][col], "country:UA");
    let share_col = rows[0]
        .iter()
        .position(|c| c == "within_share_inside")
        .unwrap();
    approx::assert_abs_diff_eq!(
        rows[1][share_col].parse::<f64>().unwrap(),
        share,
        epsilon = 1e-6
    );
    let geo: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&geojson).unwrap()).unwrap();
    assert_eq!(
        geo["features"][0]["properties"]["within"]["spec"],
        "country:UA"
    );

    let table = locate(&["--within", "44,22,52.5,40.3"], &[photo]);
    assert!(table.status.success(), "{}", text(&table.stderr));
    assert!(
        text(&table.stdout).contains("of the model's belief lies inside the box 44,22,52.5,40.3"),
        "{}",
        text(&table.stdout)
    );
}

/// `locate --trip` (issue 12, item 3): photos with a capture time are placed by the trip
/// (`origin` `trip`, with the single-photo answer beside the trip's point), a photo with its own
/// GPS anchors the trip, a photo without a capture time keeps its single-photo answer; the
/// table and CSV carry both answers too.
#[test]
fn trip_reports_both_answers_and_the_origin() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (a, b, anchor, untimed) = (
        dir.join("a.jpg"),
        dir.join("b.jpg"),
        dir.join("anchor.jpg"),
        dir.join("untimed.jpg"),
    );
    std::fs::copy(image_path("kauai.jpg"), &a).unwrap();
    std::fs::copy(image_path("rotated.jpg"), &b).unwrap();
    // gps.jpg: taken 2023-07-14 16:20:05 -10:00 on Kauai, with its GPS.
    std::fs::copy(image_path("gps.jpg"), &anchor).unwrap();
    std::fs::copy(image_path("landscape.jpg"), &untimed).unwrap();
    for (photo, time) in [(&a, "2023:07:14 16:21:05"), (&b, "2023:07:14 16:22:05")] {
        let status = Command::new("exiftool")
            .arg(format!("-DateTimeOriginal={time}"))
            .arg("-OffsetTimeOriginal=-10:00")
            .args(["-q", "-overwrite_original"])
            .arg(photo)
            .status()
            .expect("exiftool (libimage-exiftool-perl) is needed");
        assert!(status.success());
    }
    let photos = [a, b, anchor, untimed];
    let out = locate(&["--trip", "--format", "json", "--top-k", "3"], &photos);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("trip: 2 photo(s) placed by the trip at up to 130 km/h, 1 anchored"),
        "{stderr}"
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_name = |name: &str| -> serde_json::Value {
        json["photos"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["path"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("{name} in {json}"))
            .clone()
    };
    for name in ["a.jpg", "b.jpg"] {
        let p = by_name(name);
        assert_eq!(p["origin"]["kind"], "trip", "{p}");
        assert_eq!(p["origin"]["max_speed_kmh"], 130.0);
        // The single-photo answer is the top candidate; the trip's point is `location`.
        assert_eq!(p["origin"]["single_photo"], p["candidates"][0]["position"]);
        assert_eq!(p["trip"]["role"], "placed");
        let posterior = p["trip"]["posterior"].as_f64().unwrap();
        assert!(posterior > 0.0 && posterior <= 1.0, "{p}");
        let nearby = p["trip"]["posterior_within_25_km"].as_f64().unwrap();
        assert!(nearby >= posterior && nearby <= 1.0, "{p}");
        let rank = p["trip"]["rank"].as_u64().unwrap();
        assert!((1..=200).contains(&rank), "{p}");
        assert_eq!(p["location_kind"], "gallery");
        if rank == 1 {
            assert_eq!(p["location"], p["candidates"][0]["position"]);
        }
        assert_eq!(p["candidates"].as_array().unwrap().len(), 3);
    }
    let anchor = by_name("anchor.jpg");
    assert_eq!(anchor["trip"]["role"], "anchor");
    assert_eq!(anchor["origin"]["kind"], "estimate");
    assert!((anchor["trip"]["gps"]["lat_deg"].as_f64().unwrap() - 22.0964).abs() < 0.01);
    let untimed = by_name("untimed.jpg");
    assert_eq!(untimed["trip"]["role"], "no-capture-time");
    assert_eq!(untimed["origin"]["kind"], "estimate");
    assert_eq!(untimed["location"], untimed["candidates"][0]["position"]);

    // The table and CSV say the same.
    let table = locate(
        &["--trip", "--travel", "walk", "--top-k", "1"],
        &photos[..2],
    );
    assert!(table.status.success(), "{}", text(&table.stderr));
    let table = text(&table.stdout);
    assert!(table.contains("trip posterior (up to 7 km/h): "), "{table}");
    assert!(table.contains("single-photo answer: "), "{table}");
    let csv = locate(
        &[
            "--trip",
            "--max-speed",
            "900",
            "--format",
            "csv",
            "--top-k",
            "2",
        ],
        &photos,
    );
    assert!(csv.status.success(), "{}", text(&csv.stderr));
    let csv = text(&csv.stdout);
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().ends_with(
        ",origin,trip_lat_deg,trip_lon_deg,trip_posterior,single_photo_lat_deg,single_photo_lon_deg"
    ));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 8);
    assert_eq!(rows.iter().filter(|r| r.contains(",trip,")).count(), 4);
    // A top speed must be a speed.
    let bad = locate(&["--trip", "--max-speed", "0"], &photos[..1]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("above 0 km/h"),
        "{}",
        text(&bad.stderr)
    );
}

/// The photo paths (as printed) and the error lines of a `locate --format jsonl` run.
fn located_and_failed(out: &Output) -> (Vec<String>, Vec<String>) {
    let mut located: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["path"].as_str().unwrap().to_owned()
        })
        .collect();
    let mut failed: Vec<String> = text(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("error: "))
        .map(str::to_owned)
        .collect();
    located.sort();
    failed.sort();
    (located, failed)
}

#[test]
fn shards_split_a_folder_with_no_photo_twice_or_left_out() {
    let folder = fixtures().join("images");
    let run = |extra: &[&str], env: Option<(&str, &str)>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_geoloupe"));
        command
            .arg("--data-dir")
            .arg(&data_dirs().data_dir)
            .args(["locate", "--backbone"])
            .arg(tiny_clip())
            .args(["--format", "jsonl", "--paths", "full"])
            .args(extra)
            .arg(&folder)
            .env_remove("JOB_COMPLETION_INDEX")
            .env_remove("SLURM_ARRAY_TASK_ID");
        if let Some((name, value)) = env {
            command.env(name, value);
        }
        command.output().expect("run geoloupe")
    };
    let (all, all_failed) = located_and_failed(&run(&[], None));
    assert!(all.len() > 6, "{all:?}");
    let mut union = Vec::new();
    let mut union_failed = Vec::new();
    for i in 0..3 {
        let shard = format!("{i}/3");
        let out = run(&["--shard", &shard], None);
        let stderr = text(&out.stderr);
        assert!(stderr.contains(&format!("shard {i} of 3")), "{stderr}");
        let (located, failed) = located_and_failed(&out);
        assert!(
            located.len() < all.len(),
            "shard {shard} took every photo: {located:?}"
        );
        union.extend(located);
        union_failed.extend(failed);
    }
    union.sort();
    union_failed.sort();
    assert_eq!(
        union, all,
        "the shards together are the whole folder, each photo once"
    );
    assert_eq!(
        union_failed, all_failed,
        "each unreadable file is reported by one shard"
    );

    // The index from a Kubernetes Indexed Job or a Slurm array is the same shard.
    let explicit = located_and_failed(&run(&["--shard", "1/3"], None));
    for variable in ["JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"] {
        let from_env = located_and_failed(&run(&["--shards", "3"], Some((variable, "1"))));
        assert_eq!(from_env, explicit, "{variable}");
    }
    // Without one, --shards says where the index comes from, before any model loads.
    let out = run(&["--shards", "3"], None);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("JOB_COMPLETION_INDEX") && stderr.contains("SLURM_ARRAY_TASK_ID"),
        "{stderr}"
    );
    let out = run(&["--shard", "3/3"], None);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("counts from 0"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_manifest_lists_the_photos_and_shards_by_its_lines() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("photos.txt");
    let images = fixtures().join("images");
    let names = [
        "kauai.jpg",
        "landscape.jpg",
        "portrait.png",
        "grey.png",
        "rgba.png",
    ];
    let mut list = String::from("# the archive's list\n\n");
    for name in names {
        // Lines relative to the manifest's folder.
        std::fs::copy(images.join(name), dir.path().join(name)).unwrap();
        list.push_str(&format!("{name}\n"));
    }
    std::fs::write(&manifest, list).unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["--format", "jsonl", "--paths", "name", "--manifest"];
        args.push(manifest.to_str().unwrap());
        args.extend_from_slice(extra);
        let out = locate(&args, &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        located_and_failed(&out).0
    };
    let all = run(&[]);
    let mut want: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    want.sort();
    assert_eq!(all, want);
    let mut union = run(&["--shard", "0/2"]);
    let other = run(&["--shard", "1/2"]);
    assert!(
        !union.is_empty() && !other.is_empty(),
        "{union:?} {other:?}"
    );
    union.extend(other);
    union.sort();
    assert_eq!(union, all);
}
