//! What a run found: one [`Report`], printed as a readable summary or as
//! one JSON line.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// From a histogram in microseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| (us as f64) / 1000.0;
        Self {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// Everything one run measured. Field names are stable: scripts read the
/// JSON line.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    /// chat, idle, churn or queue.
    pub scenario: String,
    /// The protocol spoken.
    pub target: String,
    /// A free-form label (the peer's name in a benchmark).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Sessions asked for.
    pub sessions: u64,
    /// Sockets held at the peak of the main load.
    pub connections: u64,
    /// Messages each initiator sent a second.
    pub rate: f64,
    /// Payload bytes.
    pub size: u64,
    /// Length of the measurement window, seconds.
    pub window_s: f64,
    /// Chat messages relayed inside the window (both directions).
    pub messages: u64,
    /// `messages` a second.
    pub msgs_per_s: f64,
    /// Chat messages sent over the whole run.
    pub sent: u64,
    /// Accepted by the server and never received.
    pub lost: u64,
    /// Received more than once.
    pub duplicated: u64,
    /// Received after a later one.
    pub reordered: u64,
    /// Gaps or repeats in the server's own `seq`s.
    pub seq_errors: u64,
    /// Errors of any kind (refusals, unexpected closes, ...).
    pub errors: u64,
    /// Errors by kind.
    pub error_kinds: BTreeMap<String, u64>,
    /// Round trips of messages due inside the window, from their send.
    pub rtt: Percentiles,
    /// Send to the server's ack (Haven: the broker has the message, and
    /// with transcripts on, its record is on disk).
    pub ack: Percentiles,
    /// How late the generator sent against its open-loop schedule.
    pub send_lag: Percentiles,
    /// Hello to matched.
    #[serde(rename = "match")]
    pub matched: Percentiles,
    /// Sessions that ran their course (queue, churn).
    pub sessions_done: u64,
    /// Churn sessions' hello to matched.
    pub churn_match: Percentiles,
    /// Queue position updates received.
    pub positions: u64,
    /// Round trip median, ms (also in `rtt`).
    pub rtt_p50_ms: f64,
    /// Round trip 99th percentile, ms.
    pub rtt_p99_ms: f64,
    /// Send-to-ack 99th percentile, ms.
    pub ack_p99_ms: f64,
    /// Hello-to-matched 99th percentile, ms.
    pub match_p99_ms: f64,
    /// The server's processes (CPU and memory are their sum).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_pids: Vec<u32>,
    /// Server CPU time per relayed message, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu_us_per_msg: Option<f64>,
    /// Server CPU use during the window, percent of one CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu_pct: Option<f64>,
    /// Server resident memory at the end of the window, KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_rss_kb: Option<u64>,
    /// Server memory per connection above its idle baseline, KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_rss_kb_per_conn: Option<f64>,
    /// The generator's own CPU use during the window, percent of one CPU.
    pub client_cpu_pct: f64,
    /// CPUs the generator may use.
    pub client_cpus: u64,
    /// One-minute load average before the run.
    pub loadavg_before: f64,
    /// How busy the machine was just before the run, percent of all CPUs.
    #[serde(default)]
    pub machine_busy_before_pct: f64,
    /// One-minute load average after the window.
    pub loadavg_after: f64,
    /// Why the numbers may not mean what they seem (a generator that fell
    /// behind, a busy machine).
    pub warnings: Vec<String>,
}

impl Report {
    /// Adds warnings about the run itself: a generator behind its schedule
    /// (its latencies then understate), a machine already busy.
    pub fn check_conditions(&mut self) {
        if self.send_lag.p99 > 5.0 {
            self.warnings.push(format!(
                "the generator fell behind its schedule (send lag p99 {:.1} ms): \
                 it, not the server, may be the bottleneck",
                self.send_lag.p99
            ));
        }
        if self.machine_busy_before_pct > 15.0 {
            self.warnings.push(format!(
                "the machine was busy before the run ({:.0}% of its CPUs)",
                self.machine_busy_before_pct
            ));
        }
    }

    /// Whether delivery was perfect and nothing went wrong.
    pub fn clean(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.reordered == 0
            && self.seq_errors == 0
            && self.errors == 0
    }

    /// One JSON line.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The readable summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let label = self.label.as_deref().unwrap_or(&self.target);
        let _ = writeln!(s, "haven-loadtest {} against {label}", self.scenario);
        let _ = writeln!(
            s,
            "  load       {} sessions, {} sockets, {} msg/s each, {} B, {:.1} s measured",
            self.sessions, self.connections, self.rate, self.size, self.window_s
        );
        let _ = writeln!(
            s,
            "  relayed    {} messages in the window, {:.0}/s",
            self.messages, self.msgs_per_s
        );
        if self.rtt.count > 0 {
            let _ = writeln!(s, "  round trip {}", line(&self.rtt));
            if self.ack.count > 0 {
                let _ = writeln!(s, "  acked      {}", line(&self.ack));
            }
            let _ = writeln!(s, "  send lag   {}", line(&self.send_lag));
        }
        if self.matched.count > 0 {
            let _ = writeln!(s, "  matched    {}", line(&self.matched));
        }
        if self.churn_match.count > 0 || self.sessions_done > 0 {
            let _ = writeln!(
                s,
                "  sessions   {} completed; churn matched {}",
                self.sessions_done,
                line(&self.churn_match)
            );
        }
        if self.positions > 0 {
            let _ = writeln!(s, "  queue      {} position updates", self.positions);
        }
        let _ = writeln!(
            s,
            "  delivery   {} sent: lost {}, duplicated {}, reordered {}, seq errors {}",
            self.sent, self.lost, self.duplicated, self.reordered, self.seq_errors
        );
        let _ = write!(s, "  errors     {}", self.errors);
        for (kind, n) in &self.error_kinds {
            let _ = write!(s, "; {kind} × {n}");
        }
        let _ = writeln!(s);
        if !self.server_pids.is_empty() {
            let pids: Vec<String> = self.server_pids.iter().map(u32::to_string).collect();
            let _ = write!(s, "  server     pid {}", pids.join("+"));
            if let Some(us) = self.server_cpu_us_per_msg {
                let _ = write!(s, ", {us:.1} µs CPU per message");
            }
            if let Some(pct) = self.server_cpu_pct {
                let _ = write!(s, ", {pct:.0}% of a CPU");
            }
            if let Some(rss) = self.server_rss_kb {
                let _ = write!(s, ", {rss} KiB resident");
            }
            if let Some(per) = self.server_rss_kb_per_conn {
                let _ = write!(s, " ({per:.1} KiB per connection)");
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(
            s,
            "  generator  {:.0}% of a CPU ({} available); machine {:.0}% busy before; load average {:.2} before, {:.2} after",
            self.client_cpu_pct,
            self.client_cpus,
            self.machine_busy_before_pct,
            self.loadavg_before,
            self.loadavg_after
        );
        let verdict = if self.clean() {
            "clean: nothing lost, duplicated or reordered, no errors"
        } else {
            "NOT CLEAN: see delivery and errors above"
        };
        let _ = writeln!(s, "  verdict    {verdict}");
        for w in &self.warnings {
            let _ = writeln!(s, "  warning    {w}");
        }
        s
    }
}

fn line(p: &Percentiles) -> String {
    format!(
        "p50 {:.2} ms, p90 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2} ({} samples)",
        p.p50, p.p90, p.p99, p.p999, p.max, p.count
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_line_has_the_promised_fields() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for us in 1..=1000 {
            h.record(us).unwrap();
        }
        let rtt = Percentiles::of(&h);
        assert!((rtt.p50 - 0.5).abs() < 0.01, "{rtt:?}");
        let r = Report {
            scenario: "chat".into(),
            rtt,
            rtt_p50_ms: rtt.p50,
            server_cpu_us_per_msg: Some(12.5),
            server_rss_kb_per_conn: Some(9.5),
            ..Report::default()
        };
        let v: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        for key in [
            "scenario",
            "sessions",
            "messages",
            "lost",
            "duplicated",
            "reordered",
            "errors",
            "rtt_p50_ms",
            "rtt_p99_ms",
            "ack_p99_ms",
            "match_p99_ms",
            "msgs_per_s",
            "server_cpu_us_per_msg",
            "server_rss_kb_per_conn",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert!(r.clean());
        assert!(r.summary().contains("verdict    clean"));
        let lossy = Report { lost: 1, ..r };
        assert!(!lossy.clean());
        assert!(lossy.summary().contains("NOT CLEAN"));
    }
}
