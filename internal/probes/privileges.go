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

// requiredCaps are what attaching uprobes to other users' processes and
// reading their binaries takes. CAP_SYS_ADMIN implies the first two on
// kernels before 5.8, which have neither.
var requiredCaps = []capability{
	{unix.CAP_BPF, "CAP_BPF", "load BPF programs and maps"},
	{unix.CAP_PERFMON, "CAP_PERFMON", "open uprobe perf events"},
	{unix.CAP_SYS_PTRACE, "CAP_SYS_PTRACE", "read /proc/PID/environ, maps and exe of other users' processes"},
	{unix.CAP_DAC_READ_SEARCH, "CAP_DAC_READ_SEARCH", "read target binaries through /proc/PID/root"},
}

// CheckPrivileges returns an error naming each capability the process lacks
// in its effective set, with what it is needed for.
func CheckPrivileges() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	has := func(bit uint) bool { return data[bit/32].Effective&(1<<(bit%32)) != 0 }
	if has(unix.CAP_SYS_ADMIN) && has(unix.CAP_SYS_PTRACE) && has(unix.CAP_DAC_READ_SEARCH) {
		return nil
	}
	var missing []string
	for _, c := range requiredCaps {
		if !has(c.bit) {
			missing = append(missing, fmt.Sprintf("%s (to %s)", c.name, c.why))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("originagent needs root or these capabilities, which it lacks: %s", strings.Join(missing, ", "))
}
