//! The results as a markdown table, and the "Proxy" section of `docs/benchmarks.md`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::closed::{CpuCost, Latency};
use crate::open::{capacity, Step};
use crate::sse::{Crowd, Pacing};
use crate::stats::{ms, ms_diff};

/// Target names, in order.
pub(crate) const NAMES: [&str; 3] = [
    "(a) mock direct",
    "(b) budgets off",
    "(c) budgets on + SQLite",
];

/// Everything one run measured, and where.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) machine: Vec<(String, String)>,
    pub(crate) latency: Vec<Latency>,
    /// Latency at concurrency 1 with an idle pause before each request.
    pub(crate) latency_idle: Vec<Latency>,
    pub(crate) idle_pause: Duration,
    pub(crate) steps: Vec<Vec<Step>>,
    pub(crate) step_duration: Duration,
    /// Budgets off, budgets on.
    pub(crate) cpu: Vec<CpuCost>,
    pub(crate) cpu_concurrency: usize,
    pub(crate) cpu_failures: Vec<String>,
    pub(crate) pacing: Pacing,
    pub(crate) pacing_shape: (usize, Duration),
    pub(crate) crowd: Crowd,
    pub(crate) crowd_shape: (usize, Duration),
    pub(crate) rss_idle_kib: u64,
    pub(crate) stall_bound: Duration,
    /// `--quick`: samples too small to judge a goal by, so no goal is called met or missed.
    pub(crate) quick: bool,
}

fn mb(kib: u64) -> String {
    format!("{:.1}", kib as f64 * 1024.0 / 1e6)
}

impl Report {
    /// The verdict column of the targets table.
    fn met(&self, ok: bool) -> &'static str {
        if self.quick {
            "not measured in quick mode"
        } else if ok {
            "**met**"
        } else {
            "**missed**"
        }
    }

    /// The results table, the targets table and the open-loop steps, in markdown.
    pub(crate) fn markdown(&self) -> String {
        let mut s = String::new();
        let lat = |i: usize| self.latency.get(i).map(|l| l.summary).unwrap_or_default();
        let ttfb = |i: usize| self.pacing.ttfb.get(i).copied().unwrap_or_default();
        let (a, b, c) = (lat(0), lat(1), lat(2));
        let _ = writeln!(
            s,
            "| measurement | {} | {} | {} |",
            NAMES[0], NAMES[1], NAMES[2]
        );
        let _ = writeln!(s, "| --- | ---: | ---: | ---: |");
        let _ = writeln!(
            s,
            "| latency at concurrency 1, samples | {} | {} | {} |",
            a.n, b.n, c.n
        );
        let _ = writeln!(
            s,
            "| latency at concurrency 1, median (ms) | {} | {} | {} |",
            ms(a.median),
            ms(b.median),
            ms(c.median)
        );
        let _ = writeln!(
            s,
            "| latency at concurrency 1, p99 (ms) | {} | {} | {} |",
            ms(a.p99),
            ms(b.p99),
            ms(c.p99)
        );
        let idle = |i: usize| {
            self.latency_idle
                .get(i)
                .map(|l| l.summary)
                .unwrap_or_default()
        };
        let (ia, ib, ic) = (idle(0), idle(1), idle(2));
        let pause = self.idle_pause.as_millis();
        let _ = writeln!(
            s,
            "| latency at concurrency 1 after {pause} ms idle, median (ms) | {} | {} | {} |",
            ms(ia.median),
            ms(ib.median),
            ms(ic.median)
        );
        let _ = writeln!(
            s,
            "| latency at concurrency 1 after {pause} ms idle, p99 (ms) | {} | {} | {} |",
            ms(ia.p99),
            ms(ib.p99),
            ms(ic.p99)
        );
        let caps: Vec<String> = self
            .steps
            .iter()
            .map(|steps| match capacity(steps) {
                (Some(r), true) => format!("{r}"),
                (Some(r), false) => format!("≥ {r}"),
                (None, _) => "< lowest step".to_owned(),
            })
            .collect();
        if caps.len() == 3 {
            let _ = writeln!(
                s,
                "| open-loop: highest rate with p99 < 10 ms, no errors (req/s) | {} | {} | {} |",
                caps[0], caps[1], caps[2]
            );
        }
        if let [off, on] = self.cpu.as_slice() {
            let _ = writeln!(
                s,
                "| server CPU per request, utime+stime (µs) | — | {:.1} | {:.1} |",
                off.micros_per_request, on.micros_per_request
            );
        }
        let (t0, t1, t2) = (ttfb(0), ttfb(1), ttfb(2));
        let _ = writeln!(
            s,
            "| SSE time to first event, median (ms) | {} | {} | {} |",
            ms(t0.median),
            ms(t1.median),
            ms(t2.median)
        );
        let _ = writeln!(
            s,
            "| SSE time to first event, p99 (ms) | {} | {} | {} |",
            ms(t0.p99),
            ms(t1.p99),
            ms(t2.p99)
        );
        if self.pacing.gap_diff_p99.len() == 2 {
            let g = &self.pacing.gap_diff_p99;
            let l = &self.pacing.lateness;
            let _ = writeln!(
                s,
                "| SSE chunk gap vs direct, p99 of \\|Δ\\| (ms) | — | {} | {} |",
                ms(g[0]),
                ms(g[1])
            );
            let _ = writeln!(
                s,
                "| SSE chunk lateness vs direct, p99 / max (ms) | — | {} / {} | {} / {} |",
                ms(l[0].p99),
                ms(l[0].max),
                ms(l[1].p99),
                ms(l[1].max)
            );
        }
        let _ = writeln!(s);

        // Targets.
        let cr = &self.crowd;
        let (deltas, delay) = self.pacing_shape;
        let _ = writeln!(s, "| target | measured | goal | |");
        let _ = writeln!(s, "| --- | --- | --- | --- |");
        let added_med = c.median.saturating_sub(a.median);
        let added_p99 = c.p99.saturating_sub(a.p99);
        let _ = writeln!(
            s,
            "| added latency (c) − (a), median | {} ms | ≤ 0.150 ms | {} |",
            ms_diff(c.median, a.median),
            self.met(added_med <= Duration::from_micros(150))
        );
        let _ = writeln!(
            s,
            "| added latency (c) − (a), p99 | {} ms | ≤ 0.500 ms | {} |",
            ms_diff(c.p99, a.p99),
            self.met(added_p99 <= Duration::from_micros(500))
        );
        let _ = writeln!(
            s,
            "| added latency (b) − (a), median / p99 | {} / {} ms | (reference) | |",
            ms_diff(b.median, a.median),
            ms_diff(b.p99, a.p99)
        );
        let _ = writeln!(
            s,
            "| added latency after {pause} ms idle, (c) − (a) / (b) − (a), median | {} / {} ms | (reference) | |",
            ms_diff(ic.median, ia.median),
            ms_diff(ib.median, ia.median)
        );
        let ratio = |x: Duration, y: Duration| {
            if y.is_zero() {
                0.0
            } else {
                x.as_secs_f64() / y.as_secs_f64()
            }
        };
        let _ = writeln!(
            s,
            "| latency (c) / (b), median / p99 | {:.3}× / {:.3}× | (reference) | |",
            ratio(c.median, b.median),
            ratio(c.p99, b.p99)
        );
        if let [off, on] = self.cpu.as_slice() {
            let r = if off.micros_per_request > 0.0 {
                on.micros_per_request / off.micros_per_request
            } else {
                0.0
            };
            let _ = writeln!(
                s,
                "| CPU per request, budgets on / off | {r:.3}× ({:.1} / {:.1} µs) | ≤ 1.10× | {} |",
                on.micros_per_request,
                off.micros_per_request,
                self.met(r > 0.0 && r <= 1.10)
            );
        }
        let _ = writeln!(
            s,
            "| SSE added time to first event (c) − (a), median / p99 | {} / {} ms | ≤ 0.300 ms | {} |",
            ms_diff(t2.median, t0.median),
            ms_diff(t2.p99, t0.p99),
            self.met(t2.median.saturating_sub(t0.median) <= Duration::from_micros(300))
        );
        if let Some(l) = self.pacing.lateness.get(1) {
            let _ = writeln!(
                s,
                "| no chunk held back ({deltas} deltas {} ms apart) | chunk lateness vs direct p99 {} ms (max {} ms over {} chunks); gap \\|Δ\\| p99 {} ms | p99 lateness < half a pacing interval | {} |",
                delay.as_millis(),
                ms(l.p99),
                ms(l.max),
                l.n,
                ms(self.pacing.gap_diff_p99[1]),
                self.met(l.p99 < delay / 2 && self.pacing.failures.is_empty())
            );
        }
        let (cd, cdelay) = self.crowd_shape;
        let _ = writeln!(
            s,
            "| {} concurrent streams through (c) ({cd} deltas {} ms apart) | {}/{} complete, {} open at once, gap p99 {} ms, max {} ms | all complete, no gap > {} ms | {} |",
            cr.streams,
            cdelay.as_millis(),
            cr.completed,
            cr.streams,
            cr.peak_open,
            ms(cr.gaps.p99),
            ms(cr.gaps.max),
            self.stall_bound.as_millis(),
            self.met(cr.completed == cr.streams && cr.gaps.max <= self.stall_bound)
        );
        let _ = writeln!(
            s,
            "| server RSS (c): idle / before / peak during the {} streams | {} / {} / {} MB | peak ≤ 40 MB | {} |",
            cr.streams,
            mb(self.rss_idle_kib),
            mb(cr.rss_before_kib),
            mb(cr.rss_peak_kib),
            self.met(cr.rss_peak_kib > 0 && cr.rss_peak_kib as f64 * 1024.0 <= 40e6)
        );
        let _ = writeln!(s);

        // Open-loop detail.
        let _ = writeln!(
            s,
            "Open-loop steps ({} s each; latency from the scheduled send time; p50 / p99 ms, errors):\n",
            self.step_duration.as_secs_f64()
        );
        let _ = writeln!(
            s,
            "| rate (req/s) | {} | {} | {} |",
            NAMES[0], NAMES[1], NAMES[2]
        );
        let _ = writeln!(s, "| ---: | --- | --- | --- |");
        let mut rates: Vec<u64> = self.steps.iter().flatten().map(|st| st.rate).collect();
        rates.sort_unstable();
        rates.dedup();
        for rate in rates {
            let cells: Vec<String> = self
                .steps
                .iter()
                .map(|steps| match steps.iter().find(|st| st.rate == rate) {
                    Some(st) => format!(
                        "{} / {}, {} err{}",
                        ms(st.latency.median),
                        ms(st.latency.p99),
                        st.errors,
                        if st.passes() { "" } else { " ✗" }
                    ),
                    None => "—".to_owned(),
                })
                .collect();
            let _ = writeln!(s, "| {rate} | {} |", cells.join(" | "));
        }
        s
    }

    /// Every request that did not get a complete 200 answer, by phase.
    pub(crate) fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for phase in [&self.latency, &self.latency_idle] {
            for (name, l) in NAMES.iter().zip(phase) {
                out.extend(l.failures.iter().map(|f| format!("latency {name}: {f}")));
            }
        }
        out.extend(self.cpu_failures.iter().map(|f| format!("CPU phase: {f}")));
        out.extend(
            self.pacing
                .failures
                .iter()
                .map(|f| format!("SSE pacing: {f}")),
        );
        out.extend(
            self.crowd
                .failures
                .iter()
                .take(20)
                .map(|f| format!("concurrent streams: {f}")),
        );
        out
    }

    /// The whole "Proxy" section body.
    pub(crate) fn section(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "`budget-bench` measures what the proxy costs, black-box and side by side: every phase\n\
             runs the three targets in the same run, interleaved. (a) is the suite's own mock\n\
             upstream (a separate process, hyper, ~1 KB JSON with usage or paced SSE), (b) is\n\
             `budget-server` with `BUDGETS_ENABLED=false` (same binary, plain pass-through) and (c)\n\
             is `budget-server` with budgets on and a SQLite file, both proxying to that mock.\n"
        );
        let _ = writeln!(
            s,
            "```sh no-run: a release build, then minutes of measuring\n\
             cargo build --release -p budget-server -p budget-bench\n\
             cargo run --release -p budget-bench -- --write-docs   # a few minutes; updates this section\n\
             ```\n\n\
             The quick mode takes seconds and only checks that every target answers (CI runs it;\n\
             it prints no verdict on the goals):\n\n\
             ```sh\n\
             cargo build -p budget-server -p budget-bench\n\
             cargo run -p budget-bench -- --quick\n\
             ```\n"
        );
        let _ = writeln!(
            s,
            "- **Setup**: each server gets its own SQLite file in a temporary folder and one limiter,\n  \
             created through its admin API; `ADMIN_PASSWORD` is a cheap argon2id hash so that\n  \
             password hashing does not show in the server's memory.\n\
             - **Latency**: closed loop at concurrency 1, rounds of a, b, c over one keep-alive\n  \
             connection each, send to last byte; once back to back, once with {} ms of idle\n  \
             before each request (every process then wakes from idle, as with sparse traffic).\n\
             - **Throughput**: an open-loop generator (fixed schedule kept by its own thread;\n  \
             latency from the *scheduled* send time, so a server that falls behind is charged\n  \
             for it) steps the rate up, a, b, c at each rate, until p99 ≥ 10 ms or an error.\n\
             - **CPU**: the server's utime + stime from `/proc/PID/stat` around a fixed number of\n  \
             requests (closed loop over {} connections, off and on alternating in blocks).\n\
             - **SSE**: each stream starts after the same idle pause; time to the first event,\n  \
             and each chunk's arrival compared with the paired direct stream (a held-back chunk\n  \
             shows as a whole pacing interval). Then many concurrent streams through (c) while\n  \
             its `VmRSS` is sampled every 10 ms.\n\
             - Client (one thread), mock (one thread) and servers share the machine, as in the\n  \
             published gateway benchmarks. Diagnostics: `--only latency,throughput,cpu,sse,streams`,\n  \
             `--pause 20ms`, `--streams-through off`.\n",
            self.idle_pause.as_millis(),
            self.cpu_concurrency
        );
        let _ = writeln!(s, "### Last run\n");
        for (k, v) in &self.machine {
            let _ = writeln!(s, "- {k}: {v}");
        }
        let _ = writeln!(s);
        s.push_str(&self.markdown());
        let failures = self.failures();
        if !failures.is_empty() {
            let _ = writeln!(s, "\nFailed requests:\n");
            for f in failures {
                let _ = writeln!(s, "- {f}");
            }
        }
        s
    }
}

const PROXY: &str = "## Proxy";
const SQLITE: &str = "## SQLite store";

/// Put `body` under `## Proxy` in the file at `path`, keeping every other section as it is;
/// create the file (with both headings) when it does not exist.
pub(crate) fn write_section(path: &Path, body: &str) -> std::io::Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            format!("# Benchmarks\n\n{PROXY}\n\n{SQLITE}\n\n_Not measured yet._\n")
        }
        Err(e) => return Err(e),
    };
    std::fs::write(path, replace_section(&text, PROXY, body))
}

/// Written by hand under the generated part; kept when the section is rewritten.
const FINDINGS: &str = "### Findings";

/// `text` with the body of the level-2 section `heading` replaced (appended when missing),
/// keeping a hand-written [`FINDINGS`] subsection at its end.
fn replace_section(text: &str, heading: &str, body: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = lines.iter().position(|l| l.trim_end() == heading) else {
        let mut out = text.trim_end().to_owned();
        let _ = write!(out, "\n\n{heading}\n\n{}\n", body.trim_end());
        return out;
    };
    // The section ends at the next level-1 or level-2 heading outside a code block.
    let mut fenced = false;
    let mut end = lines.len();
    for (i, l) in lines.iter().enumerate().skip(start + 1) {
        if l.starts_with("```") {
            fenced = !fenced;
        } else if !fenced && (l.starts_with("## ") || l.starts_with("# ")) {
            end = i;
            break;
        }
    }
    let findings = lines[start + 1..end]
        .iter()
        .position(|l| l.trim_end() == FINDINGS)
        .map(|i| start + 1 + i);
    let mut out = lines[..=start].join("\n");
    let _ = write!(out, "\n\n{}\n", body.trim_end());
    if let Some(f) = findings {
        let _ = write!(out, "\n{}\n", lines[f..end].join("\n").trim_end());
    }
    if end < lines.len() {
        let _ = write!(out, "\n{}\n", lines[end..].join("\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_proxy_section_changes() {
        let text = "# Benchmarks\n\nintro\n\n## Proxy\n\nold\n\n### Last run\n\nold too\n\n## SQLite store\n\ntheirs\n";
        let out = replace_section(text, PROXY, "new\n");
        assert_eq!(
            out,
            "# Benchmarks\n\nintro\n\n## Proxy\n\nnew\n\n## SQLite store\n\ntheirs\n"
        );
        let text = "# Benchmarks\n\n## SQLite store\n\ntheirs\n";
        let out = replace_section(text, PROXY, "new");
        assert_eq!(
            out,
            "# Benchmarks\n\n## SQLite store\n\ntheirs\n\n## Proxy\n\nnew\n"
        );
        let text = "## Proxy\n";
        assert_eq!(replace_section(text, PROXY, "new"), "## Proxy\n\nnew\n");
        let text = "## Proxy\n\n```sh\n# not a heading\n```\nold\n\n### Findings\n\nmine\n\n## SQLite store\nx\n";
        assert_eq!(
            replace_section(text, PROXY, "new"),
            "## Proxy\n\nnew\n\n### Findings\n\nmine\n\n## SQLite store\nx\n"
        );
    }
    #[test]
    fn quick_mode_calls_no_goal_met_or_missed() {
        let full = Report::default().markdown();
        assert!(full.contains("**missed**"), "{full}");
        let quick = Report {
            quick: true,
            ..Report::default()
        }
        .markdown();
        assert!(
            !quick.contains("**met**") && !quick.contains("**missed**"),
            "{quick}"
        );
        // Every goal row says so: added latency (2), SSE first event, the crowd, RSS.
        assert_eq!(
            quick.matches("not measured in quick mode").count(),
            5,
            "{quick}"
        );
    }
}
