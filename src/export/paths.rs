//! How a photo's path is written where it leaves geoloupe (exports, `locate`'s output).
//!
//! **Which path** ([`PathStyle`]): relative to the exported file (the default: the export and
//! its photos can move together, and no private folder names leak), the file name only, or the
//! full absolute path. Relative paths are computed lexically, like Python's `os.path.relpath`
//! (`..` is not resolved through symbolic links); a photo that has no relative path from the
//! export's folder (another drive or share on Windows) is written in full. On Windows names
//! compare ignoring case, relative paths use `\`, and the verbatim prefix `canonicalize` adds
//! (`\\?\C:\...`, `\\?\UNC\server\share\...`) is never written where the short form names
//! the same file ([`crate::platform::windows_path`], tested on every system).
//!
//! **As text, losslessly** ([`PathText`]): every format is text, and a path need not be: on
//! Linux a file name is any bytes. A path that is valid UTF-8 without control characters is
//! written as it is. Any other path is written as readable text (invalid bytes and control
//! characters become U+FFFD) *plus* its exact bytes as lowercase hex in a companion field:
//! `path_bytes_hex` in `locate`'s JSON, JSON Lines and CSV, a `path bytes (hex):` line in its
//! table, `photo_bytes_hex` in CSV and GeoJSON exports, `geoloupe:photoBytesHex` in GPX. What
//! the bytes are depends on the system that wrote them:
//! - Unix (Linux, macOS): the path's bytes, exactly (`os.fsdecode(bytes.fromhex(h))` in Python).
//! - Windows, where names are UTF-16 and may hold unpaired surrogates: the WTF-8 encoding of its
//!   code units, UTF-8 with each unpaired surrogate as its three-byte form
//!   (`bytes.fromhex(h).decode("utf-8", "surrogatepass")` in Python gives the name back;
//!   [`crate::platform::wide::wtf8_from_wide`]).

use std::path::{Component, Path, PathBuf};

/// Which path of a photo an export (or `locate`'s output) writes.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum PathStyle {
    /// Relative to the exported file's folder (on standard output: to the current folder).
    #[default]
    Relative,
    /// The file name only.
    Name,
    /// The full, absolute path.
    Full,
}

/// A [`PathStyle`] resolved against the folder relative paths start from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhotoPaths {
    rule: Rule,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Rule {
    AsRecorded,
    Relative { base_dir: PathBuf },
    Name,
    Full,
}

impl PhotoPaths {
    /// For a file written at `export_file`: relative paths start from its folder.
    pub fn for_file(style: PathStyle, export_file: &Path) -> Self {
        Self::from_dir(style, super::parent_dir(export_file))
    }

    /// Relative paths start from `base_dir` (for standard output: the current folder).
    pub fn from_dir(style: PathStyle, base_dir: &Path) -> Self {
        let rule = match style {
            PathStyle::Relative => Rule::Relative {
                base_dir: normalize(&absolute(base_dir)),
            },
            PathStyle::Name => Rule::Name,
            PathStyle::Full => Rule::Full,
        };
        Self { rule }
    }

    /// The paths as the records hold them (the caller has chosen them already).
    pub fn as_recorded() -> Self {
        Self {
            rule: Rule::AsRecorded,
        }
    }

    /// The path to write for `photo`.
    pub fn path(&self, photo: &Path) -> PathBuf {
        match &self.rule {
            Rule::AsRecorded => photo.to_owned(),
            Rule::Relative { base_dir } => {
                let photo = normalize(&absolute(photo));
                crate::platform::relative_path(&photo, base_dir)
                    .unwrap_or_else(|| crate::platform::simplified(&photo))
            }
            Rule::Name => photo
                .file_name()
                .map_or_else(|| photo.to_owned(), PathBuf::from),
            Rule::Full => crate::platform::simplified(&absolute(photo)),
        }
    }

    /// [`PhotoPaths::path`] as text.
    pub fn text(&self, photo: &Path) -> PathText {
        PathText::new(&self.path(photo))
    }
}

/// A path as text: `text` alone when it says the path exactly, else readable text plus the
/// exact bytes in hex (see the [module docs](self)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathText {
    /// The path; lossy (U+FFFD for invalid bytes and control characters) when `bytes_hex` is set.
    pub text: String,
    /// The path's bytes in lowercase hex, only when `text` can't carry them: not UTF-8, or
    /// control characters.
    pub bytes_hex: Option<String>,
}

impl PathText {
    pub fn new(path: &Path) -> Self {
        match path.to_str() {
            Some(text) if !text.chars().any(char::is_control) => Self {
                text: text.to_owned(),
                bytes_hex: None,
            },
            _ => Self {
                text: path
                    .to_string_lossy()
                    .chars()
                    .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
                    .collect(),
                bytes_hex: Some(hex::encode(exact_bytes(path))),
            },
        }
    }
}

/// The bytes [`PathText::bytes_hex`] holds (see the [module docs](self)).
#[cfg(not(windows))]
fn exact_bytes(path: &Path) -> Vec<u8> {
    path.as_os_str().as_encoded_bytes().to_vec()
}

/// The bytes [`PathText::bytes_hex`] holds: WTF-8 from the UTF-16 code units, by our own
/// encoder rather than `as_encoded_bytes` (whose encoding std leaves unspecified).
#[cfg(windows)]
fn exact_bytes(path: &Path) -> Vec<u8> {
    use std::os::windows::ffi::OsStrExt as _;
    let units: Vec<u16> = path.as_os_str().encode_wide().collect();
    crate::platform::wide::wtf8_from_wide(&units)
}

/// `path` made absolute against the current folder (symbolic links and `..` kept); as it is
/// when that fails.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// `.` dropped and `..` applied lexically, as `os.path.normpath` does.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // `/..` is `/`.
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_to_the_export_folder() {
        let paths = PhotoPaths::for_file(PathStyle::Relative, Path::new("/home/me/out/a.gpx"));
        assert_eq!(
            paths.path(Path::new("/home/me/photos/./trip/x.jpg")),
            Path::new("../photos/trip/x.jpg")
        );
        assert_eq!(
            paths.path(Path::new("/home/me/out/x.jpg")),
            Path::new("x.jpg")
        );
        assert_eq!(
            paths.path(Path::new("/home/me/out/sub/../x.jpg")),
            Path::new("x.jpg")
        );
        assert_eq!(paths.path(Path::new("/x.jpg")), Path::new("../../../x.jpg"));
    }

    #[test]
    fn names_and_full_paths() {
        // Absolute on the system the tests run on.
        let photo = Path::new(if cfg!(windows) {
            r"C:\home\me\photos\x.jpg"
        } else {
            "/home/me/photos/x.jpg"
        });
        let name = PhotoPaths::for_file(PathStyle::Name, Path::new("out.csv"));
        assert_eq!(name.path(photo), Path::new("x.jpg"));
        let full = PhotoPaths::for_file(PathStyle::Full, Path::new("out.csv"));
        assert_eq!(full.path(photo), photo);
        assert!(full.path(Path::new("x.jpg")).is_absolute());
        assert_eq!(
            PhotoPaths::as_recorded().path(Path::new("a/../b.jpg")),
            Path::new("a/../b.jpg")
        );
    }

    #[test]
    fn text_is_lossless() {
        let plain = PathText::new(Path::new("photos/café.jpg"));
        assert_eq!(plain.text, "photos/café.jpg");
        assert_eq!(plain.bytes_hex, None);
        let newline = PathText::new(Path::new("a\nb.jpg"));
        assert_eq!(newline.text, "a\u{FFFD}b.jpg");
        assert_eq!(newline.bytes_hex.as_deref(), Some("610a622e6a7067"));
    }

    /// Windows (run under Wine): relative paths ignore case and the verbatim prefix, use `\`,
    /// and full paths lose the prefix where it is safe; names with unpaired surrogates carry
    /// their WTF-8 bytes.
    #[cfg(windows)]
    #[test]
    fn windows_paths_in_exports() {
        use std::os::windows::ffi::OsStringExt as _;
        let paths = PhotoPaths::for_file(PathStyle::Relative, Path::new(r"C:\Users\Me\out\a.csv"));
        assert_eq!(
            paths.path(Path::new(r"\\?\c:\users\me\Photos\x.jpg")),
            Path::new(r"..\Photos\x.jpg")
        );
        assert_eq!(
            paths.path(Path::new(r"D:\x.jpg")),
            Path::new(r"D:\x.jpg"),
            "another drive: in full"
        );
        let full = PhotoPaths::for_file(PathStyle::Full, Path::new(r"C:\out\a.csv"));
        assert_eq!(
            full.path(Path::new(r"\\?\UNC\nas\photos\x.jpg")),
            Path::new(r"\\nas\photos\x.jpg")
        );
        assert_eq!(
            full.path(Path::new(r"\\?\C:\photos\NUL")),
            Path::new(r"\\?\C:\photos\NUL")
        );
        let mut units: Vec<u16> = "a".encode_utf16().collect();
        units.push(0xD800);
        let lone = std::path::PathBuf::from(std::ffi::OsString::from_wide(&units));
        let text = PathText::new(&lone);
        assert_eq!(text.text, "a\u{FFFD}");
        assert_eq!(text.bytes_hex.as_deref(), Some("61eda080"));
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_text_carries_the_bytes() {
        use std::os::unix::ffi::OsStrExt as _;
        let path = Path::new(std::ffi::OsStr::from_bytes(b"caf\xe9.jpg"));
        let text = PathText::new(path);
        assert_eq!(text.text, "caf\u{FFFD}.jpg");
        assert_eq!(text.bytes_hex.as_deref(), Some("636166e92e6a7067"));
    }
}
