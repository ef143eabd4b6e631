// Command capcheck performs, one by one, the privileged operations the
// originagent daemon needs on another process, and prints one JSON line per
// operation saying whether it worked. The chart's tests run it with exactly
// the DaemonSet's capabilities (and each one removed) to show that every
// capability the chart adds is needed and that together they suffice.
//
// Usage:
//
//	capcheck target                 # sleep as a target process (bounded)
//	capcheck probe PID BINARY FILE  # operate on PID; FILE is a file only PID's uid may read
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// Result is one operation's outcome.
type Result struct {
	Op    string `json:"op"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

func main() {
	if len(os.Args) >= 2 && os.Args[1] == "target" {
		// Bounded: the test kills it long before.
		time.Sleep(2 * time.Minute)
		return
	}
	if len(os.Args) != 5 || os.Args[1] != "probe" {
		fmt.Fprintln(os.Stderr, "usage: capcheck target | capcheck probe PID BINARY FILE")
		os.Exit(2)
	}
	pid, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fmt.Fprintf(os.Stderr, "bad PID %q: %v\n", os.Args[2], err)
		os.Exit(2)
	}
	enc := json.NewEncoder(os.Stdout)
	for _, r := range probe(pid, os.Args[3], os.Args[4]) {
		if err := enc.Encode(r); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

func probe(pid int, binary, privateFile string) []Result {
	var out []Result
	do := func(op string, f func() error) {
		err := f()
		r := Result{Op: op, OK: err == nil}
		if err != nil {
			r.Error = err.Error()
		}
		out = append(out, r)
	}
	proc := fmt.Sprintf("/proc/%d", pid)

	do("bpf_map_create", func() error {
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
		if err != nil {
			return err
		}
		return m.Close()
	})

	var prog *ebpf.Program
	do("bpf_prog_load_uprobe", func() error {
		// A uprobe program that reads 8 bytes of user memory, as the
		// daemon's probes do.
		var err error
		prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{
			Type:    ebpf.Kprobe,
			License: "GPL",
			Instructions: asm.Instructions{
				asm.Mov.Reg(asm.R1, asm.RFP),
				asm.Add.Imm(asm.R1, -8),
				asm.Mov.Imm(asm.R2, 8),
				asm.Mov.Imm(asm.R3, 0),
				asm.FnProbeReadUser.Call(),
				asm.Mov.Imm(asm.R0, 0),
				asm.Return(),
			},
		})
		return err
	})

	attach := func(opts *link.UprobeOptions) func() error {
		return func() error {
			if prog == nil {
				return errors.New("no program (load failed)")
			}
			ex, err := link.OpenExecutable(binary)
			if err != nil {
				return err
			}
			l, err := ex.Uprobe("main.main", prog, opts)
			if err != nil {
				return err
			}
			return l.Close()
		}
	}
	do("uprobe_attach_pid", attach(&link.UprobeOptions{PID: pid}))
	do("uprobe_attach_all", attach(nil))
	if prog != nil {
		prog.Close()
	}

	do("proc_exe_readlink", func() error { _, err := os.Readlink(proc + "/exe"); return err })
	do("proc_exe_open", func() error { return readSome(proc + "/exe") })
	do("proc_environ", func() error { return readSome(proc + "/environ") })
	var first [2]uint64
	do("proc_maps", func() error {
		var err error
		first, err = firstMapping(proc + "/maps")
		return err
	})
	do("proc_mem", func() error {
		f, err := os.Open(proc + "/mem")
		if err != nil {
			return err
		}
		defer f.Close()
		if first[0] == 0 {
			return errors.New("no mapping address (maps failed)")
		}
		_, err = f.ReadAt(make([]byte, 8), int64(first[0]))
		return err
	})
	do("proc_root_public", func() error { return readSome(proc + "/root/etc/passwd") })
	do("proc_root_private", func() error { return readSome(proc + "/root" + privateFile) })
	// Opening (not just reading) a map_files link is what lets the daemon
	// read a mapped binary that was deleted or replaced on disk.
	do("proc_map_files_open", func() error {
		if first[0] == 0 {
			return errors.New("no mapping address (maps failed)")
		}
		return readSome(fmt.Sprintf("%s/map_files/%x-%x", proc, first[0], first[1]))
	})
	return out
}

func readSome(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Read(make([]byte, 16))
	return err
}

// firstMapping returns the first file-backed mapping of a maps file.
func firstMapping(path string) ([2]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return [2]uint64{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || !strings.HasPrefix(fields[5], "/") {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		a, err1 := strconv.ParseUint(lo, 16, 64)
		b, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 == nil && err2 == nil {
			return [2]uint64{a, b}, nil
		}
	}
	if err := sc.Err(); err != nil {
		return [2]uint64{}, fmt.Errorf("read %s: %w", path, err)
	}
	return [2]uint64{}, fmt.Errorf("%s: no file-backed mapping", path)
}
