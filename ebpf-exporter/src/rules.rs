//! Kernel rules: the `kernel` section of a veil policy bundle (kept in this
//! crate until the bundle schema carries it). See README.md for the format.

use crate::glob;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::net::IpAddr;

/// Sensitive files reported when no `sensitive_paths` are configured.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    #[default]
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
    /// OpenTelemetry severity number and text, as the filter's events use.
    pub fn otel(self) -> (u8, &'static str) {
        match self {
            Severity::Low => (9, "INFO"),
            Severity::Medium => (13, "WARN"),
            Severity::High => (17, "ERROR"),
            Severity::Critical => (20, "CRITICAL"),
        }
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

/// Tasks the BPF programs report at all (and their descendants). Empty:
/// every task on the node except the exporter itself.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watch {
    #[serde(default)]
    pub comms: Vec<String>,
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

/// A workload: every given field must match; an empty selector matches
/// every watched task.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    pub cgroup_prefix: Option<String>,
    pub container_id: Option<String>,
    pub pod_uid: Option<String>,
    pub comm: Option<String>,
}

/// What is known about the task behind an event.
#[derive(Debug, Clone, Default)]
pub struct Subject<'a> {
    pub cgroup_path: Option<&'a str>,
    pub container_id: Option<&'a str>,
    pub pod_uid: Option<&'a str>,
    pub comm: &'a str,
}

impl Workload {
    pub fn matches(&self, s: &Subject<'_>) -> bool {
        let opt = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        self.cgroup_prefix
            .as_deref()
            .is_none_or(|p| s.cgroup_path.is_some_and(|c| c.starts_with(p)))
            && opt(&self.container_id, s.container_id)
            && opt(&self.pod_uid, s.pod_uid)
            && self.comm.as_deref().is_none_or(|c| c == s.comm)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum PathEntry {
    Pattern(String),
    Full {
        pattern: String,
        id: Option<String>,
        severity: Option<Severity>,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecEntry {
    #[serde(default)]
    workload: Workload,
    executables: Vec<String>,
    id: Option<String>,
    severity: Option<Severity>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Destination {
    /// `10.0.0.0/8`, `::1/128`, or a bare address; absent: any address.
    cidr: Option<String>,
    /// Allowed ports; empty: any port.
    #[serde(default)]
    ports: Vec<u16>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct EgressEntry {
    #[serde(default)]
    workload: Workload,
    destinations: Vec<Destination>,
    id: Option<String>,
    severity: Option<Severity>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KernelSection {
    #[serde(default)]
    watch: Watch,
    #[serde(default)]
    report: Report,
    sensitive_paths: Option<Vec<PathEntry>>,
    #[serde(default)]
    allowed_executables: Vec<ExecEntry>,
    #[serde(default)]
    allowed_egress: Vec<EgressEntry>,
}

#[derive(Debug, Deserialize)]
struct File {
    #[serde(default)]
    kernel: KernelSection,
}

#[derive(Debug, Clone)]
pub struct SensitivePath {
    pub pattern: String,
    pub id: String,
    pub severity: Severity,
}

#[derive(Debug, Clone)]
pub struct Cidr {
    addr: IpAddr,
    bits: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr> {
        let (a, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .parse()
            .with_context(|| format!("bad address in CIDR {s:?}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            Some(b) => b
                .parse::<u8>()
                .ok()
                .filter(|&b| b <= max)
                .with_context(|| format!("bad prefix length in CIDR {s:?}"))?,
            None => max,
        };
        Ok(Cidr { addr, bits })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.bits as u32).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.bits as u32).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
struct ExecRule {
    workload: Workload,
    executables: Vec<String>,
    id: String,
    severity: Severity,
}

#[derive(Debug, Clone)]
struct EgressRule {
    workload: Workload,
    destinations: Vec<(Option<Cidr>, Vec<u16>)>,
    id: String,
    severity: Severity,
}

/// A rule that matched an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub id: String,
    pub severity: Severity,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct Rules {
    pub watch: Watch,
    pub report: Report,
    pub sensitive_paths: Vec<SensitivePath>,
    exec: Vec<ExecRule>,
    egress: Vec<EgressRule>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules::from_json("{}").expect("the defaults parse")
    }
}

pub const MAX_KERNEL_PREFIXES: usize = 16;
pub const KERNEL_PREFIX_LEN: usize = 64;

impl Rules {
    pub fn from_json(text: &str) -> Result<Rules> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let file: File = serde_path_to_error::deserialize(de)
            .map_err(|e| anyhow::anyhow!("invalid kernel rules at {}: {}", e.path(), e.inner()))?;
        let k = file.kernel;
        let sensitive_paths: Vec<SensitivePath> = match k.sensitive_paths {
            None => DEFAULT_SENSITIVE_PATHS
                .iter()
                .map(|p| SensitivePath {
                    pattern: p.to_string(),
                    id: "kernel-sensitive-file".into(),
                    severity: Severity::High,
                })
                .collect(),
            Some(list) => list
                .into_iter()
                .map(|e| match e {
                    PathEntry::Pattern(p) => SensitivePath {
                        pattern: p,
                        id: "kernel-sensitive-file".into(),
                        severity: Severity::High,
                    },
                    PathEntry::Full {
                        pattern,
                        id,
                        severity,
                    } => SensitivePath {
                        pattern,
                        id: id.unwrap_or_else(|| "kernel-sensitive-file".into()),
                        severity: severity.unwrap_or_default(),
                    },
                })
                .collect(),
        };
        for p in &sensitive_paths {
            if !p.pattern.starts_with('/') && !p.pattern.starts_with('*') {
                bail!(
                    "sensitive path pattern {:?} must be absolute (start with /)",
                    p.pattern
                );
            }
        }
        let exec = k
            .allowed_executables
            .into_iter()
            .map(|e| ExecRule {
                workload: e.workload,
                executables: e.executables,
                id: e.id.unwrap_or_else(|| "kernel-unexpected-exec".into()),
                severity: e.severity.unwrap_or(Severity::High),
            })
            .collect();
        let mut egress = Vec::new();
        for (i, e) in k.allowed_egress.into_iter().enumerate() {
            let mut destinations = Vec::new();
            for d in e.destinations {
                let cidr = d
                    .cidr
                    .as_deref()
                    .map(Cidr::parse)
                    .transpose()
                    .with_context(|| format!("kernel.allowed_egress[{i}]"))?;
                destinations.push((cidr, d.ports));
            }
            egress.push(EgressRule {
                workload: e.workload,
                destinations,
                id: e.id.unwrap_or_else(|| "kernel-unexpected-egress".into()),
                severity: e.severity.unwrap_or(Severity::Medium),
            });
        }
        Ok(Rules {
            watch: k.watch,
            report: k.report,
            sensitive_paths,
            exec,
            egress,
        })
    }

    /// Prefixes for the in-kernel open filter, or `None` when some pattern
    /// has no literal prefix (then every absolute path of a watched task
    /// goes to user space) or there are too many distinct prefixes.
    pub fn kernel_prefixes(&self) -> Option<Vec<String>> {
        let mut prefixes: Vec<String> = Vec::new();
        for p in &self.sensitive_paths {
            let mut lit = glob::literal_prefix(&p.pattern).to_string();
            if lit.is_empty() {
                return None;
            }
            if lit.len() > KERNEL_PREFIX_LEN {
                let mut end = KERNEL_PREFIX_LEN;
                while !lit.is_char_boundary(end) {
                    end -= 1;
                }
                lit.truncate(end);
            }
            prefixes.push(lit);
        }
        prefixes.sort();
        prefixes.dedup();
        // Drop prefixes covered by a shorter one.
        let mut kept: Vec<String> = Vec::new();
        for p in prefixes {
            if !kept.iter().any(|k| p.starts_with(k.as_str())) {
                kept.push(p);
            }
        }
        (kept.len() <= MAX_KERNEL_PREFIXES).then_some(kept)
    }

    pub fn check_open(&self, path: &str) -> Option<Match> {
        self.sensitive_paths
            .iter()
            .find(|p| glob::matches(&p.pattern, path))
            .map(|p| Match {
                id: p.id.clone(),
                severity: p.severity,
                reason: format!("sensitive file {path} matches {}", p.pattern),
            })
    }

    pub fn check_exec(&self, exe: &str, s: &Subject<'_>) -> Option<Match> {
        let applicable: Vec<&ExecRule> =
            self.exec.iter().filter(|r| r.workload.matches(s)).collect();
        let first = applicable.first()?;
        let allowed = applicable
            .iter()
            .any(|r| r.executables.iter().any(|p| glob::matches(p, exe)));
        (!allowed).then(|| Match {
            id: first.id.clone(),
            severity: first.severity,
            reason: format!("executable {exe} is not allowed for this workload"),
        })
    }

    pub fn check_egress(&self, ip: IpAddr, port: u16, s: &Subject<'_>) -> Option<Match> {
        let applicable: Vec<&EgressRule> = self
            .egress
            .iter()
            .filter(|r| r.workload.matches(s))
            .collect();
        let first = applicable.first()?;
        let allowed = applicable.iter().any(|r| {
            r.destinations.iter().any(|(cidr, ports)| {
                cidr.as_ref().is_none_or(|c| c.contains(ip))
                    && (ports.is_empty() || ports.contains(&port))
            })
        });
        let peer = std::net::SocketAddr::new(ip, port);
        (!allowed).then(|| Match {
            id: first.id.clone(),
            severity: first.severity,
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

    #[test]
    fn defaults_report_shadow_and_token() {
        let r = Rules::default();
        assert_eq!(
            r.check_open("/etc/shadow").unwrap().id,
            "kernel-sensitive-file"
        );
        assert!(r
            .check_open("/var/run/secrets/kubernetes.io/serviceaccount/token")
            .is_some());
        assert!(r.check_open("/etc/sudoers.d/admins").is_some());
        assert!(r.check_open("/root/.aws/credentials").is_some());
        assert!(r.check_open("/etc/passwd").is_none());
        let prefixes = r.kernel_prefixes().unwrap();
        assert!(prefixes.len() <= MAX_KERNEL_PREFIXES);
        assert!(prefixes.contains(&"/etc/shadow".to_string()));
        assert!(prefixes.contains(&"/home/".to_string()));
        assert_eq!(r.report, Report::Connections);
    }

    #[test]
    fn full_section_parses_and_applies_per_workload() {
        let r = Rules::from_json(
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
        let m = r.check_open("/srv/keys/tls.key").unwrap();
        assert_eq!((m.id.as_str(), m.severity), ("keys", Severity::Critical));
        let pod = subject("/kubepods/pod1/c1");
        let host = subject("/system.slice/sshd.service");
        assert!(r.check_exec("/usr/bin/python3.11", &pod).is_none());
        assert!(r.check_exec("/app/bin/server", &pod).is_none());
        let m = r.check_exec("/bin/sh", &pod).unwrap();
        assert_eq!(m.id, "kernel-unexpected-exec");
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
    fn errors_name_the_field() {
        let e = Rules::from_json(
            r#"{"kernel": {"allowed_egress": [{"destinations": [{"cidr": "10.0.0.0/40"}]}]}}"#,
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("prefix length"), "{e:#}");
        let e = Rules::from_json(r#"{"kernel": {"sensitive_pathz": []}}"#).unwrap_err();
        assert!(e.to_string().contains("sensitive_pathz"), "{e}");
        let e = Rules::from_json(r#"{"kernel": {"sensitive_paths": ["etc/shadow"]}}"#).unwrap_err();
        assert!(e.to_string().contains("absolute"), "{e}");
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
        assert!(Cidr::parse("nonsense").is_err());
    }
}
