//! Where the run happens: date, machine, load, commit, build and command, for the report.

use std::path::Path;

/// What `program` prints on stderr (nginx prints its version there).
pub(crate) fn command_stderr(program: &Path, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stderr).trim().to_owned())
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The 1, 5 and 15 minute load averages.
pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Where and how the run happens: the report's first lines.
pub(crate) fn machine(quick: bool, server_bin: &Path) -> Vec<(String, String)> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let git = command_output(
        "git",
        &[
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short",
            "HEAD",
        ],
    )
    .unwrap_or_else(|| "unknown".to_owned());
    let dirty = command_output(
        "git",
        &["-C", env!("CARGO_MANIFEST_DIR"), "status", "--porcelain"],
    )
    .is_some_and(|s| !s.is_empty());
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut v = vec![
        (
            "Date (UTC)".to_owned(),
            command_output("date", &["-u", "+%Y-%m-%d %H:%M"]).unwrap_or_default(),
        ),
        (
            "Machine".to_owned(),
            format!("{cores} CPUs (`nproc`), {cpu}, Linux {kernel}"),
        ),
        (
            "Load average at the start (1/5/15 min)".to_owned(),
            loadavg(),
        ),
        (
            "Commit".to_owned(),
            format!(
                "{git}{}",
                if dirty {
                    " with uncommitted changes"
                } else {
                    ""
                }
            ),
        ),
        (
            "Build".to_owned(),
            "`cargo build --release -p budget-server -p budget-bench`".to_owned(),
        ),
        (
            "Command".to_owned(),
            format!(
                "`{}{}{}`",
                std::env::args()
                    .next()
                    .unwrap_or_else(|| "budget-bench".to_owned()),
                if args.is_empty() { "" } else { " " },
                args.join(" ")
            ),
        ),
        (
            "Server binary".to_owned(),
            format!("`{}`", server_bin.display()),
        ),
    ];
    if let Some(rustc) = command_output("rustc", &["-V"]) {
        v.push(("Compiler".to_owned(), rustc));
    }
    if quick {
        v.push((
            "Mode".to_owned(),
            "quick (tiny samples: not a measurement)".to_owned(),
        ));
    }
    v
}
