//! Windows path text, read the way Windows reads it, as pure functions over `&str` so that
//! every system's tests check the Windows cases (drive letters, `\` and `/`, UNC shares, the
//! verbatim `\\?\` prefixes that `std::fs::canonicalize` returns).
//!
//! - [`strip_verbatim`]: `\\?\C:\photos\a.jpg` -> `C:\photos\a.jpg` and
//!   `\\?\UNC\server\share\a.jpg` -> `\\server\share\a.jpg`, only when the short form names the
//!   same file (the rules the `dunce` crate follows: no `/`, `.` or `..` component, no reserved
//!   device name such as `NUL` or `COM1`, no name ending in a dot or a space, no character
//!   Windows forbids, shorter than `MAX_PATH`).
//! - [`relative`]: one absolute Windows path relative to another, lexically and ignoring case
//!   (as NTFS compares names), with `\` separators; `None` across drives or shares.

/// Windows' classic path length limit (UTF-16 code units, with the terminating NUL).
const MAX_PATH: usize = 260;

/// `path` without its verbatim prefix when the short form names the same file; `None` when
/// `path` has no verbatim disk or UNC prefix, or when removing it would change its meaning.
pub fn strip_verbatim(path: &str) -> Option<String> {
    let rest = path.strip_prefix(r"\\?\")?;
    let (root, tail) = if let Some(unc) = strip_prefix_ignore_case(rest, r"UNC\") {
        let mut parts = unc.splitn(3, '\\');
        let (server, share) = (parts.next()?, parts.next()?);
        if !plain_component(server) || !plain_component(share) {
            return None;
        }
        (format!(r"\\{server}\{share}"), parts.next())
    } else {
        let bytes = rest.as_bytes();
        // `\\?\C:\...` only: `\\?\C:` alone is the volume, `C:` the drive's current folder.
        if bytes.len() < 3 || !bytes[0].is_ascii_alphabetic() || &bytes[1..3] != b":\\" {
            return None;
        }
        (rest[..2].to_owned(), Some(&rest[3..]))
    };
    let short = match tail {
        None | Some("") => format!(r"{root}\"),
        Some(tail) if tail.split('\\').all(plain_component) => format!(r"{root}\{tail}"),
        Some(tail) => {
            // A trailing `\` names the same folder; any other empty component does not.
            let trimmed = tail.strip_suffix('\\')?;
            if !trimmed.split('\\').all(plain_component) {
                return None;
            }
            format!(r"{root}\{tail}")
        }
    };
    (short.encode_utf16().count() < MAX_PATH).then_some(short)
}

/// `path` relative to `base` (both absolute Windows paths, `\` or `/` separators), with `.` and
/// `..` applied lexically, names compared ignoring case, and `\` separators; `.` for the same
/// folder. Verbatim paths are read through [`strip_verbatim`]. `None` when either is not
/// absolute, they lie on different drives or shares, or one keeps a verbatim prefix that
/// [`strip_verbatim`] can't remove.
pub fn relative(path: &str, base: &str) -> Option<String> {
    let (path, base) = (without_verbatim(path), without_verbatim(base));
    let (path, base) = (Absolute::parse(&path)?, Absolute::parse(&base)?);
    if path.root_key != base.root_key {
        return None;
    }
    let shared = path
        .names
        .iter()
        .zip(&base.names)
        .take_while(|(a, b)| same_name(a, b))
        .count();
    let mut out: Vec<&str> = vec![".."; base.names.len() - shared];
    out.extend(path.names[shared..].iter().copied());
    Some(if out.is_empty() {
        ".".to_owned()
    } else {
        out.join("\\")
    })
}

/// An absolute path: its drive or share (`root_key`: upper-case drive letter, or the share
/// lower-cased) and its names after `.` and `..` are applied.
struct Absolute<'a> {
    root_key: String,
    names: Vec<&'a str>,
}

impl<'a> Absolute<'a> {
    fn parse(path: &'a str) -> Option<Self> {
        if path.starts_with(r"\\?\") || path.starts_with(r"\\.\") || path.starts_with("//?/") {
            return None;
        }
        let is_separator = |c: char| c == '\\' || c == '/';
        let bytes = path.as_bytes();
        let (root_key, rest) = if bytes.len() >= 3
            && bytes[0].is_ascii_alphabetic()
            && bytes[1] == b':'
            && is_separator(char::from(bytes[2]))
        {
            (
                format!("{}:", char::from(bytes[0].to_ascii_uppercase())),
                &path[3..],
            )
        } else if bytes.len() >= 2
            && is_separator(char::from(bytes[0]))
            && is_separator(char::from(bytes[1]))
        {
            let mut parts = path[2..].splitn(3, is_separator);
            let (server, share) = (parts.next()?, parts.next()?);
            if server.is_empty() || share.is_empty() {
                return None;
            }
            (
                format!(r"\\{}\{}", server.to_lowercase(), share.to_lowercase()),
                parts.next().unwrap_or(""),
            )
        } else {
            return None;
        };
        let mut names = Vec::new();
        for name in rest.split(is_separator) {
            match name {
                "" | "." => {}
                ".." => {
                    names.pop();
                }
                name => names.push(name),
            }
        }
        Some(Self { root_key, names })
    }
}

fn without_verbatim(path: &str) -> std::borrow::Cow<'_, str> {
    strip_verbatim(path).map_or(std::borrow::Cow::Borrowed(path), std::borrow::Cow::Owned)
}

/// Names as NTFS compares them by default: ignoring case.
fn same_name(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// A name that means the same with and without the verbatim prefix.
fn plain_component(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.ends_with(['.', ' '])
        && !name
            .chars()
            .any(|c| c < ' ' || matches!(c, '<' | '>' | ':' | '"' | '/' | '|' | '?' | '*'))
        && !reserved_device_name(name)
}

/// `CON`, `NUL`, `COM1`, `LPT¹`, ... (with any extension, ignoring case and trailing spaces):
/// without the verbatim prefix these name devices, not files.
fn reserved_device_name(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).trim_end_matches(' ');
    let upper = stem.to_uppercase();
    if matches!(
        upper.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
    ) {
        return true;
    }
    let numbered = upper
        .strip_prefix("COM")
        .or_else(|| upper.strip_prefix("LPT"));
    matches!(
        numbered,
        Some("1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" | "¹" | "²" | "³")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbatim_disk_and_unc_prefixes_are_removed_when_safe() {
        assert_eq!(
            strip_verbatim(r"\\?\C:\Users\Me\Pictures\a.jpg").as_deref(),
            Some(r"C:\Users\Me\Pictures\a.jpg")
        );
        assert_eq!(strip_verbatim(r"\\?\d:\").as_deref(), Some(r"d:\"));
        assert_eq!(
            strip_verbatim(r"\\?\C:\photos\").as_deref(),
            Some(r"C:\photos\")
        );
        assert_eq!(
            strip_verbatim(r"\\?\UNC\server\share\trip\a.jpg").as_deref(),
            Some(r"\\server\share\trip\a.jpg")
        );
        assert_eq!(
            strip_verbatim(r"\\?\unc\server\share").as_deref(),
            Some(r"\\server\share\")
        );
        assert_eq!(
            strip_verbatim(r"\\?\C:\Fotos\café 東京.jpg").as_deref(),
            Some(r"C:\Fotos\café 東京.jpg")
        );
    }

    #[test]
    fn verbatim_prefixes_stay_where_they_change_the_meaning() {
        for path in [
            r"C:\plain\a.jpg",          // nothing to strip
            r"\\server\share\a.jpg",    // plain UNC
            r"\\?\C:",                  // the volume, not its root folder
            r"\\?\C:a.jpg",             // drive-relative
            r"\\?\Volume{0b1c}\a.jpg",  // a volume GUID
            r"\\?\GLOBALROOT\Device\x", // an NT object path
            r"\\.\COM1",                // a device path
            r"\\?\C:\photos\NUL",       // a device name without the prefix
            r"\\?\C:\photos\com1.jpg",  // (with any extension)
            r"\\?\C:\photos\lpt¹",      //
            r"\\?\C:\photos\a.jpg.",    // trailing dots and spaces are trimmed without it
            r"\\?\C:\photos\a.jpg ",    //
            r"\\?\C:\photos\..\a.jpg",  // `..` is a name under the prefix
            r"\\?\C:\photos\.\a.jpg",   //
            r"\\?\C:\photos/a.jpg",     // `/` is a character under the prefix
            r"\\?\C:\photos\\a.jpg",    // an empty name
            r"\\?\C:\photos\a?.jpg",    // characters Windows forbids
            r"\\?\UNC\server",          // no share
            r"\\?\UNC\\share\a.jpg",    // no server
        ] {
            assert_eq!(strip_verbatim(path), None, "{path}");
        }
    }

    #[test]
    fn long_paths_keep_the_verbatim_prefix() {
        let name = "a".repeat(200);
        let short = format!(r"\\?\C:\{name}\b.jpg");
        assert!(strip_verbatim(&short).is_some());
        let long = format!(r"\\?\C:\{name}\{name}.jpg");
        assert_eq!(strip_verbatim(&long), None);
        // Counted in UTF-16 units, as Windows counts: 130 x "東" is 130 units, 390 UTF-8 bytes.
        let wide = format!(r"\\?\C:\{}\b.jpg", "東".repeat(130));
        assert!(strip_verbatim(&wide).is_some());
    }

    #[test]
    fn relative_on_one_drive_ignoring_case_with_either_separator() {
        let base = r"C:\Users\Me\exports";
        assert_eq!(
            relative(r"C:\Users\Me\Pictures\trip\a.jpg", base).as_deref(),
            Some(r"..\Pictures\trip\a.jpg")
        );
        assert_eq!(
            relative(r"c:/users/me/EXPORTS/a.jpg", base).as_deref(),
            Some("a.jpg")
        );
        assert_eq!(
            relative(r"C:\Users\Me\exports\sub\..\.\a.jpg", base).as_deref(),
            Some("a.jpg")
        );
        assert_eq!(
            relative(r"C:\a.jpg", base).as_deref(),
            Some(r"..\..\..\a.jpg")
        );
        assert_eq!(relative(base, base).as_deref(), Some("."));
        assert_eq!(
            relative(r"C:\..\..\a.jpg", r"C:\").as_deref(),
            Some("a.jpg")
        );
    }

    #[test]
    fn relative_needs_the_same_drive_or_share() {
        assert_eq!(relative(r"D:\photos\a.jpg", r"C:\exports"), None);
        assert_eq!(
            relative(r"\\NAS\Photos\2024\a.jpg", r"\\nas\photos\exports").as_deref(),
            Some(r"..\2024\a.jpg")
        );
        assert_eq!(relative(r"\\nas\other\a.jpg", r"\\nas\photos"), None);
        assert_eq!(relative(r"\\nas\photos\a.jpg", r"C:\photos"), None);
        // Not absolute: relative, drive-relative, rooted without a drive.
        assert_eq!(relative(r"photos\a.jpg", r"C:\x"), None);
        assert_eq!(relative(r"C:photos\a.jpg", r"C:\x"), None);
        assert_eq!(relative(r"\photos\a.jpg", r"C:\x"), None);
        // Verbatim paths as `strip_verbatim` reads them: a safe one is the same drive.
        assert_eq!(
            relative(r"\\?\C:\photos\a.jpg", r"c:\photos").as_deref(),
            Some("a.jpg")
        );
        assert_eq!(
            relative(r"\\?\UNC\nas\photos\a.jpg", r"\\nas\photos\out").as_deref(),
            Some(r"..\a.jpg")
        );
        assert_eq!(relative(r"\\?\C:\photos\NUL", r"C:\photos"), None);
    }
}
