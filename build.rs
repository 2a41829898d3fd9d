//! Finds the GeoNames places that the `reverse_geocoder` crate embeds (its `cities.csv`), so
//! claims can be typed as place names offline ([`crate::geo::find_places`]). The crate keeps
//! its records private; its source file is read here and included again. Where the file can't
//! be found (a vendored or unusual Cargo home: set `GEOLOUPE_PLACES_CSV`), the build still
//! works and place names are refused with a clear message.

use std::path::{Path, PathBuf};

/// The reverse_geocoder version whose data is used (as in Cargo.lock).
const CRATE_DIR_PREFIX: &str = "reverse_geocoder-4.";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=GEOLOUPE_PLACES_CSV");
    println!("cargo:rerun-if-env-changed=CARGO_HOME");
    let found = places_csv();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let code = match &found {
        Some(path) => {
            println!("cargo:rerun-if-changed={}", path.display());
            format!("pub const PLACES_CSV: &str = include_str!({:?});\n", path)
        }
        None => {
            println!(
                "cargo:warning=reverse_geocoder's cities.csv not found: place names can't be typed as claims (set GEOLOUPE_PLACES_CSV)"
            );
            "pub const PLACES_CSV: &str = \"\";\n".to_owned()
        }
    };
    std::fs::write(out.join("places_csv.rs"), code).expect("write places_csv.rs");
}

fn places_csv() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("GEOLOUPE_PLACES_CSV") {
        return Some(PathBuf::from(path));
    }
    let mut homes = Vec::new();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        homes.push(PathBuf::from(home));
    }
    if let Some(home) = std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE")) {
        homes.push(Path::new(&home).join(".cargo"));
    }
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let mut dirs: Vec<PathBuf> = vec![manifest.join("vendor")];
    for home in homes {
        if let Ok(registries) = std::fs::read_dir(home.join("registry").join("src")) {
            dirs.extend(registries.flatten().map(|e| e.path()));
        }
    }
    let mut found: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flat_map(|entries| entries.flatten())
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(CRATE_DIR_PREFIX) || name == "reverse_geocoder"
        })
        .map(|e| e.path().join("cities.csv"))
        .filter(|p| p.is_file())
        .collect();
    // The newest version when several are unpacked.
    found.sort();
    found.pop()
}
