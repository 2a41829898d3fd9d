//! `geoloupe`: the command line. Exit status 0 when everything succeeded, 1 when some photos
//! failed (each named on stderr), 2 when the run could not happen at all.

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let cli = geoloupe::cli::Cli::parse();
    match geoloupe::cli::run(cli) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
