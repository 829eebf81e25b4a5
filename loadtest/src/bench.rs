//! The benchmark page: result lines in (one [`Report`] per run, as
//! `--json` prints them, labelled by server), docs/benchmarks.md and its
//! plot out.
//!
//! Runs are grouped by workload (scenario, sessions, rate); within a group
//! each server's repetitions are reduced to their median. The page then
//! states every target of the benchmark with the measured value and
//! whether it was met, so nothing is left to reading between the rows.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;

use crate::cli::ReportArgs;
use crate::report::Report;

/// The server every ratio is taken against.
const BARE: &str = "bare-relay";
/// Haven's own label.
const HAVEN: &str = "haven";

/// One server's runs of one workload, reduced to medians.
#[derive(Clone, Debug, Default)]
struct Row {
    label: String,
    runs: usize,
    cpu_us_per_msg: Option<f64>,
    msgs_per_s: f64,
    server_cpu_pct: Option<f64>,
    rtt_p50: f64,
    rtt_p99: f64,
    rtt_p999: f64,
    match_p99: f64,
    rss_kb_per_conn: Option<f64>,
    lost: u64,
    errors: u64,
    sessions: u64,
    connections: u64,
    busy: bool,
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.retain(|x| x.is_finite());
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        f64::midpoint(xs[n / 2 - 1], xs[n / 2])
    })
}

impl Row {
    fn of(label: &str, runs: &[&Report]) -> Self {
        let m =
            |f: &dyn Fn(&Report) -> Option<f64>| median(runs.iter().filter_map(|r| f(r)).collect());
        Row {
            label: label.to_owned(),
            runs: runs.len(),
            cpu_us_per_msg: m(&|r| r.server_cpu_us_per_msg),
            msgs_per_s: m(&|r| Some(r.msgs_per_s)).unwrap_or(0.0),
            server_cpu_pct: m(&|r| r.server_cpu_pct),
            rtt_p50: m(&|r| Some(r.rtt.p50)).unwrap_or(0.0),
            rtt_p99: m(&|r| Some(r.rtt.p99)).unwrap_or(0.0),
            rtt_p999: m(&|r| Some(r.rtt.p999)).unwrap_or(0.0),
            match_p99: m(&|r| Some(r.matched.p99)).unwrap_or(0.0),
            rss_kb_per_conn: m(&|r| r.server_rss_kb_per_conn),
            lost: runs.iter().map(|r| r.lost).sum(),
            errors: runs.iter().map(|r| r.errors).sum(),
            sessions: runs.iter().map(|r| r.sessions).max().unwrap_or(0),
            connections: runs.iter().map(|r| r.connections).max().unwrap_or(0),
            busy: runs.iter().any(|r| !r.warnings.is_empty()),
        }
    }

    /// Messages relayed per second of server CPU.
    fn msgs_per_cpu_s(&self) -> Option<f64> {
        self.cpu_us_per_msg.filter(|c| *c > 0.0).map(|c| 1e6 / c)
    }
}

/// A workload: what was run, and each server's medians.
#[derive(Debug)]
struct Group {
    scenario: String,
    sessions: u64,
    rate: f64,
    rows: Vec<Row>,
}

impl Group {
    fn row(&self, label: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.label == label)
    }

    fn title(&self) -> String {
        match self.scenario.as_str() {
            "chat" => format!(
                "Chat: {} sessions, {} messages/s each way per session ({:.0} relayed/s)",
                self.sessions,
                self.rate,
                self.sessions as f64 * self.rate * 2.0
            ),
            "idle" => "Idle: connected, matched, quiet sessions".to_owned(),
            other => format!("{other}: {} sessions at {}/s", self.sessions, self.rate),
        }
    }
}

fn group(reports: &[Report]) -> Vec<Group> {
    let mut by: BTreeMap<(String, u64, u64), BTreeMap<String, Vec<&Report>>> = BTreeMap::new();
    for r in reports {
        let label = r.label.clone().unwrap_or_else(|| r.target.clone());
        // Rates are short decimals; milli-units make them a key.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rate_key = (r.rate * 1000.0).round() as u64;
        // Idle runs compare memory per socket, whatever the session count
        // each server could hold: one table.
        let sessions = if r.scenario == "idle" { 0 } else { r.sessions };
        by.entry((r.scenario.clone(), sessions, rate_key))
            .or_default()
            .entry(label)
            .or_default()
            .push(r);
    }
    by.into_iter()
        .map(|((scenario, sessions, rate), servers)| {
            let mut rows: Vec<Row> = servers
                .iter()
                .map(|(label, runs)| Row::of(label, runs))
                .collect();
            rows.sort_by(|a, b| {
                a.cpu_us_per_msg
                    .unwrap_or(f64::MAX)
                    .total_cmp(&b.cpu_us_per_msg.unwrap_or(f64::MAX))
            });
            Group {
                scenario,
                sessions,
                rate: rate as f64 / 1000.0,
                rows,
            }
        })
        .collect()
}

fn num(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "–".to_owned(), |v| format!("{v:.digits$}"))
}

fn chat_table(out: &mut String, g: &Group) {
    let bare = g.row(BARE).and_then(|r| r.cpu_us_per_msg);
    let haven = g.row(HAVEN).and_then(Row::msgs_per_cpu_s);
    let _ = writeln!(
        out,
        "| server | runs | CPU µs per message | messages per CPU-second | CPU ÷ bare relay | Haven's messages per CPU-second ÷ this | relayed/s | server CPU | RTT p50 / p99 / p99.9 ms | match p99 ms | lost | errors |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &g.rows {
        let vs_bare = match (r.cpu_us_per_msg, bare) {
            (Some(c), Some(b)) if b > 0.0 => Some(c / b),
            _ => None,
        };
        let haven_vs = match (haven, r.msgs_per_cpu_s()) {
            (Some(h), Some(x)) if x > 0.0 => Some(h / x),
            _ => None,
        };
        let busy = if r.busy { " ⚠" } else { "" };
        let name = if r.label == HAVEN {
            format!("**{}**{busy}", r.label)
        } else {
            format!("{}{busy}", r.label)
        };
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} | {:.0} | {}% | {:.2} / {:.2} / {:.2} | {} | {} | {} |",
            r.runs,
            num(r.cpu_us_per_msg, 1),
            num(r.msgs_per_cpu_s(), 0),
            num(vs_bare, 2),
            num(haven_vs, 2),
            r.msgs_per_s,
            num(r.server_cpu_pct, 0),
            r.rtt_p50,
            r.rtt_p99,
            r.rtt_p999,
            if r.label == HAVEN {
                format!("{:.2}", r.match_p99)
            } else {
                "–".to_owned()
            },
            r.lost,
            r.errors,
        );
    }
}

fn idle_table(out: &mut String, g: &Group) {
    let haven = g.row(HAVEN).and_then(|r| r.rss_kb_per_conn);
    let _ = writeln!(
        out,
        "| server | runs | sessions | sockets | KiB per socket | ÷ Haven's | lost | errors |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    let mut rows = g.rows.clone();
    rows.sort_by(|a, b| {
        a.rss_kb_per_conn
            .unwrap_or(f64::MAX)
            .total_cmp(&b.rss_kb_per_conn.unwrap_or(f64::MAX))
    });
    for r in &rows {
        let ratio = match (r.rss_kb_per_conn, haven) {
            (Some(x), Some(h)) if h > 0.0 => Some(x / h),
            _ => None,
        };
        let _ = writeln!(
            out,
            "| {}{} | {} | {} | {} | {} | {} | {} | {} |",
            r.label,
            if r.busy { " ⚠" } else { "" },
            r.runs,
            r.sessions,
            r.connections,
            num(r.rss_kb_per_conn, 1),
            num(ratio, 2),
            r.lost,
            r.errors
        );
    }
}

/// One target of the benchmark and how it went.
struct Verdict {
    target: String,
    measured: String,
    /// What the bare relay, the floor of Haven's stack, reaches on the
    /// same line: how far the target is reachable at all on this machine.
    floor: Option<f64>,
    met: Option<bool>,
}

fn verdicts(groups: &[Group]) -> Vec<Verdict> {
    let mut v = Vec::new();
    let mut chats: Vec<&Group> = groups
        .iter()
        .filter(|g| g.scenario == "chat" && g.row(HAVEN).is_some() && g.row(BARE).is_some())
        .collect();
    chats.sort_by(|a, b| (a.sessions as f64 * a.rate).total_cmp(&(b.sessions as f64 * b.rate)));
    // The cost targets hold at every chat load the peers ran.
    for g in &chats {
        let at = format!("at {:.0} messages/s", g.sessions as f64 * g.rate * 2.0);
        let per_cpu = |label: &str| g.row(label).and_then(Row::msgs_per_cpu_s);
        let cpu_ratio = match (
            g.row(HAVEN).and_then(|r| r.cpu_us_per_msg),
            g.row(BARE).and_then(|r| r.cpu_us_per_msg),
        ) {
            (Some(h), Some(b)) if b > 0.0 => Some(h / b),
            _ => None,
        };
        v.push(Verdict {
            target: format!(
                "Server CPU per relayed message ≤ 1.5× the bare relay (aim 1.25×), {at}"
            ),
            measured: format!("{}×", num(cpu_ratio, 2)),
            floor: Some(1.0),
            met: cpu_ratio.map(|r| r <= 1.5),
        });
        for (label, need, target) in [
            ("node-ws", 1.2, "Messages per CPU-second ≥ 1.2× Node ws"),
            ("socketio", 3.0, "Messages per CPU-second ≥ 3× socket.io"),
            ("centrifuge", 2.0, "Messages per CPU-second ≥ 2× Centrifuge"),
            (
                "uws",
                1.0,
                "Messages per CPU-second: aim to match uWebSockets.js",
            ),
        ] {
            let ratio_to = |server: &str| match (per_cpu(server), per_cpu(label)) {
                (Some(h), Some(x)) if x > 0.0 => Some(h / x),
                _ => None,
            };
            let ratio = ratio_to(HAVEN);
            v.push(Verdict {
                target: format!("{target}, {at}"),
                measured: format!("{}×", num(ratio, 2)),
                floor: ratio_to(BARE),
                met: ratio.map(|r| r >= need),
            });
        }
    }
    // Latency at the heaviest of them.
    if let Some(g) = chats.last() {
        let haven = g.row(HAVEN);
        let rtt = haven.map(|r| r.rtt_p99);
        let bare_rtt = g.row(BARE).map(|r| r.rtt_p99);
        let rtt_ok = match (rtt, bare_rtt) {
            (Some(h), Some(b)) => Some(h < 10.0 && h <= 2.0 * b),
            _ => None,
        };
        v.push(Verdict {
            target: "Round trip p99 under 10 ms and at most 2× the bare relay's".to_owned(),
            measured: format!(
                "{} ms (bare relay {} ms) at {:.0} messages/s",
                num(rtt, 2),
                num(bare_rtt, 2),
                g.sessions as f64 * g.rate * 2.0
            ),
            floor: None,
            met: rtt_ok,
        });
        let matched = haven.map(|r| r.match_p99);
        v.push(Verdict {
            target: "Time to match p99 under 5 ms with a counsellor free".to_owned(),
            measured: format!("{} ms", num(matched, 2)),
            floor: None,
            met: matched.map(|m| m < 5.0),
        });
    }
    let idle = groups
        .iter()
        .find(|g| g.scenario == "idle" && g.row(HAVEN).is_some());
    if let Some(g) = idle {
        let haven = g.row(HAVEN);
        let kib = haven.and_then(|r| r.rss_kb_per_conn);
        let ws = g.row("node-ws").and_then(|r| r.rss_kb_per_conn);
        // 10 KB = 10,000 bytes.
        v.push(Verdict {
            target: "Idle memory ≤ 10 KB per socket (aim: below Node ws)".to_owned(),
            measured: format!(
                "{} KiB ({} bytes) per socket at {} sessions; Node ws {} KiB",
                num(kib, 1),
                num(kib.map(|k| k * 1024.0), 0),
                haven.map_or(0, |r| r.sessions),
                num(ws, 1)
            ),
            floor: None,
            met: kib.map(|k| k * 1024.0 <= 10_000.0),
        });
    }
    let big = groups
        .iter()
        .filter(|g| g.scenario == "chat" && g.row(HAVEN).is_some())
        .max_by_key(|g| g.sessions);
    if let Some(g) = big
        && let Some(r) = g.row(HAVEN)
    {
        v.push(Verdict {
            target: "10,000 concurrent sessions with zero lost messages".to_owned(),
            measured: format!(
                "{} sessions ({} sockets): {} lost, {} errors",
                g.sessions, r.connections, r.lost, r.errors
            ),
            floor: None,
            met: Some(g.sessions >= 10_000 && r.lost == 0 && r.errors == 0),
        });
    }
    v
}

/// A horizontal bar chart of one number per server, as SVG.
fn bars(title: &str, unit: &str, items: &[(String, f64, bool)], top: f64) -> String {
    let row_h = 22.0;
    let left = 150.0;
    let width = 560.0;
    let max = items.iter().map(|i| i.1).fold(0.0, f64::max).max(1e-9);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<text x="10" y="{:.0}" font-size="14" font-weight="bold">{title}</text>"##,
        top + 16.0
    );
    for (i, (label, value, highlight)) in items.iter().enumerate() {
        let y = top + 28.0 + i as f64 * row_h;
        let w = width * value / max;
        let fill = if *highlight { "#2f6f4f" } else { "#8aa39b" };
        let _ = writeln!(
            s,
            r##"<text x="{:.0}" y="{:.0}" font-size="12" text-anchor="end">{label}</text><rect x="{left}" y="{:.0}" width="{w:.1}" height="16" fill="{fill}"/><text x="{:.0}" y="{:.0}" font-size="12">{value:.1} {unit}</text>"##,
            left - 8.0,
            y + 12.0,
            y,
            left + w + 6.0,
            y + 12.0
        );
    }
    s
}

fn plot(groups: &[Group]) -> Option<String> {
    let g = groups
        .iter()
        .filter(|g| g.scenario == "chat" && g.row(HAVEN).is_some())
        .max_by(|a, b| (a.sessions as f64 * a.rate).total_cmp(&(b.sessions as f64 * b.rate)))?;
    let cpu: Vec<(String, f64, bool)> = g
        .rows
        .iter()
        .filter_map(|r| Some((r.label.clone(), r.cpu_us_per_msg?, r.label == HAVEN)))
        .collect();
    let mut rtt: Vec<(String, f64, bool)> = g
        .rows
        .iter()
        .map(|r| (r.label.clone(), r.rtt_p99, r.label == HAVEN))
        .collect();
    rtt.sort_by(|a, b| a.1.total_cmp(&b.1));
    let h1 = 40.0 + cpu.len() as f64 * 22.0;
    let h2 = 40.0 + rtt.len() as f64 * 22.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="820" height="{:.0}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>"##,
        h1 + h2 + 20.0
    );
    svg.push_str(&bars(
        &format!("Server CPU per relayed message ({})", g.title()),
        "µs",
        &cpu,
        0.0,
    ));
    svg.push_str(&bars("Round trip p99", "ms", &rtt, h1 + 10.0));
    svg.push_str("</svg>\n");
    Some(svg)
}

/// Builds the page from result lines.
pub fn page(reports: &[Report], preamble: &str, plot_name: Option<&str>) -> String {
    let groups = group(reports);
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmarks\n");
    out.push_str(preamble);
    if !preamble.ends_with('\n') {
        out.push('\n');
    }
    let _ = writeln!(out, "\n## Targets\n");
    let _ = writeln!(out, "| target | measured | the bare relay | met |");
    let _ = writeln!(out, "|---|---|---|---|");
    for v in verdicts(&groups) {
        let met = match v.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "not measured",
        };
        let floor = v
            .floor
            .map_or_else(|| "–".to_owned(), |f| format!("{f:.2}×"));
        let _ = writeln!(out, "| {} | {} | {floor} | {met} |", v.target, v.measured);
    }
    if let Some(name) = plot_name {
        let _ = writeln!(out, "\n![CPU per message and p99 round trip]({name})");
    }
    for g in &groups {
        let _ = writeln!(out, "\n## {}\n", g.title());
        match g.scenario.as_str() {
            "idle" => idle_table(&mut out, g),
            _ => chat_table(&mut out, g),
        }
    }
    let _ = writeln!(
        out,
        "\nMedians of the runs of each server. ⚠ marks a server with a run the generator \
         flagged (machine busy, or the generator behind its schedule)."
    );
    out
}

/// Writes the page and the plot.
pub fn write_page(args: &ReportArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.results)
        .with_context(|| format!("cannot read {}", args.results.display()))?;
    let mut reports = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let r: Report = serde_json::from_str(line).with_context(|| {
            format!(
                "{} line {}: not a result line",
                args.results.display(),
                i + 1
            )
        })?;
        reports.push(r);
    }
    let preamble = match &args.preamble {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?
        }
        None => String::new(),
    };
    let groups = group(&reports);
    let svg = plot(&groups);
    let plot_name = svg
        .as_ref()
        .and_then(|_| relative_name(&args.out, &args.plot));
    std::fs::write(&args.out, page(&reports, &preamble, plot_name.as_deref()))
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    if let Some(svg) = svg {
        std::fs::write(&args.plot, svg)
            .with_context(|| format!("cannot write {}", args.plot.display()))?;
    }
    Ok(())
}

/// The plot's file name as the page links it (the same directory).
fn relative_name(page: &Path, plot: &Path) -> Option<String> {
    if page.parent() == plot.parent() {
        plot.file_name().map(|n| n.to_string_lossy().into_owned())
    } else {
        Some(plot.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Percentiles;

    fn run(label: &str, scenario: &str, cpu: f64, p99: f64) -> Report {
        Report {
            scenario: scenario.into(),
            target: "relay".into(),
            label: Some(label.into()),
            sessions: 2000,
            rate: 5.0,
            connections: 4000,
            msgs_per_s: 20_000.0,
            server_cpu_us_per_msg: Some(cpu),
            server_rss_kb_per_conn: Some(cpu / 2.0),
            rtt: Percentiles {
                p99,
                ..Percentiles::default()
            },
            ..Report::default()
        }
    }

    #[test]
    fn medians_ratios_and_verdicts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
        let reports = vec![
            run("haven", "chat", 20.0, 3.0),
            run("haven", "chat", 22.0, 4.0),
            run("haven", "chat", 90.0, 4.0),
            run("bare-relay", "chat", 16.0, 2.5),
            run("node-ws", "chat", 25.0, 5.0),
        ];
        let groups = group(&reports);
        assert_eq!(groups.len(), 1);
        let haven = groups[0].row("haven").unwrap();
        assert_eq!(haven.runs, 3);
        assert_eq!(haven.cpu_us_per_msg, Some(22.0));
        let v = verdicts(&groups);
        let cpu = v
            .iter()
            .find(|v| v.target.starts_with("Server CPU"))
            .unwrap();
        assert_eq!(cpu.measured, "1.38×");
        assert_eq!(cpu.met, Some(true));
        let ws = v.iter().find(|v| v.target.contains("Node ws")).unwrap();
        assert_eq!(ws.met, Some(false), "25/22 = 1.14 < 1.2");
        // The bare relay at 16 µs against Node ws at 25 µs: the most any
        // server on Haven's stack could show on that line.
        assert_eq!(ws.floor.map(|f| (f * 100.0).round()), Some(156.0));
        assert_eq!(cpu.floor, Some(1.0));
        let socketio = v.iter().find(|v| v.target.contains("socket.io")).unwrap();
        assert_eq!(socketio.met, None);
        let page = page(&reports, "Run with `loadtest/bench.sh`.", Some("plot.svg"));
        assert!(page.contains("| **haven** | 3 | 22.0 |"), "{page}");
        assert!(page.contains("| 1.14× | 1.56× | **no** |"), "{page}");
        assert!(page.contains("![CPU per message"));
        let svg = plot(&groups).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("bare-relay"));
    }
}
