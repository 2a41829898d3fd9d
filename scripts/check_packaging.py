#!/usr/bin/env python3
"""Checks the packaging metadata (issue 10) against itself and against what geoloupe reads.

    python3 scripts/check_packaging.py                 the committed files agree
    python3 scripts/check_packaging.py --app X.app     ... and X.app's Info.plist says what it must
    python3 scripts/check_packaging.py --desktop FILE  ... checking an installed desktop file

The committed files: packaging/Packager.toml (file-associations), the desktop file's MimeType=,
packaging/macos/Info.plist (CFBundleDocumentTypes with UTIs) and library::scan's
PHOTO_EXTENSIONS. Each failure is printed; the exit status is 1 if there was one.
Python 3.11 or later (tomllib, plistlib); nothing to install.
"""

import argparse
import configparser
import plistlib
import re
import sys
import tomllib
from xml.etree import ElementTree
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
# Read by the `heif` feature (libheif); in PHOTO_EXTENSIONS too, named here so the list stays
# whole if that feature ever leaves the scanner's list.
HEIF_EXTENSIONS = {"heic", "heif", "hif", "avif"}
# The desktop file also opens folders.
EXTRA_MIME_TYPES = {"inode/directory"}
# Mach-O (32/64-bit, either byte order) and universal binaries.
MACH_O_MAGICS = {
    bytes.fromhex(h) for h in ("feedface", "feedfacf", "cefaedfe", "cffaedfe", "cafebabe")
}


class Checker:
    def __init__(self):
        self.failures = []
        self.passed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failures.append(what)
            print(f"FAIL: {what}", file=sys.stderr)

    def equal(self, got, want, what):
        self.check(got == want, f"{what}: got {got!r}, want {want!r}")


def scanner_extensions():
    """library::scan::PHOTO_EXTENSIONS, read from the source."""
    source = (ROOT / "src/library/scan.rs").read_text()
    match = re.search(r"PHOTO_EXTENSIONS: &\[&str\] = &\[(.*?)\];", source, re.S)
    if match is None:
        raise SystemExit("PHOTO_EXTENSIONS not found in src/library/scan.rs")
    return set(re.findall(r'"([a-z0-9]+)"', match.group(1)))


def desktop_entry(path):
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return parser["Desktop Entry"]


def check_sources(c, config, plist_fragment, desktop_path):
    associations = config["file-associations"]
    associated = [ext for a in associations for ext in a["extensions"]]
    c.equal(len(associated), len(set(associated)), "no extension is associated twice")
    scanned = scanner_extensions()
    c.check(
        scanned <= set(associated),
        f"every extension the scanner reads is associated: missing {sorted(scanned - set(associated))}",
    )
    c.check(
        set(associated) <= scanned | HEIF_EXTENSIONS,
        f"every associated extension is read: extra {sorted(set(associated) - scanned - HEIF_EXTENSIONS)}",
    )
    for a in associations:
        c.check(a.get("mime-type", "").startswith("image/"), f"{a['extensions']} has an image MIME type")
        c.equal(a.get("role"), "viewer", f"{a['extensions']} role")

    entry = desktop_entry(desktop_path)
    mime_types = [m for m in entry.get("MimeType", "").split(";") if m]
    c.equal(
        set(mime_types),
        {a["mime-type"] for a in associations} | EXTRA_MIME_TYPES,
        f"{desktop_path.name} MimeType= (the file-associations' MIME types and folders)",
    )
    c.equal(entry.get("Icon"), config["name"], f"{desktop_path.name} Icon= (the hicolor icons' name)")
    c.check(entry.get("Exec", "").split()[:1] == [config["name"]], f"{desktop_path.name} Exec= runs geoloupe")
    c.check("%F" in entry.get("Exec", ""), f"{desktop_path.name} Exec= takes files (%F)")

    # One app id everywhere: the window's (Wayland app_id / X11 class), the desktop file's name
    # and StartupWMClass, the AppStream component and its launchable, the bundle identifier.
    app_id = config["identifier"]
    window = (ROOT / "src/ui/window.rs").read_text()
    c.equal(re.findall(r'with_app_id\("([^"]+)"\)', window), [app_id], "the window's app id")
    c.equal(entry.get("StartupWMClass"), app_id, f"{desktop_path.name} StartupWMClass=")
    c.check((PACKAGING / f"{app_id}.desktop").is_file(), f"the desktop file is named {app_id}.desktop")
    metainfo = ElementTree.parse(PACKAGING / f"{app_id}.metainfo.xml").getroot()
    c.equal(metainfo.findtext("id"), app_id, "metainfo <id>")
    c.equal(metainfo.findtext("launchable[@type='desktop-id']"), f"{app_id}.desktop", "metainfo <launchable>")
    c.equal(metainfo.findtext("provides/binary"), config["name"], "metainfo <provides><binary>")

    types = plist_fragment["CFBundleDocumentTypes"]
    c.equal(
        [t["CFBundleTypeExtensions"] for t in types],
        [a["extensions"] for a in associations],
        "macos/Info.plist document types' extensions (in Packager.toml's order)",
    )
    for t in types:
        name = t["CFBundleTypeName"]
        c.equal(t["CFBundleTypeRole"], "Viewer", f"{name} CFBundleTypeRole")
        utis = t.get("LSItemContentTypes", [])
        c.check(len(utis) == 1 and re.fullmatch(r"[a-z]+(\.[a-z0-9]+)+", utis[0]), f"{name} has one UTI: {utis}")


def check_app(c, config, plist_fragment, app):
    contents = app / "Contents"
    with open(contents / "Info.plist", "rb") as f:
        info = plistlib.load(f)
    c.equal(info.get("CFBundleIdentifier"), config["identifier"], "CFBundleIdentifier")
    c.equal(info.get("CFBundlePackageType"), "APPL", "CFBundlePackageType")
    c.equal(info.get("CFBundleShortVersionString"), config["version"], "CFBundleShortVersionString")
    c.equal(
        info.get("LSMinimumSystemVersion"),
        config["macos"]["minimum-system-version"],
        "LSMinimumSystemVersion",
    )
    executable = contents / "MacOS" / info.get("CFBundleExecutable", "?")
    c.check(executable.is_file(), f"CFBundleExecutable is in Contents/MacOS: {executable}")
    if executable.is_file():
        magic = executable.read_bytes()[:4]
        kind = "Mach-O" if magic in MACH_O_MAGICS else "ELF" if magic == b"\x7fELF" else repr(magic)
        # Not a failure: on Linux the bundle carries the Linux binary as a stand-in (a macOS
        # binary cannot be linked without Apple's SDK); only the layout and Info.plist count.
        print(f"note: {executable.name} is {kind}")
    icon = contents / "Resources" / info.get("CFBundleIconFile", "?")
    c.check(icon.is_file() and icon.read_bytes()[:4] == b"icns", f"CFBundleIconFile is an .icns: {icon}")
    committed_icns = (ROOT / "icons/geoloupe.icns").read_bytes()
    c.check(icon.is_file() and icon.read_bytes() == committed_icns, "the bundled icon is icons/geoloupe.icns")
    c.equal(
        info.get("CFBundleDocumentTypes"),
        plist_fragment["CFBundleDocumentTypes"],
        "CFBundleDocumentTypes (from macos/Info.plist)",
    )
    c.check(info.get("NSHighResolutionCapable") is True, "NSHighResolutionCapable")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app", type=Path, help="a .app bundle made by cargo-packager")
    parser.add_argument("--desktop", type=Path, help="the desktop file to check (default: packaging's)")
    args = parser.parse_args()

    with open(PACKAGING / "Packager.toml", "rb") as f:
        config = tomllib.load(f)
    with open(PACKAGING / "macos/Info.plist", "rb") as f:
        plist_fragment = plistlib.load(f)

    c = Checker()
    check_sources(c, config, plist_fragment, args.desktop or PACKAGING / "org.geoloupe.geoloupe.desktop")
    if args.app:
        check_app(c, config, plist_fragment, args.app)
    print(f"check_packaging: {c.passed} checks passed, {len(c.failures)} failed")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
