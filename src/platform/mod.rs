//! Platform conventions as pure functions over text and code units, so that Linux CI checks the
//! Windows cases too ([`windows_path`]: verbatim prefixes, drive letters, UNC shares, relative
//! paths; [`wide`]: UTF-16 file names that aren't valid Unicode, kept exactly), and the thin
//! host wrappers the rest of geoloupe calls. Depends on nothing else in the crate.

use std::path::{Path, PathBuf};

pub mod wide;
pub mod windows_path;

/// `path` as users should read it and exports should carry it: on Windows without the verbatim
/// prefix `std::fs::canonicalize` adds (`\\?\C:\...`, `\\?\UNC\server\share\...`) where the
/// short form names the same file ([`windows_path::strip_verbatim`]); unchanged elsewhere.
pub fn simplified(path: &Path) -> PathBuf {
    if cfg!(windows)
        && let Some(short) = path.to_str().and_then(windows_path::strip_verbatim)
    {
        return PathBuf::from(short);
    }
    path.to_owned()
}

/// `std::fs::canonicalize` without the verbatim prefix it adds on Windows where the short form
/// names the same file ([`simplified`]): what `dunce::canonicalize` does, for paths that are
/// shown, logged or recorded (the backup index).
pub fn canonicalize(path: &Path) -> std::io::Result<PathBuf> {
    std::fs::canonicalize(path).map(|p| simplified(&p))
}

/// `path` relative to `base` (both absolute) with the host's rules: on Windows through
/// [`windows_path::relative`] (ignoring case, across `\\?\` forms, `\` separators); elsewhere
/// component by component. `None` when they share no root (another drive or share).
pub fn relative_path(path: &Path, base: &Path) -> Option<PathBuf> {
    if cfg!(windows)
        && let (Some(path), Some(base)) = (path.to_str(), base.to_str())
    {
        return windows_path::relative(path, base).map(PathBuf::from);
    }
    unix_relative(path, base)
}

/// `path` relative to `base`, both absolute and normalised, compared component by component.
fn unix_relative(path: &Path, base: &Path) -> Option<PathBuf> {
    use std::path::Component;
    let (mut rest, mut from) = (path.components().peekable(), base.components().peekable());
    let mut shared = 0;
    while let (Some(a), Some(b)) = (rest.peek(), from.peek()) {
        if a != b {
            break;
        }
        rest.next();
        from.next();
        shared += 1;
    }
    if shared == 0 {
        return None;
    }
    let mut out: PathBuf = from.map(|_| Component::ParentDir).collect();
    out.extend(rest);
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    Some(out)
}
