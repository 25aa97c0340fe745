//! Bundle -> `CompiledPolicy`: built once per bundle (re)load, immutable,
//! shared by every request. Compilation is where every semantic check
//! happens (unknown detector, bad regex, duplicate id, hostile sizes), so a
//! bundle that compiles can be applied to any traffic without further error.

use crate::bundle::{
    parse_bundle, Action, Bundle, BundleError, DetectorSpec, Locations, MaskStyle, Mode, Scope,
    Severity,
};
use crate::codec::selector::Selector;
use crate::detectors::{Builtin, Confidence, Trigger};
use crate::inspect::FindingText;
use crate::media::MediaPattern;
use std::sync::Arc;

/// Hostile-bundle bounds: a bundle is data from outside the proxy.
pub const MAX_RULES: usize = 2_000;
pub const MAX_REGEX_LEN: usize = 4_096;
/// Compiled size limit of one user regex (bytes of program).
pub const MAX_REGEX_PROGRAM: usize = 2 * 1024 * 1024;
pub const MAX_KEYWORD_WINDOW: usize = 4_096;
/// Field selectors per rule (`fields.include` + `fields.exclude`).
pub const MAX_SELECTORS: usize = 64;
const DEFAULT_KEYWORD_WINDOW: usize = 64;

/// Traffic direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Request,
    Response,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Request => "request",
            Direction::Response => "response",
        }
    }
    pub(crate) fn index(self) -> usize {
        match self {
            Direction::Request => 0,
            Direction::Response => 1,
        }
    }
}

/// Kinds of places a rule can look at; headers are further narrowed by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LocationKind {
    Body = 0,
    Query = 1,
    Header = 2,
    Path = 3,
}

const LOCATION_KINDS: usize = 4;

/// An error that makes a bundle unusable, naming the rule and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("rule {rule_id:?} ({pointer}): {message}")]
    Rule {
        rule_id: String,
        pointer: String,
        message: String,
    },
    #[error("{pointer}: {message}")]
    Invalid { pointer: String, message: String },
}

impl PolicyError {
    /// JSON pointer of the offending field in the bundle document.
    pub fn pointer(&self) -> &str {
        match self {
            PolicyError::Bundle(e) => &e.pointer,
            PolicyError::Rule { pointer, .. } | PolicyError::Invalid { pointer, .. } => pointer,
        }
    }
}

#[derive(Debug)]
pub(crate) enum Validator {
    Luhn,
    Ssn,
}

#[derive(Debug)]
pub(crate) enum Detector {
    Builtin(Builtin),
    Regex {
        regex: regex::bytes::Regex,
        group: usize,
        validator: Option<Validator>,
        keywords: Vec<Vec<u8>>,
        keyword_window: usize,
    },
    /// A key-name rule: matches whole field names, case-insensitively.
    Key {
        regex: regex::bytes::Regex,
    },
}

#[derive(Debug)]
pub(crate) struct CompiledRule {
    /// Copied into each finding (short ones inline: no atomic count).
    pub id: FindingText,
    pub category: FindingText,
    pub detector: usize,
    pub actions: [Action; 2],
    pub mask: MaskStyle,
    pub severity: Severity,
    /// How sure a match is: the catalogue's confidence for built-ins;
    /// user regexes are `high` with a validator, `medium` without; key-name
    /// rules are `medium`.
    pub confidence: Confidence,
    pub monitor: bool,
    /// Lower-cased header names per direction.
    pub headers: [Vec<String>; 2],
    /// Field selectors (`fields.include` / `fields.exclude`).
    pub include: Vec<Selector>,
    pub exclude: Vec<Selector>,
}

impl CompiledRule {
    /// Whether a finding at `path` (`None`: not in a structured field)
    /// counts for this rule. `fallback`: the body was meant to be
    /// structured but did not parse, so include-selectors cannot be
    /// evaluated and the rule applies everywhere (fail toward detection).
    pub fn selects(&self, path: Option<&[crate::codec::json::Segment]>, fallback: bool) -> bool {
        match path {
            Some(p) => {
                (self.include.is_empty() || self.include.iter().any(|s| s.matches(p)))
                    && !self.exclude.iter().any(|s| s.matches(p))
            }
            None => self.include.is_empty() || fallback,
        }
    }
}

/// The rules that apply to one (direction, location kind), and which
/// candidate sources the scanner must run for them.
#[derive(Debug, Default, Clone)]
pub(crate) struct Program {
    pub rules: Vec<usize>,
    /// `rules` sorted by (detector, rule): detector `d`'s hits belong to
    /// `rules_by_detector[rules_from[d]..rules_from[d + 1]]`, found by
    /// index rather than by a search per hit.
    pub rules_by_detector: Vec<usize>,
    pub rules_from: Vec<u32>,
    pub detector_enabled: Vec<bool>,
    pub literals: bool,
    /// The enabled detectors each literal pattern of `CompiledPolicy::
    /// literals` anchors, with their confirmation resolved for it:
    /// pattern `p`'s are `literal_owners[literal_from[p]..literal_from[p + 1]]`,
    /// in `literal_owner` order.
    pub literal_from: Vec<u32>,
    pub literal_owners: Vec<(usize, crate::detectors::LiteralConfirmer)>,
    /// The enabled digit-run detectors, each with its `digit_kind` bits
    /// (a run is offered to those its shape wants), grouped by kind: those
    /// of the single kind bit `b` are `digit_owners[digit_from[b] as usize
    /// ..digit_from[b + 1] as usize]`, the ones with several bits (a
    /// detector without a kind of its own) from `digit_from[16]` on. A run
    /// visits only the groups of its wanted bits, not every owner.
    pub digit_owners: Vec<(usize, crate::detectors::Builtin, u16)>,
    pub digit_from: [u16; 17],
    pub at_sign: bool,
    pub digits: bool,
    pub colon: bool,
    pub regex: bool,
    pub may_rewrite: bool,
    pub may_block: bool,
    /// Rules with a key-name detector.
    pub key_rules: Vec<usize>,
    /// Some rule has field selectors or is a key rule: structured bodies
    /// need a path walk even without findings.
    pub fields: bool,
}

/// A compiled, immutable policy. Cheap to share (`Arc`/`Rc`).
#[derive(Debug)]
pub struct CompiledPolicy {
    pub(crate) name: Arc<str>,
    pub(crate) revision: Arc<str>,
    pub(crate) mode: Mode,
    pub(crate) rules: Vec<CompiledRule>,
    pub(crate) detectors: Vec<Detector>,
    /// One fingerprint matcher over every literal anchor and keyword
    /// spelling of every detector.
    pub(crate) literals: Option<crate::detectors::anchors::AnchorSet>,
    /// Detector indices by trigger.
    pub(crate) at_sign_detectors: Vec<usize>,
    pub(crate) colon_detectors: Vec<usize>,
    /// Keyword-triggered detectors with their keywords normalised for
    /// header-name matching (lower case, `-` as `_`).
    pub(crate) field_detectors: Vec<(usize, Vec<String>)>,
    /// Per detector: gives way to specific detectors on overlapping bytes.
    pub(crate) yielding: Vec<bool>,
    pub(crate) regex_detectors: Vec<usize>,
    pub(crate) regex_set: Option<regex::bytes::RegexSet>,
    /// programs[direction][location kind]
    pub(crate) programs: [[Program; LOCATION_KINDS]; 2],
    pub(crate) header_names: [Vec<String>; 2],
    pub(crate) content_types: Vec<MediaPattern>,
    pub(crate) scan_missing_content_type: bool,
    /// Body modes and content-coding handling (`body.modes`, `body.encodings`).
    pub(crate) body: crate::body::BodyPolicy,
}

/// The bundle compiled into the filter and used when it gets no
/// configuration.
pub const DEFAULT_BUNDLE_JSON: &str = include_str!("../../policy-schema/bundles/default.json");

impl CompiledPolicy {
    /// Parses and compiles a bundle document.
    pub fn from_json(bytes: &[u8]) -> Result<CompiledPolicy, PolicyError> {
        let bundle = parse_bundle(bytes)?;
        CompiledPolicy::compile(&bundle)
    }

    /// The embedded default bundle. Its validity is a unit test, so this
    /// cannot fail in a released build.
    pub fn embedded_default() -> Result<CompiledPolicy, PolicyError> {
        CompiledPolicy::from_json(DEFAULT_BUNDLE_JSON.as_bytes())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn revision(&self) -> &str {
        &self.revision
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Lower-cased names of headers scanned in `direction`.
    pub fn header_names(&self, direction: Direction) -> &[String] {
        &self.header_names[direction.index()]
    }

    /// Whether any rule looks at the query string in `direction`.
    pub fn scans_query(&self, direction: Direction) -> bool {
        !self
            .program(direction, LocationKind::Query)
            .rules
            .is_empty()
    }

    /// Whether any rule looks at URL path segments in `direction`.
    pub fn scans_path(&self, direction: Direction) -> bool {
        !self.program(direction, LocationKind::Path).rules.is_empty()
    }

    pub(crate) fn program(&self, direction: Direction, kind: LocationKind) -> &Program {
        &self.programs[direction.index()][kind as usize]
    }

    pub fn compile(bundle: &Bundle) -> Result<CompiledPolicy, PolicyError> {
        if bundle.rules.len() > MAX_RULES {
            return Err(PolicyError::Invalid {
                pointer: "/rules".into(),
                message: format!(
                    "{} rules, more than the limit of {MAX_RULES}",
                    bundle.rules.len()
                ),
            });
        }
        let mut content_types = Vec::new();
        for (i, ct) in bundle.body.content_types.iter().enumerate() {
            content_types.push(MediaPattern::parse(ct).ok_or_else(|| PolicyError::Invalid {
                pointer: format!("/body/content_types/{i}"),
                message: format!(
                    "{ct:?} is not a media-type pattern (`type/subtype`, `type/*` or `type/*+suffix`)"
                ),
            })?);
        }

        let mut detectors: Vec<Detector> = Vec::new();
        let mut builtin_index: Vec<(Builtin, usize)> = Vec::new();
        let mut rules = Vec::with_capacity(bundle.rules.len());
        let mut seen_ids = std::collections::HashSet::new();

        for (i, rule) in bundle.rules.iter().enumerate() {
            let rule_err = |field: &str, message: String| PolicyError::Rule {
                rule_id: rule.id.clone(),
                pointer: format!("/rules/{i}{field}"),
                message,
            };
            if rule.id.is_empty() || rule.id.len() > 128 {
                return Err(rule_err(
                    "/id",
                    "a rule id must be 1 to 128 characters".into(),
                ));
            }
            if !seen_ids.insert(rule.id.as_str()) {
                return Err(rule_err("/id", format!("duplicate rule id {:?}", rule.id)));
            }
            if rule.category.is_empty() || rule.category.len() > 128 {
                return Err(rule_err(
                    "/category",
                    "a category must be 1 to 128 characters".into(),
                ));
            }
            let detector = match compile_detector(&rule.detector, |f, m| rule_err(f, m))? {
                Detector::Builtin(b) => match builtin_index.iter().find(|(x, _)| *x == b) {
                    Some((_, idx)) => *idx,
                    None => {
                        detectors.push(Detector::Builtin(b));
                        builtin_index.push((b, detectors.len() - 1));
                        detectors.len() - 1
                    }
                },
                other => {
                    detectors.push(other);
                    detectors.len() - 1
                }
            };
            let scope = rule.scope.clone().unwrap_or_else(Scope::default_for_rule);
            let lower = |l: &Option<Locations>| -> Vec<String> {
                l.as_ref()
                    .map(|l| l.headers.iter().map(|h| h.to_ascii_lowercase()).collect())
                    .unwrap_or_default()
            };
            for (dir, loc) in [("request", &scope.request), ("response", &scope.response)] {
                if let Some(loc) = loc {
                    for (h, name) in loc.headers.iter().enumerate() {
                        if name.is_empty() || !name.bytes().all(is_header_name_byte) {
                            return Err(rule_err(
                                &format!("/scope/{dir}/headers/{h}"),
                                format!("{name:?} is not a valid header name"),
                            ));
                        }
                    }
                }
            }
            let (include, exclude) = compile_fields(rule, |f, m| rule_err(f, m))?;
            let monitor = rule.mode.unwrap_or(bundle.mode) == Mode::Monitor;
            let confidence = match &detectors[detector] {
                Detector::Builtin(b) => b.info().confidence,
                Detector::Regex {
                    validator: Some(_), ..
                } => Confidence::High,
                Detector::Regex { .. } => Confidence::Medium,
                // The field's name says it is sensitive, not its content.
                Detector::Key { .. } => Confidence::Medium,
            };
            rules.push((
                CompiledRule {
                    id: FindingText::new(&rule.id),
                    category: FindingText::new(&rule.category),
                    detector,
                    actions: [rule.action.request, rule.action.response],
                    mask: rule.mask,
                    severity: rule.severity,
                    confidence,
                    monitor,
                    headers: [lower(&scope.request), lower(&scope.response)],
                    include,
                    exclude,
                },
                scope,
            ));
        }

        // Literal anchors and context keywords of all detectors in one
        // automaton; a literal shared by several detectors is one pattern.
        let mut anchors: Vec<(String, bool)> = Vec::new();
        let mut anchor_index: std::collections::HashMap<String, usize> =
            std::collections::HashMap::new();
        // Pattern id of `literals` -> detector indices (one literal can
        // anchor several detectors); each program keeps its enabled ones.
        let mut literal_owner: Vec<Vec<usize>> = Vec::new();
        let mut at_sign_detectors = Vec::new();
        let mut digit_detectors = Vec::new();
        let mut colon_detectors = Vec::new();
        let mut field_detectors = Vec::new();
        let mut yielding = Vec::with_capacity(detectors.len());
        let mut regex_detectors = Vec::new();
        let mut regex_sources = Vec::new();
        let mut add_anchor = |lit: String, idx: usize, keyword: bool| {
            let id = *anchor_index.entry(lit.clone()).or_insert_with(|| {
                anchors.push((lit, false));
                literal_owner.push(Vec::new());
                literal_owner.len() - 1
            });
            anchors[id].1 |= keyword;
            if !literal_owner[id].contains(&idx) {
                literal_owner[id].push(idx);
            }
        };
        for (idx, det) in detectors.iter().enumerate() {
            match det {
                Detector::Builtin(b) => {
                    yielding.push(b.yields_to_specific());
                    match b.trigger() {
                        Trigger::Literals(lits) => {
                            for lit in lits {
                                add_anchor(lit.to_string(), idx, false);
                            }
                        }
                        Trigger::Keywords(kws) => {
                            for kw in kws {
                                for v in crate::detectors::keyword_variants(kw) {
                                    add_anchor(v, idx, true);
                                }
                            }
                            field_detectors.push((
                                idx,
                                kws.iter()
                                    .map(|k| k.to_ascii_lowercase().replace(['-', ' '], "_"))
                                    .collect(),
                            ));
                        }
                        Trigger::AtSign => at_sign_detectors.push(idx),
                        Trigger::DigitRun => digit_detectors.push(idx),
                        Trigger::Colon => colon_detectors.push(idx),
                    }
                    for lit in b.extra_anchors() {
                        add_anchor(lit.to_string(), idx, false);
                    }
                }
                Detector::Regex { regex, .. } => {
                    yielding.push(false);
                    regex_detectors.push(idx);
                    regex_sources.push(regex.as_str().to_string());
                }
                Detector::Key { .. } => yielding.push(false),
            }
        }
        let literals = if anchors.is_empty() {
            None
        } else {
            let specs: Vec<crate::detectors::anchors::AnchorSpec> = anchors
                .iter()
                .map(|(a, keyword)| crate::detectors::anchors::AnchorSpec {
                    bytes: a.as_bytes(),
                    fold_case: *keyword,
                })
                .collect();
            Some(crate::detectors::anchors::AnchorSet::new(&specs))
        };
        let regex_set = if regex_sources.is_empty() {
            None
        } else {
            Some(
                regex::bytes::RegexSetBuilder::new(&regex_sources)
                    .unicode(false)
                    .size_limit(
                        MAX_REGEX_PROGRAM
                            .saturating_mul(regex_sources.len().max(1))
                            .min(64 << 20),
                    )
                    .build()
                    .map_err(|e| PolicyError::Invalid {
                        pointer: "/rules".into(),
                        message: format!("user regexes together are too large: {e}"),
                    })?,
            )
        };

        // Each pattern's owners with their confirmation, resolved once;
        // every program keeps the enabled ones.
        let confirmers: Vec<Vec<(usize, crate::detectors::LiteralConfirmer)>> = anchors
            .iter()
            .zip(&literal_owner)
            .map(|((pattern, _), owners)| {
                owners
                    .iter()
                    .filter_map(|&det| match &detectors[det] {
                        Detector::Builtin(b) => {
                            Some((det, b.literal_confirmer(pattern.as_bytes())))
                        }
                        _ => None,
                    })
                    .collect()
            })
            .collect();
        let mut programs: [[Program; LOCATION_KINDS]; 2] = Default::default();
        let mut header_names: [Vec<String>; 2] = Default::default();
        for (d, direction) in [Direction::Request, Direction::Response]
            .into_iter()
            .enumerate()
        {
            for kind in [
                LocationKind::Body,
                LocationKind::Query,
                LocationKind::Header,
                LocationKind::Path,
            ] {
                let mut p = Program {
                    detector_enabled: vec![false; detectors.len()],
                    ..Program::default()
                };
                for (r, (rule, scope)) in rules.iter().enumerate() {
                    let loc = match direction {
                        Direction::Request => &scope.request,
                        Direction::Response => &scope.response,
                    };
                    let Some(loc) = loc else { continue };
                    let applies = match kind {
                        LocationKind::Body => loc.body,
                        LocationKind::Query => loc.query,
                        LocationKind::Header => !loc.headers.is_empty(),
                        LocationKind::Path => loc.path,
                    };
                    if !applies {
                        continue;
                    }
                    p.rules.push(r);
                    p.detector_enabled[rule.detector] = true;
                    let action = rule.actions[d];
                    if !rule.monitor {
                        p.may_rewrite |= action == Action::Redact;
                        p.may_block |= action == Action::Block;
                    }
                    match &detectors[rule.detector] {
                        Detector::Builtin(b) => match b.trigger() {
                            Trigger::Literals(_) | Trigger::Keywords(_) => p.literals = true,
                            Trigger::AtSign => p.at_sign = true,
                            Trigger::DigitRun => p.digits = true,
                            Trigger::Colon => p.colon = true,
                        },
                        Detector::Regex { .. } => p.regex = true,
                        Detector::Key { .. } => p.key_rules.push(r),
                    }
                    p.fields |= !rule.include.is_empty() || !rule.exclude.is_empty();
                    if kind == LocationKind::Header {
                        for h in &rule.headers[d] {
                            if !header_names[d].contains(h) {
                                header_names[d].push(h.clone());
                            }
                        }
                    }
                }
                let mut by_detector: Vec<(usize, usize)> =
                    p.rules.iter().map(|&r| (rules[r].0.detector, r)).collect();
                by_detector.sort_unstable();
                p.rules_by_detector = by_detector.iter().map(|&(_, r)| r).collect();
                p.rules_from = (0..=detectors.len())
                    .map(|d| by_detector.partition_point(|&(x, _)| x < d) as u32)
                    .collect();
                if p.digits {
                    p.digit_owners = digit_detectors
                        .iter()
                        .filter(|&&det| p.detector_enabled[det])
                        .filter_map(|&det| match &detectors[det] {
                            Detector::Builtin(b) => Some((det, *b, b.digit_kind())),
                            _ => None,
                        })
                        .collect();
                    // Group `b`: kind `1 << b`; group 16: several bits.
                    let group = |kind: u16| match kind.count_ones() {
                        1 => kind.trailing_zeros() as usize,
                        _ => 16,
                    };
                    p.digit_owners
                        .sort_by_key(|&(det, _, kind)| (group(kind), det));
                    for (b, from) in p.digit_from.iter_mut().enumerate() {
                        let before = p.digit_owners.partition_point(|o| group(o.2) < b);
                        *from = u16::try_from(before).unwrap_or(u16::MAX);
                    }
                }
                if p.literals {
                    p.literal_from.push(0);
                    for owners in &confirmers {
                        let enabled = owners.iter().filter(|(det, _)| p.detector_enabled[*det]);
                        p.literal_owners.extend(enabled);
                        p.literal_from.push(p.literal_owners.len() as u32);
                    }
                }
                programs[d][kind as usize] = p;
            }
        }

        // The filter does not apply the kernel section, but a bundle whose
        // exporter half is broken is rejected here too, with its pointer.
        if let Some(kernel) = &bundle.kernel {
            crate::kernel_policy::KernelRules::compile(kernel)?;
        }

        Ok(CompiledPolicy {
            name: Arc::from(bundle.metadata.name.as_str()),
            revision: Arc::from(bundle.metadata.revision.as_str()),
            mode: bundle.mode,
            rules: rules.into_iter().map(|(r, _)| r).collect(),
            detectors,
            literals,
            at_sign_detectors,
            colon_detectors,
            field_detectors,
            yielding,
            regex_detectors,
            regex_set,
            programs,
            header_names,
            content_types,
            scan_missing_content_type: bundle.body.scan_missing_content_type,
            body: crate::body::BodyPolicy::compile(
                &bundle.body.modes,
                &bundle.body.encodings,
                &bundle.body.sse,
            )?,
        })
    }
}

/// regex errors span several lines (pattern, caret, message); a proxy log
/// line must stay one line, so keep the message and the column.
fn one_line_regex_error(e: &regex::Error) -> String {
    let text = e.to_string();
    let message = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("error:"))
        .map(str::trim)
        .unwrap_or_else(|| text.lines().last().unwrap_or("").trim());
    let column = text
        .lines()
        .find(|l| l.trim_start().starts_with('^'))
        .and_then(|l| l.find('^'));
    match column {
        Some(c) => format!("{message} (at column {})", c.saturating_sub(4) + 1),
        None => message.to_string(),
    }
}

fn is_header_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A user regex over bytes with ASCII classes, size-limited; the error is
/// one line.
fn build_regex(source: &str, case_insensitive: bool) -> Result<regex::bytes::Regex, String> {
    regex::bytes::RegexBuilder::new(source)
        .case_insensitive(case_insensitive)
        .unicode(false)
        .size_limit(MAX_REGEX_PROGRAM)
        .build()
        .map_err(|e| one_line_regex_error(&e))
}

/// Refuses the `regex`-only detector fields on other detector kinds.
fn regex_only_fields(
    spec: &DetectorSpec,
    err: &impl Fn(&str, String) -> PolicyError,
    why: &str,
) -> Result<(), PolicyError> {
    for (field, set) in [
        ("validator", spec.validator.is_some()),
        ("keywords", !spec.keywords.is_empty()),
        ("keyword_window", spec.keyword_window.is_some()),
        ("group", spec.group.is_some()),
    ] {
        if set {
            return Err(err(
                &format!("/detector/{field}"),
                format!("`{field}` applies to `regex` detectors only; {why}"),
            ));
        }
    }
    Ok(())
}

fn compile_fields(
    rule: &crate::bundle::Rule,
    err: impl Fn(&str, String) -> PolicyError,
) -> Result<(Vec<Selector>, Vec<Selector>), PolicyError> {
    let Some(fields) = &rule.fields else {
        return Ok((Vec::new(), Vec::new()));
    };
    if fields.include.len() + fields.exclude.len() > MAX_SELECTORS {
        return Err(err(
            "/fields",
            format!("at most {MAX_SELECTORS} selectors per rule"),
        ));
    }
    let compile = |list: &[String], name: &str| -> Result<Vec<Selector>, PolicyError> {
        list.iter()
            .enumerate()
            .map(|(j, src)| {
                Selector::parse(src).map_err(|m| {
                    err(
                        &format!("/fields/{name}/{j}"),
                        format!("invalid field selector {src:?}: {m}"),
                    )
                })
            })
            .collect()
    };
    Ok((
        compile(&fields.include, "include")?,
        compile(&fields.exclude, "exclude")?,
    ))
}

fn compile_detector(
    spec: &DetectorSpec,
    err: impl Fn(&str, String) -> PolicyError,
) -> Result<Detector, PolicyError> {
    if let Some(key) = &spec.key {
        if spec.builtin.is_some() || spec.regex.is_some() {
            return Err(err(
                "/detector",
                "set exactly one of `builtin`, `regex` or `key`".into(),
            ));
        }
        regex_only_fields(spec, &err, "a `key` rule masks the whole value")?;
        if key.is_empty() || key.len() > MAX_REGEX_LEN {
            return Err(err(
                "/detector/key",
                format!("a key pattern must be 1 to {MAX_REGEX_LEN} characters"),
            ));
        }
        let regex = build_regex(&format!("^(?:{key})$"), true)
            .map_err(|m| err("/detector/key", format!("invalid key pattern: {m}")))?;
        if regex.is_match(b"") {
            return Err(err(
                "/detector/key",
                "the key pattern matches the empty name".into(),
            ));
        }
        return Ok(Detector::Key { regex });
    }
    match (&spec.builtin, &spec.regex) {
        (Some(_), Some(_)) => Err(err(
            "/detector",
            "set exactly one of `builtin`, `regex` or `key`".into(),
        )),
        (None, None) => Err(err(
            "/detector",
            "a detector needs `builtin` (a catalogue id), `regex` or `key`".into(),
        )),
        (Some(id), None) => {
            regex_only_fields(spec, &err, "built-in detectors carry their own")?;
            let b = Builtin::from_id(id).ok_or_else(|| {
                let known = crate::detectors::ALL_BUILTINS.iter().map(|b| b.info().id);
                let hint = match closest(id, known) {
                    Some(near) => format!("did you mean {near:?}? "),
                    None => String::new(),
                };
                err(
                    "/detector/builtin",
                    format!(
                        "unknown built-in detector {id:?}; {hint}`veil catalogue` lists all {}",
                        crate::detectors::ALL_BUILTINS.len()
                    ),
                )
            })?;
            Ok(Detector::Builtin(b))
        }
        (None, Some(source)) => {
            if source.is_empty() || source.len() > MAX_REGEX_LEN {
                return Err(err(
                    "/detector/regex",
                    format!("a regex must be 1 to {MAX_REGEX_LEN} characters"),
                ));
            }
            let regex = build_regex(source, false)
                .map_err(|m| err("/detector/regex", format!("invalid regex: {m}")))?;
            if regex.is_match(b"") {
                return Err(err(
                    "/detector/regex",
                    "the regex matches the empty string, so it would match everywhere".into(),
                ));
            }
            let group = spec.group.unwrap_or(0);
            if group >= regex.captures_len() {
                return Err(err(
                    "/detector/group",
                    format!(
                        "group {group} does not exist; the regex has {} capture groups",
                        regex.captures_len() - 1
                    ),
                ));
            }
            let validator = match spec.validator.as_deref() {
                None => None,
                Some("luhn") => Some(Validator::Luhn),
                Some("ssn") => Some(Validator::Ssn),
                Some(other) => {
                    return Err(err(
                        "/detector/validator",
                        format!("unknown validator {other:?}; known: luhn, ssn"),
                    ))
                }
            };
            let keyword_window = spec.keyword_window.unwrap_or(DEFAULT_KEYWORD_WINDOW);
            if keyword_window == 0 || keyword_window > MAX_KEYWORD_WINDOW {
                return Err(err(
                    "/detector/keyword_window",
                    format!("must be 1 to {MAX_KEYWORD_WINDOW} bytes"),
                ));
            }
            for (k, kw) in spec.keywords.iter().enumerate() {
                if kw.is_empty() || kw.len() > 64 {
                    return Err(err(
                        &format!("/detector/keywords/{k}"),
                        "a keyword must be 1 to 64 characters".into(),
                    ));
                }
            }
            Ok(Detector::Regex {
                regex,
                group,
                validator,
                keywords: spec
                    .keywords
                    .iter()
                    .map(|k| k.as_bytes().to_vec())
                    .collect(),
                keyword_window,
            })
        }
    }
}

/// The known name nearest to a misspelt one (at most a third of its
/// letters, or two, off), for "did you mean" hints.
fn closest<'a>(wrong: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (wrong.len() / 3).max(2);
    known
        .map(|k| (edit_distance(wrong.as_bytes(), k.as_bytes()), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over bytes (names here are short ASCII ids).
fn edit_distance(a: &[u8], b: &[u8]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1)
                .min(row[j] + 1)
                .min(diag + usize::from(ca != cb));
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_catalogue() -> CompiledPolicy {
        CompiledPolicy::from_json(crate::detectors::full_catalogue_bundle().as_bytes())
            .expect("compiles")
    }

    /// A digit run is offered to each detector whose kind it wants, and
    /// only through its kind's group: every digit detector of the full
    /// catalogue sits in the group of its one kind bit, and a detector
    /// with several bits (none today) in the last group.
    #[test]
    fn digit_owners_sit_in_their_kind_groups() {
        let policy = full_catalogue();
        let p = policy.program(Direction::Request, LocationKind::Body);
        assert!(p.digit_owners.len() >= 8, "{:?}", p.digit_owners);
        let from = |g: usize| usize::from(p.digit_from[g]);
        for g in 0..16 {
            for &(_, b, kind) in &p.digit_owners[from(g)..from(g + 1)] {
                assert_eq!(kind, 1 << g, "{b:?} in group {g}");
            }
        }
        for &(_, b, kind) in &p.digit_owners[from(16)..] {
            assert!(
                kind.count_ones() > 1,
                "{b:?} with kind {kind:#x} in the last group"
            );
        }
        assert!(from(0) == 0 && (0..16).all(|g| from(g) <= from(g + 1)));
    }

    /// The catalogue's anchor set finds exactly what a naive search for
    /// every anchor finds, in text made of the anchors themselves in other
    /// cases, cut and glued to JSON syntax and words.
    #[test]
    fn catalogue_anchors_match_a_naive_search() {
        let p = full_catalogue();
        let set = p.literals.as_ref().expect("anchors");
        let patterns = set.patterns();
        let mut pieces: Vec<Vec<u8>> = Vec::new();
        for pat in patterns {
            pieces.push(pat.to_vec());
            pieces.push(pat.to_ascii_uppercase());
            pieces.push(pat.to_ascii_lowercase());
            pieces.push(pat[..pat.len() / 2].to_vec());
            pieces.push(pat[pat.len() / 3..].to_vec());
        }
        for w in [
            "\"", "\":\"", ",", " ", "_", "-", "the ", "created", "customer", "é", "\n",
        ] {
            pieces.push(w.as_bytes().to_vec());
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || crate::test_rng::xorshift(&mut state);
        for round in 0..20 {
            let mut hay = Vec::new();
            while hay.len() < 3000 + round * 500 {
                let piece = &pieces[next() as usize % pieces.len()];
                hay.extend_from_slice(piece);
            }
            let mut found = Vec::new();
            set.for_each_match(&hay, |id, s, e| found.push((id, s, e)));
            found.sort_unstable();
            let mut naive = Vec::new();
            for (id, pat) in patterns.iter().enumerate() {
                for s in memchr::memmem::find_iter(&hay, &pat[..]) {
                    naive.push((id, s, s + pat.len()));
                }
            }
            naive.sort_unstable();
            assert_eq!(found, naive, "round {round}");
            assert!(!naive.is_empty());
        }
    }

    /// Tuning aid, run by hand: prints for the full catalogue how many
    /// positions pass each stage of the anchor prefilter, per bucket, and
    /// the commonest windows and matches, over the files named in
    /// `VEIL_ANCHOR_STATS` (colon-separated, e.g. the eval corpora written
    /// out with `veil_eval::mixed::{clean_json, mixed_json}`):
    /// `VEIL_ANCHOR_STATS=clean.json:mixed.json cargo test --release -p
    /// veil-engine anchor_stats -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn anchor_stats() {
        let p = full_catalogue();
        let set = p.literals.as_ref().expect("anchors");
        let files = std::env::var("VEIL_ANCHOR_STATS").unwrap_or_default();
        for name in files.split(':').filter(|n| !n.is_empty()) {
            let hay = std::fs::read(name).expect("corpus");
            println!("{name}: {}", set.stats(&hay));
        }
    }

    fn bundle_with(rule: &str) -> String {
        format!(r#"{{"version":1,"metadata":{{"name":"t","revision":"7"}},"rules":[{rule}]}}"#)
    }

    #[test]
    fn default_bundle_compiles() {
        let p = CompiledPolicy::embedded_default().expect("embedded default bundle must compile");
        assert_eq!(p.name(), "veil-default");
        assert!(p.scans_query(Direction::Request));
        assert!(!p.scans_query(Direction::Response));
        assert!(p.header_names(Direction::Request).is_empty());
    }

    #[test]
    fn bad_regex_names_rule_and_field() {
        let err = CompiledPolicy::from_json(
            bundle_with(
                r#"{"id":"r1","category":"c","detector":{"regex":"(ab"},"action":"alert"}"#,
            )
            .as_bytes(),
        )
        .unwrap_err();
        assert_eq!(err.pointer(), "/rules/0/detector/regex");
        let msg = err.to_string();
        assert!(
            msg.contains("rule \"r1\"") && msg.contains("invalid regex"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_builtin_suggests_the_nearest_id() {
        let refuse = |id: &str| {
            CompiledPolicy::from_json(
                bundle_with(&format!(
                    r#"{{"id":"r1","category":"c","detector":{{"builtin":"{id}"}},"action":"alert"}}"#
                ))
                .as_bytes(),
            )
            .unwrap_err()
        };
        let err = refuse("emial");
        assert_eq!(err.pointer(), "/rules/0/detector/builtin");
        assert!(
            err.to_string().contains(r#"did you mean "email"?"#),
            "{err}"
        );
        let err = refuse("github-token").to_string();
        assert!(err.contains(r#"did you mean "github_token"?"#), "{err}");
        let err = refuse("nothing_like_it").to_string();
        assert!(!err.contains("did you mean"), "{err}");
        assert!(err.contains("`veil catalogue` lists all"), "{err}");
    }

    #[test]
    fn hostile_bundles_are_refused() {
        let empty =
            bundle_with(r#"{"id":"r","category":"c","detector":{"regex":"a*"},"action":"alert"}"#);
        assert!(CompiledPolicy::from_json(empty.as_bytes()).is_err());
        let huge = bundle_with(
            r#"{"id":"r","category":"c","detector":{"regex":"(\\w{50}){1000}"},"action":"alert"}"#,
        );
        let err = CompiledPolicy::from_json(huge.as_bytes()).unwrap_err();
        assert_eq!(err.pointer(), "/rules/0/detector/regex");
        let dup = format!(
            r#"{{"version":1,"metadata":{{"name":"t","revision":"1"}},"rules":[{r},{r}]}}"#,
            r = r#"{"id":"x","category":"c","detector":{"builtin":"email"},"action":"alert"}"#
        );
        let err = CompiledPolicy::from_json(dup.as_bytes()).unwrap_err();
        assert_eq!(err.pointer(), "/rules/1/id");
        let bad_header = bundle_with(
            r#"{"id":"r","category":"c","detector":{"builtin":"email"},"action":"alert","scope":{"request":{"headers":["bad header"]}}}"#,
        );
        let err = CompiledPolicy::from_json(bad_header.as_bytes()).unwrap_err();
        assert_eq!(err.pointer(), "/rules/0/scope/request/headers/0");
    }
}
