//! `veil scan`: findings for one body, or for a JSONL batch of captured
//! bodies (how detection quality is evaluated offline). Offsets are byte
//! offsets into the body exactly as the proxy would see it (UTF-8 bytes of
//! the JSONL `body` string), so they can be compared with labelled spans.
//!
//! In batch mode a bad line never stops the run: it yields an error line
//! in its place, and the exit code at the end says whether any occurred.

use crate::{DirectionArg, ScanArgs};
use anyhow::{Context, Result};
use serde_json::Value;
use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use veil_engine::{CompiledPolicy, Direction, Finding, Target};

pub fn run(args: &ScanArgs, out: &mut impl Write) -> Result<ExitCode> {
    let policy = load_policy(args.bundle.as_deref())?;
    let direction = Direction::from(args.direction);
    if args.jsonl {
        let input: Box<dyn BufRead> = if args.input.as_os_str() == "-" {
            Box::new(io::stdin().lock())
        } else {
            let file = std::fs::File::open(&args.input)
                .with_context(|| format!("cannot read {}", args.input.display()))?;
            Box::new(io::BufReader::new(file))
        };
        let defaults = Defaults {
            direction,
            content_type: args.content_type.as_deref(),
        };
        let stats = scan_jsonl(&policy, defaults, input, out)?;
        if stats.malformed > 0 {
            eprintln!(
                "veil scan: {} of {} lines malformed (see the \"error\" lines)",
                stats.malformed, stats.lines
            );
            return Ok(ExitCode::FAILURE);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let data = crate::read_input(&args.input)?;
    let content_type = args.content_type.as_deref();
    if !policy.body_plan(direction, content_type).inspect {
        eprintln!(
            "note: in the proxy this bundle does not inspect {} bodies with content type {}; \
             scanning anyway",
            direction.as_str(),
            content_type.unwrap_or("(none)")
        );
    }
    for f in policy.scan(direction, Target::Body { content_type }, &data) {
        writeln!(out, "{}", finding_json(&f))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn load_policy(bundle: Option<&std::path::Path>) -> Result<CompiledPolicy> {
    match bundle {
        None => CompiledPolicy::embedded_default().context("the embedded default bundle"),
        Some(path) => {
            let bytes = crate::read_input(path)?;
            CompiledPolicy::from_json(&bytes).with_context(|| {
                format!(
                    "bundle {} is invalid (run `veil check` on it for details)",
                    path.display()
                )
            })
        }
    }
}

/// One finding, keys in the documented order.
pub fn finding_json(f: &Finding) -> String {
    // The field path, when the finding is in one (`$.user.email`).
    let path = match &f.path {
        Some(p) => format!(r#","path":{}"#, Value::from(&**p)),
        None => String::new(),
    };
    format!(
        r#"{{"start":{},"end":{},"rule":{},"category":{},"action":{}{path}}}"#,
        f.start,
        f.end,
        Value::from(&*f.rule_id),
        Value::from(&*f.category),
        Value::from(f.action.as_str()),
    )
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct BatchStats {
    pub lines: usize,
    pub malformed: usize,
}

/// Batch settings a line does not override: `--direction` and
/// `--content-type` apply to lines without `direction` / `content_type`.
#[derive(Debug, Clone, Copy)]
pub struct Defaults<'a> {
    pub direction: Direction,
    pub content_type: Option<&'a str>,
}

/// Scans every non-blank line of `input`; writes exactly one output line
/// per non-blank input line.
pub fn scan_jsonl(
    policy: &CompiledPolicy,
    defaults: Defaults<'_>,
    mut input: impl BufRead,
    out: &mut impl Write,
) -> Result<BatchStats> {
    let mut stats = BatchStats::default();
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    loop {
        buf.clear();
        let n = input
            .read_until(b'\n', &mut buf)
            .context("cannot read input")?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        stats.lines += 1;
        match parse_line(&buf, defaults) {
            Ok(rec) => {
                let findings = policy.scan(
                    rec.direction,
                    Target::Body {
                        content_type: rec.content_type.as_deref(),
                    },
                    rec.body.as_bytes(),
                );
                let list: Vec<String> = findings.iter().map(finding_json).collect();
                writeln!(
                    out,
                    r#"{{"id":{},"findings":[{}]}}"#,
                    rec.id,
                    list.join(",")
                )?;
            }
            Err(bad) => {
                stats.malformed += 1;
                writeln!(
                    out,
                    r#"{{"id":{},"line":{line_no},"error":{}}}"#,
                    bad.id,
                    Value::from(bad.message)
                )?;
            }
        }
    }
    Ok(stats)
}

struct Record {
    id: Value,
    content_type: Option<String>,
    direction: Direction,
    body: String,
}

struct BadLine {
    /// The line's id when it could be read, else null.
    id: Value,
    message: String,
}

fn parse_line(line: &[u8], defaults: Defaults<'_>) -> Result<Record, BadLine> {
    let bad = |id: &Value, message: String| BadLine {
        id: id.clone(),
        message,
    };
    let v: Value = serde_json::from_slice(line)
        .map_err(|e| bad(&Value::Null, format!("not valid JSON: {e}")))?;
    let Value::Object(mut obj) = v else {
        return Err(bad(&Value::Null, "expected a JSON object".into()));
    };
    let id = obj.remove("id").unwrap_or(Value::Null);
    let body = match obj.remove("body") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(bad(&id, "\"body\" must be a string".into())),
        None => return Err(bad(&id, "missing \"body\" (a string)".into())),
    };
    let content_type = match obj.remove("content_type") {
        None => defaults.content_type.map(str::to_owned),
        Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(bad(&id, "\"content_type\" must be a string or null".into())),
    };
    let direction = match obj.remove("direction") {
        None | Some(Value::Null) => defaults.direction,
        Some(Value::String(s)) if s == "request" => DirectionArg::Request.into(),
        Some(Value::String(s)) if s == "response" => DirectionArg::Response.into(),
        Some(_) => {
            return Err(bad(
                &id,
                "\"direction\" must be \"request\" or \"response\"".into(),
            ))
        }
    };
    Ok(Record {
        id,
        content_type,
        direction,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(input: &str) -> (String, BatchStats) {
        let policy = CompiledPolicy::embedded_default().unwrap();
        let mut out = Vec::new();
        let defaults = Defaults {
            direction: Direction::Request,
            content_type: None,
        };
        let stats = scan_jsonl(&policy, defaults, input.as_bytes(), &mut out).unwrap();
        (String::from_utf8(out).unwrap(), stats)
    }

    #[test]
    fn one_output_line_per_input_line_and_errors_in_place() {
        let input = concat!(
            r#"{"id":"a","content_type":"application/json","body":"{\"e\":\"jo@example.org\"}"}"#,
            "\n\n",
            "{not json\n",
            r#"{"id":7,"body":42}"#,
            "\n",
            r#"{"id":"c","body":"nothing here"}"#,
        );
        let (out, stats) = batch(input);
        let lines: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            stats,
            BatchStats {
                lines: 4,
                malformed: 2
            }
        );
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0]["id"], "a");
        assert_eq!(lines[0]["findings"][0]["rule"], "pii-email");
        assert_eq!(lines[0]["findings"][0]["start"], 6);
        assert_eq!(lines[1]["id"], Value::Null);
        assert_eq!(lines[1]["line"], 3);
        assert!(lines[1]["error"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"));
        assert_eq!(lines[2]["id"], 7, "the id is kept when it could be read");
        assert_eq!(lines[2]["line"], 4);
        assert_eq!(lines[3], serde_json::json!({"id":"c","findings":[]}));
    }

    #[test]
    fn flags_are_defaults_that_lines_override() {
        let d = Defaults {
            direction: Direction::Response,
            content_type: Some("application/json"),
        };
        let ok = |line: &str| parse_line(line.as_bytes(), d).ok().unwrap();
        let r = ok(r#"{"body":""}"#);
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
        assert_eq!(r.direction, Direction::Response);
        let r = ok(r#"{"body":"","content_type":null,"direction":"request"}"#);
        assert_eq!(r.content_type, None, "explicit null means no content type");
        assert_eq!(r.direction, Direction::Request);
        let r = ok(r#"{"body":"","content_type":"text/plain"}"#);
        assert_eq!(r.content_type.as_deref(), Some("text/plain"));
    }

    #[test]
    fn per_line_direction_selects_the_rules() {
        let input = concat!(
            r#"{"id":1,"body":"AKIAZ3MSJ5TVQ4GQDKWY"}"#,
            "\n",
            r#"{"id":2,"direction":"response","body":"AKIAZ3MSJ5TVQ4GQDKWY"}"#,
        );
        let (out, _) = batch(input);
        let lines: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["findings"][0]["action"], "block");
        assert_eq!(lines[1]["findings"][0]["action"], "redact");
    }

    #[test]
    fn finding_json_escapes_and_orders_keys() {
        let f = Finding {
            rule_id: "r\"1".into(),
            category: "pii.email".into(),
            action: veil_engine::Action::Redact,
            severity: veil_engine::Severity::Low,
            confidence: veil_engine::Confidence::High,
            mask: veil_engine::MaskStyle::Full,
            monitor: false,
            start: 1,
            end: 2,
            path: None,
        };
        assert_eq!(
            finding_json(&f),
            r#"{"start":1,"end":2,"rule":"r\"1","category":"pii.email","action":"redact"}"#
        );
        let with_path = Finding {
            path: Some("$.a".into()),
            ..f
        };
        assert!(finding_json(&with_path).ends_with(r#""action":"redact","path":"$.a"}"#));
    }
}
