//! veil-ebpf-exporter: reports the kernel-level events a proxy-wasm filter
//! cannot see (process exec, sensitive file opens, outbound connects and
//! accepted connections) as OpenTelemetry log records in veil's event model,
//! one JSON object per line. Observes only; it never blocks or kills.

mod cgroup;
mod event;
mod export;
mod metrics;
mod otlp;
mod preflight;
mod rules;

use anyhow::{bail, Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, RingBufferBuilder};
use std::io::Write;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod skel {
    #![allow(
        clippy::all,
        clippy::pedantic,
        unused,
        non_camel_case_types,
        non_snake_case
    )]
    include!(concat!(env!("OUT_DIR"), "/veil.skel.rs"));
}
use skel::VeilSkelBuilder;

const USAGE: &str = "\
usage: veil-ebpf-exporter [options]

Reports exec, sensitive file opens, outbound connects and accepted
connections as OpenTelemetry log records (JSON lines). Needs root (BPF),
kernel BTF (/sys/kernel/btf/vmlinux) and tracefs (mounted if missing).

options:
  --bundle FILE         a veil policy bundle: its `kernel` section is the rules
  --rules FILE          a rules file, {\"kernel\": ...} (the section without a bundle)
                        neither: the embedded default bundle's kernel section
  --output FILE         append JSON lines to FILE; `-`: stdout; `none`: no lines
                        (default: stdout, or none when --otlp-endpoint is given)
  --otlp-endpoint URL   also export records over OTLP/HTTP (JSON) to URL,
                        e.g. http://127.0.0.1:4318 (path /v1/logs is added)
  --otlp-header K=V     an HTTP header for the collector (repeatable)
  --otlp-queue N        records queued for export before new ones are dropped (default 16384)
  --otlp-batch N        records per export request (default 512)
  --otlp-retries N      retries of a failed export, with exponential backoff (default 5)
  --metrics-addr ADDR   Prometheus endpoint (default 127.0.0.1:9464; `off` disables)
  --watch-pid PID       only report this process and its descendants (repeatable)
  --watch-comm NAME     only report tasks named NAME and their descendants (repeatable)
  --watch-cgroup PATH   only report tasks in this cgroup v2 (repeatable)
  --report MODE         matches | connections | all (overrides the rules file)
  --ringbuf-bytes N     ring buffer size, a power of two (default 4194304)
  --duration SECS       exit after SECS seconds (default: run until SIGINT/SIGTERM)
  --cgroup-root PATH     the cgroup v2 mount to resolve cgroup ids (default: found in mountinfo)
  --check-rules         validate the rules (--bundle / --rules) and exit
";

#[derive(Debug, Default)]
struct Args {
    bundle: Option<String>,
    rules: Option<String>,
    output: Option<String>,
    metrics_addr: Option<String>,
    pids: Vec<u32>,
    comms: Vec<String>,
    cgroups: Vec<String>,
    report: Option<String>,
    ringbuf_bytes: Option<u32>,
    duration: Option<f64>,
    check_rules: bool,
    otlp_endpoint: Option<String>,
    otlp_headers: Vec<(String, String)>,
    otlp_queue: Option<usize>,
    otlp_batch: Option<usize>,
    otlp_retries: Option<u32>,
    cgroup_root: Option<String>,
}

fn parse_args() -> Result<Args> {
    let mut a = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--bundle" => a.bundle = Some(val()?),
            "--rules" => a.rules = Some(val()?),
            "--output" => a.output = Some(val()?),
            "--metrics-addr" => a.metrics_addr = Some(val()?),
            "--watch-pid" => a.pids.push(val()?.parse().context("--watch-pid")?),
            "--watch-comm" => a.comms.push(val()?),
            "--watch-cgroup" => a.cgroups.push(val()?),
            "--report" => a.report = Some(val()?),
            "--ringbuf-bytes" => a.ringbuf_bytes = Some(val()?.parse().context("--ringbuf-bytes")?),
            "--duration" => a.duration = Some(val()?.parse().context("--duration")?),
            "--check-rules" => a.check_rules = true,
            "--otlp-endpoint" => a.otlp_endpoint = Some(val()?),
            "--otlp-header" => {
                let v = val()?;
                let (k, v) = v
                    .split_once('=')
                    .with_context(|| format!("--otlp-header {v}: expected KEY=VALUE"))?;
                a.otlp_headers
                    .push((k.trim().to_string(), v.trim().to_string()));
            }
            "--otlp-queue" => a.otlp_queue = Some(val()?.parse().context("--otlp-queue")?),
            "--otlp-batch" => a.otlp_batch = Some(val()?.parse().context("--otlp-batch")?),
            "--otlp-retries" => a.otlp_retries = Some(val()?.parse().context("--otlp-retries")?),
            "--cgroup-root" => a.cgroup_root = Some(val()?),
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n\n{USAGE}"),
        }
    }
    Ok(a)
}

const DEFAULT_RINGBUF_BYTES: u32 = 4 << 20;
/// Pending ring-buffer bytes that wake the exporter (about 100 events).
const WAKEUP_BYTES: u32 = 64 << 10;
/// The longest a record waits in the ring buffer when fewer than
/// WAKEUP_BYTES are pending.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn main() {
    match run() {
        Ok(()) => {}
        Err(e) => {
            eprintln!("veil-ebpf-exporter: error: {e:#}");
            std::process::exit(if e.is::<preflight::Missing>() { 2 } else { 1 });
        }
    }
}

fn run() -> Result<()> {
    let args = parse_args()?;
    let mut rules = rules::load(args.bundle.as_deref(), args.rules.as_deref())?;
    if let Some(r) = &args.report {
        rules.report = rules::Report::parse(r)
            .with_context(|| format!("--report {r}: expected matches, connections or all"))?;
    }
    rules.watch.pids.extend(&args.pids);
    rules.watch.comms.extend(args.comms.iter().cloned());
    rules.watch.cgroups.extend(args.cgroups.iter().cloned());
    if args.check_rules {
        println!(
            "rules ok: {} sensitive path patterns, kernel prefixes {:?}",
            rules.sensitive_paths.len(),
            rules::kernel_prefixes(&rules)
        );
        return Ok(());
    }

    preflight::check()?;

    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }

    let mut storage = MaybeUninit::uninit();
    let mut open = VeilSkelBuilder::default()
        .open(&mut storage)
        .context("opening the BPF object")?;
    let prefixes = rules::kernel_prefixes(&rules);
    {
        let ro = open
            .maps
            .rodata_data
            .as_deref_mut()
            .context("the BPF object has no .rodata")?;
        ro.self_tgid = std::process::id();
        ro.filter_targets = u32::from(!rules.watch.is_empty());
        ro.filter_cgroups = u32::from(!rules.watch.cgroups.is_empty());
        ro.filter_comms = u32::from(!rules.watch.comms.is_empty());
        ro.nr_openat = libc::SYS_openat;
        ro.nr_openat2 = libc::SYS_openat2;
        ro.nr_connect = libc::SYS_connect;
        ro.nr_accept = libc::SYS_accept;
        ro.nr_accept4 = libc::SYS_accept4;
        // open(2) exists on x86_64 only among the targets.
        #[cfg(target_arch = "x86_64")]
        {
            ro.nr_open = libc::SYS_open;
        }
        // Batch wakeups: a few dozen events per wakeup instead of one, and
        // the poll timer bounds the delay (POLL_INTERVAL).
        let ring = args.ringbuf_bytes.unwrap_or(DEFAULT_RINGBUF_BYTES);
        ro.wakeup_bytes = (ring / 8).min(WAKEUP_BYTES);
        if let Some(prefixes) = &prefixes {
            ro.filter_paths = 1;
            ro.n_prefixes = prefixes.len() as u32;
            for (slot, p) in ro.prefixes.iter_mut().zip(prefixes) {
                let (words, masks) = rules::prefix_words(p);
                slot.w = words;
                slot.m = masks;
            }
        }
    }
    if let Some(n) = args.ringbuf_bytes {
        if !n.is_power_of_two() || n < 4096 {
            bail!("--ringbuf-bytes must be a power of two of at least 4096, got {n}");
        }
        open.maps.events.set_max_entries(n)?;
    }
    let skel = open.load().map_err(|e| {
        anyhow::anyhow!(
            "loading the BPF programs into the kernel failed: {e}\n\
             (needs CAP_BPF and CAP_PERFMON or root, kernel BTF for CO-RE, and a kernel \
             with BPF ring buffers, 5.8 or later; libbpf's log above has the verifier's reason)"
        )
    })?;

    // Watched tasks.
    let cgroup_root = args.cgroup_root.as_ref().map(std::path::PathBuf::from);
    let resolver = cgroup::Resolver::new(cgroup_root.clone());
    for pid in &rules.watch.pids {
        skel.maps
            .watched_pids
            .update(&pid.to_ne_bytes(), &[1], MapFlags::ANY)?;
    }
    for comm in &rules.watch.comms {
        let mut key = [0u8; 16];
        for (d, s) in key.iter_mut().take(15).zip(comm.bytes()) {
            *d = s;
        }
        skel.maps.watched_comms.update(&key, &[1], MapFlags::ANY)?;
    }
    for cg in &rules.watch.cgroups {
        let id = resolver.id_of(cg).with_context(|| {
            format!(
                "watched cgroup {cg} not found under the cgroup v2 root {:?}",
                resolver.root()
            )
        })?;
        skel.maps
            .watched_cgroups
            .update(&id.to_ne_bytes(), &[1], MapFlags::ANY)?;
    }

    // Attach. The syscall programs are on the raw sys_enter / sys_exit
    // tracepoints and pick their syscalls by number (set above).
    let progs = &skel.progs;
    let programs = [
        ("sched_process_fork", &progs.veil_fork),
        ("sched_process_exec", &progs.veil_exec),
        ("sched_process_exit", &progs.veil_exit),
        ("sys_enter", &progs.veil_sys_enter),
        ("sys_exit", &progs.veil_sys_exit),
    ];
    let mut links = Vec::new();
    // (tracepoint, program fd) of what is attached, for the run-time stats.
    let mut attached: Vec<(&'static str, i32)> = Vec::new();
    for (name, prog) in programs {
        links.push(
            prog.attach()
                .with_context(|| format!("attaching tracepoint {name}"))?,
        );
        attached.push((name, prog.as_fd().as_raw_fd()));
    }

    let metrics = Arc::new(metrics::Metrics::default());
    let metrics_addr = args.metrics_addr.as_deref().unwrap_or("127.0.0.1:9464");
    if metrics_addr != "off" {
        let bound = metrics::serve(metrics_addr, metrics.clone())
            .with_context(|| format!("binding the metrics endpoint {metrics_addr}"))?;
        eprintln!("veil-ebpf-exporter: metrics on http://{bound}/metrics");
    }

    let otlp_cfg = match &args.otlp_endpoint {
        Some(url) => {
            let mut c = otlp::Config::new(url)?;
            c.headers = args.otlp_headers.clone();
            if let Some(n) = args.otlp_queue {
                c.queue = n.max(1);
            }
            if let Some(n) = args.otlp_batch {
                c.batch = n.max(1);
            }
            if let Some(n) = args.otlp_retries {
                c.retries = n;
            }
            Some(c)
        }
        None => None,
    };
    let out: Box<dyn Write> = match args.output.as_deref() {
        Some("-") => Box::new(std::io::stdout()),
        Some("none") => Box::new(std::io::sink()),
        Some(path) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening output {path}"))?,
        ),
        None if otlp_cfg.is_some() => Box::new(std::io::sink()),
        None => Box::new(std::io::stdout()),
    };
    let mut exporter = export::Exporter::new(
        rules.clone(),
        std::io::BufWriter::new(out),
        metrics.clone(),
        resolver,
    );
    if let Some(cfg) = otlp_cfg {
        eprintln!(
            "veil-ebpf-exporter: exporting OTLP/HTTP to {}",
            cfg.endpoint
        );
        let resource = otlp::resource(exporter.host());
        exporter = exporter.with_otlp(otlp::Sender::start(cfg, resource, metrics.clone())?);
    }
    let exporter = std::rc::Rc::new(std::cell::RefCell::new(exporter));
    let cb_exporter = exporter.clone();
    let mut rb = RingBufferBuilder::new();
    rb.add(&skel.maps.events, move |data: &[u8]| {
        cb_exporter.borrow_mut().handle(data);
        0
    })?;
    let rb = rb.build()?;

    eprintln!(
        "veil-ebpf-exporter: attached {} tracepoints; watching {}; open filter {}; report {:?}",
        links.len(),
        if rules.watch.is_empty() {
            "all tasks".to_string()
        } else {
            format!("{:?}", rules.watch)
        },
        match &prefixes {
            Some(p) => format!("prefixes {p:?}"),
            None => "off (every absolute path)".into(),
        },
        rules.report,
    );

    let deadline = args
        .duration
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    let mut last_counters = Instant::now() - Duration::from_secs(10);
    loop {
        let stop = STOP.load(Ordering::SeqCst) || deadline.is_some_and(|d| Instant::now() >= d);
        if stop {
            // Drain what is already in the ring buffer before leaving.
            let _ = rb.consume();
        } else {
            if let Err(e) = rb.poll(POLL_INTERVAL) {
                if e.kind() != libbpf_rs::ErrorKind::Interrupted {
                    return Err(e).context("polling the ring buffer");
                }
            }
            // Events submitted without a wakeup are read here.
            let _ = rb.consume();
        }
        exporter.borrow_mut().flush();
        if stop || last_counters.elapsed() >= Duration::from_millis(500) {
            last_counters = Instant::now();
            if let Ok(Some(per_cpu)) = skel
                .maps
                .counters
                .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
            {
                metrics.dropped.store(sum(&per_cpu), Ordering::Relaxed);
            }
            if let Ok(Some(per_cpu)) = skel
                .maps
                .counters
                .lookup_percpu(&1u32.to_ne_bytes(), MapFlags::ANY)
            {
                metrics.submitted.store(sum(&per_cpu), Ordering::Relaxed);
            }
            metrics.set_bpf_stats(
                attached
                    .iter()
                    .filter_map(|&(name, fd)| Some((name, bpf_run_stats(fd)?)))
                    .collect(),
            );
        }
        if stop {
            break;
        }
    }
    exporter.borrow_mut().finish(Duration::from_secs(5));
    eprintln!(
        "veil-ebpf-exporter: stopping: {} records exported, {} events dropped by the kernel",
        metrics.exported.load(Ordering::Relaxed),
        metrics.dropped.load(Ordering::Relaxed)
    );
    drop(links);
    Ok(())
}

/// (run time ns, runs) of a BPF program from its fd's fdinfo; the kernel
/// counts them only while `sysctl kernel.bpf_stats_enabled=1`.
fn bpf_run_stats(fd: i32) -> Option<(u64, u64)> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
    let field = |k: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(k)?.trim().parse::<u64>().ok())
    };
    Some((field("run_time_ns:")?, field("run_cnt:")?))
}

fn sum(per_cpu: &[Vec<u8>]) -> u64 {
    per_cpu
        .iter()
        .filter_map(|v| v.get(..8).and_then(|b| b.try_into().ok()))
        .map(u64::from_ne_bytes)
        .sum()
}
