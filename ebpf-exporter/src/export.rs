//! From a raw kernel event to an OpenTelemetry log record: enrichment
//! (executable, command line, cgroup, container and pod), rule evaluation,
//! and the record itself: an engine `Record` (engine/src/event.rs), so the
//! JSON line and the OTLP/JSON form are written by the same code as the
//! filter's events. The record and its attribute strings are reused from
//! one event to the next.

use crate::cgroup::{self, Resolver};
use crate::event::{
    command_line, normalize_path, Kind, RawEvent, PATH_RESOLVED, PATH_UNCLEAN, PATH_UNRESOLVED,
};
use crate::metrics::Metrics;
use crate::rules::{Match, Report, Rules, Subject};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use veil_engine::event::{push_i64, push_json_str, push_u64, AttrValue, Record};

/// Appends an address as its Display writes it; IPv4 (most connects)
/// without core::fmt, which was a quarter of the CPU of a connect record.
fn push_ip(out: &mut String, a: IpAddr) {
    match a {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_u64(out, octet.into());
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// Appends `n` in lower-case hex (what `{n:x}` writes).
fn push_hex(out: &mut String, mut n: u64) {
    let mut digits = ['0'; 16];
    let mut start = digits.len();
    for slot in digits.iter_mut().rev() {
        *slot = char::from_digit((n & 0xf) as u32, 16).unwrap_or('0');
        n >>= 4;
        start -= 1;
        if n == 0 {
            break;
        }
    }
    out.extend(digits.iter().skip(start));
}

/// What user space knows about a process, cached from its exec event
/// (which outlives the process) or read from /proc. Shared, not copied,
/// per event.
#[derive(Debug, Clone, Default)]
struct Proc {
    exe: Option<String>,
    cmdline: Option<String>,
    /// Its attributes as they follow another in a JSON line (`,"k":v`
    /// each), serialized once: every record of the process copies them.
    json: String,
}

impl Proc {
    fn new(exe: Option<String>, cmdline: Option<String>) -> Proc {
        let mut p = Proc {
            exe,
            cmdline,
            json: String::new(),
        };
        p.json = serialized(|s| put_process(s, &p));
        p
    }
}

/// What a cgroup path says about its workload, parsed once per cgroup.
#[derive(Debug)]
struct CgroupInfo {
    path: String,
    container_id: Option<String>,
    pod_uid: Option<String>,
    /// The record's cgroup attributes and `host.name`, as [`Proc::json`].
    json: String,
}

const MAX_PROCS: usize = 65_536;
const MAX_CGROUPS: usize = 65_536;

/// One attribute value, borrowed from the event and the caches; copied
/// into the reused record's buffers.
#[derive(Debug, Clone, Copy)]
enum Av<'a> {
    Str(&'a str),
    Int(i64),
    Bool(bool),
    Ip(Option<IpAddr>),
}

pub struct Exporter<W: Write> {
    rules: Rules,
    cgroups: Resolver,
    cgroup_info: HashMap<u64, Rc<CgroupInfo>>,
    procs: HashMap<u32, Rc<Proc>>,
    out: W,
    metrics: Arc<Metrics>,
    /// Add to a CLOCK_BOOTTIME timestamp to get Unix time.
    boot_to_unix_ns: i128,
    host: Option<String>,
    seq: u64,
    /// Reused per record.
    event_id: String,
    what: String,
    line: String,
    record: Option<Record>,
    /// The event being handled, decoded into the same buffers each time.
    event: RawEvent,
    otlp: Option<crate::otlp::Sender>,
}

/// Fills a record in place, reusing the strings of its earlier attributes.
struct Filler<'r> {
    rec: &'r mut Record,
    n: usize,
}

impl Filler<'_> {
    fn slot(&mut self, k: &'static str) -> &mut AttrValue {
        let n = self.n;
        self.n += 1;
        if n >= self.rec.attributes.len() {
            self.rec.attributes.push((k, AttrValue::Int(0)));
        }
        let last = self.rec.attributes.len() - 1;
        let i = n.min(last);
        let entry = &mut self.rec.attributes[i];
        entry.0 = k;
        &mut entry.1
    }

    fn put(&mut self, k: &'static str, v: Av<'_>) {
        match v {
            Av::Str(s) => match self.slot(k) {
                AttrValue::Str(buf) => {
                    buf.clear();
                    buf.push_str(s);
                }
                other => *other = AttrValue::Str(s.to_string()),
            },
            Av::Int(n) => *self.slot(k) = AttrValue::Int(n),
            Av::Bool(b) => *self.slot(k) = AttrValue::Bool(b),
            Av::Ip(Some(a)) => match self.slot(k) {
                AttrValue::Str(buf) => {
                    buf.clear();
                    push_ip(buf, a);
                }
                other => *other = AttrValue::Str(a.to_string()),
            },
            // Unknown (a socket without an address): left out.
            Av::Ip(None) => {}
        }
    }

    fn finish(self) {
        self.rec.attributes.truncate(self.n);
    }
}

/// Where a record's attributes go, in order: into the reused engine
/// record (for OTLP, [`Filler`]) or straight into the JSON line
/// ([`LineSink`]), which copies a process's and a cgroup's attributes
/// from the bytes serialized once for them.
trait Attrs {
    fn put(&mut self, k: &'static str, v: Av<'_>);

    /// `process.executable.path`, `process.command_line`.
    fn process(&mut self, p: &Proc)
    where
        Self: Sized,
    {
        put_process(self, p)
    }

    /// The cgroup's attributes and `host.name`.
    fn cgroup(&mut self, id: u64, c: Option<&CgroupInfo>, host: Option<&str>)
    where
        Self: Sized,
    {
        put_cgroup(self, id, c, host)
    }
}

fn put_process(a: &mut impl Attrs, p: &Proc) {
    if let Some(exe) = &p.exe {
        a.put("process.executable.path", Av::Str(exe));
    }
    if let Some(cmd) = &p.cmdline {
        a.put("process.command_line", Av::Str(cmd));
    }
}

fn put_cgroup(a: &mut impl Attrs, id: u64, c: Option<&CgroupInfo>, host: Option<&str>) {
    // Cgroup ids are inode numbers, below 2^63 in practice.
    a.put("veil.cgroup.id", Av::Int(id as i64));
    if let Some(c) = c {
        a.put("veil.cgroup.path", Av::Str(&c.path));
        if let Some(id) = &c.container_id {
            a.put("container.id", Av::Str(id));
        }
        if let Some(uid) = &c.pod_uid {
            a.put("k8s.pod.uid", Av::Str(uid));
        }
    }
    if let Some(h) = host {
        a.put("host.name", Av::Str(h));
    }
}

/// `,"k":v` for each of the attributes `put` writes: the bytes a
/// [`LineSink`] copies for a process or a cgroup.
fn serialized(put: impl FnOnce(&mut LineSink<'_>)) -> String {
    let mut json = String::new();
    put(&mut LineSink {
        out: &mut json,
        n: 1,
    });
    json
}

impl Attrs for Filler<'_> {
    fn put(&mut self, k: &'static str, v: Av<'_>) {
        Filler::put(self, k, v)
    }
}

/// Writes attributes as `Record::write_json_line` writes them (the keys
/// are constants with nothing to escape).
struct LineSink<'o> {
    out: &'o mut String,
    /// Attributes written so far (a comma goes before every later one).
    n: usize,
}

impl LineSink<'_> {
    fn key(&mut self, k: &str) {
        if self.n > 0 {
            self.out.push(',');
        }
        self.n += 1;
        self.out.push('"');
        self.out.push_str(k);
        self.out.push_str("\":");
    }
}

impl Attrs for LineSink<'_> {
    fn put(&mut self, k: &'static str, v: Av<'_>) {
        match v {
            Av::Str(s) => {
                self.key(k);
                push_json_str(self.out, s);
            }
            Av::Int(n) => {
                self.key(k);
                push_i64(self.out, n);
            }
            Av::Bool(b) => {
                self.key(k);
                self.out.push_str(if b { "true" } else { "false" });
            }
            Av::Ip(Some(a)) => {
                self.key(k);
                self.out.push('"');
                push_ip(self.out, a);
                self.out.push('"');
            }
            Av::Ip(None) => {}
        }
    }

    fn process(&mut self, p: &Proc) {
        // Always after `process.executable.name`: never the first.
        self.out.push_str(&p.json);
        self.n += usize::from(!p.json.is_empty());
    }

    fn cgroup(&mut self, id: u64, c: Option<&CgroupInfo>, host: Option<&str>) {
        match c {
            Some(c) => {
                self.out.push_str(&c.json);
                self.n += 1;
            }
            None => put_cgroup(self, id, None, host),
        }
    }
}

/// One record's facts, borrowed for [`put_attrs`].
struct Facts<'a> {
    ev: &'a RawEvent,
    event_id: &'a str,
    proc_: &'a Proc,
    cg: Option<&'a CgroupInfo>,
    host: Option<&'a str>,
    matched: Option<&'a Match>,
    local: Option<IpAddr>,
    peer: Option<IpAddr>,
}

/// A record's attributes in order (the order of the JSON line).
fn put_attrs(a: &mut impl Attrs, f: &Facts<'_>) {
    let ev = f.ev;
    a.put("veil.event_id", Av::Str(f.event_id));
    a.put("veil.source", Av::Str("kernel"));
    a.put("veil.kernel.event", Av::Str(ev.kind.as_str()));
    a.put("process.pid", Av::Int(ev.pid.into()));
    a.put("process.parent_pid", Av::Int(ev.ppid.into()));
    a.put("thread.id", Av::Int(ev.tid.into()));
    a.put("process.user.id", Av::Int(ev.uid.into()));
    a.put("process.group.id", Av::Int(ev.gid.into()));
    a.put("process.executable.name", Av::Str(&ev.comm));
    a.process(f.proc_);
    a.cgroup(ev.cgroup_id, f.cg, f.host);
    match ev.kind {
        Kind::Exec => {}
        Kind::Exit => a.put("process.exit.code", Av::Int(ev.ret >> 8)),
        Kind::Open => {
            a.put("file.path", Av::Str(&ev.path));
            a.put("veil.kernel.open_flags", Av::Int(ev.flags.into()));
            if ev.path_flags & PATH_RESOLVED != 0 {
                // Relative in the syscall (`cd /etc && cat shadow`).
                a.put("veil.kernel.path_relative", Av::Bool(true));
            }
            if ev.path_flags & PATH_UNRESOLVED != 0 {
                // Relative, and its directory could not be read.
                a.put("veil.kernel.path_unresolved", Av::Bool(true));
            }
            a.put("veil.kernel.result", Av::Int(ev.ret));
        }
        Kind::Connect | Kind::Accept => {
            let (local, peer) = (f.local, f.peer);
            a.put("network.transport", Av::Str(ev.transport()));
            a.put("network.type", Av::Str(ev.network_type()));
            a.put("network.local.address", Av::Ip(local));
            a.put("network.local.port", Av::Int(ev.lport.into()));
            a.put("network.peer.address", Av::Ip(peer));
            a.put("network.peer.port", Av::Int(ev.rport.into()));
            // client/server, as the filter's events name the two ends,
            // so a backend can join on the 5-tuple.
            let (client, cport, server, sport) = ends(ev, local, peer);
            a.put("client.address", Av::Ip(client));
            a.put("client.port", Av::Int(cport.into()));
            a.put("server.address", Av::Ip(server));
            a.put("server.port", Av::Int(sport.into()));
            a.put("veil.kernel.result", Av::Int(ev.ret));
        }
    }
    if let Some(m) = f.matched {
        a.put("veil.rule.id", Av::Str(&m.id));
        a.put("veil.severity", Av::Str(m.severity.as_str()));
        a.put("veil.action", Av::Str("report"));
        a.put("veil.reason", Av::Str(&m.reason));
    }
}

/// (client, client port, server, server port) of a connect or accept.
fn ends(
    ev: &RawEvent,
    local: Option<IpAddr>,
    peer: Option<IpAddr>,
) -> (Option<IpAddr>, u16, Option<IpAddr>, u16) {
    if ev.kind == Kind::Connect {
        (local, ev.lport, peer, ev.rport)
    } else {
        (peer, ev.rport, local, ev.lport)
    }
}

fn empty_record() -> Record {
    Record {
        time_unix_nano: 0,
        severity_number: 9,
        severity_text: "INFO",
        body: String::new(),
        trace: None,
        attributes: Vec::with_capacity(48),
    }
}

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

fn read_proc(pid: u32) -> Proc {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .and_then(|raw| command_line(&raw));
    Proc::new(exe, cmdline)
}

/// The executable of an exec event: the path given to exec, made absolute
/// against the process's cwd and with symlinks resolved when possible.
fn exec_path(pid: u32, given: &str) -> String {
    let path = if given.starts_with('/') {
        std::path::PathBuf::from(given)
    } else {
        match std::fs::read_link(format!("/proc/{pid}/cwd")) {
            Ok(cwd) => cwd.join(given),
            Err(_) => {
                return read_proc(pid).exe.unwrap_or_else(|| given.to_string());
            }
        }
    };
    std::fs::canonicalize(&path)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

impl<W: Write> Exporter<W> {
    pub fn new(rules: Rules, out: W, metrics: Arc<Metrics>, cgroups: Resolver) -> Self {
        Exporter {
            rules,
            cgroups,
            procs: HashMap::new(),
            out,
            metrics,
            boot_to_unix_ns: clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_BOOTTIME),
            host: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string()),
            seq: 0,
            event_id: String::with_capacity(40),
            what: String::with_capacity(256),
            line: String::with_capacity(2048),
            record: Some(empty_record()),
            event: RawEvent::empty(),
            otlp: None,
            cgroup_info: HashMap::new(),
        }
    }

    /// Also export every record over OTLP/HTTP.
    pub fn with_otlp(mut self, sender: crate::otlp::Sender) -> Self {
        self.otlp = Some(sender);
        self
    }

    /// The host name records carry (`host.name`).
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// Flushes the output and hands what is queued for OTLP to the
    /// collector, waiting at most `within`.
    pub fn finish(&mut self, within: std::time::Duration) {
        self.flush();
        if let Some(s) = self.otlp.take() {
            s.shutdown(within);
        }
    }

    pub fn flush(&mut self) {
        if self.out.flush().is_err() {
            self.metrics.write_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn remember(&mut self, pid: u32, p: Proc) -> Rc<Proc> {
        if self.procs.len() >= MAX_PROCS {
            self.procs.clear();
        }
        let p = Rc::new(p);
        self.procs.insert(pid, p.clone());
        p
    }

    fn proc_info(&mut self, ev: &RawEvent) -> Rc<Proc> {
        if ev.kind == Kind::Exec {
            // The exec event is the truth for the new image: by the time
            // it is handled the process may be gone or may have exec'd
            // again (env -> true), so /proc/<pid>/exe is only the last
            // resort. Symlinks are resolved (/bin/sh -> /usr/bin/dash) so
            // an allow-list cannot be passed with a link to a shell.
            let p = Proc::new(
                Some(exec_path(ev.pid, &ev.path)),
                ev.command_line().or_else(|| read_proc(ev.pid).cmdline),
            );
            return self.remember(ev.pid, p);
        }
        if let Some(p) = self.procs.get(&ev.pid) {
            return p.clone();
        }
        let p = read_proc(ev.pid);
        if p.exe.is_some() {
            return self.remember(ev.pid, p);
        }
        Rc::new(p)
    }

    fn cgroup(&mut self, id: u64) -> Option<Rc<CgroupInfo>> {
        if let Some(c) = self.cgroup_info.get(&id) {
            return Some(c.clone());
        }
        let path = self.cgroups.path(id)?;
        let (container_id, pod_uid) = cgroup::parse_ids(&path);
        if self.cgroup_info.len() >= MAX_CGROUPS {
            self.cgroup_info.clear();
        }
        let mut info = CgroupInfo {
            path,
            container_id,
            pod_uid,
            json: String::new(),
        };
        info.json = serialized(|s| put_cgroup(s, id, Some(&info), self.host.as_deref()));
        let info = Rc::new(info);
        self.cgroup_info.insert(id, info.clone());
        Some(info)
    }

    /// Handles one ring-buffer sample; `Some` when a record was written.
    pub fn handle(&mut self, data: &[u8]) -> Option<()> {
        let mut ev = std::mem::replace(&mut self.event, RawEvent::empty());
        if !ev.read(data) {
            self.event = ev;
            return None;
        }
        if ev.kind == Kind::Open && ev.path_flags & PATH_UNCLEAN != 0 {
            ev.path = normalize_path(&ev.path);
        }
        let written = self.export(&ev);
        self.event = ev;
        written
    }

    fn export(&mut self, ev: &RawEvent) -> Option<()> {
        self.metrics.saw(ev.kind);
        let proc_ = self.proc_info(ev);
        if ev.kind == Kind::Exit {
            self.procs.remove(&ev.pid);
        }
        let cg = self.cgroup(ev.cgroup_id);
        let subject = Subject {
            cgroup_path: cg.as_deref().map(|c| c.path.as_str()),
            container_id: cg.as_deref().and_then(|c| c.container_id.as_deref()),
            pod_uid: cg.as_deref().and_then(|c| c.pod_uid.as_deref()),
            comm: &ev.comm,
        };
        let exe = proc_.exe.as_deref().unwrap_or_default();
        let matched: Option<Match> = match ev.kind {
            Kind::Open => self.rules.check_open(&ev.path),
            Kind::Exec => self.rules.check_exec(exe, &subject),
            Kind::Connect => ev
                .peer()
                .and_then(|ip| self.rules.check_egress(ip, ev.rport, &subject)),
            Kind::Accept | Kind::Exit => None,
        };
        let wanted = matched.is_some()
            || match self.rules.report {
                Report::All => true,
                Report::Connections => matches!(ev.kind, Kind::Connect | Kind::Accept),
                Report::Matches => false,
            };
        if !wanted {
            return None;
        }
        if let Some(m) = &matched {
            self.metrics.matched(&m.id);
        }

        // Attributes in insertion order, borrowed, serialized straight
        // into a reused buffer: owned serde_json values per attribute cost
        // more than the rest of the handling.
        self.seq += 1;
        let unix_ns = (ev.ts_ns as i128 + self.boot_to_unix_ns).max(0) as u64;
        let mut event_id = std::mem::take(&mut self.event_id);
        event_id.clear();
        event_id.push('k');
        push_hex(&mut event_id, unix_ns);
        event_id.push('-');
        push_hex(&mut event_id, self.seq);
        let (local, peer) = (ev.local(), ev.peer());
        let mut rec = self.record.take().unwrap_or_else(empty_record);
        // What happened, for the body; written into a reused buffer.
        let mut what = std::mem::take(&mut self.what);
        what.clear();
        match ev.kind {
            Kind::Exec => {
                let _ = write!(what, "exec {}", proc_.exe.as_deref().unwrap_or(&ev.path));
            }
            Kind::Exit => {
                what.push_str("exit ");
                what.push_str(&ev.comm);
            }
            Kind::Open => {
                what.push_str("open ");
                what.push_str(&ev.path);
                what.push_str(" (result ");
                push_i64(&mut what, ev.ret);
                what.push(')');
            }
            Kind::Connect | Kind::Accept => {
                // "connect 10.0.0.1:40000 -> 10.0.0.2:443"
                let (client, cport, server, sport) = ends(ev, local, peer);
                what.push_str(ev.kind.as_str());
                what.push(' ');
                for (a, port, sep) in [(client, cport, " -> "), (server, sport, "")] {
                    match a {
                        Some(a) => push_ip(&mut what, a),
                        None => what.push('?'),
                    }
                    what.push(':');
                    push_u64(&mut what, port.into());
                    what.push_str(sep);
                }
            }
        }
        let sev = match &matched {
            Some(m) => veil_engine::event::otel_severity(m.severity),
            None => (9, "INFO"),
        };
        rec.body.clear();
        // "veil kernel[ RULE]: WHAT by COMM (pid PID)"
        rec.body.push_str("veil kernel");
        if let Some(m) = &matched {
            rec.body.push(' ');
            rec.body.push_str(&m.id);
        }
        rec.body.push_str(": ");
        rec.body.push_str(&what);
        rec.body.push_str(" by ");
        rec.body.push_str(&ev.comm);
        rec.body.push_str(" (pid ");
        push_u64(&mut rec.body, ev.pid.into());
        rec.body.push(')');
        self.what = what;
        rec.time_unix_nano = unix_ns;
        rec.severity_number = sev.0;
        rec.severity_text = sev.1;
        let facts = Facts {
            ev,
            event_id: &event_id,
            proc_: &proc_,
            cg: cg.as_deref(),
            host: self.host.as_deref(),
            matched: matched.as_ref(),
            local,
            peer,
        };
        self.line.clear();
        if let Some(otlp) = &self.otlp {
            let mut filler = Filler {
                rec: &mut rec,
                n: 0,
            };
            put_attrs(&mut filler, &facts);
            filler.finish();
            otlp.send(rec.to_otlp_json(clock_ns(libc::CLOCK_REALTIME).max(0) as u64));
            rec.write_json_line(&mut self.line, None);
        } else {
            // The same line, without the copy into the record.
            rec.write_json_line_head(&mut self.line);
            put_attrs(
                &mut LineSink {
                    out: &mut self.line,
                    n: 0,
                },
                &facts,
            );
            self.line.push_str("}}");
        }
        self.line.push('\n');
        if self.out.write_all(self.line.as_bytes()).is_err() {
            self.metrics.write_errors.fetch_add(1, Ordering::Relaxed);
        } else {
            self.metrics.exported.fetch_add(1, Ordering::Relaxed);
        }
        self.record = Some(rec);
        self.event_id = event_id;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_hex_are_written_as_display_writes_them() {
        for a in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.255.9",
            "::1",
            "fe80::1:2",
            "::ffff:1.2.3.4",
        ] {
            let ip: IpAddr = a.parse().unwrap();
            let mut out = String::new();
            push_ip(&mut out, ip);
            assert_eq!(out, ip.to_string());
        }
        for n in [0u64, 9, 15, 16, 0xdead_beef, u64::MAX] {
            let mut out = String::new();
            push_hex(&mut out, n);
            assert_eq!(out, format!("{n:x}"));
        }
    }

    /// The line written without the record (JSON output, the cached
    /// process and cgroup parts) is the record's line, byte for byte, for
    /// every kind and every optional part present or absent.
    #[test]
    fn direct_lines_are_the_records_lines() {
        let base = RawEvent {
            ts_ns: 1_700_000_000_123,
            cgroup_id: 4242,
            kind: Kind::Open,
            pid: 42,
            tid: 43,
            ppid: 1,
            uid: 1000,
            gid: 100,
            ret: -2,
            flags: 0o100,
            family: 2,
            protocol: 6,
            lport: 40000,
            rport: 443,
            laddr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            raddr: [10, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            comm: "ca\"t\u{7}".into(),
            path: "/etc/sh\\adow\n\u{e9}".into(),
            args: vec![],
            path_flags: 0,
        };
        let procs = [
            Proc::new(None, None),
            Proc::new(Some("/usr/bin/cat".into()), None),
            Proc::new(Some("/tmp/\"x\"".into()), Some("cat /etc/shadow\t-".into())),
        ];
        let cgroups = [None, Some((None, None)), Some((Some("abc"), Some("p\"od")))];
        let rule = Match {
            id: "veil.kernel.sensitive_file".into(),
            severity: veil_engine::Severity::High,
            reason: "read of \"/etc/shadow\"".into(),
        };
        let mut checked = 0;
        for kind in [
            Kind::Exec,
            Kind::Exit,
            Kind::Open,
            Kind::Connect,
            Kind::Accept,
        ] {
            for (family, path_flags) in [(2, 0), (10, PATH_RESOLVED | PATH_UNRESOLVED), (0, 0)] {
                for host in [None, Some("node-1")] {
                    for p in &procs {
                        for c in &cgroups {
                            for matched in [None, Some(&rule)] {
                                let ev = RawEvent {
                                    kind,
                                    family,
                                    path_flags,
                                    ..base.clone()
                                };
                                let cg = c.map(|(container, pod)| {
                                    let mut info = CgroupInfo {
                                        path: "/kubepods/x\\y".into(),
                                        container_id: container.map(String::from),
                                        pod_uid: pod.map(String::from),
                                        json: String::new(),
                                    };
                                    info.json = serialized(|s| {
                                        put_cgroup(s, ev.cgroup_id, Some(&info), host)
                                    });
                                    info
                                });
                                let facts = Facts {
                                    ev: &ev,
                                    event_id: "k1-2",
                                    proc_: p,
                                    cg: cg.as_ref(),
                                    host,
                                    matched,
                                    local: ev.local(),
                                    peer: ev.peer(),
                                };
                                let mut rec = empty_record();
                                rec.body.push_str("veil kernel: \"body\"");
                                let mut filler = Filler {
                                    rec: &mut rec,
                                    n: 0,
                                };
                                put_attrs(&mut filler, &facts);
                                filler.finish();
                                let mut want = String::new();
                                rec.write_json_line(&mut want, None);
                                let mut got = String::new();
                                rec.write_json_line_head(&mut got);
                                put_attrs(
                                    &mut LineSink {
                                        out: &mut got,
                                        n: 0,
                                    },
                                    &facts,
                                );
                                got.push_str("}}");
                                assert_eq!(got, want);
                                serde_json::from_str::<serde_json::Value>(&got).unwrap();
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 5 * 3 * 2 * 3 * 3 * 2);
    }

    #[test]
    fn reused_records_carry_only_this_events_attributes() {
        let mut rec = empty_record();
        let mut f = Filler {
            rec: &mut rec,
            n: 0,
        };
        f.put("file.path", Av::Str("/tmp/a \"quoted\"\n\u{1}name"));
        f.put("process.pid", Av::Int(42));
        f.put(
            "network.local.address",
            Av::Ip(Some("::1".parse().unwrap())),
        );
        f.put("veil.kernel.path_relative", Av::Bool(true));
        f.finish();
        let v: serde_json::Value = serde_json::from_str(&rec.to_json_line(None)).unwrap();
        assert_eq!(v["attributes"]["file.path"], "/tmp/a \"quoted\"\n\u{1}name");
        assert_eq!(v["attributes"]["process.pid"], 42);
        assert_eq!(v["attributes"]["network.local.address"], "::1");
        assert_eq!(v["attributes"]["veil.kernel.path_relative"], true);
        // The next event reuses the buffers; nothing of the first is left.
        let mut f = Filler {
            rec: &mut rec,
            n: 0,
        };
        f.put("process.pid", Av::Int(7));
        f.put("network.peer.address", Av::Ip(None));
        f.put("file.path", Av::Str("/etc/shadow"));
        f.finish();
        let v: serde_json::Value = serde_json::from_str(&rec.to_json_line(None)).unwrap();
        let attrs = v["attributes"].as_object().unwrap();
        assert_eq!(attrs.len(), 2, "{v}");
        assert_eq!(attrs["process.pid"], 7);
        assert_eq!(attrs["file.path"], "/etc/shadow");
    }
}
