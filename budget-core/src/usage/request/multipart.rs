//! `multipart/form-data` request bodies (audio and image uploads): the text fields are read,
//! file parts are skipped without copying.

use super::{parse_tier, RequestInfo, TextSink};

impl RequestInfo {
    pub(super) fn read_multipart(&mut self, boundary: &str, body: &[u8]) {
        let mut text = TextSink::default();
        for part in Multipart::new(boundary, body) {
            if part.filename {
                continue;
            }
            let value = String::from_utf8_lossy(part.content);
            let value = value.trim();
            match part.name.as_str() {
                "model" if !value.is_empty() => self.model = Some(value.to_owned()),
                "stream" => self.stream = value.eq_ignore_ascii_case("true"),
                "user" => self.user = Some(value.to_owned()),
                "safety_identifier" if self.user.is_none() => {
                    self.user = Some(value.to_owned());
                }
                "n" => self.n = value.parse().unwrap_or(1),
                "service_tier" => self.service_tier = parse_tier(value),
                "prompt" | "instructions" => text.push(value),
                _ => {}
            }
        }
        self.input_text = text.out;
    }
}

/// The `boundary` parameter of a `multipart/form-data` content type.
pub(super) fn multipart_boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let mime = params.next()?.trim();
    if !mime.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    for p in params {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        if k.trim().eq_ignore_ascii_case("boundary") {
            let v = v.trim().trim_matches('"');
            if !v.is_empty() && v.len() <= 200 {
                return Some(v.to_owned());
            }
        }
    }
    None
}

pub(super) fn looks_like_multipart(body: &[u8]) -> bool {
    body.starts_with(b"--")
}

/// The boundary from the first line of a body that starts with `--boundary\r\n`.
pub(super) fn sniff_boundary(body: &[u8]) -> Option<String> {
    let line_end = body.iter().take(202).position(|&b| b == b'\n')?;
    let line = body[2..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&body[2..line_end]);
    if line.is_empty() || line.iter().any(|b| b.is_ascii_whitespace()) {
        return None;
    }
    std::str::from_utf8(line).ok().map(str::to_owned)
}

struct Part<'a> {
    name: String,
    filename: bool,
    content: &'a [u8],
}

/// Iterates over the parts of a multipart body. Searching is linear (KMP), so a large file
/// part costs one pass and no copy; header blocks longer than 16 KiB end the iteration.
struct Multipart<'a> {
    body: &'a [u8],
    delim: Vec<u8>,
    table: Vec<usize>,
    pos: Option<usize>,
}

impl<'a> Multipart<'a> {
    fn new(boundary: &str, body: &'a [u8]) -> Self {
        let mut delim = b"--".to_vec();
        delim.extend_from_slice(boundary.as_bytes());
        let table = kmp_table(&delim);
        let mut m = Multipart {
            body,
            delim,
            table,
            pos: None,
        };
        // The first delimiter: at the start or after a newline (a preamble is allowed).
        m.pos = m.find_delim(0).map(|p| p + m.delim.len());
        m
    }

    /// The next delimiter at or after `from` that starts a line.
    fn find_delim(&self, mut from: usize) -> Option<usize> {
        loop {
            let p = from + kmp_find(&self.body[from..], &self.delim, &self.table)?;
            if p == 0 || self.body[p - 1] == b'\n' {
                return Some(p);
            }
            from = p + 1;
        }
    }
}

impl<'a> Iterator for Multipart<'a> {
    type Item = Part<'a>;

    fn next(&mut self) -> Option<Part<'a>> {
        loop {
            let pos = self.pos.take()?;
            let rest = &self.body[pos..];
            if rest.starts_with(b"--") {
                return None; // the closing delimiter
            }
            // Skip the rest of the delimiter line.
            let nl = rest.iter().position(|&b| b == b'\n')?;
            let headers_start = pos + nl + 1;
            let head = &self.body[headers_start..];
            let limit = head.len().min(16 * 1024);
            let (headers_len, sep_len) = find_blank_line(&head[..limit])?;
            let headers = &head[..headers_len];
            let content_start = headers_start + headers_len + sep_len;
            let next = self.find_delim(content_start);
            let content_end = match next {
                Some(d) => {
                    let mut e = d;
                    if e > content_start && self.body[e - 1] == b'\n' {
                        e -= 1;
                    }
                    if e > content_start && self.body[e - 1] == b'\r' {
                        e -= 1;
                    }
                    e
                }
                None => self.body.len(),
            };
            self.pos = next.map(|d| d + self.delim.len());
            let (name, filename) = content_disposition(headers);
            if let Some(name) = name {
                return Some(Part {
                    name,
                    filename,
                    content: &self.body[content_start..content_end],
                });
            }
        }
    }
}

/// Length of the header block and of the blank-line separator after it.
fn find_blank_line(head: &[u8]) -> Option<(usize, usize)> {
    if head.starts_with(b"\r\n") {
        return Some((0, 2));
    }
    if head.starts_with(b"\n") {
        return Some((0, 1));
    }
    for i in 0..head.len() {
        if head[i..].starts_with(b"\r\n\r\n") {
            return Some((i, 4));
        }
        if head[i..].starts_with(b"\n\n") {
            return Some((i, 2));
        }
    }
    None
}

/// `name` and whether a `filename` is present, from a part's `Content-Disposition` header.
fn content_disposition(headers: &[u8]) -> (Option<String>, bool) {
    let headers = String::from_utf8_lossy(headers);
    for line in headers.lines() {
        let Some((h, v)) = line.split_once(':') else {
            continue;
        };
        if !h.trim().eq_ignore_ascii_case("content-disposition") {
            continue;
        }
        let mut name = None;
        let mut filename = false;
        for param in v.split(';').skip(1) {
            let Some((k, v)) = param.split_once('=') else {
                continue;
            };
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim().trim_matches('"');
            match k.as_str() {
                "name" => name = Some(v.to_owned()),
                "filename" | "filename*" => filename = true,
                _ => {}
            }
        }
        return (name, filename);
    }
    (None, false)
}

fn kmp_table(needle: &[u8]) -> Vec<usize> {
    let mut table = vec![0; needle.len()];
    let mut k = 0;
    for i in 1..needle.len() {
        while k > 0 && needle[i] != needle[k] {
            k = table[k - 1];
        }
        if needle[i] == needle[k] {
            k += 1;
        }
        table[i] = k;
    }
    table
}

fn kmp_find(hay: &[u8], needle: &[u8], table: &[usize]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    let mut k = 0;
    for (i, &b) in hay.iter().enumerate() {
        while k > 0 && b != needle[k] {
            k = table[k - 1];
        }
        if b == needle[k] {
            k += 1;
            if k == needle.len() {
                return Some(i + 1 - k);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::Endpoint;
    use super::*;

    const FORM: &[u8] = b"--XyZ\r\n\
Content-Disposition: form-data; name=\"file\"; filename=\"a.mp3\"\r\n\
Content-Type: audio/mpeg\r\n\r\n\
ID3\x00\x01\xff--XyZ not a delimiter\r\n--Xy\r\n\
\r\n--XyZ\r\n\
Content-Disposition: form-data; name=\"model\"\r\n\r\n\
gpt-4o-transcribe\r\n--XyZ\r\n\
Content-Disposition: form-data; name=\"stream\"\r\n\r\n\
true\r\n--XyZ\r\n\
content-disposition: form-data; name=\"user\"\r\n\r\n\
bob\r\n--XyZ\r\n\
Content-Disposition: form-data; name=\"prompt\"\r\n\r\n\
Names: Zo\xC3\xAB\r\n--XyZ--\r\n";

    #[test]
    fn multipart_transcription() {
        let info = RequestInfo::parse_with_content_type(
            Endpoint::AudioTranscription,
            Some("multipart/form-data; boundary=XyZ"),
            FORM,
        );
        assert_eq!(info.model.as_deref(), Some("gpt-4o-transcribe"));
        assert!(info.stream);
        assert_eq!(info.user.as_deref(), Some("bob"));
        assert_eq!(info.input_text, "Names: Zoë");
        assert_eq!(info.input_bytes, FORM.len() as u64);
        // Quoted boundary, and sniffed without a content type.
        let q = RequestInfo::parse_with_content_type(
            Endpoint::AudioTranscription,
            Some("Multipart/Form-Data; charset=utf-8; boundary=\"XyZ\""),
            FORM,
        );
        assert_eq!(q, info);
        let sniffed = RequestInfo::parse(Endpoint::AudioTranscription, FORM);
        assert_eq!(sniffed, info);
        // Truncated uploads give what was read.
        for cut in 0..FORM.len() {
            let _ = RequestInfo::parse_with_content_type(
                Endpoint::AudioTranscription,
                Some("multipart/form-data; boundary=XyZ"),
                &FORM[..cut],
            );
        }
        // JSON content type still reads JSON.
        let j = RequestInfo::parse_with_content_type(
            Endpoint::ChatCompletions,
            Some("application/json"),
            br#"{"model":"gpt-4o"}"#,
        );
        assert_eq!(j.model.as_deref(), Some("gpt-4o"));
    }
}
