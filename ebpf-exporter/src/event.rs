//! The raw event the BPF programs write into the ring buffer (`struct
//! event` in bpf/veil.bpf.c), decoded without unsafe code.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const EVENT_SIZE: usize = 632;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Exec,
    Exit,
    Open,
    Connect,
    Accept,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Exec,
        Kind::Exit,
        Kind::Open,
        Kind::Connect,
        Kind::Accept,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Exec => "exec",
            Kind::Exit => "exit",
            Kind::Open => "open",
            Kind::Connect => "connect",
            Kind::Accept => "accept",
        }
    }
}

#[derive(Debug, Clone)]
pub struct RawEvent {
    pub ts_ns: u64,
    pub cgroup_id: u64,
    pub kind: Kind,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub ret: i64,
    pub flags: u32,
    pub family: u16,
    pub protocol: u16,
    pub lport: u16,
    pub rport: u16,
    pub laddr: [u8; 16],
    pub raddr: [u8; 16],
    pub comm: String,
    pub path: String,
    pub args: Vec<u8>,
    /// `PATH_*` bits of an open's path.
    pub path_flags: u32,
}

/// The path was relative in the syscall and was made absolute in the
/// kernel against the task's cwd or the directory fd.
pub const PATH_RESOLVED: u32 = 1;
/// The path has an empty, `.` or `..` component: normalize before matching.
pub const PATH_UNCLEAN: u32 = 2;
/// The path is relative and its directory could not be read.
pub const PATH_UNRESOLVED: u32 = 4;

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_ne_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_ne_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_ne_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}
/// `out` = the NUL-terminated string at the start of `b`, invalid UTF-8
/// replaced as `String::from_utf8_lossy` does.
fn cstr_into(out: &mut String, b: &[u8]) {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    out.clear();
    out.push_str(&String::from_utf8_lossy(&b[..end]));
}

impl RawEvent {
    #[cfg(test)]
    pub fn parse(b: &[u8]) -> Option<RawEvent> {
        let mut e = RawEvent::empty();
        e.read(b).then_some(e)
    }

    /// An event to [`RawEvent::read`] into (allocates nothing).
    pub fn empty() -> RawEvent {
        RawEvent {
            ts_ns: 0,
            cgroup_id: 0,
            kind: Kind::Exit,
            pid: 0,
            tid: 0,
            ppid: 0,
            uid: 0,
            gid: 0,
            ret: 0,
            flags: 0,
            family: 0,
            protocol: 0,
            lport: 0,
            rport: 0,
            laddr: [0; 16],
            raddr: [0; 16],
            comm: String::new(),
            path: String::new(),
            args: Vec::new(),
            path_flags: 0,
        }
    }

    /// Decodes `b` into `self`, reusing its strings (an exporter decodes
    /// every event into the same one); false (and `self` unchanged) when
    /// `b` is not an event.
    pub fn read(&mut self, b: &[u8]) -> bool {
        if b.len() < EVENT_SIZE {
            return false;
        }
        let kind = match u32_at(b, 16) {
            1 => Kind::Exec,
            2 => Kind::Exit,
            3 => Kind::Open,
            4 => Kind::Connect,
            5 => Kind::Accept,
            _ => return false,
        };
        let args_len = (u32_at(b, 624) as usize).min(256);
        self.ts_ns = u64_at(b, 0);
        self.cgroup_id = u64_at(b, 8);
        self.kind = kind;
        self.pid = u32_at(b, 20);
        self.tid = u32_at(b, 24);
        self.ppid = u32_at(b, 28);
        self.uid = u32_at(b, 32);
        self.gid = u32_at(b, 36);
        self.ret = u64_at(b, 40) as i64;
        self.flags = u32_at(b, 48);
        self.family = u16_at(b, 52);
        self.protocol = u16_at(b, 54);
        self.lport = u16_at(b, 56);
        self.rport = u16_at(b, 58);
        self.laddr = b[64..80].try_into().expect("16 bytes");
        self.raddr = b[80..96].try_into().expect("16 bytes");
        cstr_into(&mut self.comm, &b[96..112]);
        cstr_into(&mut self.path, &b[112..368]);
        self.args.clear();
        self.args.extend_from_slice(&b[368..368 + args_len]);
        self.path_flags = u32_at(b, 628);
        true
    }

    fn addr(&self, a: &[u8; 16]) -> Option<IpAddr> {
        match self.family {
            AF_INET => Some(IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))),
            AF_INET6 => {
                let v6 = Ipv6Addr::from(*a);
                Some(
                    v6.to_ipv4_mapped()
                        .map(IpAddr::V4)
                        .unwrap_or(IpAddr::V6(v6)),
                )
            }
            _ => None,
        }
    }

    pub fn local(&self) -> Option<IpAddr> {
        self.addr(&self.laddr)
    }
    pub fn peer(&self) -> Option<IpAddr> {
        self.addr(&self.raddr)
    }
    pub fn network_type(&self) -> &'static str {
        if self.family == AF_INET6 {
            "ipv6"
        } else {
            "ipv4"
        }
    }
    pub fn transport(&self) -> &'static str {
        match self.protocol {
            6 => "tcp",
            17 => "udp",
            _ => "unknown",
        }
    }
    /// argv as one command line (NUL separators become spaces).
    pub fn command_line(&self) -> Option<String> {
        command_line(&self.args)
    }
}

/// `path` with empty and `.` components removed and `..` applied, as the
/// kernel would walk it without symlinks (`/tmp/../etc//shadow` is
/// `/etc/shadow`); `..` at the root stays at the root.
pub fn normalize_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    for p in &parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

pub fn command_line(raw: &[u8]) -> Option<String> {
    let s: Vec<String> = raw
        .split(|&c| c == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    (!s.is_empty()).then(|| s.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_connect() {
        let mut b = vec![0u8; EVENT_SIZE];
        b[16..20].copy_from_slice(&4u32.to_ne_bytes());
        b[20..24].copy_from_slice(&42u32.to_ne_bytes());
        b[40..48].copy_from_slice(&(-111i64).to_ne_bytes());
        b[52..54].copy_from_slice(&2u16.to_ne_bytes());
        b[54..56].copy_from_slice(&6u16.to_ne_bytes());
        b[56..58].copy_from_slice(&40000u16.to_ne_bytes());
        b[58..60].copy_from_slice(&8080u16.to_ne_bytes());
        b[64..68].copy_from_slice(&[127, 0, 0, 1]);
        b[80..84].copy_from_slice(&[127, 0, 0, 2]);
        b[96..100].copy_from_slice(b"curl");
        let e = RawEvent::parse(&b).unwrap();
        assert_eq!(e.kind, Kind::Connect);
        assert_eq!(e.pid, 42);
        assert_eq!(e.ret, -111);
        assert_eq!(e.peer(), Some("127.0.0.2".parse().unwrap()));
        assert_eq!(e.local(), Some("127.0.0.1".parse().unwrap()));
        assert_eq!((e.lport, e.rport), (40000, 8080));
        assert_eq!(e.comm, "curl");
        assert_eq!(e.transport(), "tcp");
        assert!(RawEvent::parse(&b[..100]).is_none());

        // Decoding another event into the same one leaves nothing of it.
        let mut reused = RawEvent::parse(&b).unwrap();
        reused.path.push_str("/etc/shadow");
        reused.args.extend_from_slice(b"cat\0");
        let mut open = vec![0u8; EVENT_SIZE];
        open[16..20].copy_from_slice(&3u32.to_ne_bytes());
        open[96..98].copy_from_slice(b"sh");
        open[112..116].copy_from_slice(b"/tmp");
        assert!(reused.read(&open));
        assert_eq!(reused.kind, Kind::Open);
        assert_eq!((reused.comm.as_str(), reused.path.as_str()), ("sh", "/tmp"));
        assert!(reused.args.is_empty());
        assert_eq!(reused.peer(), None);
        assert!(!reused.read(&open[..100]));
    }

    #[test]
    fn paths_normalize_like_the_kernel_walks_them() {
        assert_eq!(normalize_path("/tmp/../etc//shadow"), "/etc/shadow");
        assert_eq!(normalize_path("/etc/./shadow"), "/etc/shadow");
        assert_eq!(normalize_path("/../../etc/shadow"), "/etc/shadow");
        assert_eq!(normalize_path("/"), "/");
        assert_eq!(normalize_path("/a/b/.."), "/a");
    }

    #[test]
    fn argv_joins() {
        assert_eq!(
            command_line(b"cat\0/etc/shadow\0").as_deref(),
            Some("cat /etc/shadow")
        );
        assert_eq!(command_line(b""), None);
    }
}
