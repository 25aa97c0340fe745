//! Property checks shared by the cargo-fuzz targets (`fuzz/`, nightly) and
//! the corpus replay test (`engine/tests/fuzz_corpus.rs`, stable), so CI
//! runs the same assertions over the kept corpus without nightly. These
//! functions panic on a violated property; they are never on a traffic
//! path.

use crate::bundle::Action;
use crate::codec::json::{self, MAX_DEPTH};
use crate::compile::{CompiledPolicy, Direction};
use crate::inspect::Target;
use crate::redact::{apply_edits, Edit};
use crate::sse::{AssemblyLimits, SseAssembler};
use crate::stream::{Framing, Release, StreamScanner, StreamWindow};
use crate::{ContentKind, MaskStyle};
use std::sync::OnceLock;

/// serde_json stops at 128 levels; deeper documents are compared only
/// against our own limit.
const SERDE_DEPTH: usize = 127;

fn serde_verdict(data: &[u8]) -> Option<bool> {
    match serde_json::from_slice::<serde_json::Value>(data) {
        Ok(_) => Some(true),
        // Valid JSON that serde_json refuses for its own limits.
        Err(e) if e.to_string().contains("number out of range") => None,
        Err(e) if e.to_string().contains("recursion limit") => None,
        Err(_) => Some(false),
    }
}

/// Nesting depth, counted without parsing (brackets outside strings).
fn depth(data: &[u8]) -> usize {
    let (mut d, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for &b in data {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                d += 1;
                max = max.max(d);
            }
            b'}' | b']' => d = d.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn valid(data: &[u8]) -> bool {
    json::decode(data, 0..data.len(), None).is_ok()
}

/// A policy with a key rule on every key (so every string and number of a
/// valid document is masked) and the email and card detectors, in both
/// directions, one mask style each.
fn policy() -> &'static CompiledPolicy {
    static POLICY: OnceLock<CompiledPolicy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let bundle = br#"{"version":1,"metadata":{"name":"fuzz","revision":"1"},"rules":[
            {"id":"k","category":"secret.field","detector":{"key":"[a-m].*"},"action":"redact","mask":"placeholder"},
            {"id":"e","category":"pii.email","detector":{"builtin":"email"},"action":"redact","mask":"full"},
            {"id":"c","category":"pii.payment_card","detector":{"builtin":"payment_card"},"action":"redact","mask":"keep_last4"}]}"#;
        match CompiledPolicy::from_json(bundle) {
            Ok(p) => p,
            Err(e) => panic!("fuzz bundle: {e}"),
        }
    })
}

/// The JSON tokenizer agrees with serde_json on validity, and redaction
/// keeps validity: the output of `inspect` is valid JSON iff the input
/// was, and arbitrary masks over a valid document keep it valid.
pub fn json(data: &[u8]) {
    let ours = valid(data);
    let deep = depth(data);
    if deep <= SERDE_DEPTH {
        if let Some(theirs) = serde_verdict(data) {
            assert_eq!(
                ours,
                theirs,
                "tokenizer says {ours}, serde_json says {theirs} for {:?}",
                String::from_utf8_lossy(data)
            );
        }
    } else if deep > MAX_DEPTH {
        assert!(!ours, "deeper than MAX_DEPTH accepted");
    }

    let target = Target::Body {
        content_type: Some("application/json"),
    };
    let ins = policy().inspect(Direction::Response, target, data);
    if let Some(out) = &ins.rewritten {
        assert_eq!(
            valid(out),
            ours,
            "redaction changed validity: {:?} -> {:?}",
            String::from_utf8_lossy(data),
            String::from_utf8_lossy(out)
        );
        if ours && deep <= SERDE_DEPTH {
            assert!(
                serde_verdict(out) != Some(false),
                "serde_json rejects output"
            );
        }
    }

    if ours && !data.is_empty() {
        // Masks at spans derived from the input itself.
        let n = data.len();
        let at = |i: usize| data[i % n] as usize * n / 256;
        let mut edits: Vec<Edit> = [
            MaskStyle::Full,
            MaskStyle::KeepLast4,
            MaskStyle::Placeholder,
        ]
        .iter()
        .enumerate()
        .map(|(k, &mask)| {
            let start = at(k * 2);
            let end = (start + at(k * 2 + 1) / 4 + 1).min(n);
            Edit {
                start,
                end,
                mask,
                category: "pii.fuzz".into(),
            }
        })
        .collect();
        edits.sort_by_key(|e| e.start);
        let mut disjoint: Vec<Edit> = Vec::new();
        for e in edits {
            if disjoint.last().is_none_or(|l| l.end <= e.start) {
                disjoint.push(e);
            }
        }
        let out = apply_edits(data, &disjoint, ContentKind::Json);
        assert!(
            valid(&out),
            "masks broke JSON: {:?} -> {:?}",
            String::from_utf8_lossy(data),
            String::from_utf8_lossy(&out)
        );
    }
}

/// The stream window (target `stream_window`): the first input byte picks
/// the direction, the content type and a small or the policy's own
/// window, the next eight give chunk sizes, the rest is the body. Feeding
/// the body in those chunks must release exactly what feeding it at once
/// does (bytes, findings, block), and every fully masked finding must come
/// out masked. Panics on a violation.
pub fn stream_window(input: &[u8]) {
    static DEFAULT: OnceLock<Option<CompiledPolicy>> = OnceLock::new();
    let Some(policy) = DEFAULT
        .get_or_init(|| CompiledPolicy::embedded_default().ok())
        .as_ref()
    else {
        return;
    };
    let Some((&selector, rest)) = input.split_first() else {
        return;
    };
    let (sizes, data) = rest.split_at(rest.len().min(8));
    let direction = if selector & 1 == 0 {
        Direction::Request
    } else {
        Direction::Response
    };
    let content_type = match (selector >> 1) & 3 {
        0 => Some("text/plain"),
        1 => Some("application/json"),
        2 => Some("text/event-stream"),
        _ => None,
    };
    let window = if selector & 8 == 0 {
        // Small enough that short inputs cross many release points.
        StreamWindow {
            span: 80,
            step: 40,
            context: 48,
            max_event: 200,
            text_span: 24,
            pem: true,
        }
    } else {
        policy.stream_window(direction)
    };
    // Event streams join their text across events; the small window also
    // holds few events, so the bounds are crossed.
    let limits = if selector & 8 == 0 {
        Some(AssemblyLimits {
            window: window.text_span,
            max_held_bytes: 400,
            max_held_events: 6,
            pem: true,
        })
    } else {
        policy.sse_limits(direction)
    };
    let framing = Framing::for_content_type(content_type);
    let run = |chunked: bool| {
        let mut s = StreamScanner::with_window(window, direction, content_type, framing);
        if let Some(limits) = limits {
            s = s.with_assembler(SseAssembler::new(direction, limits));
        }
        let mut out = Release::default();
        let mut pos = 0;
        let mut k = 0;
        while pos < data.len() && out.blocked.is_none() {
            let n = if chunked {
                usize::from(sizes.get(k % sizes.len().max(1)).copied().unwrap_or(0) % 64) + 1
            } else {
                data.len()
            };
            k += 1;
            let end = (pos + n).min(data.len());
            let r = s.feed(policy, &data[pos..end]);
            pos = end;
            out.bytes.extend(r.bytes);
            out.findings.extend(r.findings);
            out.notices.extend(r.notices);
            out.blocked = r.blocked;
        }
        if out.blocked.is_none() {
            let r = s.finish(policy);
            out.bytes.extend(r.bytes);
            out.findings.extend(r.findings);
            out.notices.extend(r.notices);
            out.blocked = r.blocked;
        }
        out
    };
    let whole = run(false);
    let chunked = run(true);
    assert_eq!(
        whole.blocked, chunked.blocked,
        "block decision depends on chunking"
    );
    assert!(
        whole.bytes == chunked.bytes,
        "released bytes depend on chunking"
    );
    assert_eq!(
        whole.findings, chunked.findings,
        "findings depend on chunking"
    );
    assert_eq!(whole.notices, chunked.notices, "notices depend on chunking");
    // In text, full and keep-last-4 masks keep the length (in JSON a short
    // bare number becomes a longer string), and a full mask covers its
    // finding's bytes.
    // An event longer than `max_event` is released in windows and ends the
    // joining; `joined_text` cannot tell, so such inputs skip the check.
    let endless = {
        let mut rest = data;
        let mut long = false;
        while !rest.is_empty() && !long {
            let end = crate::stream::event_end(rest, 0).unwrap_or(rest.len());
            long = end > window.max_event;
            rest = &rest[end..];
        }
        long
    };
    if whole.blocked.is_none() && ContentKind::for_body(content_type) == ContentKind::Text {
        assert_eq!(whole.bytes.len(), data.len(), "text masks keep the length");
        {
            for sf in &whole.findings {
                let f = &sf.finding;
                if f.path.as_deref() == Some(crate::sse::SSE_TEXT_PATH) {
                    // Joined across events: its bytes are the events'
                    // text, not a stream range. Each such finding must
                    // take one occurrence of its value out of the joined
                    // text (unless the bounds released its first part
                    // early); the same value elsewhere may stay, as its
                    // context may differ.
                    let full =
                        !f.monitor && f.action == Action::Redact && f.mask == MaskStyle::Full;
                    if full && whole.notices.is_empty() && sf.value.len() >= 8 && !endless {
                        let count =
                            |text: &[u8]| memchr::memmem::find_iter(text, &sf.value).count();
                        let before = count(&crate::sse::joined_text(policy, data));
                        let after = count(&crate::sse::joined_text(policy, &whole.bytes));
                        let masked = whole
                            .findings
                            .iter()
                            .filter(|g| g.value == sf.value && g.finding.path == f.path)
                            .count();
                        assert!(
                            after + masked <= before,
                            "joined value {:?} released unmasked",
                            String::from_utf8_lossy(&sf.value)
                        );
                    }
                    continue;
                }
                if !f.monitor && f.action == Action::Redact && f.mask == MaskStyle::Full {
                    let out = whole.bytes.get(f.start..f.end).unwrap_or_default();
                    assert!(
                        out.iter().all(|&b| b == b'*'),
                        "finding {}..{} released unmasked",
                        f.start,
                        f.end
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn properties_hold_on_handwritten_cases() {
        for doc in [
            &br#"{"a":"jane@example.com","n":4111111111111111,"m":[1,{"k":"\u0040"}]}"#[..],
            br#"{"card":"4111\u00201111 1111 1111"}"#,
            b"[1,2",
            b"{\"a\":\"\xff\"}",
            br#""\ud83d\ude00""#,
            b"1e400",
        ] {
            super::json(doc);
        }
    }
}
