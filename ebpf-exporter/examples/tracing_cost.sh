#!/bin/bash
# The kernel's cost of the exporter's syscall programs per syscall, from
# cpu-clock samples (perf record) of one loop of examples/overhead.rs: the
# samples in the syscall-tracing and BPF functions (the tracing slow path
# of syscall entry and exit, perf's syscall tracepoints, the raw
# tracepoint dispatch, the programs and their helpers and map lookups)
# times the sampling period, per loop iteration. Unlike timing the loop,
# the share of samples does not depend on how much other load the machine
# has, so two builds can be compared on a busy machine.
#
#   cargo build --release -p veil-ebpf-exporter --bins --examples
#   sudo ebpf-exporter/examples/tracing_cost.sh [LOOP] [ITERS] [EXPORTER...]
#
# LOOP: open-missing (default: openat of a missing path, the only syscall
# of the loop), open (open+close) or getppid (a syscall no program
# reports). The exporter runs with --watch-pid 1, so the loop's task is
# not watched: what a syscall dropped by the in-kernel filter costs
# (WATCH="--watch-comm envoy" and the like: another filter instead).
# Needs root and perf. Prints one line per exporter (and one without).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
loop=${1:-open-missing}
iters=${2:-1000000}
shift $(( $# >= 2 ? 2 : $# ))
exporters=("$@")
[ ${#exporters[@]} -gt 0 ] || exporters=("$here/target/release/veil-ebpf-exporter")
example="$here/target/release/examples/overhead"
period=25000 # ns of cpu-clock per sample
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pattern='syscall_trace_enter|syscall_exit_work|perf_syscall_|perf_trace_buf|perf_swevent|trace_call_bpf|bpf_trace_run|__bpf_trace|bpf_prog_|htab_|bpf_get_|bpf_probe_read|bpf_map_|bpf_ringbuf|bpf_loop|bpf_task_storage|bpf_local_storage'
measure() { # NAME
	perf record -q -e cpu-clock -c $period -o "$tmp/perf.data" -- "$example" --loop "$loop" "$iters" >/dev/null 2>&1
	perf report -i "$tmp/perf.data" --no-children --sort sym --stdio -F sample,sym 2>/dev/null |
		grep -v '^#' | grep '\[' |
		awk -v name="$1" -v n="$iters" -v p=$period -v pat="$pattern" '
			{ total += $1 } $0 ~ pat { traced += $1 }
			END { printf "%s: %.0f ns per iteration in all, %.1f in syscall tracing and BPF (%.1f%% of the samples)\n", name, total * p / n, traced * p / n, 100 * traced / total }'
}
echo "loop $loop, $iters iterations, load average $(cut -d' ' -f1-3 /proc/loadavg)"
measure "without the exporter"
for ex in "${exporters[@]}"; do
	"$ex" ${WATCH:---watch-pid 1} --metrics-addr off --output /dev/null --duration 120 2>/dev/null &
	pid=$!
	sleep 1.5
	measure "$ex"
	kill -TERM $pid
	wait $pid 2>/dev/null || true
done
