//! The Windows installer (packaging/windows/geoloupe.nsi) against the code: "Open with" entries
//! for every photo extension geoloupe reads (`scripts/windows.sh installer` checks the same list
//! under Wine), each removed again by the uninstaller. Reads text files only: runs on every
//! system.

use std::path::Path;

use geoloupe::library::scan::PHOTO_EXTENSIONS;

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// The extensions inside `!macro ForEachPhotoExtension` of the NSIS script.
fn nsis_extensions(nsi: &str) -> Vec<String> {
    let body = nsi
        .split("!macro ForEachPhotoExtension")
        .nth(1)
        .and_then(|rest| rest.split("!macroend").next())
        .expect("the NSIS script has a ForEachPhotoExtension macro");
    body.lines()
        .filter_map(|line| line.trim().strip_prefix("!insertmacro ${MACRO} "))
        .map(|ext| ext.trim_matches('"').to_owned())
        .collect()
}

#[test]
fn the_installer_offers_open_with_for_every_photo_extension() {
    let nsi = read("packaging/windows/geoloupe.nsi");
    let listed = nsis_extensions(&nsi);
    for ext in PHOTO_EXTENSIONS {
        assert!(
            listed.contains(&format!(".{ext}")),
            "packaging/windows/geoloupe.nsi has no Open with entry for .{ext}: {listed:?}"
        );
    }
    // HEIC/HEIF/AVIF (the `heif` feature) are listed whatever this build's features.
    for ext in [".heic", ".heif", ".hif", ".avif"] {
        assert!(listed.iter().any(|e| e == ext), "{ext} missing: {listed:?}");
    }
    // Installed and uninstalled through the same list.
    assert!(nsi.contains("!insertmacro ForEachPhotoExtension OpenWith\n"));
    assert!(nsi.contains("!insertmacro ForEachPhotoExtension RemoveOpenWith\n"));
}

#[test]
fn the_open_command_passes_the_photo_quoted() {
    // Paths with spaces ("C:\Users\Ana Lima\Pictures\a.jpg") arrive as one argument.
    let nsi = read("packaging/windows/geoloupe.nsi");
    let command = r#"'"$INSTDIR\geoloupe.exe" "%1"'"#;
    assert_eq!(
        nsi.matches(command).count(),
        2,
        "ProgID and Applications entry"
    );
}
