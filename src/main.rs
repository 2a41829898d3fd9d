//! `geoloupe`: the desktop app with no subcommand (`geoloupe [PHOTOS_OR_FOLDERS...]`), else
//! the headless command line. Exit status 0 when everything succeeded, 1 when some photos
//! failed (each named on stderr), 2 when the run could not happen at all.

use std::io::IsTerminal as _;

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    init_logging();
    let cli = geoloupe::cli::Cli::parse();
    let outcome = geoloupe::model::files::DataDirs::resolve(cli.data_dir.as_deref())
        .map_err(anyhow::Error::from)
        .and_then(|dirs| match cli.command {
            None => open_app(dirs, cli.paths),
            Some(command) => geoloupe::cli::run(&dirs, command),
        });
    match outcome {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// The desktop app on `paths`.
#[cfg(feature = "app")]
fn open_app(
    dirs: geoloupe::model::files::DataDirs,
    paths: Vec<std::path::PathBuf>,
) -> anyhow::Result<bool> {
    geoloupe::ui::window::run_native(dirs, paths).map(|()| true)
}

/// The headless build has no window to open.
#[cfg(not(feature = "app"))]
fn open_app(
    _dirs: geoloupe::model::files::DataDirs,
    _paths: Vec<std::path::PathBuf>,
) -> anyhow::Result<bool> {
    anyhow::bail!(
        "this geoloupe is the headless build (no desktop app): give a command, for example \
         `geoloupe locate PHOTOS`; `geoloupe --help` lists them"
    )
}

/// Log lines on stderr, filtered by `RUST_LOG` (`RUST_LOG=info`, `RUST_LOG=geoloupe=debug`;
/// warnings and errors only by default). Our code and eframe's crates log through `log`, the
/// Hugging Face download crates through `tracing`: both end up here.
fn init_logging() {
    use tracing_subscriber::filter::{EnvFilter, LevelFilter};
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::WARN.into())
        .from_env_lossy();
    // Fails only when a logger is already installed; then that one logs.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
