package probes

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// capability is one Linux capability the engine needs.
type capability struct {
	bit  uint
	name string
	why  string
}

// procCaps are what reading other users' processes takes.
var procCaps = []capability{
	{unix.CAP_SYS_PTRACE, "CAP_SYS_PTRACE", "read /proc/PID/exe, maps and root of other users' processes"},
	{unix.CAP_DAC_READ_SEARCH, "CAP_DAC_READ_SEARCH", "read other users' /proc/PID/environ and binaries through /proc/PID/root"},
}

// bpfCaps load BPF programs and open uprobes without CAP_SYS_ADMIN, on
// kernels 5.8 up to the 2025 change ("perf: Revert to requiring
// CAP_SYS_ADMIN for uprobes", Linux 6.16 and stable backports) after which
// the uprobe PMU wants CAP_SYS_ADMIN again.
var bpfCaps = []capability{
	{unix.CAP_BPF, "CAP_BPF", "load BPF programs and maps"},
	{unix.CAP_PERFMON, "CAP_PERFMON", "open uprobe perf events (kernels before 6.16 and its backports)"},
}

// CheckPrivileges returns an error naming each capability the process lacks
// in its effective set, with what it is needed for: CAP_SYS_PTRACE and
// CAP_DAC_READ_SEARCH, and CAP_SYS_ADMIN (or, on kernels before 6.16
// without the 2025 backport, CAP_BPF and CAP_PERFMON).
func CheckPrivileges() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	has := func(bit uint) bool { return data[bit/32].Effective&(1<<(bit%32)) != 0 }
	var missing []string
	for _, c := range procCaps {
		if !has(c.bit) {
			missing = append(missing, fmt.Sprintf("%s (to %s)", c.name, c.why))
		}
	}
	if !has(unix.CAP_SYS_ADMIN) {
		var bpfMissing []string
		for _, c := range bpfCaps {
			if !has(c.bit) {
				bpfMissing = append(bpfMissing, fmt.Sprintf("%s (to %s)", c.name, c.why))
			}
		}
		if len(bpfMissing) > 0 {
			missing = append(missing, "CAP_SYS_ADMIN (to load BPF programs and open uprobes; Linux 6.16+ requires it for uprobes) or else "+strings.Join(bpfMissing, " and "))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("originagent needs root or these capabilities, which it lacks: %s", strings.Join(missing, "; "))
}
