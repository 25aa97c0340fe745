//! Overhead of the exporter on a syscall-heavy workload, measured, not
//! asserted: open/close and connect/accept loops timed without the
//! exporter, with it attached but filtering the syscalls out in the kernel
//! (unwatched task; watched task with a path outside every prefix), and
//! with every syscall exported as a record. Prints Markdown tables
//! (`cargo xtask bench` puts them in benches/RESULTS.md). The in-kernel
//! cost per syscall comes from the kernel's own BPF run-time statistics
//! (kernel.bpf_stats_enabled, switched on for the run and restored), read
//! through the exporter's metrics: unlike wall-clock deltas, they are not
//! drowned by other load on a shared machine.
//!
//!   cargo build --release -p veil-ebpf-exporter --examples
//!   sudo target/release/examples/overhead [--iters N]
//!
//! Needs root (it starts the exporter). Loopback only; every loop is
//! bounded by its iteration count.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Exporter {
    child: Child,
    metrics: String,
}

fn start(exe: &Path, rules: &Path, watch_other: bool) -> Exporter {
    let mut cmd = Command::new(exe);
    cmd.arg("--rules")
        .arg(rules)
        .args(["--output", "/dev/null", "--metrics-addr", "127.0.0.1:0"])
        .args(["--ringbuf-bytes", "16777216", "--duration", "600"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if watch_other {
        // pid 1 only: this benchmark's syscalls fail the watched-task check.
        cmd.args(["--watch-pid", "1"]);
    }
    let mut child = cmd.spawn().expect("start the exporter");
    let mut err = child.stderr.take().unwrap();
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(30);
    while !text.contains("attached") {
        assert!(Instant::now() < deadline, "exporter did not attach: {text}");
        let n = err.read(&mut buf).unwrap();
        assert!(n > 0, "exporter exited: {text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    std::thread::spawn(move || while err.read(&mut buf).map(|n| n > 0).unwrap_or(false) {});
    let metrics = text
        .split("metrics on http://")
        .nth(1)
        .and_then(|r| r.split("/metrics").next())
        .unwrap()
        .to_string();
    Exporter { child, metrics }
}

impl Exporter {
    fn scrape(&self) -> String {
        let mut c = TcpStream::connect(&self.metrics).unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
        let mut s = String::new();
        c.read_to_string(&mut s).unwrap();
        s
    }
    fn counter(&self, name: &str) -> f64 {
        self.scrape()
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
    /// Run time (ns) summed over all of the exporter's BPF programs.
    fn bpf_ns(&self) -> f64 {
        self.scrape()
            .lines()
            .filter(|l| l.starts_with("veil_exporter_bpf_run_time_seconds_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
            * 1e9
    }
    /// user+system CPU seconds of the exporter process.
    fn cpu(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let rest = stat.rsplit(')').next().unwrap();
        let f: Vec<&str> = rest.split_whitespace().collect();
        // fields 14 and 15 (utime, stime), counted after "(comm)" from 3.
        let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
    }
    /// Waits until the exporter has handled what the kernel submitted.
    fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = -100.0;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(600));
            // Each scrape is itself a watched connect: allow for those.
            let seen = self.counter("veil_exporter_events_total");
            if seen - last <= 2.0 {
                return;
            }
            last = seen;
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wall-clock and CPU time of this process (all its threads: the connect
/// loop's server thread included). CPU time leaves out the time other
/// load on the machine kept the loop off the CPU, so on a shared machine
/// it is the steadier of the two; both include the syscalls' kernel time
/// and so the BPF programs and the tracing paths run in this process.
#[derive(Clone, Copy)]
struct Cost {
    wall: Duration,
    cpu: Duration,
}

fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn timed(f: impl FnOnce()) -> Cost {
    let (t, c) = (Instant::now(), process_cpu());
    f();
    Cost {
        wall: t.elapsed(),
        cpu: process_cpu() - c,
    }
}

fn open_loop(path: &Path, iters: u64) -> Cost {
    timed(|| {
        for _ in 0..iters {
            drop(std::fs::File::open(path).unwrap());
        }
    })
}

/// openat(2) of a path that does not exist: one traced syscall per
/// iteration and no close(2).
fn open_missing_loop(iters: u64) -> Cost {
    let path = c"/nonexistent-veil-overhead/x";
    timed(|| {
        for _ in 0..iters {
            // SAFETY: a NUL-terminated path; the call fails with ENOENT.
            std::hint::black_box(unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) });
        }
    })
}

/// A syscall none of the exporter's programs reports: what every other
/// syscall of the machine pays while the exporter is attached.
fn getppid_loop(iters: u64) -> Cost {
    timed(|| {
        for _ in 0..iters {
            // SAFETY: getppid has no arguments and cannot fail.
            std::hint::black_box(unsafe { libc::syscall(libc::SYS_getppid) });
        }
    })
}

fn connect_loop(iters: u64) -> Cost {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    timed(|| {
        let server = std::thread::spawn(move || {
            for _ in 0..iters {
                // Wait for the client's FIN so the client closes first and
                // TIME_WAIT stays on its side: a server-side TIME_WAIT on a
                // reused 4-tuple makes the next SYN wait 1 s for a retransmit.
                // The byte written first paces the client to the accepts, so
                // the accept queue never overflows (a dropped SYN costs 1 s).
                let (mut s, _) = l.accept().unwrap();
                s.write_all(b"k").unwrap();
                let _ = s.read(&mut [0u8; 1]);
            }
        });
        for _ in 0..iters {
            let mut c = TcpStream::connect(addr).unwrap();
            c.read_exact(&mut [0u8; 1]).unwrap();
        }
        server.join().unwrap();
    })
}

/// Opens of `path` at `rate` per second for `secs` seconds.
fn paced_open_loop(path: &Path, rate: u64, secs: u64) -> u64 {
    let n = rate * secs;
    let t = Instant::now();
    for i in 0..n {
        let due = Duration::from_nanos(i * 1_000_000_000 / rate);
        while t.elapsed() < due {
            std::hint::spin_loop();
        }
        drop(std::fs::File::open(path).unwrap());
    }
    n
}

fn ns(d: Duration, iters: u64) -> f64 {
    d.as_nanos() as f64 / iters as f64
}

/// Longer than the exporter's refresh of its BPF statistics (500 ms).
const STATS_REFRESH: Duration = Duration::from_millis(600);

const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// Rounds per scenario; the fastest is reported, since the machine is
/// shared and the minimum is the run least disturbed by other load.
const ROUNDS: usize = 5;

fn main() {
    let mut iters: u64 = 200_000;
    let mut rounds: usize = ROUNDS;
    let mut exe = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("veil-ebpf-exporter");
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--iters" => iters = args.next().unwrap().parse().unwrap(),
            "--rounds" => rounds = args.next().unwrap().parse().unwrap(),
            // Another build of the exporter, to compare two builds with
            // the same harness in the same minute.
            "--exporter" => exe = PathBuf::from(args.next().unwrap()),
            // Only the rows whose workload contains this (open, getppid,
            // connect), and no paced-rate table.
            "--only" => only = Some(args.next().unwrap()),
            // Just one loop, for a profiler (examples/tracing_cost.sh):
            // open-missing (openat of a path that does not exist, the
            // only syscall of the loop), open (open+close), getppid or
            // connect (connect+accept+1 byte+close).
            "--loop" => {
                let kind = args.next().unwrap();
                let n: u64 = args.next().unwrap().parse().unwrap();
                let c = match kind.as_str() {
                    "open-missing" => open_missing_loop(n),
                    "open" => {
                        let f = std::env::temp_dir().join("veil-overhead-loop.txt");
                        std::fs::write(&f, "x").unwrap();
                        open_loop(&f, n)
                    }
                    "getppid" => getppid_loop(n),
                    "connect" => connect_loop(n),
                    other => panic!("unknown loop {other}"),
                };
                println!("{:.1} CPU ns/op", ns(c.cpu, n));
                return;
            }
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(exe.exists(), "build the exporter first: {}", exe.display());
    let dir = PathBuf::from(format!("/tmp/veil-overhead-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    let plain = dir.join("plain.txt");
    let key = dir.join("keys/bench.key");
    std::fs::write(&plain, "x").unwrap();
    std::fs::write(&key, "x").unwrap();
    let rules = dir.join("rules.json");
    std::fs::write(
        &rules,
        format!(
            r#"{{"kernel": {{"report": "connections", "sensitive_paths": ["{}/keys/*"]}}}}"#,
            dir.display()
        ),
    )
    .unwrap();
    let conn_iters = (iters / 10).max(1000);

    // Warm up caches and the page cache.
    open_loop(&plain, iters / 10);
    connect_loop(conn_iters / 10);

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "iterations: {iters} opens and getppids, {conn_iters} connects (each also accepted); \
         per-op figures are the best of {rounds} alternating rounds; load average at start: {}\n",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("| workload | exporter | CPU ns/op without | CPU ns/op with | added CPU ns/op | wall ns/op without | wall ns/op with | BPF ns/op | events/s offered (events) | dropped | exporter CPU µs/event |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");

    let stats_before = std::fs::read_to_string(BPF_STATS).unwrap_or_default();
    let stats_on = std::fs::write(BPF_STATS, "0").is_ok();

    type Work<'a> = (&'a str, &'a str, bool, u64, Box<dyn Fn() -> Cost + 'a>);
    let runs: Vec<Work> = vec![
        (
            "open+close, plain file",
            "attached, task not watched",
            true,
            iters,
            Box::new(|| open_loop(&plain, iters)),
        ),
        (
            "getppid (no program reports it)",
            "attached, task watched",
            false,
            iters,
            Box::new(|| getppid_loop(iters)),
        ),
        (
            "open+close, plain file",
            "attached, path outside prefixes",
            false,
            iters,
            Box::new(|| open_loop(&plain, iters)),
        ),
        (
            "open+close, sensitive file",
            "attached, every open exported",
            false,
            iters,
            Box::new(|| open_loop(&key, iters)),
        ),
        (
            "connect+accept+1 byte+close",
            "attached, task not watched",
            true,
            conn_iters,
            Box::new(|| connect_loop(conn_iters)),
        ),
        (
            "connect+accept+1 byte+close",
            "attached, every connect and accept exported",
            false,
            conn_iters,
            Box::new(|| connect_loop(conn_iters)),
        ),
    ];
    for (work, mode, other, n, f) in runs {
        if only.as_deref().is_some_and(|o| !work.contains(o)) {
            continue;
        }
        // Rounds alternate without / with the exporter, so both see the
        // same background load; the best round of each is reported.
        let best = |a: &mut [f64; 2], c: Cost| {
            a[0] = a[0].min(ns(c.cpu, n));
            a[1] = a[1].min(ns(c.wall, n));
        };
        let (mut without, mut with) = ([f64::INFINITY; 2], [f64::INFINITY; 2]);
        let (mut seen, mut dropped, mut cpu, mut wall) = (0.0, 0.0, 0.0, 0.0);
        let mut bpf_ns = 0.0;
        for _ in 0..rounds {
            best(&mut without, f());
            let ex = start(&exe, &rules, other);
            let seen0 = ex.counter("veil_exporter_events_total");
            let cpu0 = ex.cpu();
            let t = Instant::now();
            best(&mut with, f());
            wall += t.elapsed().as_secs_f64();
            ex.settle();
            seen += ex.counter("veil_exporter_events_total") - seen0;
            dropped += ex.counter("veil_exporter_ringbuf_dropped_total");
            cpu += ex.cpu() - cpu0;
        }
        // One more run with the kernel's BPF statistics on: they add two
        // clock reads to every program run, so the timed rounds run
        // without them.
        if stats_on && std::fs::write(BPF_STATS, "1").is_ok() {
            let ex = start(&exe, &rules, other);
            // The exporter refreshes its BPF statistics every 500 ms.
            std::thread::sleep(STATS_REFRESH);
            let bpf0 = ex.bpf_ns();
            f();
            std::thread::sleep(STATS_REFRESH);
            bpf_ns = ex.bpf_ns() - bpf0;
            let _ = std::fs::write(BPF_STATS, "0");
        }
        let per_event = if seen > 100.0 {
            format!("{:.2}", cpu * 1e6 / seen)
        } else {
            "-".into()
        };
        let per_op = if stats_on {
            format!("{:.0}", bpf_ns / n as f64)
        } else {
            "-".into()
        };
        println!(
            "| {work} | {mode} | {:.0} | {:.0} | {:+.0} | {:.0} | {:.0} | {per_op} | {:.0} ({seen}) | {dropped} | {per_event} |",
            without[0],
            with[0],
            with[0] - without[0],
            without[1],
            with[1],
            (seen + dropped) / wall
        );
    }
    if stats_on {
        let _ = std::fs::write(BPF_STATS, stats_before.trim());
    }
    println!(
        "\nCPU ns/op: this process's CPU time per loop iteration (user and kernel, so \
         the BPF programs and the kernel's tracing paths are in it), best round; wall \
         ns/op the same in wall-clock time. BPF ns/op: the kernel's run time of all the \
         exporter's programs during the loop (and the 0.6 s after it, before the exporter's \
         statistics refresh), per loop iteration, over every task on the machine, from one \
         more run with kernel.bpf_stats_enabled=1 (the timed rounds run without: the \
         statistics add two clock reads to every program run){}.",
        if stats_on {
            ""
        } else {
            " (not measured: kernel.bpf_stats_enabled could not be set)"
        }
    );
    if only.is_some() {
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }

    // Loss at sustained rates: exported events per second for 4 s each.
    println!("\n| exported events/s, paced, 4 s | opens | events handled | dropped |");
    println!("|---:|---:|---:|---:|");
    for rate in [50_000u64, 100_000] {
        let ex = start(&exe, &rules, false);
        let seen0 = ex.counter("veil_exporter_events_total");
        let n = paced_open_loop(&key, rate, 4);
        ex.settle();
        let seen = ex.counter("veil_exporter_events_total") - seen0;
        let dropped = ex.counter("veil_exporter_ringbuf_dropped_total");
        println!("| {rate} | {n} | {seen} | {dropped} |");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
