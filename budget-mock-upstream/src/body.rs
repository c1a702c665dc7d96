//! The response body: a whole JSON body, or SSE events released one frame at a time.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// Pause between the pieces of one event when `split_events` is on: long enough for the
/// receiver to read each piece on its own.
const SPLIT_PAUSE: Duration = Duration::from_millis(1);

/// One frame of the body and the pause before it.
#[derive(Debug)]
struct Piece {
    bytes: Bytes,
    pause: Duration,
}

/// How SSE events are framed and paced.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Pacing {
    /// Pause between events.
    pub(crate) chunk_delay: Duration,
    /// Split each event into pieces at awkward byte boundaries.
    pub(crate) split_events: bool,
    /// End lines with `\r\n` instead of `\n`.
    pub(crate) crlf: bool,
}

/// The mock's response body. Each piece is its own data frame; a paused piece returns
/// `Pending` first, so hyper flushes what came before it to the socket.
#[derive(Debug)]
pub(crate) struct MockBody {
    pieces: VecDeque<Piece>,
    /// Armed while a pause runs; allocated once per body, reset for each pause.
    sleep: Option<Pin<Box<Sleep>>>,
    sleeping: bool,
    /// After the last piece, stay open forever (the `mock-hang` hook).
    hang: bool,
    /// Exact length for whole bodies (sent with `content-length`); streams are chunked.
    exact: Option<u64>,
}

impl MockBody {
    /// A whole body sent in one frame with a `content-length`.
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        let exact = Some(bytes.len() as u64);
        let mut pieces = VecDeque::with_capacity(1);
        if !bytes.is_empty() {
            pieces.push_back(Piece {
                bytes,
                pause: Duration::ZERO,
            });
        }
        Self {
            pieces,
            sleep: None,
            sleeping: false,
            hang: false,
            exact,
        }
    }

    /// A chunked body sending `prefix` and then never ending.
    pub(crate) fn hanging(prefix: impl Into<Bytes>) -> Self {
        let mut body = Self::full(prefix);
        body.exact = None;
        body.hang = true;
        body
    }

    /// An SSE body: `events` (already framed, see [`data_event`] and [`named_event`]) paced by
    /// `pacing`. With `hang`, only the first event is sent and the stream never ends.
    pub(crate) fn events(events: Vec<String>, pacing: Pacing, hang: bool) -> Self {
        let mut pieces =
            VecDeque::with_capacity(events.len() * if pacing.split_events { 4 } else { 1 } + 1);
        if pacing.split_events {
            let comment = if pacing.crlf {
                ": keep-alive\r\n\r\n"
            } else {
                ": keep-alive\n\n"
            };
            pieces.push_back(Piece {
                bytes: Bytes::from_static(comment.as_bytes()),
                pause: Duration::ZERO,
            });
        }
        let take = if hang { 1 } else { events.len() };
        for (i, event) in events.into_iter().take(take).enumerate() {
            let pause = if i == 0 {
                Duration::ZERO
            } else {
                pacing.chunk_delay
            };
            let event = if pacing.crlf {
                event.replace('\n', "\r\n")
            } else {
                event
            };
            if pacing.split_events {
                let bytes = Bytes::from(event);
                let mut start = 0;
                for cut in split_points(&bytes) {
                    pieces.push_back(Piece {
                        bytes: bytes.slice(start..cut),
                        pause: if start == 0 { pause } else { SPLIT_PAUSE },
                    });
                    start = cut;
                }
                pieces.push_back(Piece {
                    bytes: bytes.slice(start..),
                    pause: if start == 0 { pause } else { SPLIT_PAUSE },
                });
            } else {
                pieces.push_back(Piece {
                    bytes: Bytes::from(event),
                    pause,
                });
            }
        }
        Self {
            pieces,
            sleep: None,
            sleeping: false,
            hang,
            exact: None,
        }
    }
}

/// Awkward places to cut one framed event, ascending, all strictly inside it: inside the field
/// name, inside the first multi-byte UTF-8 character, between the two line terminators at the
/// end, and (with CRLF) between `\r` and `\n`.
fn split_points(event: &[u8]) -> Vec<usize> {
    let len = event.len();
    let mut cuts = vec![3];
    if let Some(i) = event.iter().position(|b| *b >= 0x80) {
        cuts.push(i + 1);
    }
    if event.ends_with(b"\r\n\r\n") {
        cuts.extend([len - 3, len - 2, len - 1]);
    } else {
        cuts.push(len - 1);
    }
    cuts.retain(|c| *c > 0 && *c < len);
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// `data: {json}\n\n`.
pub(crate) fn data_event(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + 8);
    out.push_str("data: ");
    out.push_str(json);
    out.push_str("\n\n");
    out
}

/// `event: {name}\ndata: {json}\n\n`.
pub(crate) fn named_event(name: &str, json: &str) -> String {
    format!("event: {name}\ndata: {json}\n\n")
}

/// The stream terminator.
pub(crate) fn done_event() -> String {
    "data: [DONE]\n\n".to_owned()
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        loop {
            if this.sleeping {
                if let Some(sleep) = this.sleep.as_mut() {
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
                this.sleeping = false;
                let piece = this.pieces.pop_front().expect("a paused piece");
                return Poll::Ready(Some(Ok(Frame::data(piece.bytes))));
            }
            let Some(front) = this.pieces.front() else {
                // `mock-hang`: never wake again; hyper drops us when the client goes away.
                return if this.hang {
                    Poll::Pending
                } else {
                    Poll::Ready(None)
                };
            };
            if front.pause.is_zero() {
                let piece = this.pieces.pop_front().expect("a front piece");
                return Poll::Ready(Some(Ok(Frame::data(piece.bytes))));
            }
            let deadline = Instant::now() + front.pause;
            match this.sleep.as_mut() {
                Some(sleep) => sleep.as_mut().reset(deadline),
                None => this.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            this.sleeping = true;
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pieces.is_empty() && !self.hang
    }

    fn size_hint(&self) -> SizeHint {
        match self.exact {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_points_cut_utf8_and_line_endings() {
        let lf = "data: {\"c\":\" café\"}\n\n";
        let cuts = split_points(lf.as_bytes());
        assert!(cuts.iter().any(|c| !lf.is_char_boundary(*c)));
        assert_eq!(*cuts.last().unwrap(), lf.len() - 1);
        let crlf = lf.replace('\n', "\r\n");
        let cuts = split_points(crlf.as_bytes());
        assert!(cuts.contains(&(crlf.len() - 1)) && cuts.contains(&(crlf.len() - 3)));
    }

    #[test]
    fn split_events_keep_every_byte() {
        let events = vec![data_event("{\"x\":\"🚀\"}"), done_event()];
        let pacing = Pacing {
            split_events: true,
            crlf: true,
            ..Pacing::default()
        };
        let body = MockBody::events(events, pacing, false);
        let joined: Vec<u8> = body.pieces.iter().flat_map(|p| p.bytes.to_vec()).collect();
        let expected = ": keep-alive\r\n\r\ndata: {\"x\":\"🚀\"}\r\n\r\ndata: [DONE]\r\n\r\n";
        assert_eq!(String::from_utf8(joined).unwrap(), expected);
        assert!(body.pieces.len() > 6);
    }
}
