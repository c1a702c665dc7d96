//! The results as markdown: every measurement per target, the goals, the open-loop steps.
//! The side-by-side table with nginx is in [`crate::compare`]; the docs section in
//! [`crate::docs`].

use std::fmt::Write as _;
use std::time::Duration;

use crate::closed::{CpuCost, Latency};
use crate::open::{capacity, Step};
use crate::sse::{Burst, Crowd, Pacing};
use crate::stats::{ms, ms_diff, Summary};

/// Slot of the mock, asked directly.
pub(crate) const DIRECT: usize = 0;
/// Slot of nginx in front of the mock.
pub(crate) const NGINX: usize = 1;
/// Slot of `budget-server` with budgets off.
pub(crate) const OFF: usize = 2;
/// Slot of `budget-server` with budgets on.
pub(crate) const ON: usize = 3;

/// Target names, by slot.
pub(crate) const NAMES: [&str; 4] = [
    "(a) mock direct",
    "(n) nginx",
    "(b) budgets off",
    "(c) budgets on + SQLite",
];

/// Everything one run measured, and where. Every per-target vector has one entry per slot
/// ([`DIRECT`], [`NGINX`], [`OFF`], [`ON`]); a skipped target's entries are defaults.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) machine: Vec<(String, String)>,
    /// Why nginx was not measured (`None`: it was).
    pub(crate) nginx_skipped: Option<String>,
    pub(crate) latency: Vec<Latency>,
    /// Latency at concurrency 1 with an idle pause before each request.
    pub(crate) latency_idle: Vec<Latency>,
    pub(crate) idle_pause: Duration,
    pub(crate) steps: Vec<Vec<Step>>,
    pub(crate) step_duration: Duration,
    /// The measured process's CPU (the mock's for the direct slot).
    pub(crate) cpu: Vec<CpuCost>,
    pub(crate) cpu_concurrency: usize,
    pub(crate) cpu_failures: Vec<String>,
    pub(crate) pacing: Pacing,
    pub(crate) pacing_shape: (usize, Duration),
    pub(crate) burst: Burst,
    /// Content deltas of a burst stream (it has two events more: usage and `[DONE]`).
    pub(crate) burst_deltas: usize,
    /// Many concurrent streams, per proxy slot that was asked.
    pub(crate) crowds: Vec<Crowd>,
    pub(crate) crowd_shape: (usize, Duration),
    pub(crate) rss_idle_kib: Vec<u64>,
    pub(crate) stall_bound: Duration,
    /// `--quick`: samples too small to judge a goal by, so no goal is called met or missed.
    pub(crate) quick: bool,
}

/// Megabytes (10⁶ bytes) with one decimal.
pub(crate) fn mb(kib: u64) -> String {
    format!("{:.1}", kib as f64 * 1024.0 / 1e6)
}

/// `x / y`, zero when `y` is.
pub(crate) fn ratio(x: f64, y: f64) -> f64 {
    if y > 0.0 {
        x / y
    } else {
        0.0
    }
}

impl Report {
    /// The verdict column of a goals table.
    pub(crate) fn met(&self, ok: bool) -> &'static str {
        if self.quick {
            "not measured in quick mode"
        } else if ok {
            "**met**"
        } else {
            "**missed**"
        }
    }

    /// The verdict column of a goals table for a phase that may not have run (`--only`).
    pub(crate) fn judged(&self, measured: bool, ok: bool) -> &'static str {
        if !measured && !self.quick {
            "not measured in this run"
        } else {
            self.met(ok)
        }
    }

    /// The slots measured in this run, in column order.
    pub(crate) fn slots(&self) -> Vec<usize> {
        let mut v = vec![DIRECT, NGINX, OFF, ON];
        if self.nginx_skipped.is_some() {
            v.retain(|&i| i != NGINX);
        }
        v
    }

    pub(crate) fn lat(&self, i: usize) -> Summary {
        self.latency.get(i).map(|l| l.summary).unwrap_or_default()
    }

    fn lat_idle(&self, i: usize) -> Summary {
        self.latency_idle
            .get(i)
            .map(|l| l.summary)
            .unwrap_or_default()
    }

    pub(crate) fn ttfb(&self, i: usize) -> Summary {
        self.pacing.ttfb.get(i).copied().unwrap_or_default()
    }

    pub(crate) fn cpu_us(&self, i: usize) -> f64 {
        self.cpu.get(i).map_or(0.0, |c| c.micros_per_request)
    }

    pub(crate) fn crowd(&self, i: usize) -> Option<&Crowd> {
        self.crowds.get(i).filter(|c| c.streams > 0)
    }

    /// Open-loop capacity of a slot, as a table cell.
    pub(crate) fn capacity_cell(&self, i: usize) -> String {
        match self
            .steps
            .get(i)
            .filter(|s| !s.is_empty())
            .map(|s| capacity(s))
        {
            Some((Some(r), true)) => format!("{r}"),
            Some((Some(r), false)) => format!("≥ {r}"),
            Some((None, _)) => "< lowest step".to_owned(),
            None => "—".to_owned(),
        }
    }

    /// A table row: `label`, then `cell(slot)` for each measured slot.
    fn row(&self, s: &mut String, label: &str, cell: impl Fn(usize) -> String) {
        let cells: Vec<String> = self.slots().into_iter().map(cell).collect();
        let _ = writeln!(s, "| {label} | {} |", cells.join(" | "));
    }

    /// The table header for the measured slots.
    fn header(&self, s: &mut String, first: &str, align: &str) {
        let slots = self.slots();
        let names: Vec<&str> = slots.iter().map(|&i| NAMES[i]).collect();
        let _ = writeln!(s, "| {first} | {} |", names.join(" | "));
        let _ = writeln!(s, "| {align} |{}", " ---: |".repeat(slots.len()));
    }

    /// Everything, in markdown: the side-by-side summary, per-target measurements, goals and
    /// the open-loop steps.
    pub(crate) fn markdown(&self) -> String {
        let mut s = String::new();
        if let Some(why) = &self.nginx_skipped {
            let _ = writeln!(s, "nginx rows skipped: {why}.\n");
        }
        s.push_str(&self.side_by_side());
        let _ = writeln!(s);
        s.push_str(&self.measurements());
        let _ = writeln!(s);
        s.push_str(&self.goals());
        let _ = writeln!(s);
        s.push_str(&self.open_loop());
        s
    }

    /// Every measurement, one column per target.
    fn measurements(&self) -> String {
        let mut s = String::new();
        let proxied = |i: usize| i != DIRECT;
        self.header(&mut s, "measurement", "---");
        self.row(&mut s, "latency at concurrency 1, samples", |i| {
            self.lat(i).n.to_string()
        });
        self.row(&mut s, "latency at concurrency 1, median (ms)", |i| {
            ms(self.lat(i).median)
        });
        self.row(&mut s, "latency at concurrency 1, p99 (ms)", |i| {
            ms(self.lat(i).p99)
        });
        let pause = self.idle_pause.as_millis();
        self.row(
            &mut s,
            &format!("latency at concurrency 1 after {pause} ms idle, median (ms)"),
            |i| ms(self.lat_idle(i).median),
        );
        self.row(
            &mut s,
            &format!("latency at concurrency 1 after {pause} ms idle, p99 (ms)"),
            |i| ms(self.lat_idle(i).p99),
        );
        self.row(
            &mut s,
            "open-loop: highest rate with p99 < 10 ms, no errors (req/s)",
            |i| self.capacity_cell(i),
        );
        if !self.cpu.is_empty() {
            self.row(
                &mut s,
                "CPU per request, utime+stime of the process (µs; (a): the mock's own)",
                |i| format!("{:.1}", self.cpu_us(i)),
            );
            self.row(
                &mut s,
                &format!(
                    "closed loop over {} connections (req/s)",
                    self.cpu_concurrency
                ),
                |i| format!("{:.0}", self.cpu[i].per_second()),
            );
        }
        self.row(&mut s, "RSS at idle (MB)", |i| {
            mb(self.rss_idle_kib.get(i).copied().unwrap_or(0))
        });
        self.row(&mut s, "SSE time to first event, median (ms)", |i| {
            ms(self.ttfb(i).median)
        });
        self.row(&mut s, "SSE time to first event, p99 (ms)", |i| {
            ms(self.ttfb(i).p99)
        });
        let g = &self.pacing.gap_diff_p99;
        let l = &self.pacing.lateness;
        if g.len() > DIRECT + 1 {
            self.row(
                &mut s,
                "SSE chunk gap vs direct, p99 of \\|Δ\\| (ms)",
                |i| {
                    if proxied(i) {
                        ms(g[i])
                    } else {
                        "—".to_owned()
                    }
                },
            );
            self.row(
                &mut s,
                "SSE chunk lateness vs direct, p99 / max (ms)",
                |i| {
                    if proxied(i) {
                        format!("{} / {}", ms(l[i].p99), ms(l[i].max))
                    } else {
                        "—".to_owned()
                    }
                },
            );
        }
        let events = self.burst_deltas + 2;
        let b = &self.burst;
        if !b.ttfe.is_empty() {
            self.row(
                &mut s,
                &format!("{events}-event stream back to back, first event, median / p99 (ms)"),
                |i| format!("{} / {}", ms(b.ttfe[i].median), ms(b.ttfe[i].p99)),
            );
            self.row(
                &mut s,
                &format!("{events}-event stream back to back, whole stream, median / p99 (ms)"),
                |i| format!("{} / {}", ms(b.total[i].median), ms(b.total[i].p99)),
            );
        }
        let (cd, cdelay) = self.crowd_shape;
        let crowd = |i: usize, f: &dyn Fn(&Crowd) -> String| {
            self.crowd(i).map_or_else(|| "—".to_owned(), f)
        };
        let n = self.crowds.iter().map(|c| c.streams).max().unwrap_or(0);
        self.row(
            &mut s,
            &format!(
                "{n} concurrent streams ({cd} deltas {} ms apart): complete, open at once",
                cdelay.as_millis()
            ),
            |i| {
                crowd(i, &|c| {
                    format!("{}/{}, {}", c.completed, c.streams, c.peak_open)
                })
            },
        );
        self.row(
            &mut s,
            &format!("{n} concurrent streams: chunk gap p99 / max (ms)"),
            |i| crowd(i, &|c| format!("{} / {}", ms(c.gaps.p99), ms(c.gaps.max))),
        );
        self.row(
            &mut s,
            &format!("{n} concurrent streams: RSS before / peak (MB)"),
            |i| {
                crowd(i, &|c| {
                    format!("{} / {}", mb(c.rss_before_kib), mb(c.rss_peak_kib))
                })
            },
        );
        s
    }

    /// The goals of the earlier rounds, judged on this run.
    fn goals(&self) -> String {
        let mut s = String::new();
        let (a, b, c) = (self.lat(DIRECT), self.lat(OFF), self.lat(ON));
        let (ia, ib, ic) = (self.lat_idle(DIRECT), self.lat_idle(OFF), self.lat_idle(ON));
        let (t0, t2) = (self.ttfb(DIRECT), self.ttfb(ON));
        let (deltas, delay) = self.pacing_shape;
        let pause = self.idle_pause.as_millis();
        let _ = writeln!(s, "| goal | measured | goal | |");
        let _ = writeln!(s, "| --- | --- | --- | --- |");
        let _ = writeln!(
            s,
            "| added latency (c) − (a), median | {} ms | ≤ 0.150 ms | {} |",
            ms_diff(c.median, a.median),
            self.judged(
                a.n > 0,
                c.median.saturating_sub(a.median) <= Duration::from_micros(150)
            )
        );
        let _ = writeln!(
            s,
            "| added latency (c) − (a), p99 | {} ms | ≤ 0.500 ms | {} |",
            ms_diff(c.p99, a.p99),
            self.judged(
                a.n > 0,
                c.p99.saturating_sub(a.p99) <= Duration::from_micros(500)
            )
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
        let _ = writeln!(
            s,
            "| SSE added time to first event (c) − (a), median / p99 | {} / {} ms | ≤ 0.300 ms | {} |",
            ms_diff(t2.median, t0.median),
            ms_diff(t2.p99, t0.p99),
            self.judged(
                t0.n > 0,
                t2.median.saturating_sub(t0.median) <= Duration::from_micros(300)
            )
        );
        if let (Some(l), Some(g)) = (
            self.pacing.lateness.get(ON),
            self.pacing.gap_diff_p99.get(ON),
        ) {
            let _ = writeln!(
                s,
                "| no chunk held back by (c) ({deltas} deltas {} ms apart) | chunk lateness vs direct p99 {} ms (max {} ms over {} chunks); gap \\|Δ\\| p99 {} ms | p99 lateness < half a pacing interval | {} |",
                delay.as_millis(),
                ms(l.p99),
                ms(l.max),
                l.n,
                ms(*g),
                self.met(l.p99 < delay / 2 && self.pacing.failures.is_empty())
            );
        }
        let (cd, cdelay) = self.crowd_shape;
        if let Some(cr) = self.crowd(ON) {
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
                mb(self.rss_idle_kib.get(ON).copied().unwrap_or(0)),
                mb(cr.rss_before_kib),
                mb(cr.rss_peak_kib),
                self.met(cr.rss_peak_kib > 0 && cr.rss_peak_kib as f64 * 1024.0 <= 40e6)
            );
        }
        s
    }

    /// Open-loop detail: every step of every target.
    fn open_loop(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Open-loop steps ({} s each; latency from the scheduled send time; p50 / p99 ms, errors):\n",
            self.step_duration.as_secs_f64()
        );
        self.header(&mut s, "rate (req/s)", "---:");
        let mut rates: Vec<u64> = self.steps.iter().flatten().map(|st| st.rate).collect();
        rates.sort_unstable();
        rates.dedup();
        for rate in rates {
            self.row(&mut s, &rate.to_string(), |i| {
                match self.steps[i].iter().find(|st| st.rate == rate) {
                    Some(st) => format!(
                        "{} / {}, {} err{}",
                        ms(st.latency.median),
                        ms(st.latency.p99),
                        st.errors,
                        if st.passes() { "" } else { " ✗" }
                    ),
                    None => "—".to_owned(),
                }
            });
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
            self.burst
                .failures
                .iter()
                .map(|f| format!("SSE streams back to back: {f}")),
        );
        for (name, c) in NAMES.iter().zip(&self.crowds) {
            out.extend(
                c.failures
                    .iter()
                    .take(20)
                    .map(|f| format!("concurrent streams through {name}: {f}")),
            );
        }
        out
    }
}

/// `v` (one entry per measured slot, in `slots` order) spread over all four slots, with
/// defaults for the slots not measured.
pub(crate) fn spread<T: Default>(v: Vec<T>, slots: &[usize]) -> Vec<T> {
    let mut out: Vec<T> = (0..NAMES.len()).map(|_| T::default()).collect();
    for (x, &i) in v.into_iter().zip(slots) {
        out[i] = x;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_mode_calls_no_goal_met_or_missed() {
        let measured = |quick| Report {
            quick,
            crowds: spread(
                vec![Crowd {
                    streams: 10,
                    ..Crowd::default()
                }],
                &[ON],
            ),
            ..Report::default()
        };
        let full = measured(false).markdown();
        assert!(full.contains("**missed**"), "{full}");
        let quick = measured(true).markdown();
        assert!(
            !quick.contains("**met**") && !quick.contains("**missed**"),
            "{quick}"
        );
        // Every goal row says so: added latency (2), SSE first event, the crowd, RSS, and the
        // eight rows of the side-by-side goals.
        assert_eq!(
            quick.matches("not measured in quick mode").count(),
            13,
            "{quick}"
        );
    }

    #[test]
    fn a_skipped_nginx_has_no_column_and_says_why() {
        let r = Report {
            nginx_skipped: Some("skipped in quick mode".to_owned()),
            ..Report::default()
        };
        let md = r.markdown();
        assert!(
            md.contains("nginx rows skipped: skipped in quick mode"),
            "{md}"
        );
        assert!(!md.contains("| (n) nginx |"), "{md}");
        assert!(
            md.contains("| measurement | (a) mock direct | (b) budgets off |"),
            "{md}"
        );
    }

    #[test]
    fn spread_fills_the_missing_slots_with_defaults() {
        assert_eq!(spread(vec![1, 2, 3], &[DIRECT, OFF, ON]), vec![1, 0, 2, 3]);
    }
}
