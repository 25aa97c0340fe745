//! veil-ebpf-exporter: reports the kernel-level events a proxy-wasm filter
//! cannot see (process exec, sensitive file opens, outbound connects and
//! accepted connections) as OpenTelemetry log records in veil's event model,
//! one JSON object per line. Observes only; it never blocks or kills.

mod cgroup;
mod event;
mod export;
mod glob;
mod metrics;
mod preflight;
mod rules;

use anyhow::{bail, Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, RingBufferBuilder};
use std::io::Write;
use std::mem::MaybeUninit;
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
  --rules FILE          kernel rules (JSON, a bundle's `kernel` section); default rules otherwise
  --output FILE         append records to FILE (default: stdout)
  --metrics-addr ADDR   Prometheus endpoint (default 127.0.0.1:9464; `off` disables)
  --watch-pid PID       only report this process and its descendants (repeatable)
  --watch-comm NAME     only report tasks named NAME and their descendants (repeatable)
  --watch-cgroup PATH   only report tasks in this cgroup v2 (repeatable)
  --report MODE         matches | connections | all (overrides the rules file)
  --ringbuf-bytes N     ring buffer size, a power of two (default 4194304)
  --duration SECS       exit after SECS seconds (default: run until SIGINT/SIGTERM)
  --cgroup-root PATH     the cgroup v2 mount to resolve cgroup ids (default: found in mountinfo)
  --check-rules         validate --rules and exit
";

#[derive(Debug, Default)]
struct Args {
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
    cgroup_root: Option<String>,
}

fn parse_args() -> Result<Args> {
    let mut a = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
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
    let mut rules = match &args.rules {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("reading rules {path}"))?;
            rules::Rules::from_json(&text).with_context(|| format!("rules {path}"))?
        }
        None => rules::Rules::default(),
    };
    if let Some(r) = &args.report {
        rules.report = serde_json::from_value(serde_json::Value::String(r.clone()))
            .with_context(|| format!("--report {r}: expected matches, connections or all"))?;
    }
    rules.watch.pids.extend(&args.pids);
    rules.watch.comms.extend(args.comms.iter().cloned());
    rules.watch.cgroups.extend(args.cgroups.iter().cloned());
    if args.check_rules {
        println!(
            "rules ok: {} sensitive path patterns, kernel prefixes {:?}",
            rules.sensitive_paths.len(),
            rules.kernel_prefixes()
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
    let prefixes = rules.kernel_prefixes();
    {
        let ro = open
            .maps
            .rodata_data
            .as_deref_mut()
            .context("the BPF object has no .rodata")?;
        ro.self_tgid = std::process::id();
        ro.filter_targets = u32::from(!rules.watch.is_empty());
        if let Some(prefixes) = &prefixes {
            ro.filter_paths = 1;
            ro.n_prefixes = prefixes.len() as u32;
            for (slot, p) in ro.prefixes.iter_mut().zip(prefixes) {
                slot.len = p.len() as u32;
                for (d, s) in slot.s.iter_mut().zip(p.bytes()) {
                    *d = s as i8;
                }
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

    // Attach: open(2) and accept(2) tracepoints exist only on some
    // architectures and openat2 only since 5.6, so those are optional.
    let progs = &skel.progs;
    let required = [
        ("sched_process_fork", &progs.veil_fork),
        ("sched_process_exec", &progs.veil_exec),
        ("sched_process_exit", &progs.veil_exit),
        ("sys_enter_openat", &progs.veil_openat),
        ("sys_exit_openat", &progs.veil_openat_exit),
        ("sys_enter_connect", &progs.veil_connect),
        ("sys_exit_connect", &progs.veil_connect_exit),
        ("sys_exit_accept4", &progs.veil_accept4_exit),
    ];
    let optional = [
        ("sys_enter_openat2", &progs.veil_openat2),
        ("sys_exit_openat2", &progs.veil_openat2_exit),
        ("sys_enter_open", &progs.veil_open),
        ("sys_exit_open", &progs.veil_open_exit),
        ("sys_exit_accept", &progs.veil_accept_exit),
    ];
    let mut links = Vec::new();
    for (name, prog) in required {
        links.push(
            prog.attach()
                .with_context(|| format!("attaching tracepoint {name}"))?,
        );
    }
    let mut skipped = Vec::new();
    for (name, prog) in optional {
        match prog.attach() {
            Ok(l) => links.push(l),
            Err(_) => skipped.push(name),
        }
    }

    let metrics = Arc::new(metrics::Metrics::default());
    let metrics_addr = args.metrics_addr.as_deref().unwrap_or("127.0.0.1:9464");
    if metrics_addr != "off" {
        let bound = metrics::serve(metrics_addr, metrics.clone())
            .with_context(|| format!("binding the metrics endpoint {metrics_addr}"))?;
        eprintln!("veil-ebpf-exporter: metrics on http://{bound}/metrics");
    }

    let out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening output {path}"))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    let exporter = std::rc::Rc::new(std::cell::RefCell::new(export::Exporter::new(
        rules.clone(),
        std::io::BufWriter::new(out),
        metrics.clone(),
        resolver,
    )));
    let cb_exporter = exporter.clone();
    let mut rb = RingBufferBuilder::new();
    rb.add(&skel.maps.events, move |data: &[u8]| {
        cb_exporter.borrow_mut().handle(data);
        0
    })?;
    let rb = rb.build()?;

    eprintln!(
        "veil-ebpf-exporter: attached {} tracepoints{}; watching {}; open filter {}; report {:?}",
        links.len(),
        if skipped.is_empty() {
            String::new()
        } else {
            format!(" (not on this kernel: {})", skipped.join(", "))
        },
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
        } else if let Err(e) = rb.poll(Duration::from_millis(100)) {
            if e.kind() != libbpf_rs::ErrorKind::Interrupted {
                return Err(e).context("polling the ring buffer");
            }
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
        }
        if stop {
            break;
        }
    }
    eprintln!(
        "veil-ebpf-exporter: stopping: {} records exported, {} events dropped by the kernel",
        metrics.exported.load(Ordering::Relaxed),
        metrics.dropped.load(Ordering::Relaxed)
    );
    drop(links);
    Ok(())
}

fn sum(per_cpu: &[Vec<u8>]) -> u64 {
    per_cpu
        .iter()
        .filter_map(|v| v.get(..8).and_then(|b| b.try_into().ok()))
        .map(u64::from_ne_bytes)
        .sum()
}
