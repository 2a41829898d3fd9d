//! Windows builds only: puts the icon (`icons/geoloupe.ico`) and the version information into
//! geoloupe.exe as resources, so Explorer, the taskbar and "Open with" show them. Compiled with
//! MinGW-w64's `windres` (`$WINDRES`, else `<arch>-w64-mingw32-windres`, else `windres`); no
//! crate. Does nothing for other targets.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=icons/geoloupe.ico");
    println!("cargo:rerun-if-env-changed=WINDRES");
    let target = |key: &str| std::env::var(format!("CARGO_CFG_TARGET_{key}")).unwrap_or_default();
    if target("OS") != "windows" {
        return;
    }
    if target("ENV") != "gnu" {
        println!(
            "cargo:warning=geoloupe.exe gets no icon: only MinGW's windres (x86_64-pc-windows-gnu) is wired up"
        );
        return;
    }
    let (Some(manifest_dir), Some(out_dir)) = (
        std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from),
        std::env::var_os("OUT_DIR").map(PathBuf::from),
    ) else {
        panic!("cargo sets CARGO_MANIFEST_DIR and OUT_DIR for build scripts");
    };
    let rc = out_dir.join("geoloupe.rc");
    let res = out_dir.join("geoloupe-res.o");
    let icon = manifest_dir.join("icons").join("geoloupe.ico");
    if let Err(e) = std::fs::write(&rc, resource_script(&icon, env!("CARGO_PKG_VERSION"))) {
        panic!("writing {}: {e}", rc.display());
    }
    let windres = windres(&target("ARCH"));
    let status = Command::new(&windres)
        .arg("--input")
        .arg(&rc)
        .arg("--output")
        .arg(&res)
        .args(["--output-format", "coff"])
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{windres} failed ({s}) on {}", rc.display()),
        Err(e) => panic!(
            "{windres} not found ({e}): install MinGW-w64's binutils (Debian: binutils-mingw-w64-x86-64) or set WINDRES"
        ),
    }
    // An object named on the link line is always linked in, with its .rsrc section.
    println!("cargo:rustc-link-arg-bins={}", res.display());
}

/// `$WINDRES`, else the cross `windres` when it exists (Linux), else `windres` (MSYS2 on Windows).
fn windres(arch: &str) -> String {
    if let Ok(windres) = std::env::var("WINDRES") {
        return windres;
    }
    let cross = format!("{arch}-w64-mingw32-windres");
    let found = Command::new(&cross).arg("--version").output().is_ok();
    if found { cross } else { "windres".to_owned() }
}

/// The resource script: icon 1 (the first icon, the one Explorer shows) and VERSIONINFO.
fn resource_script(icon: &Path, version: &str) -> String {
    let mut numbers: Vec<u16> = version
        .split(['.', '-', '+'])
        .take(3)
        .map(|n| n.parse().unwrap_or(0))
        .collect();
    numbers.resize(4, 0);
    let comma = numbers
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    // windres reads `\` as an escape in strings: forward slashes work on every host.
    let icon = icon.display().to_string().replace('\\', "/");
    format!(
        r#"1 ICON "{icon}"
1 VERSIONINFO
FILEVERSION {comma}
PRODUCTVERSION {comma}
FILEOS 0x40004
FILETYPE 0x1
BEGIN
  BLOCK "StringFileInfo"
  BEGIN
    BLOCK "040904B0"
    BEGIN
      VALUE "CompanyName", "The geoloupe developers"
      VALUE "FileDescription", "geoloupe: where your photos were taken"
      VALUE "FileVersion", "{version}"
      VALUE "InternalName", "geoloupe"
      VALUE "OriginalFilename", "geoloupe.exe"
      VALUE "ProductName", "geoloupe"
      VALUE "ProductVersion", "{version}"
    END
  END
  BLOCK "VarFileInfo"
  BEGIN
    VALUE "Translation", 0x409, 1200
  END
END
"#
    )
}
