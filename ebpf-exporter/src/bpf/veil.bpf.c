// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/*
 * veil's kernel-event exporter, BPF side. Tracepoints only (they load on
 * kernels without kprobes/fentry/LSM), CO-RE through vmlinux_min.h:
 * classic sched tracepoints for processes, and one BTF raw tracepoint on
 * each of sys_enter / sys_exit that switches on the syscall number for
 * opens, connects and accepts. A classic per-syscall tracepoint
 * (syscalls/sys_enter_openat) builds a perf trace record of the
 * syscall's arguments before its program runs, on every hit of every
 * task; the raw tracepoint hands over the registers and the program
 * drops an unwatched task's syscall first. Every program filters on the
 * stack first (is the task watched? does the path start with a watched
 * prefix?) and only then reserves ring-buffer space.
 * A failed reservation is counted per CPU (COUNTER_DROPPED), never silent.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define TASK_COMM_LEN 16
#define PATH_LEN 256
#define ARGS_LEN 256
#define MAX_PREFIXES 16
#define PREFIX_LEN 64
#define AF_INET 2
#define AF_INET6 10
#define AT_FDCWD -100
/* Path building: components are written backwards into the first half of
 * a 2*HALF scratch buffer, so every masked offset plus masked length
 * stays inside it (what the verifier needs to see). */
#define HALF 256
#define MAX_DEPTH 24
#define MAX_CGROUP_LEVELS 16

/* event.path_flags */
#define PATH_RESOLVED 1   /* relative in the syscall, made absolute here */
#define PATH_UNCLEAN 2    /* has //, /./ or /../: user space normalizes and matches */
#define PATH_UNRESOLVED 4 /* relative and its directory could not be read */

enum kind { EV_EXEC = 1, EV_EXIT = 2, EV_OPEN = 3, EV_CONNECT = 4, EV_ACCEPT = 5 };
enum counter { COUNTER_DROPPED = 0, COUNTER_SUBMITTED = 1, COUNTER_MAX = 2 };

/* Keep in sync with `RawEvent` in src/bpf.rs (checked by a size test). */
struct event {
	u64 ts_ns;
	u64 cgroup_id;
	u32 kind;
	u32 pid;
	u32 tid;
	u32 ppid;
	u32 uid;
	u32 gid;
	s64 ret;
	u32 flags;
	u16 family;
	u16 protocol;
	u16 lport;
	u16 rport;
	u32 path_len;
	u8 laddr[16];
	u8 raddr[16];
	char comm[TASK_COMM_LEN];
	char path[PATH_LEN];
	char args[ARGS_LEN];
	u32 args_len;
	u32 path_flags;
};

_Static_assert(sizeof(struct event) == 632, "struct event is decoded at fixed offsets by src/event.rs");

/* A prefix as 8-byte little-endian words and masks (mask 0 past its
 * end), so a path is compared a word at a time. */
#define PREFIX_WORDS (PREFIX_LEN / 8)
struct prefix {
	u64 w[PREFIX_WORDS];
	u64 m[PREFIX_WORDS];
};

/* Set by user space before load (read-only for the programs). */
const volatile u32 self_tgid = 0;
/* 1: only tasks in watched_pids / watched_cgroups / watched_comms (and
 * their descendants) are reported; 0: every task except the exporter. */
const volatile u32 filter_targets = 0;
/* Wake the consumer only once this many bytes wait in the ring buffer;
 * below it user space drains on its poll timer. A wakeup per event costs
 * the exporter a context switch per event (most of its CPU at connect
 * rates); 0 wakes on every event. */
const volatile u32 wakeup_bytes = 0;
/* 1: some watched_comms entry exists (else the comm is not looked up). */
const volatile u32 filter_comms = 0;
/* 1: some watched_cgroups entry exists (descendants are looked up). */
const volatile u32 filter_cgroups = 0;
/* 1: only absolute paths starting with one of prefixes[..n_prefixes]. */
const volatile u32 filter_paths = 0;
const volatile u32 n_prefixes = 0;
const volatile struct prefix prefixes[MAX_PREFIXES] = {};
/* This architecture's syscall numbers (user space sets them from libc's
 * SYS_* constants); -1: the syscall does not exist here (open(2) on
 * arm64). */
const volatile long nr_openat = -1;
const volatile long nr_openat2 = -1;
const volatile long nr_open = -1;
const volatile long nr_connect = -1;
const volatile long nr_accept = -1;
const volatile long nr_accept4 = -1;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_MAX);
	__type(key, u32);
	__type(value, u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u32);
	__type(value, u8);
} watched_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u64);
	__type(value, u8);
} watched_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, char[TASK_COMM_LEN]);
	__type(value, u8);
} watched_comms SEC(".maps");

/* Per cgroup id: 1 if it or an ancestor is in watched_cgroups, else 0;
 * computed on first sight so each syscall pays one lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u64);
	__type(value, u8);
} cgroup_verdicts SEC(".maps");

/* Per task: the last answer of watched() and what it depended on besides
 * the pid (the cgroup, the comm: 0 when not watched by them). A task
 * keeps its pid for life and a pid's watched_pids entry is only ever
 * added for a new task (fork) or before the programs are attached, so a
 * verdict stays right while the cgroup and comm are unchanged; exec, a
 * rename or a move to another cgroup is seen on the next syscall. */
struct verdict {
	u64 cgroup_id;
	u64 comm[2];
	u32 state; /* 0 none yet, VERDICT_WATCHED, VERDICT_NOT_WATCHED */
	u32 _pad;
};
#define VERDICT_WATCHED 1
#define VERDICT_NOT_WATCHED 2

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct verdict);
} verdicts SEC(".maps");

struct open_args {
	u32 flags;
	u32 len;
	u32 path_flags;
	/* 1 from an open's enter that reports it to its exit. Also pads
	 * path to 8-byte alignment: it is compared a word at a time. */
	u32 pending;
	char path[PATH_LEN];
};

struct scratch {
	char buf[2 * HALF];
};

/* Per-CPU working memory: too big for the 512-byte BPF stack. */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct scratch);
} path_scratch SEC(".maps");

/* An open's path and flags from its enter to its exit, per task: a
 * thread runs one syscall at a time, and its storage is a pointer away
 * (an LRU hash update at the enter and a delete at the exit of every
 * reported open cost more than the rest of its BPF work). The enter
 * also uses it as its working memory; freed with the task. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct open_args);
} inflight_opens SEC(".maps");

/* Opens pending in inflight_opens / entries in inflight_connects,
 * approximately: every
 * syscall exit of every task checks these first, so while nothing is in
 * flight (the common case) an exit costs a load, not a hash lookup. Only
 * ever too high (an entry evicted or left by a killed task), never too
 * low, so no event is missed. */
u64 inflight_n[2] = {};
#define INFLIGHT_OPENS 0
#define INFLIGHT_CONNECTS 1

struct connect_args {
	u32 fd;
	u16 family;
	u16 rport;
	u8 raddr[16];
	/* As open_args.pending. */
	u32 pending;
};

/* A connect's destination from its enter to its exit, per task, for the
 * reason given at inflight_opens. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct connect_args);
} inflight_connects SEC(".maps");

static __always_inline void count(u32 which)
{
	u64 *v = bpf_map_lookup_elem(&counters, &which);
	if (v)
		*v += 1;
}

static __always_inline bool watched(u32 tgid)
{
	if (tgid == self_tgid)
		return false;
	if (!filter_targets)
		return true;
	if (bpf_map_lookup_elem(&watched_pids, &tgid))
		return true;
	if (filter_cgroups) {
		u64 cg = bpf_get_current_cgroup_id();
		u8 *v = bpf_map_lookup_elem(&cgroup_verdicts, &cg);
		if (v) {
			if (*v)
				return true;
		} else {
			/* A watched cgroup covers its descendants: walk the
			 * ancestors from the root once per cgroup. */
			u8 verdict = 0;
			for (int level = 0; level < MAX_CGROUP_LEVELS; level++) {
				u64 anc = bpf_get_current_ancestor_cgroup_id(level);
				if (!anc)
					break;
				if (bpf_map_lookup_elem(&watched_cgroups, &anc)) {
					verdict = 1;
					break;
				}
				if (anc == cg)
					break;
			}
			bpf_map_update_elem(&cgroup_verdicts, &cg, &verdict, BPF_ANY);
			if (verdict)
				return true;
		}
	}
	if (!filter_comms)
		return false;
	char comm[TASK_COMM_LEN] = {};
	bpf_get_current_comm(comm, sizeof(comm));
	if (bpf_map_lookup_elem(&watched_comms, comm))
		return true;
	return false;
}

/* watched() for the syscall programs, through the task's cached verdict:
 * a task-storage lookup and compares instead of the pid, cgroup and comm
 * lookups on every syscall. */
static __always_inline bool watched_task(u32 tgid)
{
	if (tgid == self_tgid)
		return false;
	if (!filter_targets)
		return true;
	struct verdict *v = bpf_task_storage_get(&verdicts, bpf_get_current_task_btf(), 0,
						 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!v)
		return watched(tgid);
	u64 cg = 0;
	u64 comm[2] = {};
	if (filter_cgroups)
		cg = bpf_get_current_cgroup_id();
	if (filter_comms)
		bpf_get_current_comm(comm, sizeof(comm));
	if (v->state && v->cgroup_id == cg && v->comm[0] == comm[0] && v->comm[1] == comm[1])
		return v->state == VERDICT_WATCHED;
	bool w = watched(tgid);
	v->cgroup_id = cg;
	v->comm[0] = comm[0];
	v->comm[1] = comm[1];
	v->state = w ? VERDICT_WATCHED : VERDICT_NOT_WATCHED;
	return w;
}

/* `path` is 8-byte aligned and PATH_LEN long; bytes past its NUL are
 * stale, but a prefix longer than the path differs at the NUL. */
static __always_inline bool path_watched(const char *path)
{
	if (!filter_paths)
		return true;
	const u64 *pw = (const u64 *)path;
	u64 first = pw[0];
	for (u32 i = 0; i < MAX_PREFIXES; i++) {
		if (i >= n_prefixes)
			break;
		if ((first & prefixes[i].m[0]) != prefixes[i].w[0])
			continue;
		bool ok = true;
		for (u32 k = 1; k < PREFIX_WORDS; k++) {
			u64 m = prefixes[i].m[k];
			if (!m)
				break;
			if ((pw[k] & m) != prefixes[i].w[k]) {
				ok = false;
				break;
			}
		}
		if (ok)
			return true;
	}
	return false;
}

static __always_inline struct event *reserve(u32 kind)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(COUNTER_DROPPED);
		return 0;
	}
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	u64 pid_tgid = bpf_get_current_pid_tgid();
	u64 uid_gid = bpf_get_current_uid_gid();
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->kind = kind;
	e->pid = pid_tgid >> 32;
	e->tid = (u32)pid_tgid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = (u32)uid_gid;
	e->gid = uid_gid >> 32;
	e->ret = 0;
	e->flags = 0;
	e->family = 0;
	e->protocol = 0;
	e->lport = 0;
	e->rport = 0;
	e->path_len = 0;
	e->args_len = 0;
	e->path_flags = 0;
	__builtin_memset(e->laddr, 0, sizeof(e->laddr));
	__builtin_memset(e->raddr, 0, sizeof(e->raddr));
	e->path[0] = 0;
	e->args[0] = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	return e;
}

static __always_inline void submit(struct event *e)
{
	u64 flags = 0;
	if (wakeup_bytes)
		flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes
				? BPF_RB_FORCE_WAKEUP
				: BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(e, flags);
	count(COUNTER_SUBMITTED);
}

/* ---- processes ---------------------------------------------------- */

SEC("tracepoint/sched/sched_process_fork")
int veil_fork(struct trace_event_raw_sched_process_fork *ctx)
{
	if (!filter_targets)
		return 0;
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!watched(tgid))
		return 0;
	u32 child = ctx->child_pid;
	u8 one = 1;
	bpf_map_update_elem(&watched_pids, &child, &one, BPF_ANY);
	return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int veil_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!watched(tgid))
		return 0;
	struct event *e = reserve(EV_EXEC);
	if (!e)
		return 0;
	unsigned int off = ctx->__data_loc_filename & 0xFFFF;
	long n = bpf_probe_read_kernel_str(e->path, sizeof(e->path), (void *)ctx + off);
	e->path_len = n > 0 ? n - 1 : 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	unsigned long start = BPF_CORE_READ(task, mm, arg_start);
	unsigned long end = BPF_CORE_READ(task, mm, arg_end);
	unsigned long len = end - start;
	if (len > ARGS_LEN)
		len = ARGS_LEN;
	if (end > start && bpf_probe_read_user(e->args, len, (void *)start) == 0)
		e->args_len = len;
	submit(e);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int veil_exit(struct trace_event_raw_sched_process_template *ctx)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	u32 tgid = pid_tgid >> 32;
	if (tgid != (u32)pid_tgid)
		return 0; /* a thread, not the process */
	if (!watched(tgid))
		return 0;
	struct event *e = reserve(EV_EXIT);
	if (!e)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	e->ret = BPF_CORE_READ(task, exit_code);
	submit(e);
	if (filter_targets)
		bpf_map_delete_elem(&watched_pids, &tgid);
	return 0;
}

/* ---- file opens --------------------------------------------------- */

/* The file behind `fd` of the current task, or 0. */
static __always_inline struct file *fd_file(u32 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt)
		return 0;
	if (fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

struct walk {
	struct scratch *s;
	struct dentry *d;
	struct vfsmount *vm;
	int off;
	int failed;
};

/* One step of the walk up from a directory: prepend "/name", or cross
 * from a mount's root to its mountpoint. 1 stops bpf_loop. */
static long walk_step(u32 i, struct walk *w)
{
	struct dentry *d = w->d;
	struct vfsmount *vm = w->vm;
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	struct dentry *mnt_root = BPF_CORE_READ(vm, mnt_root);
	if (d == mnt_root || d == parent) {
		if (d != mnt_root)
			return 1; /* a detached dentry: stop here */
		struct mount *m = (void *)vm - bpf_core_field_offset(struct mount, mnt);
		struct mount *up = BPF_CORE_READ(m, mnt_parent);
		if (!up || up == m)
			return 1; /* the root of the namespace */
		w->d = BPF_CORE_READ(m, mnt_mountpoint);
		w->vm = (void *)up + bpf_core_field_offset(struct mount, mnt);
		return 0;
	}
	u32 len = BPF_CORE_READ(d, d_name.len);
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);
	int off = w->off;
	if (len == 0 || len >= HALF || off <= (int)len || off > HALF) {
		w->failed = 1;
		return 1;
	}
	off -= len;
	bpf_probe_read_kernel(&w->s->buf[off & (HALF - 1)], len & (HALF - 1), name);
	off -= 1;
	w->s->buf[off & (HALF - 1)] = '/';
	w->off = off;
	w->d = parent;
	if (i == MAX_DEPTH - 1)
		w->failed = 1;
	return 0;
}

/*
 * Makes a->path (relative, a->len bytes) absolute against the directory
 * (d, vm): walks the dentries up to the root, crossing mounts, writing
 * the components backwards into the scratch buffer, then copies the
 * result back. Paths are as the task's mount namespace names them (a
 * container's /etc/shadow is /etc/shadow). bpf_loop keeps the verifier's
 * work to one pass over the step. Returns 0 or -1 (too deep or too long:
 * the caller sends the relative path, flagged).
 */
static __always_inline int make_absolute(struct open_args *a, struct dentry *d,
					 struct vfsmount *vm)
{
	u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!s || !d || !vm)
		return -1;
	u32 tail = a->len;
	if (tail == 0 || tail >= HALF - 1)
		return -1;
	int off = HALF - tail;
	bpf_probe_read_kernel(&s->buf[off & (HALF - 1)], tail & (HALF - 1), a->path);
	off -= 1;
	s->buf[off & (HALF - 1)] = '/';
	struct walk w = { .s = s, .d = d, .vm = vm, .off = off, .failed = 0 };
	bpf_loop(MAX_DEPTH, walk_step, &w, 0);
	off = w.off;
	if (w.failed || off < 1 || off >= HALF)
		return -1;
	u32 n = HALF - off;
	bpf_probe_read_kernel(a->path, n & (HALF - 1), &s->buf[off & (HALF - 1)]);
	a->path[n & (PATH_LEN - 1)] = 0;
	a->len = n;
	return 0;
}

/* High bit set in each byte of v that is zero (and, rarely, in a 0x01
 * byte just above one: a false alarm, never a miss). */
static __always_inline u64 zero_bytes(u64 v)
{
	return (v - 0x0101010101010101ULL) & ~v & 0x8080808080808080ULL;
}

/* Whether a path has an empty, `.` or `..` component, which the prefix
 * filter cannot judge (`/tmp/../etc/shadow`, `/etc//shadow`); hidden
 * names (`/root/.ssh`) are clean. A word-at-a-time scan for `/` followed
 * by `/` or `.` finds candidates; only those pay the exact byte check. */
static __always_inline bool unclean(const char *path, u32 len)
{
	const u64 *pw = (const u64 *)path;
	u64 carry = 0;
	bool candidate = false;
	for (u32 k = 0; k < PATH_LEN / 8; k++) {
		if (k * 8 > len)
			break;
		u64 x = pw[k];
		u64 slash = zero_bytes(x ^ 0x2f2f2f2f2f2f2f2fULL);
		u64 next = slash | zero_bytes(x ^ 0x2e2e2e2e2e2e2e2eULL);
		if (((slash << 8) | carry) & next) {
			candidate = true;
			break;
		}
		carry = slash >> 56;
	}
	if (!candidate)
		return false;
	for (u32 i = 0; i + 3 < PATH_LEN; i++) {
		if (i + 1 >= len)
			break;
		if (path[i] != '/')
			continue;
		char c1 = path[i + 1];
		if (c1 == '/')
			return true;
		if (c1 != '.')
			continue;
		char c2 = i + 2 < len ? path[i + 2] : '/';
		if (c2 == '/')
			return true;
		char c3 = i + 3 < len ? path[i + 3] : '/';
		if (c2 == '.' && c3 == '/')
			return true;
	}
	return false;
}

static __always_inline int open_enter(int dirfd, const char *filename, u32 flags)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!watched_task(pid_tgid >> 32))
		return 0;
	struct open_args *a = bpf_task_storage_get(&inflight_opens, bpf_get_current_task_btf(), 0,
						   BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!a)
		return 0;
	/* Not pending: an exit pending from before (a task killed between
	 * the two) is not reported with this path. */
	if (a->pending) {
		a->pending = 0;
		__sync_fetch_and_add(&inflight_n[INFLIGHT_OPENS], -1);
	}
	long n = bpf_probe_read_user_str(a->path, sizeof(a->path), filename);
	if (n <= 1)
		return 0;
	a->flags = flags;
	a->len = n - 1;
	a->path_flags = 0;
	if (a->path[0] != '/') {
		/* `cd /etc && cat shadow`, openat(dirfd, "shadow"): resolve
		 * against the cwd or the directory fd before filtering. */
		struct dentry *d = 0;
		struct vfsmount *vm = 0;
		if (dirfd == AT_FDCWD) {
			struct task_struct *task = (struct task_struct *)bpf_get_current_task();
			d = BPF_CORE_READ(task, fs, pwd.dentry);
			vm = BPF_CORE_READ(task, fs, pwd.mnt);
		} else if (dirfd >= 0) {
			struct file *f = fd_file((u32)dirfd);
			if (f) {
				d = BPF_CORE_READ(f, f_path.dentry);
				vm = BPF_CORE_READ(f, f_path.mnt);
			}
		}
		if (make_absolute(a, d, vm) == 0)
			a->path_flags = PATH_RESOLVED;
		else
			a->path_flags = PATH_UNRESOLVED;
	}
	if (!(a->path_flags & PATH_UNRESOLVED) && !path_watched(a->path)) {
		if (!unclean(a->path, a->len))
			return 0;
		a->path_flags |= PATH_UNCLEAN;
	}
	a->pending = 1;
	__sync_fetch_and_add(&inflight_n[INFLIGHT_OPENS], 1);
	return 0;
}

static __always_inline int open_exit(long ret)
{
	if (!inflight_n[INFLIGHT_OPENS])
		return 0;
	struct open_args *a = bpf_task_storage_get(&inflight_opens, bpf_get_current_task_btf(), 0, 0);
	if (!a || !a->pending)
		return 0;
	a->pending = 0;
	__sync_fetch_and_add(&inflight_n[INFLIGHT_OPENS], -1);
	struct event *e = reserve(EV_OPEN);
	if (e) {
		e->ret = ret;
		e->flags = a->flags;
		e->path_len = a->len;
		e->path_flags = a->path_flags;
		bpf_probe_read_kernel(e->path, sizeof(e->path), a->path);
		submit(e);
	}
	return 0;
}

/* ---- connections -------------------------------------------------- */

/* The socket behind `fd` of the current task, or 0. */
static __always_inline struct sock *fd_sock(u32 fd)
{
	struct file *f = fd_file(fd);
	if (!f)
		return 0;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	if (!sock)
		return 0;
	return BPF_CORE_READ(sock, sk);
}

/* Fills family, protocol, local and remote address/port from `sk`. */
static __always_inline void fill_tuple(struct event *e, struct sock *sk)
{
	u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e->family = family;
	e->protocol = BPF_CORE_READ(sk, sk_protocol);
	e->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	e->rport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET) {
		u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		u32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(e->laddr, &l, 4);
		__builtin_memcpy(e->raddr, &r, 4);
	} else if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&e->laddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&e->raddr, sk, __sk_common.skc_v6_daddr);
	}
}

static __always_inline int connect_enter(u32 fd, const void *uaddr)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!watched_task(pid_tgid >> 32))
		return 0;
	struct connect_args a = {};
	if (bpf_probe_read_user(&a.family, sizeof(a.family), uaddr))
		return 0;
	if (a.family == AF_INET) {
		bpf_probe_read_user(&a.rport, 2, uaddr + 2);
		bpf_probe_read_user(a.raddr, 4, uaddr + 4);
	} else if (a.family == AF_INET6) {
		bpf_probe_read_user(&a.rport, 2, uaddr + 2);
		bpf_probe_read_user(a.raddr, 16, uaddr + 8);
	} else {
		return 0; /* unix sockets and friends are not egress */
	}
	a.rport = __builtin_bswap16(a.rport);
	a.fd = fd;
	struct connect_args *slot = bpf_task_storage_get(
		&inflight_connects, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!slot)
		return 0;
	if (!slot->pending)
		__sync_fetch_and_add(&inflight_n[INFLIGHT_CONNECTS], 1);
	a.pending = 1;
	*slot = a;
	return 0;
}

static __always_inline int connect_exit(long ret)
{
	if (!inflight_n[INFLIGHT_CONNECTS])
		return 0;
	struct connect_args *a =
		bpf_task_storage_get(&inflight_connects, bpf_get_current_task_btf(), 0, 0);
	if (!a || !a->pending)
		return 0;
	a->pending = 0;
	__sync_fetch_and_add(&inflight_n[INFLIGHT_CONNECTS], -1);
	struct event *e = reserve(EV_CONNECT);
	if (e) {
		e->ret = ret;
		struct sock *sk = fd_sock(a->fd);
		if (sk)
			fill_tuple(e, sk);
		/* The destination asked for is the truth for a failed connect. */
		e->family = a->family;
		e->rport = a->rport;
		__builtin_memcpy(e->raddr, a->raddr, 16);
		submit(e);
	}
	return 0;
}

static __always_inline int accept_exit(long fd)
{
	if (fd < 0)
		return 0;
	if (!watched_task(bpf_get_current_pid_tgid() >> 32))
		return 0;
	struct sock *sk = fd_sock((u32)fd);
	if (!sk)
		return 0;
	u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	struct event *e = reserve(EV_ACCEPT);
	if (!e)
		return 0;
	e->ret = fd;
	fill_tuple(e, sk);
	submit(e);
	return 0;
}

/* ---- the syscall tracepoints ------------------------------------- */

#if defined(__TARGET_ARCH_arm64)
#define SYSCALL_NR(r) ((long)(r)->syscallno)
#define SYSCALL_ARG0(r) ((r)->orig_x0)
#define SYSCALL_ARG1(r) ((r)->regs[1])
#define SYSCALL_ARG2(r) ((r)->regs[2])
#define SYSCALL_COMPAT() false
#else
#define SYSCALL_NR(r) ((long)(r)->orig_ax)
#define SYSCALL_ARG0(r) ((r)->di)
#define SYSCALL_ARG1(r) ((r)->si)
#define SYSCALL_ARG2(r) ((r)->dx)
/* A 32-bit task's syscall numbers are another table (TS_COMPAT in
 * thread_info.status); the classic syscall tracepoints skip them too. */
#define TS_COMPAT 0x0002
#define SYSCALL_COMPAT() (bpf_get_current_task_btf()->thread_info.status & TS_COMPAT)
#endif

static __always_inline bool is_open(long id)
{
	return id == nr_openat || id == nr_openat2 || (nr_open >= 0 && id == nr_open);
}

/* Every syscall of every task comes through here: anything but the few
 * syscalls reported returns after a few compares. */
SEC("tp_btf/sys_enter")
int veil_sys_enter(u64 *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx[0];
	long id = (long)ctx[1];
	if (id == nr_openat) {
		if (SYSCALL_COMPAT())
			return 0;
		return open_enter((int)SYSCALL_ARG0(regs), (const char *)SYSCALL_ARG1(regs),
				  (u32)SYSCALL_ARG2(regs));
	}
	if (id == nr_connect) {
		if (SYSCALL_COMPAT())
			return 0;
		return connect_enter((u32)SYSCALL_ARG0(regs), (const void *)SYSCALL_ARG1(regs));
	}
	if (id == nr_openat2) {
		if (SYSCALL_COMPAT())
			return 0;
		u64 flags = 0;
		bpf_probe_read_user(&flags, sizeof(flags), (void *)SYSCALL_ARG2(regs));
		return open_enter((int)SYSCALL_ARG0(regs), (const char *)SYSCALL_ARG1(regs),
				  (u32)flags);
	}
	if (nr_open >= 0 && id == nr_open) {
		if (SYSCALL_COMPAT())
			return 0;
		return open_enter(AT_FDCWD, (const char *)SYSCALL_ARG0(regs),
				  (u32)SYSCALL_ARG1(regs));
	}
	return 0;
}

SEC("tp_btf/sys_exit")
int veil_sys_exit(u64 *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx[0];
	long ret = (long)ctx[1];
	long id = SYSCALL_NR(regs);
	/* Opens and connects have work here only if their enter stashed
	 * some, which it never does for a 32-bit task. */
	if (is_open(id))
		return open_exit(ret);
	if (id == nr_connect)
		return connect_exit(ret);
	if (id == nr_accept4 || id == nr_accept) {
		if (SYSCALL_COMPAT())
			return 0;
		return accept_exit(ret);
	}
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
