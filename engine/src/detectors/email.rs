//! Email addresses, found from each `@` outwards. Cheaper and stricter than
//! a regex: the local part is bounded to 64 bytes, the domain must have a
//! dot and an alphabetic TLD, so `user@localhost` or `a@1.2` do not match.

use super::{Cx, Span};

#[inline]
fn is_local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

#[inline]
fn is_domain_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

/// `at` is an `@` or the JSON escape `\u0040` of one.
pub(crate) fn email_at_cx(cx: &Cx, at: usize) -> Option<Span> {
    let width = if cx.hay.get(at) == Some(&b'@') {
        1
    } else if cx.hay.get(at..at + 6) == Some(b"\\u0040".as_slice()) {
        6
    } else {
        return None;
    };
    email_at_width(cx.hay, at, width)
}

#[cfg(test)]
pub fn email_at(hay: &[u8], at: usize) -> Option<Span> {
    email_at_width(hay, at, 1)
}

fn email_at_width(hay: &[u8], at: usize, width: usize) -> Option<Span> {
    // Local part: walk left.
    let mut start = at;
    while start > 0 && at - start < 64 && is_local_byte(hay[start - 1]) {
        start -= 1;
    }
    // A local part that hit the length bound inside a longer run is not an
    // address, it is a blob that happens to contain `@`.
    if start > 0 && is_local_byte(hay[start - 1]) {
        return None;
    }
    while start < at && hay[start] == b'.' {
        start += 1;
    }
    if start == at || hay[at - 1] == b'.' {
        return None;
    }
    // `scheme://user:password@host` is a URL's userinfo, not an address:
    // a `://` shortly before with no path, space or quote in between.
    let from = start.saturating_sub(128);
    let before = &hay[from..start];
    if let Some(after) = scheme_end(before) {
        let between = &before[after..];
        if !between.iter().any(|&b| {
            b == b'/' || b.is_ascii_whitespace() || matches!(b, b'"' | b'\'' | b'<' | b'>')
        }) {
            return None;
        }
    }
    // Domain: walk right.
    let mut end = at + width;
    while end < hay.len() && end - at <= 253 && is_domain_byte(hay[end]) {
        end += 1;
    }
    // Trailing dots and dashes belong to the sentence, not the domain.
    while end > at + width && matches!(hay[end - 1], b'.' | b'-') {
        end -= 1;
    }
    let domain = hay.get(at + width..end)?;
    let last_dot = domain.iter().rposition(|&b| b == b'.')?;
    let tld = &domain[last_dot + 1..];
    if tld.len() < 2 || tld.len() > 63 || !tld.iter().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    for label in domain.split(|&b| b == b'.') {
        if label.is_empty()
            || label.len() > 63
            || label[0] == b'-'
            || label[label.len() - 1] == b'-'
        {
            return None;
        }
    }
    Some(Span { start, end })
}

/// Where the last `://` (or its JSON-escaped `:\/\/`) in `before` ends.
/// The two cannot overlap, so the last colon that starts either one is
/// the one whose end is last; colons are found with `memrchr` instead of
/// building two substring searchers per `@`.
fn scheme_end(before: &[u8]) -> Option<usize> {
    memchr::memrchr_iter(b':', before).find_map(|c| {
        let rest = &before[c + 1..];
        if rest.starts_with(b"//") {
            Some(c + 3)
        } else if rest.starts_with(b"\\/\\/") {
            Some(c + 5)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `scheme_end` is the later end of the two substring searches it
    /// replaces, on random texts of colons, slashes and backslashes.
    #[test]
    fn scheme_end_is_the_last_of_both_searches() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut found = 0;
        for round in 0..50_000usize {
            let len = round % 40;
            let t: Vec<u8> = (0..len)
                .map(|_| b":/\\a"[crate::test_rng::xorshift(&mut state) as usize % 4])
                .collect();
            let plain = memchr::memmem::rfind(&t, b"://").map(|i| i + 3);
            let escaped = memchr::memmem::rfind(&t, b":\\/\\/").map(|i| i + 5);
            let want = plain.max(escaped);
            assert_eq!(scheme_end(&t), want, "{:?}", String::from_utf8_lossy(&t));
            found += usize::from(escaped.is_some());
        }
        assert!(found > 300, "{found}");
    }

    fn find(s: &str) -> Option<&str> {
        let at = s.find('@')?;
        email_at(s.as_bytes(), at).map(|sp| &s[sp.start..sp.end])
    }

    #[test]
    fn finds_addresses_in_context() {
        assert_eq!(
            find(r#"{"email":"jane.doe@example.com"}"#),
            Some("jane.doe@example.com")
        );
        assert_eq!(
            find("mail a+b@mail.example.co.uk."),
            Some("a+b@mail.example.co.uk")
        );
        assert_eq!(find("x=.jo@ex-ample.org,"), Some("jo@ex-ample.org"));
    }

    #[test]
    fn rejects_non_addresses() {
        assert_eq!(find("user@localhost"), None);
        assert_eq!(find("a@1.2"), None);
        assert_eq!(find("@example.com"), None);
        assert_eq!(find("jo.@example.com"), None);
        assert_eq!(find("jo@-bad.com"), None);
        assert_eq!(find("npm i @scope/pkg"), None);
    }
}
