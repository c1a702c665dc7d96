//! The incremental look at an event's first data line that releases it early.

/// Incremental look at the JSON of the first data line, to release an event early once it
/// cannot be the usage chunk: not an object, a non-empty top-level `choices`, a `null`
/// top-level `usage`, or an object that closed without both `"choices": []` and `"usage"`.
#[derive(Debug, Default)]
pub(super) struct Scan {
    state: ScanState,
    depth: u32,
    in_str: bool,
    esc: bool,
    /// The current top-level string, while it could still be `choices` or `usage`.
    key: Vec<u8>,
    key_escaped: bool,
    /// A top-level `"usage"` with a value other than `null` was seen.
    saw_usage: bool,
    /// A top-level `"choices": []` was seen.
    saw_empty_choices: bool,
    pub(super) not_usage: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ScanState {
    #[default]
    Start,
    Body,
    /// A top-level `"choices"` / `"usage"` string ended: a `:` makes it a key.
    AfterKey(Key),
    /// After the `:` of such a key.
    AfterColon(Key),
    /// After `"choices": [`.
    InChoices,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Choices,
    Usage,
}

impl Scan {
    pub(super) fn byte(&mut self, b: u8) {
        if self.not_usage {
            return;
        }
        let ws = matches!(b, b' ' | b'\t');
        match self.state {
            ScanState::Start => {
                if ws {
                } else if b == b'{' {
                    self.depth = 1;
                    self.state = ScanState::Body;
                } else {
                    self.not_usage = true;
                }
            }
            ScanState::AfterKey(k) => {
                if ws {
                } else if b == b':' {
                    self.state = ScanState::AfterColon(k);
                } else {
                    self.state = ScanState::Body;
                    self.body(b);
                }
            }
            ScanState::AfterColon(k) => {
                if ws {
                    return;
                }
                match (k, b) {
                    (Key::Choices, b'[') => {
                        self.depth += 1;
                        self.state = ScanState::InChoices;
                    }
                    (Key::Usage, b'n') => self.not_usage = true,
                    (Key::Usage, _) => {
                        self.saw_usage = true;
                        self.state = ScanState::Body;
                        self.body(b);
                    }
                    _ => {
                        self.state = ScanState::Body;
                        self.body(b);
                    }
                }
            }
            ScanState::InChoices => {
                if ws {
                } else if b == b']' {
                    self.depth -= 1;
                    self.saw_empty_choices = true;
                    self.state = ScanState::Body;
                } else {
                    self.not_usage = true;
                }
            }
            ScanState::Body => self.body(b),
        }
    }

    fn body(&mut self, b: u8) {
        if self.in_str {
            if self.esc {
                self.esc = false;
            } else if b == b'\\' {
                self.esc = true;
                self.key_escaped = true;
            } else if b == b'"' {
                self.in_str = false;
                if self.depth == 1 && !self.key_escaped {
                    let key = match self.key.as_slice() {
                        b"choices" => Some(Key::Choices),
                        b"usage" => Some(Key::Usage),
                        _ => None,
                    };
                    if let Some(k) = key {
                        self.state = ScanState::AfterKey(k);
                    }
                }
            } else if self.key.len() < 8 {
                self.key.push(b);
            } else {
                self.key_escaped = true; // too long to be a key we look for
            }
            return;
        }
        match b {
            b'"' => {
                self.in_str = true;
                self.key.clear();
                self.key_escaped = false;
            }
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                if self.depth == 0 && !(self.saw_usage && self.saw_empty_choices) {
                    // The object is complete without both: not the usage chunk.
                    self.not_usage = true;
                }
            }
            _ => {}
        }
    }
}
