//! `cargo bench --bench engine`: the speed benchmark (full-size ViT-L/14, random weights).
//! Same as `geoloupe bench`; uses the installed GeoCLIP heads and gallery when present.

fn main() -> anyhow::Result<()> {
    let dirs = geoloupe::model::files::DataDirs::resolve(None)?;
    let options = geoloupe::model::bench::BenchOptions::default();
    let report =
        geoloupe::model::bench::run(&options, &dirs, &candle_core::Device::Cpu, &mut |l| {
            eprintln!("{l}")
        })?;
    print!("{report}");
    Ok(())
}
