//! Content-type handling: which bodies are scanned, and how their bytes are
//! treated when rewritten (JSON needs string-aware masking, text does not).

/// A media-type pattern from the bundle: exact, `type/*`, or `type/*+suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaPattern {
    Exact(String),
    AnySubtype(String),
    Suffix(String, String),
}

impl MediaPattern {
    pub fn parse(pattern: &str) -> Option<MediaPattern> {
        let p = pattern.trim().to_ascii_lowercase();
        let (ty, sub) = p.split_once('/')?;
        if ty.is_empty() || sub.is_empty() || ty == "*" {
            return None;
        }
        if sub == "*" {
            return Some(MediaPattern::AnySubtype(ty.to_string()));
        }
        if let Some(suffix) = sub.strip_prefix("*+") {
            if suffix.is_empty() || suffix.contains('*') {
                return None;
            }
            return Some(MediaPattern::Suffix(ty.to_string(), suffix.to_string()));
        }
        if sub.contains('*') {
            return None;
        }
        Some(MediaPattern::Exact(p.clone()))
    }

    pub fn matches(&self, essence: &str) -> bool {
        let Some((ty, sub)) = essence.split_once('/') else {
            return false;
        };
        match self {
            MediaPattern::Exact(e) => e == essence,
            MediaPattern::AnySubtype(t) => t == ty,
            MediaPattern::Suffix(t, s) => {
                t == ty && sub.rsplit_once('+').is_some_and(|(_, suf)| suf == s)
            }
        }
    }
}

/// `type/subtype` of a content-type header value, lower-cased, without
/// parameters.
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// How bytes of a scanned buffer must be rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentKind {
    /// JSON or NDJSON: masks stay inside strings, numbers become strings.
    Json,
    /// Anything else: bytes are masked in place.
    Text,
    /// A URL query string: masks stay URL-safe.
    Query,
    /// A header value.
    Header,
}

impl ContentKind {
    pub fn for_body(content_type: Option<&str>) -> ContentKind {
        match content_type.map(essence) {
            Some(e)
                if e == "application/json"
                    || e == "application/x-ndjson"
                    || e == "application/jsonl"
                    || e.ends_with("+json") =>
            {
                ContentKind::Json
            }
            _ => ContentKind::Text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_essences() {
        let json = MediaPattern::parse("application/json").unwrap();
        let text = MediaPattern::parse("text/*").unwrap();
        let suffix = MediaPattern::parse("application/*+json").unwrap();
        assert!(json.matches(&essence("Application/JSON; charset=utf-8")));
        assert!(text.matches("text/plain"));
        assert!(!text.matches("image/png"));
        assert!(suffix.matches("application/problem+json"));
        assert!(!suffix.matches("application/json"));
        assert!(MediaPattern::parse("*/*").is_none());
        assert!(MediaPattern::parse("json").is_none());
        assert!(MediaPattern::parse("application/js*").is_none());
    }

    #[test]
    fn content_kind() {
        assert_eq!(
            ContentKind::for_body(Some("application/json")),
            ContentKind::Json
        );
        assert_eq!(
            ContentKind::for_body(Some("application/vnd.api+json")),
            ContentKind::Json
        );
        assert_eq!(ContentKind::for_body(Some("text/plain")), ContentKind::Text);
        assert_eq!(ContentKind::for_body(None), ContentKind::Text);
    }
}
