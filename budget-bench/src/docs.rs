//! The "Proxy" section of `docs/benchmarks.md`: written by `--write-docs`, keeping every other
//! section and the hand-written findings.

use std::fmt::Write as _;
use std::path::Path;

use crate::report::Report;

impl Report {
    /// The whole "Proxy" section body.
    pub(crate) fn section(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "`budget-bench` measures what the proxy costs, black-box and side by side: every phase\n\
             runs the targets in the same run, interleaved. (a) is the suite's own mock\n\
             upstream (a separate process, hyper, ~1 KB JSON with usage or SSE), (n) is a plain\n\
             nginx reverse proxy, (b) is `budget-server` with `BUDGETS_ENABLED=false` (same\n\
             binary, plain pass-through) and (c) is `budget-server` with budgets on and a SQLite\n\
             file, all three proxying to that mock.\n"
        );
        let _ = writeln!(
            s,
            "```sh no-run: a release build, then minutes of measuring\n\
             cargo build --release -p budget-server -p budget-bench\n\
             cargo run --release -p budget-bench -- --write-docs   # a few minutes; updates this section\n\
             ```\n\n\
             The quick mode takes seconds and only checks that every target answers (CI runs it;\n\
             it prints no verdict on the goals and skips nginx):\n\n\
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
             - **nginx**: Debian's `nginx` package (a full run installs it with `apt-get` when it\n  \
             is missing and the suite runs as root; otherwise its rows are skipped and the report\n  \
             says why), in the foreground as an unprivileged user with a generated configuration:\n  \
             `worker_processes auto`, HTTP/1.1 to the mock over keep-alive connections\n  \
             (`keepalive 64`), `proxy_buffering off`, no access log. Its CPU and memory are its\n  \
             master's and workers' together (RSS summed, so shared pages count once per process).\n\
             - **Latency**: closed loop at concurrency 1, rounds of a, n, b, c over one keep-alive\n  \
             connection each, send to last byte; once back to back, once with {} ms of idle\n  \
             before each request (every process then wakes from idle, as with sparse traffic).\n\
             - **Throughput**: an open-loop generator (fixed schedule kept by its own thread;\n  \
             latency from the *scheduled* send time, so a server that falls behind is charged\n  \
             for it) steps the rate up, every target at each rate, until p99 ≥ 10 ms or an error.\n\
             - **CPU**: each process's utime + stime from `/proc/PID/stat` around a fixed number\n  \
             of requests (closed loop over {} connections, the targets alternating in blocks);\n  \
             requests per second of the same blocks. No process is pinned to a core.\n\
             - **SSE**: paced streams ({} deltas {} ms apart), each after the same idle pause:\n  \
             time to the first event, and each chunk's arrival compared with the paired direct\n  \
             stream (a held-back chunk shows as a whole pacing interval). Then {}-event streams\n  \
             ({} deltas, usage, `[DONE]`, sent at once) back to back: time to the first event and\n  \
             to the end of the stream, where per-event costs add up.\n\
             - **Streams and memory**: first of all phases, on fresh processes, many concurrent\n  \
             paced streams through each proxy in turn while its `VmRSS` is sampled every 10 ms\n  \
             (later, a server's RSS keeps what the open-loop overload left behind).\n\
             - Client (one thread), mock (one thread) and proxies share the machine, as in the\n  \
             published gateway benchmarks. Diagnostics: `--only latency,throughput,cpu,sse,streams`,\n  \
             `--pause 20ms`, `--streams-through nginx,off,on`, `--no-nginx`.\n",
            self.idle_pause.as_millis(),
            self.cpu_concurrency,
            self.pacing_shape.0,
            self.pacing_shape.1.as_millis(),
            self.burst_deltas + 2,
            self.burst_deltas,
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
}
