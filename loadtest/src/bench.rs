//! The benchmark page: result lines in, docs/benchmarks.md and its plot
//! out. Filled in with loadtest/bench.sh.

use crate::cli::ReportArgs;

/// Writes the page and the plot.
pub fn write_page(_args: &ReportArgs) -> anyhow::Result<()> {
    anyhow::bail!("not written yet")
}
