//go:build ignore

// procevents reports process exec and exit to user space so that discovery
// follows processes as they come and go instead of polling /proc.
//
// Raw tracepoints need no tracefs mount. The programs report the current
// task's tgid, which bpf_get_current_pid_tgid gives in the initial PID
// namespace (the one the agent's /proc shows with hostPID), and its start
// time, read with CO-RE against the kernel's BTF, so that user space tells a
// reused PID from the process it knew.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

// The one field we need; CO-RE relocates its offset at load time.
struct task_struct {
	__u64 start_boottime;
} __attribute__((preserve_access_index));

char __license[] SEC("license") = "Dual MIT/GPL";

enum procevent_type {
	PROCEVENT_EXEC = 1,
	PROCEVENT_EXIT = 2,
};

struct procevent {
	// bpf_ktime_get_ns (CLOCK_MONOTONIC) when the event happened; user
	// space orders it against its own /proc reads.
	__u64 ktime_ns;
	// task->start_boottime of the thread-group leader, in ns; /proc/PID/stat
	// field 22 is this in clock ticks (USER_HZ).
	__u64 start_boottime_ns;
	__u32 type; // enum procevent_type
	__u32 pid;  // thread-group id (the PID user space sees)
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} procevents SEC(".maps");

// Events dropped because the ring buffer was full. User space rescans /proc
// when this grows, so a loss delays discovery but loses no process.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} procevents_lost SEC(".maps");

// Referenced so that bpf2go finds the types in BTF and generates Go twins.
const struct procevent *unused_procevent __attribute__((unused));
const enum procevent_type *unused_procevent_type __attribute__((unused));

static __always_inline void emit(__u32 type, __u32 tgid)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct procevent ev = {
		.ktime_ns = bpf_ktime_get_ns(),
		.start_boottime_ns = BPF_CORE_READ(task, start_boottime),
		.type = type,
		.pid = tgid,
	};

	// Waking the reader for each event costs a self-IPI, measured at about
	// 13 us per program run in a VM against 0.9 us for the rest of the
	// program; exec and exit are system-wide, so the reader polls instead
	// (every 50 ms) and is woken only when a burst has filled a quarter of
	// the ring.
	__u64 flags = BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_query(&procevents, BPF_RB_AVAIL_DATA) >=
	    bpf_ringbuf_query(&procevents, BPF_RB_RING_SIZE) / 4)
		flags = BPF_RB_FORCE_WAKEUP;

	if (bpf_ringbuf_output(&procevents, &ev, sizeof(ev), flags) == 0)
		return;

	__u32 zero = 0;
	__u64 *lost = bpf_map_lookup_elem(&procevents_lost, &zero);
	if (lost)
		*lost += 1; // per-CPU slot: no atomic needed
}

// sched_process_exec fires after the new image is installed and after
// de_thread, so the current task is the thread-group leader (de_thread gives
// a non-leader exec'ing thread the leader's pid and start time).
SEC("raw_tracepoint/sched_process_exec")
int procevents_exec(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();

	emit(PROCEVENT_EXEC, id >> 32);
	return 0;
}

// sched_process_exit fires for every exiting thread; only the leader's exit
// stands for the process. (A leader that calls pthread_exit before the other
// threads is reported early; the Go runtime never does that.)
SEC("raw_tracepoint/sched_process_exit")
int procevents_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;

	if ((__u32)id != tgid)
		return 0;
	emit(PROCEVENT_EXIT, tgid);
	return 0;
}
