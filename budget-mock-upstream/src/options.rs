//! [`MockOptions`]: how the mock answers.

use std::net::SocketAddr;
use std::time::Duration;

/// How a [`MockUpstream`](crate::MockUpstream) answers. Set fields directly (with
/// `..MockOptions::default()`) or chain the `with_*` methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockOptions {
    /// Address to bind; default `127.0.0.1:0` (a free port).
    pub addr: SocketAddr,
    /// Pause between SSE events; default zero.
    pub chunk_delay: Duration,
    /// Split each SSE event into several body frames (separate TCP writes, 1 ms apart) at
    /// awkward byte boundaries: inside the field name, inside the first multi-byte UTF-8
    /// character, between the two line terminators at the end (and between `\r` and `\n` with
    /// [`crlf`](Self::crlf)); streams also open with a `: keep-alive` comment. Default off.
    pub split_events: bool,
    /// End SSE lines with `\r\n` instead of OpenAI's `\n`. Default off.
    pub crlf: bool,
    /// Content deltas per streamed choice (and tokens of a JSON answer); default 8.
    pub deltas: usize,
    /// Answer every request with this status and OpenAI's error body for it.
    pub fail_with: Option<u16>,
    /// Keep every request for [`MockUpstream::requests`](crate::MockUpstream::requests);
    /// default on (turn off for long benchmarks).
    pub record: bool,
    /// The API keys the mock accepts. Empty (the default): any non-empty key. Otherwise an
    /// OpenAI path needs `Authorization: Bearer <one of them>`, and on an Azure path every
    /// credential sent (`api-key`, `Authorization: Bearer`) must be one of them; anything else
    /// is OpenAI's 401 `invalid_api_key` ("Incorrect API key provided: …").
    pub accepted_keys: Vec<String>,
}

impl Default for MockOptions {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            chunk_delay: Duration::ZERO,
            split_events: false,
            crlf: false,
            deltas: 8,
            fail_with: None,
            record: true,
            accepted_keys: Vec::new(),
        }
    }
}

impl MockOptions {
    /// Binds `addr` instead of `127.0.0.1:0`.
    ///
    /// ```
    /// let opts = budget_mock_upstream::MockOptions::default().with_addr(([127, 0, 0, 1], 9999).into());
    /// assert_eq!(opts.addr.port(), 9999);
    /// ```
    pub fn with_addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Pauses `delay` between SSE events.
    ///
    /// ```
    /// use std::time::Duration;
    /// let opts = budget_mock_upstream::MockOptions::default().with_chunk_delay(Duration::from_millis(20));
    /// assert_eq!(opts.chunk_delay, Duration::from_millis(20));
    /// ```
    pub fn with_chunk_delay(mut self, delay: Duration) -> Self {
        self.chunk_delay = delay;
        self
    }

    /// Splits SSE events at awkward byte boundaries (see [`split_events`](Self::split_events)).
    ///
    /// ```
    /// assert!(budget_mock_upstream::MockOptions::default().with_split_events(true).split_events);
    /// ```
    pub fn with_split_events(mut self, split: bool) -> Self {
        self.split_events = split;
        self
    }

    /// Ends SSE lines with `\r\n`.
    ///
    /// ```
    /// assert!(budget_mock_upstream::MockOptions::default().with_crlf(true).crlf);
    /// ```
    pub fn with_crlf(mut self, crlf: bool) -> Self {
        self.crlf = crlf;
        self
    }

    /// Sends `deltas` content deltas per choice.
    ///
    /// ```
    /// assert_eq!(budget_mock_upstream::MockOptions::default().with_deltas(3).deltas, 3);
    /// ```
    pub fn with_deltas(mut self, deltas: usize) -> Self {
        self.deltas = deltas;
        self
    }

    /// Answers every request with `status` and OpenAI's error body.
    ///
    /// ```
    /// assert_eq!(budget_mock_upstream::MockOptions::default().with_fail_with(503).fail_with, Some(503));
    /// ```
    pub fn with_fail_with(mut self, status: u16) -> Self {
        self.fail_with = Some(status);
        self
    }

    /// Records requests (default) or not.
    ///
    /// ```
    /// assert!(!budget_mock_upstream::MockOptions::default().with_record(false).record);
    /// ```
    pub fn with_record(mut self, record: bool) -> Self {
        self.record = record;
        self
    }

    /// Accepts only these API keys (see [`accepted_keys`](Self::accepted_keys)).
    ///
    /// ```
    /// let opts = budget_mock_upstream::MockOptions::default().with_accepted_keys(["sk-a", "sk-b"]);
    /// assert_eq!(opts.accepted_keys, ["sk-a", "sk-b"]);
    /// ```
    pub fn with_accepted_keys<I, K>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: Into<String>,
    {
        self.accepted_keys = keys.into_iter().map(Into::into).collect();
        self
    }
}
