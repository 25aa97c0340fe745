//! Applying a `CompiledPolicy` to one buffer: candidate generation (literal
//! automaton, `@`, digit runs, user regexes), confirmation by detectors,
//! mapping to rules, the decision, and the rewritten bytes.

use crate::bundle::{Action, MaskStyle, Severity};
use crate::compile::{CompiledPolicy, Detector, Direction, LocationKind, Program, Validator};
use crate::detectors::{has_keyword_before, validators, Confidence, Input, Span};
use crate::media::{essence, ContentKind};
use crate::redact::{apply_edits, plan_edits};
use std::sync::Arc;

/// What is being inspected.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Body { content_type: Option<&'a str> },
    Query,
    Header { name: &'a str },
}

impl Target<'_> {
    fn kind(&self) -> LocationKind {
        match self {
            Target::Body { .. } => LocationKind::Body,
            Target::Query => LocationKind::Query,
            Target::Header { .. } => LocationKind::Header,
        }
    }

    fn content_kind(&self) -> ContentKind {
        match self {
            Target::Body { content_type } => ContentKind::for_body(*content_type),
            Target::Query => ContentKind::Query,
            Target::Header { .. } => ContentKind::Header,
        }
    }

    /// The `veil.location` of findings in this target.
    pub fn location(&self) -> String {
        match self {
            Target::Body { .. } => "body".into(),
            Target::Query => "query".into(),
            Target::Header { name } => format!("header:{}", name.to_ascii_lowercase()),
        }
    }
}

/// One rule matching one span of the inspected buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule_id: Arc<str>,
    pub category: Arc<str>,
    /// The rule's action for this direction.
    pub action: Action,
    pub severity: Severity,
    /// `veil.confidence` of the finding's rule.
    pub confidence: Confidence,
    pub mask: MaskStyle,
    /// Monitor-mode finding: reported, never enforced.
    pub monitor: bool,
    /// Byte offsets into the inspected buffer.
    pub start: usize,
    pub end: usize,
}

/// What the policy decides for a buffer. Ordered: block beats redact beats
/// alert beats allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Decision {
    Allow,
    Alert,
    Redact,
    Block,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Alert => "alert",
            Decision::Redact => "redact",
            Decision::Block => "block",
        }
    }

    fn from_action(a: Action) -> Decision {
        match a {
            Action::Alert => Decision::Alert,
            Action::Redact => Decision::Redact,
            Action::Block => Decision::Block,
        }
    }
}

/// The result of inspecting one buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub findings: Vec<Finding>,
    /// Decision from enforced (non-monitor) findings.
    pub decision: Decision,
    /// What enforce mode would have decided including monitor findings;
    /// equals `decision` when nothing is in monitor mode.
    pub would_decide: Decision,
    /// The rule that decided a block.
    pub blocking_rule: Option<Arc<str>>,
    /// The rewritten buffer, present iff `decision == Redact`.
    pub rewritten: Option<Vec<u8>>,
}

impl Inspection {
    fn empty() -> Inspection {
        Inspection {
            findings: Vec::new(),
            decision: Decision::Allow,
            would_decide: Decision::Allow,
            blocking_rule: None,
            rewritten: None,
        }
    }
}

/// Whether and how a body is handled, decided from its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyPlan {
    /// The body must be buffered and scanned.
    pub inspect: bool,
    /// Some enforced rule may rewrite it (so `content-length` must go).
    pub may_rewrite: bool,
    /// Some enforced rule may block it.
    pub may_block: bool,
}

impl CompiledPolicy {
    /// Decides from the content type whether a body in `direction` is
    /// scanned at all.
    pub fn body_plan(&self, direction: Direction, content_type: Option<&str>) -> BodyPlan {
        let program = self.program(direction, LocationKind::Body);
        let type_ok = match content_type {
            None => self.scan_missing_content_type,
            Some(ct) => {
                let e = essence(ct);
                self.content_types.iter().any(|p| p.matches(&e))
            }
        };
        let inspect = type_ok && !program.rules.is_empty();
        BodyPlan {
            inspect,
            may_rewrite: inspect && program.may_rewrite,
            may_block: inspect && program.may_block,
        }
    }

    /// Scans `data` and returns every finding, in order of start offset.
    pub fn scan(&self, direction: Direction, target: Target<'_>, data: &[u8]) -> Vec<Finding> {
        let d = match direction {
            Direction::Request => 0,
            Direction::Response => 1,
        };
        let program = self.program(direction, target.kind());
        if program.rules.is_empty() || data.is_empty() {
            return Vec::new();
        }
        let header = match target {
            Target::Header { name } => Some(name.to_ascii_lowercase()),
            _ => None,
        };
        let mut spans: Vec<(usize, Span)> = Vec::new();
        let field = header.as_deref().unwrap_or("").as_bytes();
        self.candidates(program, data, field, &mut spans);
        let mut findings = Vec::with_capacity(spans.len());
        for &r in &program.rules {
            let rule = &self.rules[r];
            if let Some(h) = &header {
                if !rule.headers[d].iter().any(|x| x == h) {
                    continue;
                }
            }
            // `candidates` leaves the spans sorted by detector.
            let from = spans.partition_point(|(det, _)| *det < rule.detector);
            for (_, span) in spans[from..]
                .iter()
                .take_while(|(det, _)| *det == rule.detector)
            {
                findings.push(Finding {
                    rule_id: rule.id.clone(),
                    category: rule.category.clone(),
                    action: rule.actions[d],
                    severity: rule.severity,
                    confidence: rule.confidence,
                    mask: rule.mask,
                    monitor: rule.monitor,
                    start: span.start,
                    end: span.end,
                });
            }
        }
        findings.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
        findings
    }

    /// Scans `data`, decides, and rewrites it when the decision is redact.
    pub fn inspect(&self, direction: Direction, target: Target<'_>, data: &[u8]) -> Inspection {
        let findings = self.scan(direction, target, data);
        if findings.is_empty() {
            return Inspection::empty();
        }
        let mut decision = Decision::Allow;
        let mut would_decide = Decision::Allow;
        let mut blocking_rule = None;
        for f in &findings {
            let d = Decision::from_action(f.action);
            would_decide = would_decide.max(d);
            if !f.monitor {
                if d == Decision::Block && decision < Decision::Block {
                    blocking_rule = Some(f.rule_id.clone());
                }
                decision = decision.max(d);
            }
        }
        let rewritten = if decision == Decision::Redact {
            let edits = plan_edits(
                findings
                    .iter()
                    .filter(|f| !f.monitor && f.action == Action::Redact),
            );
            Some(apply_edits(data, &edits, target.content_kind()))
        } else {
            None
        };
        Inspection {
            findings,
            decision,
            would_decide,
            blocking_rule,
            rewritten,
        }
    }

    /// Every confirmed span of every enabled detector in `data`. `field` is
    /// the lower-cased header name when `data` is a header value (it counts
    /// as context), empty otherwise.
    fn candidates(
        &self,
        program: &Program,
        data: &[u8],
        field: &[u8],
        out: &mut Vec<(usize, Span)>,
    ) {
        let input = Input { hay: data, field };
        let builtin = |det: usize| match &self.detectors[det] {
            Detector::Builtin(b) if program.detector_enabled[det] => Some(*b),
            _ => None,
        };
        if program.literals {
            if let Some(anchors) = &self.literals {
                anchors.for_each_match(data, |pattern, start, end| {
                    for &det in &self.literal_owner[pattern] {
                        if let Some(b) = builtin(det) {
                            if let Some(span) = b.confirm_literal(&input, start, end) {
                                out.push((det, span));
                            }
                        }
                    }
                });
            }
            if !field.is_empty() {
                let name: Vec<u8> = field
                    .iter()
                    .map(|&b| {
                        if b == b'-' {
                            b'_'
                        } else {
                            b.to_ascii_lowercase()
                        }
                    })
                    .collect();
                for (det, keywords) in &self.field_detectors {
                    let Some(b) = builtin(*det) else { continue };
                    let named = keywords
                        .iter()
                        .any(|k| memchr::memmem::find(&name, k.as_bytes()).is_some());
                    if named {
                        if let Some(span) = b.confirm_field_value(&input) {
                            out.push((*det, span));
                        }
                    }
                }
            }
        }
        if program.at_sign {
            // `@` and its JSON escape `\u0040`.
            let escaped = memchr::memmem::find_iter(data, b"\\u0040");
            for at in memchr::memchr_iter(b'@', data).chain(escaped) {
                for &det in &self.at_sign_detectors {
                    if let Some(b) = builtin(det) {
                        if let Some(span) = b.confirm_at_sign(&input, at) {
                            out.push((det, span));
                        }
                    }
                }
            }
        }
        if program.colon || program.digits {
            use crate::detectors::classes::{candidates, Candidate};
            candidates(data, program.digits, program.colon, |c| match c {
                Candidate::DigitRun(i) => {
                    let run = crate::detectors::measure_run(data, i);
                    if !crate::detectors::run_may_matter(data, &run) {
                        return;
                    }
                    for &det in &self.digit_detectors {
                        if let Some(b) = builtin(det) {
                            if let Some(span) = b.confirm_digits(&input, &run) {
                                out.push((det, span));
                            }
                        }
                    }
                }
                Candidate::Colon(pos) => {
                    for &det in &self.colon_detectors {
                        if let Some(b) = builtin(det) {
                            if let Some(span) = b.confirm_colon(&input, pos) {
                                out.push((det, span));
                            }
                        }
                    }
                }
            });
        }
        if program.regex {
            if let Some(set) = &self.regex_set {
                for i in set.matches(data).iter() {
                    let det = self.regex_detectors[i];
                    if program.detector_enabled[det] {
                        regex_candidates(&self.detectors[det], det, data, out);
                    }
                }
            }
        }
        settle(out, &self.yielding);
    }
}

/// One detector reports non-overlapping spans (the first wins), and a
/// generic detector's span that overlaps a specific detector's is dropped.
fn settle(out: &mut Vec<(usize, Span)>, yielding: &[bool]) {
    if out.len() < 2 {
        return;
    }
    out.sort_by_key(|(det, span)| (*det, span.start, std::cmp::Reverse(span.end)));
    let mut kept: Vec<(usize, Span)> = Vec::with_capacity(out.len());
    for &(det, span) in out.iter() {
        match kept.last() {
            Some(&(d, last)) if d == det && span.start < last.end => {}
            _ => kept.push((det, span)),
        }
    }
    if yielding.iter().any(|&y| y) {
        let mut specific: Vec<Span> = kept
            .iter()
            .filter(|(d, _)| !yielding.get(*d).copied().unwrap_or(false))
            .map(|(_, s)| *s)
            .collect();
        specific.sort_by_key(|s| s.start);
        // max_end[i]: the furthest end among specific[..=i].
        let max_end: Vec<usize> = specific
            .iter()
            .scan(0, |m, s| {
                *m = (*m).max(s.end);
                Some(*m)
            })
            .collect();
        kept.retain(|(d, s)| {
            if !yielding.get(*d).copied().unwrap_or(false) {
                return true;
            }
            let before = specific.partition_point(|o| o.start < s.end);
            before == 0 || max_end[before - 1] <= s.start
        });
    }
    *out = kept;
}

fn regex_candidates(detector: &Detector, det: usize, data: &[u8], out: &mut Vec<(usize, Span)>) {
    let Detector::Regex {
        regex,
        group,
        validator,
        keywords,
        keyword_window,
    } = detector
    else {
        return;
    };
    let keywords: Vec<&[u8]> = keywords.iter().map(|k| k.as_slice()).collect();
    for caps in regex.captures_iter(data) {
        let Some(m) = caps.get(*group) else { continue };
        if m.start() == m.end() {
            continue;
        }
        let value = &data[m.start()..m.end()];
        let valid = match validator {
            None => true,
            Some(Validator::Luhn) => validators::luhn_valid(value),
            Some(Validator::Ssn) => validators::ssn_digits_valid(value),
        };
        if !valid {
            continue;
        }
        if !keywords.is_empty() && !has_keyword_before(data, m.start(), *keyword_window, &keywords)
        {
            continue;
        }
        out.push((
            det,
            Span {
                start: m.start(),
                end: m.end(),
            },
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_policy() -> CompiledPolicy {
        CompiledPolicy::embedded_default().unwrap()
    }

    #[test]
    fn default_bundle_redacts_pii_in_request_json_and_keeps_it_valid() {
        let p = default_policy();
        let body = br#"{"name":"Jane","email":"jane.doe@example.com","card":"4111 1111 1111 1111","n":4111111111111111}"#;
        let ins = p.inspect(
            Direction::Request,
            Target::Body {
                content_type: Some("application/json"),
            },
            body,
        );
        assert_eq!(ins.decision, Decision::Redact);
        let out = ins.rewritten.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).expect("still JSON");
        assert_eq!(v["name"], "Jane");
        assert!(!String::from_utf8_lossy(&out).contains("jane.doe@example.com"));
        assert!(v["email"].as_str().unwrap().chars().all(|c| c == '*'));
        assert_eq!(v["card"], "**** **** **** 1111");
        assert!(
            v["n"].is_string(),
            "a card number as a JSON number becomes a masked string"
        );
        assert_eq!(out.len(), body.len(), "full masks keep the length");
    }

    #[test]
    fn default_bundle_blocks_secrets_in_requests_and_redacts_them_in_responses() {
        let p = default_policy();
        let body = br#"{"aws":"AKIAZ3MSJ5TVQ4GQDKWY"}"#;
        let t = Target::Body {
            content_type: Some("application/json"),
        };
        let req = p.inspect(Direction::Request, t, body);
        assert_eq!(req.decision, Decision::Block);
        assert!(req.blocking_rule.as_deref().unwrap().contains("aws"));
        assert!(req.rewritten.is_none());
        let resp = p.inspect(Direction::Response, t, body);
        assert_eq!(resp.decision, Decision::Redact);
        assert_eq!(
            resp.rewritten.unwrap(),
            br#"{"aws":"********************"}"#.to_vec()
        );
    }

    #[test]
    fn clean_body_is_allowed_untouched() {
        let p = default_policy();
        let body = br#"{"order":"A-1029","total":1234567812345670,"ts":"2026-11-22T03:26:24Z"}"#;
        let ins = p.inspect(
            Direction::Request,
            Target::Body {
                content_type: Some("application/json"),
            },
            body,
        );
        assert_eq!(ins, Inspection::empty());
    }

    #[test]
    fn query_string_secrets_block_and_pii_redacts() {
        let p = default_policy();
        let ins = p.inspect(
            Direction::Request,
            Target::Query,
            b"q=1&mail=jo@example.org",
        );
        assert_eq!(ins.decision, Decision::Redact);
        assert_eq!(ins.rewritten.unwrap(), b"q=1&mail=**************".to_vec());
        let ins = p.inspect(
            Direction::Request,
            Target::Query,
            b"key=AKIAZ3MSJ5TVQ4GQDKWY",
        );
        assert_eq!(ins.decision, Decision::Block);
    }

    #[test]
    fn body_plan_follows_content_types() {
        let p = default_policy();
        assert!(
            p.body_plan(Direction::Request, Some("application/json; charset=utf-8"))
                .inspect
        );
        assert!(
            p.body_plan(Direction::Request, Some("application/json"))
                .may_rewrite
        );
        assert!(!p.body_plan(Direction::Request, Some("image/png")).inspect);
        assert!(
            !p.body_plan(Direction::Request, Some("application/octet-stream"))
                .inspect
        );
        assert!(
            !p.body_plan(Direction::Response, Some("application/json"))
                .may_block
        );
    }

    #[test]
    fn monitor_mode_reports_but_never_enforces() {
        let bundle = r#"{"version":1,"metadata":{"name":"m","revision":"1"},"mode":"monitor",
            "rules":[{"id":"aws","category":"secret.aws_access_key_id","detector":{"builtin":"aws_access_key_id"},"action":"block"}]}"#;
        let p = CompiledPolicy::from_json(bundle.as_bytes()).unwrap();
        let ins = p.inspect(
            Direction::Request,
            Target::Body { content_type: None },
            b"AKIAZ3MSJ5TVQ4GQDKWY",
        );
        assert_eq!(ins.decision, Decision::Allow);
        assert_eq!(ins.would_decide, Decision::Block);
        assert_eq!(ins.findings.len(), 1);
        assert!(ins.findings[0].monitor);
    }

    #[test]
    fn user_regex_with_validator_keywords_and_header_scope() {
        let bundle = r#"{"version":1,"metadata":{"name":"u","revision":"1"},"rules":[
            {"id":"emp","category":"pii.employee_id","detector":{"regex":"EMP-[0-9]{6}","keywords":["employee"],"keyword_window":12},
             "action":"redact","mask":"placeholder","scope":{"request":{"headers":["X-Employee"],"body":true}}}]}"#;
        let p = CompiledPolicy::from_json(bundle.as_bytes()).unwrap();
        let body = b"employee: EMP-123456; other EMP-654321";
        let ins = p.inspect(
            Direction::Request,
            Target::Body {
                content_type: Some("text/plain"),
            },
            body,
        );
        assert_eq!(ins.findings.len(), 1, "only the match near the keyword");
        assert_eq!(
            ins.rewritten.unwrap(),
            b"employee: [REDACTED:pii.employee_id]; other EMP-654321".to_vec()
        );
        assert_eq!(
            p.header_names(Direction::Request),
            &["x-employee".to_string()]
        );
        let h = p.inspect(
            Direction::Request,
            Target::Header { name: "X-Employee" },
            b"employee EMP-000001",
        );
        assert_eq!(h.decision, Decision::Redact);
        let other = p.inspect(
            Direction::Request,
            Target::Header { name: "x-other" },
            b"employee EMP-000001",
        );
        assert!(other.findings.is_empty());
    }

    #[test]
    fn offsets_are_exact_after_multibyte_text() {
        let p = default_policy();
        let body = "héllo wörld — jane@example.com".as_bytes();
        let f = p.scan(
            Direction::Request,
            Target::Body {
                content_type: Some("text/plain"),
            },
            body,
        );
        assert_eq!(f.len(), 1);
        assert_eq!(&body[f[0].start..f[0].end], b"jane@example.com");
    }
}
