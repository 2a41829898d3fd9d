//! `geoloupe`: the desktop app with no subcommand (`geoloupe [PHOTOS_OR_FOLDERS...]`), else
//! the headless command line. Exit status 0 when everything succeeded, 1 when some photos
//! failed (each named on stderr), 2 when the run could not happen at all.

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let cli = geoloupe::cli::Cli::parse();
    let outcome = geoloupe::model::files::DataDirs::resolve(cli.data_dir.as_deref())
        .map_err(anyhow::Error::from)
        .and_then(|dirs| match cli.command {
            None => geoloupe::ui::window::run_native(dirs, cli.paths).map(|()| true),
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
