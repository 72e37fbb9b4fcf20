//! Placeholder until the operator lands.
pub fn main(_args: crate::cli::RunArgs) -> anyhow::Result<()> {
    anyhow::bail!("tfdrift run is not implemented yet")
}
