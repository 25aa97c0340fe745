//! `multipart/form-data` (RFC 7578): splits a body into parts by its
//! boundary and says which parts are text (scanned) and which are files or
//! binary (skipped). A part is text when its `content-type` is text-like
//! (`text/*`, JSON, XML, form) or absent without a `filename`; a file
//! upload with a binary type (images, archives, octet streams) is skipped.

use crate::media::essence;
use std::ops::Range;

/// Part headers longer than this are malformed (bounds header parsing).
const MAX_PART_HEADERS: usize = 8 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The part's body, raw offsets into the whole buffer.
    pub body: Range<usize>,
    /// `name` from `content-disposition`, raw bytes.
    pub name: Vec<u8>,
    /// Whether the part is scanned.
    pub text: bool,
    /// The part's content type, lower-cased essence, if any.
    pub content_type: Option<String>,
}

/// The boundary parameter of a `multipart/*` content type.
pub fn boundary(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let v = v.trim().trim_matches('"');
        (!v.is_empty() && v.len() <= 70).then_some(v)
    })
}

/// Why a multipart body could not be split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartError {
    pub offset: usize,
    pub reason: &'static str,
    /// Parts complete before the error.
    pub parts: Vec<Part>,
}

/// Splits `data` into parts. On error, the parts before it are returned in
/// the error so the caller can still scan them.
pub fn parts(data: &[u8], boundary: &str) -> Result<Vec<Part>, MultipartError> {
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let finder = memchr::memmem::Finder::new(delim);
    let mut out = Vec::new();
    let fail = |offset, reason, parts| MultipartError {
        offset,
        reason,
        parts,
    };
    let Some(first) = finder.find(data) else {
        return Err(fail(0, "no boundary delimiter in the body", out));
    };
    let mut pos = first + delim.len();
    loop {
        // After a delimiter: `--` ends the body, else CRLF starts a part.
        if data.get(pos..pos + 2) == Some(b"--".as_slice()) {
            return Ok(out);
        }
        while matches!(data.get(pos), Some(b' ' | b'\t')) {
            pos += 1;
        }
        pos += match data.get(pos..pos + 2) {
            Some(b"\r\n") => 2,
            _ if data.get(pos) == Some(&b'\n') => 1,
            _ => return Err(fail(pos, "malformed boundary line", out)),
        };
        let head_end = memchr::memmem::find(&data[pos..], b"\r\n\r\n")
            .map(|p| (pos + p, 4))
            .or_else(|| memchr::memmem::find(&data[pos..], b"\n\n").map(|p| (pos + p, 2)));
        let Some((head_end, sep)) = head_end else {
            return Err(fail(pos, "part headers never end", out));
        };
        if head_end - pos > MAX_PART_HEADERS {
            return Err(fail(pos, "part headers too long", out));
        }
        let headers = &data[pos..head_end];
        let body_start = head_end + sep;
        let Some(next) = finder.find(&data[body_start..]).map(|p| body_start + p) else {
            return Err(fail(body_start, "missing closing boundary", out));
        };
        // The CRLF before the delimiter belongs to it.
        let mut body_end = next;
        if body_end >= body_start + 2 && &data[body_end - 2..body_end] == b"\r\n" {
            body_end -= 2;
        } else if body_end > body_start && data[body_end - 1] == b'\n' {
            body_end -= 1;
        }
        out.push(part(headers, body_start..body_end));
        pos = next + delim.len();
    }
}

fn part(headers: &[u8], body: Range<usize>) -> Part {
    let text = String::from_utf8_lossy(headers);
    let mut name = Vec::new();
    let mut filename = false;
    let mut content_type = None;
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let k = k.trim();
        if k.eq_ignore_ascii_case("content-disposition") {
            for p in v.split(';').skip(1) {
                let Some((pk, pv)) = p.split_once('=') else {
                    continue;
                };
                let pv = pv.trim().trim_matches('"');
                match pk.trim().to_ascii_lowercase().as_str() {
                    "name" => name = pv.as_bytes().to_vec(),
                    "filename" | "filename*" => filename = true,
                    _ => {}
                }
            }
        } else if k.eq_ignore_ascii_case("content-type") {
            content_type = Some(essence(v));
        }
    }
    let is_text = match content_type.as_deref() {
        None => !filename,
        Some(ct) => {
            ct.starts_with("text/")
                || ct == "application/json"
                || ct.ends_with("+json")
                || ct == "application/xml"
                || ct.ends_with("+xml")
                || ct == "application/x-www-form-urlencoded"
                || ct == "application/x-ndjson"
        }
    };
    Part {
        body,
        name,
        text: is_text,
        content_type,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"--XyZ\r\n\
content-disposition: form-data; name=\"note\"\r\n\r\n\
mail jane@example.com\r\n\
--XyZ\r\n\
Content-Disposition: form-data; name=\"avatar\"; filename=\"a.png\"\r\n\
Content-Type: image/png\r\n\r\n\
\x89PNG jane@example.com\r\n\
--XyZ\r\n\
Content-Disposition: form-data; name=\"cv\"; filename=\"cv.txt\"\r\n\
Content-Type: text/plain\r\n\r\n\
cv text\r\n\
--XyZ--\r\n";

    #[test]
    fn splits_parts_and_classifies_them() {
        assert_eq!(boundary("multipart/form-data; boundary=XyZ"), Some("XyZ"));
        assert_eq!(
            boundary("multipart/form-data; charset=utf-8; Boundary=\"a b\""),
            Some("a b")
        );
        assert_eq!(boundary("multipart/form-data"), None);
        let p = parts(BODY, "XyZ").unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(&BODY[p[0].body.clone()], b"mail jane@example.com");
        assert_eq!(p[0].name, b"note");
        assert!(p[0].text);
        assert!(!p[1].text, "a png upload is skipped");
        assert!(p[2].text, "a text file upload is scanned");
        assert_eq!(&BODY[p[2].body.clone()], b"cv text");
    }

    #[test]
    fn truncated_or_foreign_bodies_are_errors_with_what_was_complete() {
        let cut = &BODY[..BODY.len() - 12];
        let err = parts(cut, "XyZ").unwrap_err();
        assert_eq!(err.reason, "missing closing boundary");
        assert_eq!(err.parts.len(), 2);
        assert!(parts(b"no delimiters here", "XyZ").is_err());
        assert!(parts(b"--XyZ\r\nheaders without end", "XyZ").is_err());
    }
}
