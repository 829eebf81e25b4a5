//! What `/proc` says about a process (the server's CPU time and memory,
//! the generator's own CPU) and about the machine (load average).

use std::time::Duration;

use anyhow::Context as _;

/// One reading of a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcSample {
    /// User plus system CPU time of all its threads.
    pub cpu: Duration,
    /// Resident memory, in KiB.
    pub rss_kb: u64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`.
pub fn sample(pid: u32) -> anyhow::Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat: is process {pid} running?"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let ticks = parse_stat_ticks(&stat).context("unexpected /proc/<pid>/stat format")?;
    let rss_kb = parse_rss_kb(&status).context("no VmRSS in /proc/<pid>/status")?;
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Ok(ProcSample {
        cpu: Duration::from_micros(ticks * 1_000_000 / hz),
        rss_kb,
    })
}

/// The sum over `pids`; `None` when there are none or one cannot be read.
pub fn sample_all(pids: &[u32]) -> Option<ProcSample> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().try_fold(
        ProcSample {
            cpu: Duration::ZERO,
            rss_kb: 0,
        },
        |sum, &pid| {
            let s = sample(pid).ok()?;
            Some(ProcSample {
                cpu: sum.cpu + s.cpu,
                rss_kb: sum.rss_kb + s.rss_kb,
            })
        },
    )
}

/// `utime + stime` in clock ticks. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted after its last `)`.
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After the name: state is field 3; utime and stime are 14 and 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn parse_rss_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// How busy the whole machine is, in percent of all its CPUs, over
/// `window` (from `/proc/stat`). Taken before a run, it tells whether
/// something else is competing for the CPUs.
pub async fn machine_busy(window: Duration) -> Option<f64> {
    fn read() -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let line = stat.lines().next()?.strip_prefix("cpu ")?;
        let v: Vec<u64> = line
            .split_ascii_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal ...
        let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
        Some((v.iter().sum(), idle))
    }
    let (total0, idle0) = read()?;
    tokio::time::sleep(window).await;
    let (total1, idle1) = read()?;
    let total = total1.saturating_sub(total0);
    if total == 0 {
        return None;
    }
    let busy = total - idle1.saturating_sub(idle0).min(total);
    Some(busy as f64 * 100.0 / total as f64)
}

/// The one-minute load average.
pub fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPUs this process may run on.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_a_strange_command_name() {
        let stat = "1234 (we ird) name)) S 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 4 0";
        assert_eq!(parse_stat_ticks(stat), Some(325));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn reads_this_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_kb > 100, "{s:?}");
        let status = "Name:\tx\nVmRSS:\t   2048 kB\n";
        assert_eq!(parse_rss_kb(status), Some(2048));
        assert!(sample(u32::MAX).is_err());
    }
}
