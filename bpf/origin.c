//go:build ignore

// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// origin.c: capture, at the entry of a Go HTTP handler or a framework's
// dispatch point, the handler's PC, a few caller PCs and the dd-trace-go span
// active in the request's context.
//
// One program serves every framework: each probe's attach cookie indexes a
// recipe (struct recipe) saying where, from the registers at the probe, the
// handler's PC and the request's context.Context are. User space writes the
// recipes from the target binary's own type information, so a new framework
// is a Go description, not a change here.
//
// Probes usually sit after the stack-check prologue (at PUSHQ BP), where the
// kernel emulates the instruction instead of single-stepping it; the Go
// register ABI still holds the arguments there, [RSP] is the return address
// and RBP the caller's frame pointer. A recipe may also place its probe on a
// call instruction inside a function body (RECIPE_IN_BODY): there RBP is the
// function's own frame pointer.
//
// Everything binary-specific (struct offsets, type and itab addresses) comes
// from user space through maps.

#include <linux/bpf.h>
#include <linux/types.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define MAX_CTX_HOPS 32
#define MAX_STACK 8

// Where a recipe takes the handler's PC from.
enum pc_kind {
	PC_SELF = 1,       // the probed function itself: rip - recipe.probe_off
	PC_LOAD = 2,       // the word the pc chain ends on (a funcval's code pointer)
	PC_SLICE_LAST = 3, // the chain ends on a []func: the last element's code pointer
};

// Recipe flags.
enum recipe_flags {
	RECIPE_IN_BODY = 1, // probe inside the body: the stack walk starts at RBP
	RECIPE_CTX_KV = 2,  // the ctx chain ends on a key/value slice (struct recipe)
};

// Registers a chain starts from, Go's amd64 ABI order (arguments in RAX, RBX,
// RCX, RDI, RSI, R8-R11; RDX the closure context).
enum reg {
	REG_RAX = 0,
	REG_RBX = 1,
	REG_RCX = 2,
	REG_RDI = 3,
	REG_RSI = 4,
	REG_R8 = 5,
	REG_R9 = 6,
	REG_R10 = 7,
	REG_R11 = 8,
	REG_RDX = 9,
};

// A chain locates a value from a register: a = reg; a = *(a + off[i]) for
// each of the first n-1 offsets; the value is read at a + off[n-1] (8 bytes
// for a PC, 16 for an interface or a slice's pointer and length). A ctx
// chain with n = 0 names an interface passed in registers: its itab in reg,
// its data in the next register of the ABI order (a method's interface
// argument).
#define CHAIN_MAX 4
struct chain {
	__u8 reg; // enum reg
	__u8 n;   // 1..CHAIN_MAX offsets
	__u16 off[CHAIN_MAX];
};

// Bounds of a RECIPE_CTX_KV search: pairs looked at, key bytes compared.
enum kv_limits {
	KV_MAX = 8,
	KV_KEY_MAX = 32,
};

// A recipe says, for one probe, where the handler and the request's
// context.Context are. Stored in the recipes array at the attach cookie.
//
// With RECIPE_CTX_KV the ctx chain ends on a slice of {key, value any}
// pairs (fasthttp's per-request user values): the context is the value of
// the first of at most KV_MAX pairs whose key is a string (type key_type)
// equal to key[:key_len]. Such a value is an any: its first word is a type,
// not an itab, and ctx_types holds context nodes under both.
struct recipe {
	__u8 pc_kind;     // enum pc_kind
	__u8 flags;       // enum recipe_flags
	__u16 probe_off;  // bytes from the function's entry to the probe
	struct chain pc;  // PC_LOAD, PC_SLICE_LAST
	struct chain ctx; // ends on the context.Context interface (tab, data)
	__u8 key_len;     // RECIPE_CTX_KV: 1..KV_KEY_MAX
	__u64 key_type;   // RECIPE_CTX_KV: file address of the string type
	char key[KV_KEY_MAX];
};

#define MAX_RECIPES 16384

// Context node kinds (ctx_types values).
enum node_kind {
	NODE_PARENT = 1,   // struct whose field 0 is the parent context.Context
	NODE_VALUE = 2,    // *context.valueCtx: parent at 0, val (any) at val_off
	NODE_SPAN_CTX = 3, // dd-trace-go v2 *tracer.spanCtx: *Span at val_off
	NODE_LINK = 4,     // struct whose interface field at val_off leads on
			   // (a stream's context or the stream it wraps)
};

// Event flags.
enum event_flags {
	FLAG_HAS_SPAN = 1,
	FLAG_STACK_TRUNC = 2,
	FLAG_TRACE128 = 4,
};

// Span layout: where the IDs are in a span struct (v1 tracer.span and v2
// tracer.Span share this shape, with different offsets).
struct span_layout {
	__u16 span_id;   // uint64 span ID
	__u16 trace_lo;  // uint64 low 64 bits of the trace ID
	__u16 ctx;       // pointer to the span context; 0xffff when absent
	__u16 trace128;  // [16]byte big-endian trace ID inside the span context
	__u16 sc_span_id; // uint64 span ID inside the span context
	__u16 flags;     // LAYOUT_*
};

// The span context's span ID lies less than SC_IDS_MAX bytes after the
// start of its trace ID (both tracers): one read of the span context yields
// every ID.
enum layout_flags {
	LAYOUT_SC_IDS = 1,
};
enum layout_limits {
	SC_IDS_MAX = 64,
};

// NODE_SPAN_CTX: the node's *SpanContext snapshot is the word after its
// *Span, so the IDs are one read away from the node.
enum node_flags {
	NODE_F_SNAPSHOT = 1,
};

// Per-process configuration, keyed by tgid.
struct proc_cfg {
	__u64 bias;      // runtime address - file virtual address (PIE)
	__u32 binary_id; // key into the per-binary maps
	__u32 _pad;
};

struct type_key {
	__u32 binary_id;
	__u32 _pad;
	__u64 addr; // file virtual address of an itab or type descriptor
};

struct node_info {
	__u8 kind;
	__u8 flags;             // NODE_F_*
	__u16 val_off;          // NODE_VALUE: offset of val; NODE_SPAN_CTX: of span
	struct span_layout span; // NODE_SPAN_CTX: layout of the *Span it holds
};

struct event {
	__u32 pid;
	__u32 tid;
	__u64 ktime;
	__u64 handler_pc; // runtime address
	__u64 trace_hi;
	__u64 trace_lo;
	__u64 span_id;
	__u64 cookie;
	__u8 flags;
	__u8 nstack;
	__u8 hops;
	__u8 _pad[5];
	__u64 stack[MAX_STACK]; // return addresses, innermost first
};

// Counters, per CPU, indexed by the STAT_* values. Every run ends in
// exactly one of NO_PROC, RINGBUF_FULL, NO_SPAN or EMITTED, so their sum is
// the number of hits; READ_ERR counts faults along the way.
enum stat {
	STAT_NO_PROC = 0,
	STAT_NO_SPAN = 1,
	STAT_READ_ERR = 2,
	STAT_RINGBUF_FULL = 3,
	STAT_EMITTED = 4,
	STAT_MAX = 5,
};

struct stats {
	__u64 n[STAT_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct proc_cfg);
} procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct type_key);
	__type(value, struct node_info);
} ctx_types SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct type_key);
	__type(value, struct span_layout);
} span_types SEC(".maps");

// An array: its lookups are inlined, cheaper than a hash's.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_RECIPES);
	__type(key, __u32);
	__type(value, struct recipe);
} recipes SEC(".maps");

// One entry: a single lookup per run serves every counter.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stats);
} stats SEC(".maps");

// Wake the reader only once this many bytes wait in the ring buffer: a
// wakeup costs the probed thread more than the rest of the probe, and the
// reader also polls on a short timer. Set by user space before loading.
volatile const __u64 wakeup_bytes = 0;

// The stack window: one read of the STACK_WINDOW bytes above rsp serves the
// frames inside it. Per CPU, as it is too large for the BPF stack. A read
// costs about the same for 8 bytes or 1 KiB here (measured: 111 and 125 ns),
// so the window is as large as a typical handler's eight frames.
#define STACK_WINDOW 4096
#define STACK_WORDS (STACK_WINDOW / 8)

// Offset of stack.hi in runtime.g: g starts with stack{lo, hi uintptr} in
// every Go release.
#define G_STACK_HI 8

struct stack_window {
	__u64 w[STACK_WORDS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stack_window);
} stack_windows SEC(".maps");

// Force these types into BTF so bpf2go generates Go types for them.
const struct event *unused_event __attribute__((unused));
const enum pc_kind *unused_pc_kind __attribute__((unused));
const enum recipe_flags *unused_recipe_flags __attribute__((unused));
const enum kv_limits *unused_kv_limits __attribute__((unused));
const enum reg *unused_reg __attribute__((unused));
const enum node_kind *unused_node_kind __attribute__((unused));
const enum event_flags *unused_event_flags __attribute__((unused));
const enum layout_flags *unused_layout_flags __attribute__((unused));
const enum layout_limits *unused_layout_limits __attribute__((unused));
const enum node_flags *unused_node_flags __attribute__((unused));
const enum stat *unused_stat __attribute__((unused));

static __always_inline void count(struct stats *st, __u32 idx)
{
	if (st && idx < STAT_MAX)
		st->n[idx]++;
}

static __always_inline int read_u64(__u64 *dst, __u64 addr)
{
	return bpf_probe_read_user(dst, sizeof(*dst), (const void *)addr);
}

// read_sc_ids fills the event's IDs from a span context at sc: the 128-bit
// trace ID (big-endian) and the span ID after it, in one read. Each
// bpf_probe_read_user costs about 110 ns here, more than the rest of the
// program, so the layouts are chosen to need as few as possible.
static __always_inline int read_sc_ids(struct event *e, __u64 sc,
				       const struct span_layout *l)
{
	__u64 d = (__u64)(l->sc_span_id - l->trace128) & (SC_IDS_MAX - 1);
	if (!sc || d < 16 || d > SC_IDS_MAX - 8)
		return -1;
	__u8 b[SC_IDS_MAX] = {};
	if (bpf_probe_read_user(b, d + 8, (const void *)(sc + l->trace128)))
		return -1;
	__u64 hi, lo, sid;
	__builtin_memcpy(&hi, b, 8);
	__builtin_memcpy(&lo, b + 8, 8);
	__builtin_memcpy(&sid, b + d, 8);
	lo = __builtin_bswap64(lo);
	if (!lo || !sid)
		return -1;
	e->trace_hi = __builtin_bswap64(hi);
	e->trace_lo = lo;
	e->span_id = sid;
	e->flags |= FLAG_HAS_SPAN | FLAG_TRACE128;
	return 0;
}

// read_span fills the event's IDs from a span struct at addr: through its
// span context when the layout allows (two reads), else from the span's own
// fields, then the upper trace ID bits from the span context.
static __always_inline int read_span(struct event *e, __u64 addr,
				     const struct span_layout *l)
{
	if (!addr)
		return -1;
	__u64 sc = 0;
	if ((l->flags & LAYOUT_SC_IDS) && l->ctx != 0xffff &&
	    read_u64(&sc, addr + l->ctx) == 0 && read_sc_ids(e, sc, l) == 0)
		return 0;
	if (l->trace_lo == l->span_id + 8) {
		// dd-trace-go keeps the two IDs side by side: one read.
		__u64 ids[2];
		if (bpf_probe_read_user(ids, sizeof(ids), (const void *)(addr + l->span_id)))
			return -1;
		e->span_id = ids[0];
		e->trace_lo = ids[1];
	} else if (read_u64(&e->span_id, addr + l->span_id) ||
		   read_u64(&e->trace_lo, addr + l->trace_lo)) {
		return -1;
	}
	e->flags |= FLAG_HAS_SPAN;
	if (l->ctx == 0xffff)
		return 0;
	if (!sc && (read_u64(&sc, addr + l->ctx) || !sc))
		return 0;
	__u64 id[2];
	if (bpf_probe_read_user(id, sizeof(id), (const void *)(sc + l->trace128)))
		return 0;
	// The 128-bit ID must agree with the span's own low half; otherwise the
	// offsets are wrong for this binary and the low half alone is safer.
	if (__builtin_bswap64(id[1]) == e->trace_lo) {
		e->trace_hi = __builtin_bswap64(id[0]);
		e->flags |= FLAG_TRACE128;
	}
	return 0;
}

// pick copies the two words at byte offset off of the node words w (the
// value's type and data, or the span pointer and the next word); constant
// indexes keep the verifier's bounds simple.
static __always_inline int pick(const __u64 *w, __u16 off, __u64 *a, __u64 *b)
{
	switch (off) {
	case 16:
		*a = w[2];
		*b = w[3];
		return 0;
	case 24:
		*a = w[3];
		*b = w[4];
		return 0;
	case 32:
		*a = w[4];
		*b = w[5];
		return 0;
	case 40:
		*a = w[5];
		*b = 0;
		return 0;
	}
	return -1;
}

// find_span walks the context chain from the interface (tab, data).
static __always_inline void find_span(struct event *e, const struct proc_cfg *pc,
				      struct stats *st, __u64 tab, __u64 data)
{
	struct type_key k = {.binary_id = pc->binary_id};

	for (int i = 0; i < MAX_CTX_HOPS; i++) {
		if (!tab || !data)
			return;
		e->hops = i + 1;
		k.addr = tab - pc->bias;
		struct node_info *n = bpf_map_lookup_elem(&ctx_types, &k);
		if (!n)
			return;
		// One read serves the parent (always field 0) and the value of
		// value and span nodes when it lies in the node's first 48 bytes.
		// valueCtx is 48 bytes; past the end of a smaller node the bytes are
		// not used, and a read that faults falls back to exact reads.
		__u64 w[6] = {};
		__u64 a = 0, b = 0;
		int picked = -1;
		if (n->kind == NODE_PARENT || (n->kind == NODE_LINK && n->val_off == 0)) {
			if (bpf_probe_read_user(w, 16, (const void *)data)) {
				count(st, STAT_READ_ERR);
				return;
			}
		} else {
			if (bpf_probe_read_user(w, sizeof(w), (const void *)data) == 0)
				picked = pick(w, n->val_off, &a, &b);
			// A link needs both words of its interface; the last slot
			// of the read holds only the first.
			if (picked == 0 && n->kind == NODE_LINK && n->val_off > 32)
				picked = -1;
			if (picked) {
				__u64 v[2] = {};
				if (bpf_probe_read_user(w, 16, (const void *)data) ||
				    bpf_probe_read_user(v, sizeof(v), (const void *)(data + n->val_off))) {
					count(st, STAT_READ_ERR);
					return;
				}
				a = v[0];
				b = v[1];
			}
		}
		if (n->kind == NODE_SPAN_CTX) {
			// A nil span detaches the context from any ancestor's span,
			// as the tracer's own lookup does.
			if (!a)
				return;
			struct span_layout l = n->span;
			// b is the word after the *Span: the snapshot when flagged.
			if ((n->flags & NODE_F_SNAPSHOT) && (l.flags & LAYOUT_SC_IDS) &&
			    read_sc_ids(e, b, &l) == 0)
				return;
			if (read_span(e, a, &l) == 0)
				return;
		} else if (n->kind == NODE_VALUE && a) {
			struct type_key vk = {.binary_id = pc->binary_id, .addr = a - pc->bias};
			struct span_layout *l = bpf_map_lookup_elem(&span_types, &vk);
			if (l) {
				struct span_layout lc = *l;
				if (read_span(e, b, &lc) == 0)
					return;
			}
		}
		// Every node continues with its parent, its first field; a link
		// with the interface it names.
		if (n->kind == NODE_LINK && n->val_off != 0) {
			tab = a;
			data = b;
			continue;
		}
		tab = w[0];
		data = w[1];
	}
}

// regs copies the argument registers a chain may start from, indexed by
// enum reg (the verifier refuses a load at a computed context offset, which
// a switch over the context's fields compiles to).
struct regs {
	__u64 r[REG_RDX + 1];
};

static __always_inline void load_regs(struct regs *rs, const struct pt_regs *ctx)
{
	rs->r[REG_RAX] = ctx->rax;
	rs->r[REG_RBX] = ctx->rbx;
	rs->r[REG_RCX] = ctx->rcx;
	rs->r[REG_RDI] = ctx->rdi;
	rs->r[REG_RSI] = ctx->rsi;
	rs->r[REG_R8] = ctx->r8;
	rs->r[REG_R9] = ctx->r9;
	rs->r[REG_R10] = ctx->r10;
	rs->r[REG_R11] = ctx->r11;
	rs->r[REG_RDX] = ctx->rdx;
}

// chain_addr follows c from the registers and returns the address of the
// value it ends on, or 0 when a pointer on the way is nil or unreadable.
static __always_inline __u64 chain_addr(const struct regs *rs, const struct chain *c)
{
	if (c->reg > REG_RDX)
		return 0;
	__u64 a = rs->r[c->reg];
	__u8 n = c->n;
	if (n == 0 || n > CHAIN_MAX)
		return 0;
#pragma unroll
	for (int i = 0; i < CHAIN_MAX - 1; i++) {
		if (i + 1 >= n)
			break;
		if (!a || read_u64(&a, a + c->off[i]))
			return 0;
	}
	if (!a)
		return 0;
	return a + c->off[(n - 1) & (CHAIN_MAX - 1)];
}

// kv_find searches the key/value slice at sl for the recipe's key and
// returns its value (an any) in v; 0 when found.
static __always_inline int kv_find(const struct recipe *r, __u64 sl, __u64 bias, __u64 v[2])
{
	__u64 hdr[2] = {};
	__u32 klen = r->key_len;
	if (klen == 0 || klen > KV_KEY_MAX ||
	    bpf_probe_read_user(hdr, sizeof(hdr), (const void *)sl) || !hdr[0])
		return -1;
	for (int i = 0; i < KV_MAX; i++) {
		if (i >= hdr[1])
			return -1;
		__u64 kv[4] = {}, str[2] = {};
		if (bpf_probe_read_user(kv, sizeof(kv), (const void *)(hdr[0] + 32 * i)))
			return -1;
		if (kv[0] - bias != r->key_type || !kv[1] ||
		    bpf_probe_read_user(str, sizeof(str), (const void *)kv[1]) ||
		    str[1] != klen || !str[0])
			continue;
		char b[KV_KEY_MAX] = {};
		if (bpf_probe_read_user(b, klen, (const void *)str[0]))
			continue;
		int same = 1;
#pragma unroll
		for (int j = 0; j < KV_KEY_MAX; j++)
			if (j < klen && b[j] != r->key[j])
				same = 0;
		if (same) {
			v[0] = kv[2];
			v[1] = kv[3];
			return 0;
		}
	}
	return -1;
}

// handler_pc reads the handler's code address as the recipe says.
static __always_inline __u64 handler_pc(const struct pt_regs *ctx, const struct regs *rs,
					 const struct recipe *r)
{
	__u64 pc = 0;
	if (r->pc_kind == PC_SELF)
		return ctx->rip - r->probe_off;
	__u64 a = chain_addr(rs, &r->pc);
	if (!a)
		return 0;
	if (r->pc_kind == PC_LOAD) {
		if (read_u64(&pc, a))
			return 0;
		return pc;
	}
	if (r->pc_kind == PC_SLICE_LAST) {
		// A []func: elements are funcval pointers, whose first word is
		// the code.
		__u64 sl[2] = {};
		if (bpf_probe_read_user(sl, sizeof(sl), (const void *)a) || !sl[0] ||
		    sl[1] == 0 || sl[1] > (1 << 16))
			return 0;
		__u64 fv = 0;
		if (read_u64(&fv, sl[0] + 8 * (sl[1] - 1)) || !fv || read_u64(&pc, fv))
			return 0;
		return pc;
	}
	return 0;
}

SEC("uprobe")
int handler_entry(struct pt_regs *ctx)
{
	__u32 zero = 0;
	struct stats *st = bpf_map_lookup_elem(&stats, &zero);
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct proc_cfg *pc = bpf_map_lookup_elem(&procs, &tgid);
	if (!pc) {
		count(st, STAT_NO_PROC);
		return 0;
	}
	struct proc_cfg cfg = *pc;

	// The event is built on the stack and copied out only when a span was
	// found: a hit without one then costs no ring buffer work at all.
	struct event ev;
	__builtin_memset(&ev, 0, sizeof(ev));
	struct event *e = &ev;
	e->pid = tgid;
	e->tid = (__u32)id;
	e->ktime = bpf_ktime_get_ns();
	__u64 cookie = bpf_get_attach_cookie(ctx);
	e->cookie = cookie;
	__u32 ri = (__u32)cookie;
	struct recipe *rp = bpf_map_lookup_elem(&recipes, &ri);
	if (!rp || !rp->pc_kind) {
		// The recipe goes before the probe and away after it: only a
		// detach racing the hit gets here.
		count(st, STAT_NO_PROC);
		return 0;
	}

	struct regs rs;
	load_regs(&rs, ctx);
	__u64 ctxi[2] = {};
	__u8 creg = rp->ctx.reg;
	if (rp->ctx.n == 0) {
		if (creg < REG_R11) {
			ctxi[0] = rs.r[creg];
			ctxi[1] = rs.r[creg + 1];
		}
	} else {
		__u64 ctxa = chain_addr(&rs, &rp->ctx);
		if (rp->flags & RECIPE_CTX_KV) {
			if (ctxa && kv_find(rp, ctxa, cfg.bias, ctxi))
				ctxi[0] = 0;
		} else if (ctxa && bpf_probe_read_user(ctxi, sizeof(ctxi), (const void *)ctxa)) {
			ctxi[0] = 0;
		}
	}
	if (ctxi[0])
		find_span(e, &cfg, st, ctxi[0], ctxi[1]);

	if (!(e->flags & FLAG_HAS_SPAN)) {
		count(st, STAT_NO_SPAN);
		return 0;
	}
	// The handler is read only for hits under a span: the others are
	// dropped anyway.
	e->handler_pc = handler_pc(ctx, &rs, rp);
	int in_body = rp->flags & RECIPE_IN_BODY;

	// Frame-pointer walk: at a function's PUSHQ BP, [rsp] is our caller's
	// return address and rbp is still the caller's frame pointer, whose
	// frame holds the next return address.
	// Each bpf_probe_read_user costs about 110 ns here, whatever its size,
	// so one read copies the stack above rsp, up to STACK_WINDOW bytes, and
	// frames inside it are walked in the copy; only frames beyond it cost a
	// read each. The copy must stop at the goroutine's stack top (g.stack.hi,
	// with g in R14): past it, pages may be absent and the read would fail.
	__u64 fp = ctx->rbp;
	int n = 0;
	__u64 span = 0, hi = 0;
	struct stack_window *win = bpf_map_lookup_elem(&stack_windows, &zero);
	if (read_u64(&hi, ctx->r14 + G_STACK_HI) == 0 && hi > ctx->rsp) {
		span = hi - ctx->rsp;
		if (span > STACK_WINDOW)
			span = STACK_WINDOW;
	}
	int got = win && span >= 16 &&
		  bpf_probe_read_user(win->w, span, (const void *)ctx->rsp) == 0;
	// Inside a body, the innermost frame is the probed function itself at
	// the call (its return address is in its frame, at RBP+8).
	if (in_body) {
		e->stack[0] = ctx->rip;
		n = 1;
	}
	if (got) {
		if (!in_body && win->w[0]) {
			e->stack[0] = win->w[0];
			n = 1;
		}
#pragma unroll
		for (int i = 1; i < MAX_STACK; i++) {
			__u64 off = fp - ctx->rsp;
			if (n != i || !fp || fp < ctx->rsp || (off & 7) || off > span - 16)
				break;
			__u64 idx = (off >> 3) & (STACK_WORDS - 1);
			if (idx > STACK_WORDS - 2)
				break;
			__u64 next = win->w[idx], ret = win->w[idx + 1];
			if (!ret)
				break;
			e->stack[i] = ret;
			n = i + 1;
			if (next <= fp) { // frames grow up the stack; anything else ends the walk
				fp = 0;
				break;
			}
			fp = next;
		}
	} else if (!in_body) {
		__u64 ret = 0;
		if (read_u64(&ret, ctx->rsp) == 0 && ret) {
			e->stack[0] = ret;
			n = 1;
		}
	}
#pragma unroll
	for (int i = 1; i < MAX_STACK; i++) {
		if (i < n)
			continue;
		__u64 frame[2] = {};
		if (n != i || !fp || bpf_probe_read_user(frame, sizeof(frame), (const void *)fp))
			break;
		if (!frame[1])
			break;
		e->stack[i] = frame[1];
		n = i + 1;
		fp = frame[0] > fp ? frame[0] : 0;
	}
	e->nstack = n;
	if (n == MAX_STACK && fp)
		e->flags |= FLAG_STACK_TRUNC;

	__u64 flags = BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	if (bpf_ringbuf_output(&events, e, sizeof(*e), flags)) {
		count(st, STAT_RINGBUF_FULL);
		return 0;
	}
	count(st, STAT_EMITTED);
	return 0;
}

// An empty program for the benchmark that measures the probe's own cost
// against a bare uprobe at the same place.
SEC("uprobe")
int empty_entry(struct pt_regs *ctx)
{
	return 0;
}

// reads_entry does the least any in-kernel capture of a handler and its
// span must do: four reads of the target's memory (the handler's funcval,
// the request's context, one context node, the span context), here four
// words of the stack. The benchmark sets it against empty_entry to measure
// the floor of the probe's cost on a machine.
SEC("uprobe")
int reads_entry(struct pt_regs *ctx)
{
	__u64 w[4] = {};
#pragma unroll
	for (int i = 0; i < 4; i++)
		bpf_probe_read_user(&w[i], sizeof(w[i]), (const void *)(ctx->rsp + 8 * i));
	return 0;
}
