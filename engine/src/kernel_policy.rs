//! The `kernel` section of a policy bundle: what veil-ebpf-exporter
//! reports about the workloads' processes (sensitive file opens,
//! executables a workload may run, destinations it may connect to). The
//! proxy filter ignores the section; it lives in the engine so that one
//! bundle carries both halves of a policy, `veil check` validates both
//! with the same precise errors (JSON pointers), and the exporter applies
//! exactly the matching defined here. Actions are report-only: the
//! exporter observes, it never blocks or kills.

use crate::bundle::{BundleError, Severity};
use crate::compile::PolicyError;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::net::IpAddr;

pub mod glob;

/// Sensitive files reported when a kernel section names no
/// `sensitive_paths`: credentials a compromised workload goes for first.
pub const DEFAULT_SENSITIVE_PATHS: &[&str] = &[
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers*",
    "/etc/sudoers.d/*",
    "/root/.ssh/*",
    "/home/*/.ssh/id_*",
    "/var/run/secrets/kubernetes.io/serviceaccount/token",
    "/run/secrets/kubernetes.io/serviceaccount/token",
    "/root/.aws/credentials",
    "/home/*/.aws/credentials",
    "/root/.config/gcloud/**",
    "/home/*/.config/gcloud/**",
    "/root/.azure/**",
    "/home/*/.azure/**",
];

/// Rule ids of records whose entry names none.
pub const SENSITIVE_FILE_RULE: &str = "kernel-sensitive-file";
pub const UNEXPECTED_EXEC_RULE: &str = "kernel-unexpected-exec";
pub const UNEXPECTED_EGRESS_RULE: &str = "kernel-unexpected-egress";

/// Bounds on a hostile or mistaken section: every list is walked per event.
pub const MAX_ENTRIES: usize = 1024;
const MAX_PATTERN_LEN: usize = 4096;
/// The kernel's TASK_COMM_LEN minus the NUL: longer names never match.
pub const MAX_COMM_LEN: usize = 15;

/// The section as written in the bundle.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelPolicy {
    #[serde(default)]
    pub watch: Watch,
    #[serde(default)]
    pub report: Report,
    /// Absent: [`DEFAULT_SENSITIVE_PATHS`]; `[]`: no file is sensitive.
    #[serde(default)]
    pub sensitive_paths: Option<Vec<SensitivePathSpec>>,
    #[serde(default)]
    pub allowed_executables: Vec<ExecAllowSpec>,
    #[serde(default)]
    pub allowed_egress: Vec<EgressAllowSpec>,
}

/// Tasks the exporter reports at all (each with the processes it forks,
/// and a cgroup with its descendant cgroups). Empty: every task on the
/// node except the exporter itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watch {
    #[serde(default)]
    pub comms: Vec<String>,
    /// cgroup v2 paths relative to the cgroup2 mount (`/kubepods.slice`).
    #[serde(default)]
    pub cgroups: Vec<String>,
    #[serde(default)]
    pub pids: Vec<u32>,
}

impl Watch {
    pub fn is_empty(&self) -> bool {
        self.comms.is_empty() && self.cgroups.is_empty() && self.pids.is_empty()
    }
}

/// Which records are written: rule matches only; matches plus every
/// connect/accept of watched tasks (for the 5-tuple join with the filter's
/// events; the default); or every event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Report {
    Matches,
    #[default]
    Connections,
    All,
}

impl Report {
    pub fn parse(s: &str) -> Option<Report> {
        match s {
            "matches" => Some(Report::Matches),
            "connections" => Some(Report::Connections),
            "all" => Some(Report::All),
            _ => None,
        }
    }
}

/// A sensitive path: a glob (`"/etc/shadow"`) or an object with the glob
/// and the rule id and severity its records carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SensitivePathSpec {
    pub pattern: String,
    pub id: Option<String>,
    pub severity: Option<Severity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SensitivePathObject {
    pattern: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    severity: Option<Severity>,
}

impl<'de> Deserialize<'de> for SensitivePathSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PathVisitor;
        impl<'de> Visitor<'de> for PathVisitor {
            type Value = SensitivePathSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a path glob or an object {\"pattern\": glob, \"id\": rule id, \"severity\": severity}",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SensitivePathSpec, E> {
                Ok(SensitivePathSpec {
                    pattern: v.to_string(),
                    id: None,
                    severity: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SensitivePathSpec, A::Error> {
                let o =
                    SensitivePathObject::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(SensitivePathSpec {
                    pattern: o.pattern,
                    id: o.id,
                    severity: o.severity,
                })
            }
        }
        deserializer.deserialize_any(PathVisitor)
    }
}

/// A workload: every given field must match; `{}` matches every watched
/// task.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSelector {
    /// A cgroup path prefix (`/kubepods.slice/kubepods-burstable.slice`).
    #[serde(default)]
    pub cgroup_prefix: Option<String>,
    #[serde(default)]
    pub container_id: Option<String>,
    #[serde(default)]
    pub pod_uid: Option<String>,
    #[serde(default)]
    pub comm: Option<String>,
}

/// The executables a workload may run; any other exec in it is reported.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecAllowSpec {
    #[serde(default)]
    pub workload: WorkloadSelector,
    pub executables: Vec<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub severity: Option<Severity>,
}

/// The destinations a workload may connect to; other connects are reported.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressAllowSpec {
    #[serde(default)]
    pub workload: WorkloadSelector,
    pub destinations: Vec<DestinationSpec>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub severity: Option<Severity>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationSpec {
    /// `10.0.0.0/8`, `::1/128`, or a bare address; absent: any address.
    #[serde(default)]
    pub cidr: Option<String>,
    /// Allowed ports; empty: any port.
    #[serde(default)]
    pub ports: Vec<u16>,
}

/// The exporter's standalone rules file: `{"kernel": {...}}`, the section
/// without the rest of a bundle.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelRulesFile {
    #[serde(default)]
    pub kernel: KernelPolicy,
}

/// Parses a standalone rules file; errors carry the JSON pointer of the
/// field (`/kernel/allowed_egress/0/destinations`).
pub fn parse_rules_file(bytes: &[u8]) -> Result<KernelPolicy, BundleError> {
    if bytes.len() > crate::bundle::MAX_BUNDLE_BYTES {
        return Err(BundleError {
            pointer: String::new(),
            message: format!(
                "rules file is {} bytes, more than the {} byte limit",
                bytes.len(),
                crate::bundle::MAX_BUNDLE_BYTES
            ),
        });
    }
    crate::bundle::from_json_with_pointer::<KernelRulesFile>(bytes).map(|f| f.kernel)
}

/// An address block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    bits: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("{a:?} in CIDR {s:?} is not an IPv4 or IPv6 address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            Some(b) => b
                .parse::<u8>()
                .ok()
                .filter(|&b| b <= max)
                .ok_or_else(|| format!("bad prefix length in CIDR {s:?} (0 to {max})"))?,
            None => max,
        };
        Ok(Cidr { addr, bits })
    }

    /// IPv4-mapped IPv6 addresses count as their IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// What is known about the task behind a kernel event.
#[derive(Debug, Clone, Default)]
pub struct Subject<'a> {
    pub cgroup_path: Option<&'a str>,
    pub container_id: Option<&'a str>,
    pub pod_uid: Option<&'a str>,
    pub comm: &'a str,
}

impl WorkloadSelector {
    pub fn matches(&self, s: &Subject<'_>) -> bool {
        let opt = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        self.cgroup_prefix
            .as_deref()
            .is_none_or(|p| s.cgroup_path.is_some_and(|c| cgroup_within(c, p)))
            && opt(&self.container_id, s.container_id)
            && opt(&self.pod_uid, s.pod_uid)
            && self.comm.as_deref().is_none_or(|c| c == s.comm)
    }
}

/// `path` is `prefix` or below it; a prefix ending without `/` still
/// matches by string (`/kubepods` covers `/kubepods.slice`), as users of
/// systemd slice names expect.
fn cgroup_within(path: &str, prefix: &str) -> bool {
    path.starts_with(prefix)
}

#[derive(Debug, Clone)]
pub struct SensitivePath {
    pub pattern: String,
    pub id: String,
    pub severity: Severity,
}

/// Per workload, what it may do (executables, destinations); the id and
/// severity name the records of what it may not.
#[derive(Debug, Clone)]
struct AllowList<T> {
    workload: WorkloadSelector,
    allowed: Vec<T>,
    id: String,
    severity: Severity,
}

/// Of the lists selecting the subject, the first (its id and severity
/// name the match) when none allows the event; `None` when some list
/// allows it or no list selects the subject (unchecked workload).
fn disallowed<'r, T>(
    lists: &'r [AllowList<T>],
    s: &Subject<'_>,
    allows: impl Fn(&T) -> bool,
) -> Option<&'r AllowList<T>> {
    let mut applicable = lists.iter().filter(|l| l.workload.matches(s)).peekable();
    let first = *applicable.peek()?;
    (!applicable.any(|l| l.allowed.iter().any(&allows))).then_some(first)
}

/// A rule that matched an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelMatch {
    pub id: String,
    pub severity: Severity,
    pub reason: String,
}

/// A validated kernel section, ready to match events.
#[derive(Debug, Clone)]
pub struct KernelRules {
    pub watch: Watch,
    pub report: Report,
    pub sensitive_paths: Vec<SensitivePath>,
    exec: Vec<AllowList<String>>,
    egress: Vec<AllowList<(Option<Cidr>, Vec<u16>)>>,
}

fn invalid(pointer: String, message: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        pointer,
        message: message.into(),
    }
}

fn check_len<T>(list: &[T], pointer: &str) -> Result<(), PolicyError> {
    if list.len() > MAX_ENTRIES {
        return Err(invalid(
            pointer.to_string(),
            format!(
                "{} entries, more than the limit of {MAX_ENTRIES}",
                list.len()
            ),
        ));
    }
    Ok(())
}

fn check_id(id: &Option<String>, pointer: String) -> Result<(), PolicyError> {
    match id {
        Some(id) if id.is_empty() || id.len() > 128 => {
            Err(invalid(pointer, "a rule id must be 1 to 128 characters"))
        }
        _ => Ok(()),
    }
}

/// A path glob must be absolute (or start with a wildcard) and bounded.
fn check_glob(pattern: &str, pointer: String, what: &str) -> Result<(), PolicyError> {
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(invalid(
            pointer,
            format!("{what} is longer than {MAX_PATTERN_LEN} bytes"),
        ));
    }
    if !pattern.starts_with('/') && !pattern.starts_with('*') {
        return Err(invalid(
            pointer,
            format!("{what} {pattern:?} must be absolute (start with / or a wildcard)"),
        ));
    }
    Ok(())
}

fn check_comm(c: &str, pointer: String) -> Result<(), PolicyError> {
    if c.is_empty() || c.len() > MAX_COMM_LEN {
        return Err(invalid(
            pointer,
            format!(
                "comm {c:?} must be 1 to {MAX_COMM_LEN} bytes (the kernel truncates task names)"
            ),
        ));
    }
    Ok(())
}

fn check_workload(w: &WorkloadSelector, pointer: &str) -> Result<(), PolicyError> {
    if let Some(c) = &w.comm {
        check_comm(c, format!("{pointer}/workload/comm"))?;
    }
    if let Some(p) = &w.cgroup_prefix {
        if !p.starts_with('/') {
            return Err(invalid(
                format!("{pointer}/workload/cgroup_prefix"),
                format!("cgroup prefix {p:?} must start with / (relative to the cgroup2 mount)"),
            ));
        }
    }
    Ok(())
}

fn default_sensitive_paths() -> Vec<SensitivePath> {
    DEFAULT_SENSITIVE_PATHS
        .iter()
        .map(|p| SensitivePath {
            pattern: p.to_string(),
            id: SENSITIVE_FILE_RULE.into(),
            severity: Severity::High,
        })
        .collect()
}

impl KernelRules {
    /// Validates a section; every error names the field by JSON pointer
    /// from the bundle root (`/kernel/...`).
    pub fn compile(k: &KernelPolicy) -> Result<KernelRules, PolicyError> {
        for (i, c) in k.watch.comms.iter().enumerate() {
            check_comm(c, format!("/kernel/watch/comms/{i}"))?;
        }
        for (i, c) in k.watch.cgroups.iter().enumerate() {
            if !c.starts_with('/') {
                return Err(invalid(
                    format!("/kernel/watch/cgroups/{i}"),
                    format!("cgroup {c:?} must start with / (relative to the cgroup2 mount)"),
                ));
            }
        }
        check_len(&k.watch.comms, "/kernel/watch/comms")?;
        check_len(&k.watch.cgroups, "/kernel/watch/cgroups")?;
        check_len(&k.watch.pids, "/kernel/watch/pids")?;

        let sensitive_paths = match &k.sensitive_paths {
            None => default_sensitive_paths(),
            Some(list) => {
                check_len(list, "/kernel/sensitive_paths")?;
                let mut out = Vec::with_capacity(list.len());
                for (i, p) in list.iter().enumerate() {
                    let at = format!("/kernel/sensitive_paths/{i}");
                    check_glob(&p.pattern, at.clone(), "sensitive path pattern")?;
                    check_id(&p.id, format!("{at}/id"))?;
                    out.push(SensitivePath {
                        pattern: p.pattern.clone(),
                        id: p.id.clone().unwrap_or_else(|| SENSITIVE_FILE_RULE.into()),
                        severity: p.severity.unwrap_or(Severity::High),
                    });
                }
                out
            }
        };

        check_len(&k.allowed_executables, "/kernel/allowed_executables")?;
        let mut exec = Vec::with_capacity(k.allowed_executables.len());
        for (i, e) in k.allowed_executables.iter().enumerate() {
            let at = format!("/kernel/allowed_executables/{i}");
            check_workload(&e.workload, &at)?;
            check_id(&e.id, format!("{at}/id"))?;
            check_len(&e.executables, &format!("{at}/executables"))?;
            for (j, x) in e.executables.iter().enumerate() {
                check_glob(x, format!("{at}/executables/{j}"), "executable pattern")?;
            }
            exec.push(AllowList {
                workload: e.workload.clone(),
                allowed: e.executables.clone(),
                id: e.id.clone().unwrap_or_else(|| UNEXPECTED_EXEC_RULE.into()),
                severity: e.severity.unwrap_or(Severity::High),
            });
        }

        check_len(&k.allowed_egress, "/kernel/allowed_egress")?;
        let mut egress = Vec::with_capacity(k.allowed_egress.len());
        for (i, e) in k.allowed_egress.iter().enumerate() {
            let at = format!("/kernel/allowed_egress/{i}");
            check_workload(&e.workload, &at)?;
            check_id(&e.id, format!("{at}/id"))?;
            check_len(&e.destinations, &format!("{at}/destinations"))?;
            let mut destinations = Vec::with_capacity(e.destinations.len());
            for (j, d) in e.destinations.iter().enumerate() {
                let cidr = d
                    .cidr
                    .as_deref()
                    .map(Cidr::parse)
                    .transpose()
                    .map_err(|m| invalid(format!("{at}/destinations/{j}/cidr"), m))?;
                if let Some(k) = d.ports.iter().position(|&p| p == 0) {
                    return Err(invalid(
                        format!("{at}/destinations/{j}/ports/{k}"),
                        "port 0 is never a connect destination",
                    ));
                }
                destinations.push((cidr, d.ports.clone()));
            }
            egress.push(AllowList {
                workload: e.workload.clone(),
                allowed: destinations,
                id: e
                    .id
                    .clone()
                    .unwrap_or_else(|| UNEXPECTED_EGRESS_RULE.into()),
                severity: e.severity.unwrap_or(Severity::Medium),
            });
        }
        Ok(KernelRules {
            watch: k.watch.clone(),
            report: k.report,
            sensitive_paths,
            exec,
            egress,
        })
    }

    /// The rules of an empty section: the default sensitive paths, no
    /// exec or egress allow-lists, report `connections`.
    pub fn defaults() -> KernelRules {
        KernelRules {
            watch: Watch::default(),
            report: Report::default(),
            sensitive_paths: default_sensitive_paths(),
            exec: Vec::new(),
            egress: Vec::new(),
        }
    }

    pub fn check_open(&self, path: &str) -> Option<KernelMatch> {
        self.sensitive_paths
            .iter()
            .find(|p| glob::matches(&p.pattern, path))
            .map(|p| KernelMatch {
                id: p.id.clone(),
                severity: p.severity,
                reason: format!("sensitive file {path} matches {}", p.pattern),
            })
    }

    /// An exec in a workload some entry selects is allowed when any entry
    /// selecting it allows the executable; workloads no entry selects are
    /// not checked.
    pub fn check_exec(&self, exe: &str, s: &Subject<'_>) -> Option<KernelMatch> {
        let list = disallowed(&self.exec, s, |p| glob::matches(p, exe))?;
        Some(KernelMatch {
            id: list.id.clone(),
            severity: list.severity,
            reason: format!("executable {exe} is not allowed for this workload"),
        })
    }

    pub fn check_egress(&self, ip: IpAddr, port: u16, s: &Subject<'_>) -> Option<KernelMatch> {
        let list = disallowed(&self.egress, s, |(cidr, ports)| {
            cidr.as_ref().is_none_or(|c| c.contains(ip))
                && (ports.is_empty() || ports.contains(&port))
        })?;
        let peer = std::net::SocketAddr::new(ip, port);
        Some(KernelMatch {
            id: list.id.clone(),
            severity: list.severity,
            reason: format!("egress to {peer} is not allowed for this workload"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(cg: &str) -> Subject<'_> {
        Subject {
            cgroup_path: Some(cg),
            comm: "app",
            ..Default::default()
        }
    }

    fn rules(json: &str) -> Result<KernelRules, PolicyError> {
        let k = parse_rules_file(json.as_bytes())?;
        KernelRules::compile(&k)
    }

    #[test]
    fn defaults_report_shadow_and_token() {
        let r = KernelRules::defaults();
        let m = r.check_open("/etc/shadow").unwrap();
        assert_eq!(m.id, SENSITIVE_FILE_RULE);
        assert_eq!(m.severity, Severity::High);
        assert!(r
            .check_open("/var/run/secrets/kubernetes.io/serviceaccount/token")
            .is_some());
        assert!(r.check_open("/etc/sudoers.d/admins").is_some());
        assert!(r.check_open("/root/.aws/credentials").is_some());
        assert!(r
            .check_open("/home/ann/.config/gcloud/credentials.db")
            .is_some());
        assert!(r.check_open("/etc/passwd").is_none());
        assert_eq!(r.report, Report::Connections);
        // An empty section means the same defaults.
        let empty = rules("{}").unwrap();
        assert_eq!(empty.sensitive_paths.len(), DEFAULT_SENSITIVE_PATHS.len());
        // An explicit empty list means no sensitive files.
        let none = rules(r#"{"kernel": {"sensitive_paths": []}}"#).unwrap();
        assert!(none.check_open("/etc/shadow").is_none());
    }

    #[test]
    fn full_section_parses_and_applies_per_workload() {
        let r = rules(
            r#"{"kernel": {
                "watch": {"comms": ["envoy"]},
                "report": "matches",
                "sensitive_paths": ["/etc/shadow", {"pattern": "/srv/keys/*", "id": "keys", "severity": "critical"}],
                "allowed_executables": [{"workload": {"cgroup_prefix": "/kubepods"}, "executables": ["/usr/bin/python3*", "/app/**"]}],
                "allowed_egress": [{"workload": {"cgroup_prefix": "/kubepods"}, "destinations": [{"cidr": "10.0.0.0/8", "ports": [443]}, {"cidr": "::1"}]}]
            }}"#,
        )
        .unwrap();
        assert_eq!(r.watch.comms, ["envoy"]);
        assert_eq!(r.report, Report::Matches);
        let m = r.check_open("/srv/keys/tls.key").unwrap();
        assert_eq!((m.id.as_str(), m.severity), ("keys", Severity::Critical));
        let pod = subject("/kubepods/pod1/c1");
        let host = subject("/system.slice/sshd.service");
        assert!(r.check_exec("/usr/bin/python3.11", &pod).is_none());
        assert!(r.check_exec("/app/bin/server", &pod).is_none());
        let m = r.check_exec("/bin/sh", &pod).unwrap();
        assert_eq!(m.id, UNEXPECTED_EXEC_RULE);
        assert_eq!(m.severity, Severity::High);
        assert!(
            r.check_exec("/bin/sh", &host).is_none(),
            "other workloads unchecked"
        );
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(r.check_egress(ip("10.1.2.3"), 443, &pod).is_none());
        assert!(r.check_egress(ip("10.1.2.3"), 80, &pod).is_some());
        assert!(r.check_egress(ip("::1"), 9, &pod).is_none());
        assert!(r.check_egress(ip("::ffff:10.0.0.1"), 443, &pod).is_none());
        assert_eq!(
            r.check_egress(ip("192.0.2.1"), 443, &pod).unwrap().severity,
            Severity::Medium
        );
        assert!(r.check_egress(ip("192.0.2.1"), 443, &host).is_none());
    }

    #[test]
    fn errors_name_the_field_by_pointer() {
        let e = rules(
            r#"{"kernel": {"allowed_egress": [{"destinations": [{"cidr": "10.0.0.0/40"}]}]}}"#,
        )
        .unwrap_err();
        assert_eq!(e.pointer(), "/kernel/allowed_egress/0/destinations/0/cidr");
        assert!(e.to_string().contains("prefix length"), "{e}");
        let e = rules(r#"{"kernel": {"sensitive_pathz": []}}"#).unwrap_err();
        assert_eq!(e.pointer(), "/kernel/sensitive_pathz");
        let e = rules(r#"{"kernel": {"sensitive_paths": ["/x", "etc/shadow"]}}"#).unwrap_err();
        assert_eq!(e.pointer(), "/kernel/sensitive_paths/1");
        assert!(e.to_string().contains("absolute"), "{e}");
        let e = rules(r#"{"kernel": {"sensitive_paths": [{"pattern": "/x", "sevrity": "low"}]}}"#)
            .unwrap_err();
        assert_eq!(e.pointer(), "/kernel/sensitive_paths/0/sevrity");
        let e =
            rules(r#"{"kernel": {"sensitive_paths": [{"pattern": "/x", "severity": "huge"}]}}"#)
                .unwrap_err();
        assert_eq!(e.pointer(), "/kernel/sensitive_paths/0/severity");
        let e = rules(
            r#"{"kernel": {"allowed_executables": [{"workload": {"comm": "a-very-long-command-name"}, "executables": []}]}}"#,
        )
        .unwrap_err();
        assert_eq!(e.pointer(), "/kernel/allowed_executables/0/workload/comm");
        let e = rules(r#"{"kernel": {"allowed_executables": [{"executables": ["bin/sh"]}]}}"#)
            .unwrap_err();
        assert_eq!(e.pointer(), "/kernel/allowed_executables/0/executables/0");
        let e = rules(r#"{"kernel": {"report": "everything"}}"#).unwrap_err();
        assert_eq!(e.pointer(), "/kernel/report");
        let e = rules(r#"{"kernel": {"watch": {"cgroups": ["kubepods"]}}}"#).unwrap_err();
        assert_eq!(e.pointer(), "/kernel/watch/cgroups/0");
        let e = rules(r#"{"kernel": {"allowed_egress": [{"destinations": [{"ports": [0]}]}]}}"#)
            .unwrap_err();
        assert_eq!(
            e.pointer(),
            "/kernel/allowed_egress/0/destinations/0/ports/0"
        );
    }

    /// The default bundle spells out the default sensitive paths (so users
    /// see what it watches); they must stay the same list.
    #[test]
    fn the_default_bundle_carries_the_default_kernel_section() {
        let b = crate::parse_bundle(crate::DEFAULT_BUNDLE_JSON.as_bytes()).unwrap();
        let k = b.kernel.expect("the default bundle has a kernel section");
        let listed: Vec<&str> = k
            .sensitive_paths
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|p| p.pattern.as_str())
            .collect();
        assert_eq!(listed, DEFAULT_SENSITIVE_PATHS);
        assert_eq!(k.report, Report::Connections);
        let r = KernelRules::compile(&k).unwrap();
        assert!(r.check_open("/etc/shadow").is_some());
    }

    /// `veil check` (the bundle compiler) rejects a broken kernel section
    /// with its pointer, although the filter does not apply the section.
    #[test]
    fn the_bundle_compiler_validates_the_kernel_section() {
        let bundle = |kernel: &str| {
            format!(
                r#"{{"version":1,"metadata":{{"name":"t","revision":"1"}},"rules":[],"kernel":{kernel}}}"#
            )
        };
        assert!(crate::CompiledPolicy::from_json(bundle("{}").as_bytes()).is_ok());
        let e = crate::CompiledPolicy::from_json(
            bundle(r#"{"allowed_egress": [{"destinations": [{"cidr": "10.0.0.0/33"}]}]}"#)
                .as_bytes(),
        )
        .unwrap_err();
        assert_eq!(e.pointer(), "/kernel/allowed_egress/0/destinations/0/cidr");
        let e = crate::CompiledPolicy::from_json(bundle(r#"{"watch": {"podz": []}}"#).as_bytes())
            .unwrap_err();
        assert_eq!(e.pointer(), "/kernel/watch/podz");
    }

    #[test]
    fn cidr_math() {
        let c = Cidr::parse("127.0.0.0/8").unwrap();
        assert!(c.contains("127.1.2.3".parse().unwrap()));
        assert!(!c.contains("128.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("fd00::/8")
            .unwrap()
            .contains("fd12::1".parse().unwrap()));
        assert!(!Cidr::parse("fd00::/8")
            .unwrap()
            .contains("10.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("nonsense").is_err());
        assert!(Cidr::parse("::1/129").is_err());
    }
}
