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

/// How a scanned buffer is decoded, and how its bytes must be rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentKind {
    /// One JSON document: masks stay inside strings, numbers become strings.
    Json,
    /// JSON lines (`application/x-ndjson`, `application/jsonl`): one
    /// document per line, masked like JSON.
    Ndjson,
    /// `application/x-www-form-urlencoded`: percent-decoded, masks stay
    /// URL-safe.
    Form,
    /// `multipart/form-data`: text parts scanned, binary parts skipped.
    Multipart,
    /// Anything else: bytes are masked in place.
    Text,
    /// A URL query string: decoded and masked like a form.
    Query,
    /// A URL path: percent-decoded, masks stay URL-safe.
    Path,
    /// A header value.
    Header,
    /// A `cookie` / `set-cookie` value: name=value pairs.
    Cookie,
}

impl ContentKind {
    pub fn for_body(content_type: Option<&str>) -> ContentKind {
        let Some(e) = content_type.map(essence) else {
            return ContentKind::Text;
        };
        match e.as_str() {
            "application/json" => ContentKind::Json,
            "application/x-ndjson" | "application/jsonl" | "application/x-jsonlines" => {
                ContentKind::Ndjson
            }
            "application/x-www-form-urlencoded" => ContentKind::Form,
            "multipart/form-data" => ContentKind::Multipart,
            _ if e.ends_with("+json") => ContentKind::Json,
            _ => ContentKind::Text,
        }
    }

    /// Whether masks must keep JSON valid.
    pub fn is_json(self) -> bool {
        matches!(self, ContentKind::Json | ContentKind::Ndjson)
    }

    /// Whether masks must keep percent-escapes whole and stay URL-safe.
    pub fn is_url(self) -> bool {
        matches!(
            self,
            ContentKind::Form | ContentKind::Query | ContentKind::Path | ContentKind::Cookie
        )
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
        assert_eq!(
            ContentKind::for_body(Some("application/jsonl")),
            ContentKind::Ndjson
        );
        assert_eq!(
            ContentKind::for_body(Some("Application/X-WWW-Form-Urlencoded; charset=utf-8")),
            ContentKind::Form
        );
        assert_eq!(
            ContentKind::for_body(Some("multipart/form-data; boundary=x")),
            ContentKind::Multipart
        );
        assert_eq!(ContentKind::for_body(None), ContentKind::Text);
    }
}
