//! Field selectors: the JSONPath subset rules use to include or exclude
//! fields of structured bodies (JSON, NDJSON documents, form fields,
//! multipart parts, query parameters, cookies). Supported: `$` (root),
//! `.name`, `['name']` / `["name"]`, `[N]`, `[*]`, `.*`, and the descendant
//! forms `..name`, `..*`, `..[N]`. A selector selects a node and everything
//! under it, so `$.user` covers `$.user.email`.
//!
//! Matching is a bit-parallel NFA over the path (at most `MAX_STEPS` steps,
//! one `u64` of states), so a selector with many `..` stays linear.

use super::json::Segment;

pub const MAX_STEPS: usize = 32;
pub const MAX_SELECTOR_LEN: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Sel {
    Name(Vec<u8>),
    Index(usize),
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    descendant: bool,
    sel: Sel,
}

/// A compiled selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    steps: Vec<Step>,
}

impl Selector {
    /// Parses a selector; the error says what is wrong and at which byte.
    pub fn parse(src: &str) -> Result<Selector, String> {
        if src.len() > MAX_SELECTOR_LEN {
            return Err(format!("a selector is at most {MAX_SELECTOR_LEN} bytes"));
        }
        let b = src.as_bytes();
        if b.first() != Some(&b'$') {
            return Err("a selector starts with `$` (the document root)".into());
        }
        let mut i = 1;
        let mut steps = Vec::new();
        while i < b.len() {
            let mut descendant = false;
            let sel = match b[i] {
                b'.' => {
                    i += 1;
                    if b.get(i) == Some(&b'.') {
                        descendant = true;
                        i += 1;
                    }
                    match b.get(i) {
                        Some(b'*') => {
                            i += 1;
                            Sel::Any
                        }
                        Some(b'[') if descendant => bracket(b, &mut i)?,
                        _ => {
                            let start = i;
                            while i < b.len() && b[i] != b'.' && b[i] != b'[' {
                                i += 1;
                            }
                            if i == start {
                                return Err(format!("empty field name at byte {start}"));
                            }
                            Sel::Name(b[start..i].to_vec())
                        }
                    }
                }
                b'[' => bracket(b, &mut i)?,
                _ => return Err(format!("expected `.` or `[` at byte {i}")),
            };
            steps.push(Step { descendant, sel });
            if steps.len() > MAX_STEPS {
                return Err(format!("a selector has at most {MAX_STEPS} steps"));
            }
        }
        Ok(Selector { steps })
    }

    /// Whether the selector selects the node at `path` or one of its
    /// ancestors.
    pub fn matches(&self, path: &[Segment]) -> bool {
        let n = self.steps.len();
        let done = 1u64 << n;
        let mut states = 1u64; // state j: the first j steps matched
        for seg in path {
            if states & done != 0 {
                return true;
            }
            let mut next = 0u64;
            for (j, step) in self.steps.iter().enumerate() {
                if states & (1 << j) == 0 {
                    continue;
                }
                if step.descendant {
                    next |= 1 << j;
                }
                let hit = match (&step.sel, seg) {
                    (Sel::Any, _) => true,
                    (Sel::Name(n), Segment::Key(k)) => n == k,
                    (Sel::Index(i), Segment::Index(x)) => i == x,
                    _ => false,
                };
                if hit {
                    next |= 1 << (j + 1);
                }
            }
            states = next;
            if states == 0 {
                return false;
            }
        }
        states & done != 0
    }
}

/// `[N]`, `[*]`, `['name']` or `["name"]` at `b[*i] == b'['`.
fn bracket(b: &[u8], i: &mut usize) -> Result<Sel, String> {
    let open = *i;
    *i += 1;
    let sel = match b.get(*i) {
        Some(b'*') => {
            *i += 1;
            Sel::Any
        }
        Some(&q @ (b'\'' | b'"')) => {
            *i += 1;
            let start = *i;
            while *i < b.len() && b[*i] != q {
                *i += 1;
            }
            if *i >= b.len() {
                return Err(format!("unterminated quoted name at byte {open}"));
            }
            let name = b[start..*i].to_vec();
            *i += 1;
            Sel::Name(name)
        }
        Some(b'0'..=b'9') => {
            let start = *i;
            while *i < b.len() && b[*i].is_ascii_digit() {
                *i += 1;
            }
            let n = std::str::from_utf8(&b[start..*i])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("index too large at byte {start}"))?;
            Sel::Index(n)
        }
        _ => {
            return Err(format!(
                "expected `*`, an index or a quoted name after `[` at byte {open}"
            ))
        }
    };
    if b.get(*i) != Some(&b']') {
        return Err(format!("expected `]` at byte {}", *i));
    }
    *i += 1;
    Ok(sel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &[&str]) -> Vec<Segment> {
        p.iter()
            .map(|s| match s.parse::<usize>() {
                Ok(n) => Segment::Index(n),
                Err(_) => Segment::Key(s.as_bytes().to_vec()),
            })
            .collect()
    }

    fn m(sel: &str, p: &[&str]) -> bool {
        Selector::parse(sel).unwrap().matches(&path(p))
    }

    #[test]
    fn selects_nodes_and_their_subtrees() {
        assert!(m("$.user.ssn", &["user", "ssn"]));
        assert!(!m("$.user.ssn", &["user", "name"]));
        assert!(!m("$.user.ssn", &["user"]));
        assert!(m("$.user", &["user", "ssn"]));
        assert!(m("$", &["anything"]));
        assert!(m("$..password", &["a", "b", "password"]));
        assert!(m("$..password", &["password", "old"]));
        assert!(!m("$..password", &["a", "passwords"]));
        assert!(m("$.items[*].card", &["items", "3", "card"]));
        assert!(!m("$.items[*].card", &["items", "card"]));
        assert!(m("$.items[0]", &["items", "0", "x"]));
        assert!(!m("$.items[0]", &["items", "1"]));
        assert!(m("$['odd.key']", &["odd.key"]));
        assert!(m("$.*.email", &["a", "email"]));
        assert!(m("$..*.email", &["a", "b", "email"]));
        assert!(m("$..[1]", &["a", "1"]));
        assert!(m("$..a..b", &["x", "a", "y", "z", "b"]));
    }

    #[test]
    fn bad_selectors_say_why() {
        for bad in [
            "user", "$.", "$..", "$[", "$[x]", "$['a", "$[1", "$x", "$.a[]",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
        let long = format!("${}", ".a".repeat(40));
        assert!(Selector::parse(&long).unwrap_err().contains("steps"));
    }
}
