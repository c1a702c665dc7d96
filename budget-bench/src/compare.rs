//! The side-by-side summary: one row per target (direct, nginx, budgets off, budgets on), then
//! the ratios between them, judged against the goals of issue 12 ("a hot path that costs what a
//! bare proxy costs").

use std::fmt::Write as _;
use std::time::Duration;

use crate::report::{mb, ratio, Report, DIRECT, NAMES, NGINX, OFF, ON};
use crate::stats::{ms, ms_diff};

/// Goals of issue 12, in the units the table prints.
const CPU_ON_OFF: f64 = 1.25;
const CPU_ON_OFF_STRETCH: f64 = 1.10;
const CPU_ON_NGINX: f64 = 1.6;
const CPU_OFF_NGINX: f64 = 1.3;
const ADDED_LATENCY: Duration = Duration::from_micros(150);
const RSS_BYTES: f64 = 40e6;
const SSE_OVER_NGINX: Duration = Duration::from_micros(150);

/// Signed difference in seconds.
fn diff(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() - b.as_secs_f64()
}

impl Report {
    /// The side-by-side table and its ratios.
    pub(crate) fn side_by_side(&self) -> String {
        let mut s = String::new();
        let events = self.burst_deltas + 2;
        let n_streams = self.crowds.iter().map(|c| c.streams).max().unwrap_or(0);
        let a = self.lat(DIRECT);
        let ttfb_a = self.ttfb(DIRECT);
        let burst = |i: usize| {
            (
                self.burst.ttfe.get(i).copied().unwrap_or_default(),
                self.burst.total.get(i).copied().unwrap_or_default(),
            )
        };
        let (ba_first, ba_total) = burst(DIRECT);
        let _ = writeln!(
            s,
            "| target | CPU per request (µs) | req/s, closed loop over {} connections | open loop, highest rate with p99 < 10 ms (req/s) | latency at concurrency 1, added median / p99 (ms) | RSS idle / peak at {n_streams} streams (MB) | SSE first event after idle, added median (ms) | {events}-event stream back to back, added median: first event / whole stream (ms) |",
            self.cpu_concurrency
        );
        let _ = writeln!(
            s,
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for i in self.slots() {
            let lat = self.lat(i);
            let (first, total) = burst(i);
            let (latency, sse, stream) = if i == DIRECT {
                (
                    format!("({} / {} absolute)", ms(lat.median), ms(lat.p99)),
                    format!("({} absolute)", ms(ttfb_a.median)),
                    format!("({} / {} absolute)", ms(first.median), ms(total.median)),
                )
            } else {
                (
                    format!(
                        "{} / {}",
                        ms_diff(lat.median, a.median),
                        ms_diff(lat.p99, a.p99)
                    ),
                    ms_diff(self.ttfb(i).median, ttfb_a.median),
                    format!(
                        "{} / {}",
                        ms_diff(first.median, ba_first.median),
                        ms_diff(total.median, ba_total.median)
                    ),
                )
            };
            let rss = format!(
                "{} / {}",
                mb(self.rss_idle_kib.get(i).copied().unwrap_or(0)),
                self.crowd(i)
                    .map_or_else(|| "—".to_owned(), |c| mb(c.rss_peak_kib))
            );
            let _ = writeln!(
                s,
                "| {} | {:.1} | {:.0} | {} | {latency} | {rss} | {sse} | {stream} |",
                NAMES[i],
                self.cpu_us(i),
                self.cpu.get(i).map_or(0.0, |c| c.per_second()),
                self.capacity_cell(i),
            );
        }
        let _ = writeln!(s);
        s.push_str(&self.ratios());
        s
    }

    /// Ratios between the targets, and the goals of issue 12.
    fn ratios(&self) -> String {
        let mut s = String::new();
        let nginx = self.nginx_skipped.is_none();
        let (on, off, ng) = (self.cpu_us(ON), self.cpu_us(OFF), self.cpu_us(NGINX));
        let unmeasured = "nginx not measured";
        let _ = writeln!(s, "| comparison | measured | goal (issue 12) | |");
        let _ = writeln!(s, "| --- | --- | --- | --- |");
        let r = ratio(on, off);
        let _ = writeln!(
            s,
            "| CPU per request, budgets on ÷ off | {r:.2}× ({on:.1} / {off:.1} µs) | ≤ {CPU_ON_OFF:.2}× (stretch {CPU_ON_OFF_STRETCH:.2}×) | {} |",
            self.judged(!self.cpu.is_empty(), r > 0.0 && r <= CPU_ON_OFF)
        );
        for (label, x, goal) in [
            ("budgets on ÷ nginx", on, CPU_ON_NGINX),
            ("budgets off ÷ nginx", off, CPU_OFF_NGINX),
        ] {
            let r = ratio(x, ng);
            if nginx {
                let _ = writeln!(
                    s,
                    "| CPU per request, {label} | {r:.2}× ({x:.1} / {ng:.1} µs) | ≤ {goal:.1}× | {} |",
                    self.judged(!self.cpu.is_empty(), r > 0.0 && r <= goal)
                );
            } else {
                let _ = writeln!(
                    s,
                    "| CPU per request, {label} | {unmeasured} | ≤ {goal:.1}× | — |"
                );
            }
        }
        let (a, c) = (self.lat(DIRECT), self.lat(ON));
        let _ = writeln!(
            s,
            "| added latency at concurrency 1, budgets on − direct, median | {} ms | ≤ {} ms | {} |",
            ms_diff(c.median, a.median),
            ms(ADDED_LATENCY),
            self.judged(a.n > 0, c.median.saturating_sub(a.median) <= ADDED_LATENCY)
        );
        match self.crowd(ON) {
            Some(cr) => {
                let _ = writeln!(
                    s,
                    "| RSS at {} concurrent streams, budgets on, peak | {} MB | ≤ {:.0} MB | {} |",
                    cr.streams,
                    mb(cr.rss_peak_kib),
                    RSS_BYTES / 1e6,
                    self.met(cr.rss_peak_kib > 0 && cr.rss_peak_kib as f64 * 1024.0 <= RSS_BYTES)
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "| RSS at concurrent streams, budgets on, peak | not measured | ≤ {:.0} MB | — |",
                    RSS_BYTES / 1e6
                );
            }
        }
        // SSE: what budgets on adds over direct, against what nginx adds over direct.
        let events = self.burst_deltas + 2;
        let first = |i: usize| self.burst.ttfe.get(i).map(|x| x.median).unwrap_or_default();
        let total = |i: usize| {
            self.burst
                .total
                .get(i)
                .map(|x| x.median)
                .unwrap_or_default()
        };
        let idle = |i: usize| self.ttfb(i).median;
        type Pick<'a> = &'a dyn Fn(usize) -> Duration;
        let paced = self.ttfb(DIRECT).n > 0;
        let unpaced = self.burst.ttfe.get(DIRECT).is_some_and(|x| x.n > 0);
        let rows: [(String, Pick<'_>, bool); 3] = [
            (
                "SSE time to first event after idle, added by budgets on − added by nginx, median"
                    .to_owned(),
                &idle,
                paced,
            ),
            (
                format!("{events}-event stream back to back, first event, added by budgets on − added by nginx, median"),
                &first,
                unpaced,
            ),
            (
                format!("{events}-event stream back to back, whole stream, added by budgets on − added by nginx, median"),
                &total,
                unpaced,
            ),
        ];
        for (label, pick, measured) in rows {
            let added_on = diff(pick(ON), pick(DIRECT));
            let added_nginx = diff(pick(NGINX), pick(DIRECT));
            if nginx {
                let over = added_on - added_nginx;
                let _ = writeln!(
                    s,
                    "| {label} | {:+.3} ms ({:+.3} vs {:+.3}) | ≤ {} ms | {} |",
                    over * 1e3,
                    added_on * 1e3,
                    added_nginx * 1e3,
                    ms(SSE_OVER_NGINX),
                    self.judged(measured, over <= SSE_OVER_NGINX.as_secs_f64())
                );
            } else {
                let _ = writeln!(
                    s,
                    "| {label} | {unmeasured} (budgets on adds {:+.3}) | ≤ {} ms | — |",
                    added_on * 1e3,
                    ms(SSE_OVER_NGINX)
                );
            }
        }
        if nginx {
            let per_sec = |i: usize| self.cpu.get(i).map_or(0.0, |c| c.per_second());
            let added = |i: usize| diff(self.lat(i).median, self.lat(DIRECT).median);
            let _ = writeln!(
                s,
                "| req/s closed loop, budgets on ÷ nginx / budgets off ÷ nginx | {:.2}× / {:.2}× | (reference) | |",
                ratio(per_sec(ON), per_sec(NGINX)),
                ratio(per_sec(OFF), per_sec(NGINX))
            );
            let _ = writeln!(
                s,
                "| added latency at concurrency 1, median: budgets on ÷ nginx / budgets off ÷ nginx | {:.2}× / {:.2}× | (reference) | |",
                ratio(added(ON), added(NGINX)),
                ratio(added(OFF), added(NGINX))
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use crate::closed::CpuCost;
    use crate::report::{spread, Report, DIRECT, NGINX, OFF, ON};

    fn cpu(micros: f64) -> CpuCost {
        CpuCost {
            micros_per_request: micros,
            ..CpuCost::default()
        }
    }

    #[test]
    fn ratios_are_against_nginx_and_budgets_off() {
        let r = Report {
            cpu: spread(
                vec![cpu(10.0), cpu(20.0), cpu(40.0), cpu(100.0)],
                &[DIRECT, NGINX, OFF, ON],
            ),
            ..Report::default()
        };
        let s = r.side_by_side();
        assert!(
            s.contains("| CPU per request, budgets on ÷ off | 2.50× (100.0 / 40.0 µs)"),
            "{s}"
        );
        assert!(
            s.contains("| CPU per request, budgets on ÷ nginx | 5.00× (100.0 / 20.0 µs)"),
            "{s}"
        );
        assert!(
            s.contains("| CPU per request, budgets off ÷ nginx | 2.00× (40.0 / 20.0 µs)"),
            "{s}"
        );
        assert!(s.contains("| (n) nginx | 20.0 |"), "{s}");
    }

    #[test]
    fn without_nginx_its_ratios_say_so() {
        let r = Report {
            nginx_skipped: Some("not installed".to_owned()),
            cpu: spread(vec![cpu(10.0), cpu(40.0), cpu(50.0)], &[DIRECT, OFF, ON]),
            ..Report::default()
        };
        let s = r.side_by_side();
        assert!(s.contains("budgets on ÷ off | 1.25×"), "{s}");
        assert!(
            s.contains("| CPU per request, budgets on ÷ nginx | nginx not measured |"),
            "{s}"
        );
        assert!(!s.contains("(n) nginx"), "{s}");
    }
}
