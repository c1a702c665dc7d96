//! The open-file limit (`RLIMIT_NOFILE`) against `MAX_CONNECTIONS`: every client connection is
//! a file descriptor, and a proxied request holds a second one upstream. At start-up the soft
//! limit is raised toward what the connections need (never above the hard limit), and the
//! connection cap is lowered to what fits, so the server refuses connections instead of
//! running out of descriptors (`accept: Too many open files`).

use std::io;

/// Descriptors kept aside for everything that is not a client connection or its upstream
/// connection: the listener, the database, logs, name resolution.
pub const FD_RESERVE: u64 = 64;

/// The open-file limit the server runs with, and how many connections fit in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// The soft limit found at start-up.
    pub soft_before: u64,
    /// The soft limit now.
    pub soft: u64,
    /// The hard limit (the most the soft limit may be raised to without privileges).
    pub hard: u64,
    /// `MAX_CONNECTIONS`, lowered to what the soft limit allows.
    pub max_connections: usize,
}

/// Descriptors that `max_connections` connections may need: two each, plus [`FD_RESERVE`].
///
/// ```
/// assert_eq!(budget_server::serve::fds_needed(1000), 2064);
/// ```
pub fn fds_needed(max_connections: usize) -> u64 {
    (max_connections as u64)
        .saturating_mul(2)
        .saturating_add(FD_RESERVE)
}

/// Connections that fit in `soft` descriptors (at least one).
fn connections_for(soft: u64) -> usize {
    usize::try_from(soft.saturating_sub(FD_RESERVE) / 2)
        .unwrap_or(usize::MAX)
        .max(1)
}

/// Raise the soft open-file limit toward [`fds_needed`]`(max_connections)` where the hard
/// limit allows, and return the limit with the connection cap that fits in it. A soft limit
/// that cannot be raised is kept as it is.
pub fn fit_open_files(max_connections: usize) -> io::Result<FdLimit> {
    #[cfg(unix)]
    {
        let (soft_before, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
        let needed = fds_needed(max_connections);
        let soft = if soft_before < needed && soft_before < hard {
            rlimit::increase_nofile_limit(needed).unwrap_or(soft_before)
        } else {
            soft_before
        };
        Ok(FdLimit {
            soft_before,
            soft,
            hard,
            max_connections: max_connections.min(connections_for(soft)),
        })
    }
    #[cfg(not(unix))]
    {
        Ok(FdLimit {
            soft_before: u64::MAX,
            soft: u64::MAX,
            hard: u64::MAX,
            max_connections,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_the_limit() {
        assert_eq!(connections_for(1024), 480);
        assert_eq!(connections_for(10), 1);
        assert!(fds_needed(connections_for(1024)) <= 1024);
    }

    #[cfg(unix)]
    #[test]
    fn the_soft_limit_is_raised_or_the_cap_lowered() {
        let limit = fit_open_files(1000).unwrap();
        assert!(limit.soft >= limit.soft_before);
        assert!(limit.soft <= limit.hard);
        if limit.soft >= fds_needed(1000) {
            assert_eq!(limit.max_connections, 1000);
        } else {
            assert_eq!(limit.max_connections, connections_for(limit.soft));
        }
        let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        assert_eq!(soft, limit.soft);
    }
}
