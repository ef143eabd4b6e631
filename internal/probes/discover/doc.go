// Package discover finds the processes originagent should instrument and
// hands them to the probe engine as a stream of Start and Exit calls.
//
// A Watcher scans /proc once, then follows exec and exit as they happen
// through two BPF programs on the sched_process_exec and sched_process_exit
// raw tracepoints (bpf/procevents.c; no tracefs mount needed, kernel BTF used
// to read each process's start time). For each new process it asks a
// Selector whether the process opted in: OptInSelector reads
// DD_CODE_ORIGIN_FOR_SPANS_ENABLED from /proc/PID/environ, ExePathSelector
// matches the executable path, and other selectors (Kubernetes pod labels)
// plug in through the same interface and AnyOf.
//
// Process identity is (PID, StartTime), so a reused PID is a new process and
// an exec is the end of one image and the start of another. Processes in
// other mount namespaces (containers) are opened through /proc/PID/exe and
// /proc/PID/root (Process.BinaryPath, Process.RootPath).
//
// Events can be missed: the ring buffer may overflow (counted; it triggers a
// rescan), and a process that forks without exec is not an exec event. A
// slow full rescan (Config.Rescan, 30 s) catches both. Without BPF the
// Watcher polls /proc every Config.Poll (2 s).
//
// The agent must see the host's PID namespace (hostPID in Kubernetes): the
// kernel reports PIDs there, and Config.ProcRoot must show the same ones.
package discover
