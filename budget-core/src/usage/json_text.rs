//! Test support: JSON text built by property tests, with repeated keys allowed (which
//! `serde_json::Value` cannot express), for the request and response readers alike.

/// A JSON value as text to generate.
#[derive(Debug, Clone)]
pub(crate) enum J {
    Lit(&'static str),
    Arr(Vec<J>),
    Obj(Vec<(&'static str, J)>),
}

impl J {
    /// Write the value; object members are joined by `sep` after an opening `open`
    /// (`"{"`/`","` compact, `"{ "`/`", "` with whitespace the readers must skip).
    pub(crate) fn write_with(&self, out: &mut String, open: &str, sep: &str) {
        match self {
            J::Lit(s) => out.push_str(s),
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_with(out, open, sep);
                }
                out.push(']');
            }
            J::Obj(members) => {
                out.push_str(open);
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push_str(sep);
                    }
                    out.push_str(k);
                    out.push(':');
                    v.write_with(out, open, sep);
                }
                out.push('}');
            }
        }
    }
}
