package discover

import (
	"errors"
	"slices"
	"strconv"
	"testing"
)

func TestSelectorsOnFakeProcfs(t *testing.T) {
	rd, err := newProcReader(fakeProc(t))
	if err != nil {
		t.Fatal(err)
	}
	exeAPI, err := ExePathSelector([]string{"api-*"})
	if err != nil {
		t.Fatal(err)
	}
	exeFull, err := ExePathSelector([]string{"/usr/local/bin/w*", "/srv/old-api", "/opt/my app/bin/*"})
	if err != nil {
		t.Fatal(err)
	}
	optIn := OptInSelector()
	service := EnvSelector("DD_SERVICE", "api")

	tests := []struct {
		pid                             int
		optIn, service, exeAPI, exeFull bool
	}{
		{pid: 1},
		{pid: 100, optIn: true, service: true, exeAPI: true},
		{pid: 101, optIn: true},                // "1" is true for strconv.ParseBool
		{pid: 102, service: true},              // "false"; DD_SERVICE=API matches case-insensitively
		{pid: 103, optIn: true},                // "TRUE"
		{pid: 104},                             // duplicate key: the first ("false") wins
		{pid: 105, exeFull: true},              // empty environment
		{pid: 107, optIn: true, exeFull: true}, // " (deleted)" ignored
		{pid: 108},                             // "yes" is not a Go boolean
		{pid: 109, optIn: true, exeFull: true}, // "t"; odd comm and a path with a space
	}
	for _, tt := range tests {
		p, err := rd.read(tt.pid)
		if err != nil {
			t.Fatalf("read %d: %v", tt.pid, err)
		}
		for _, s := range []struct {
			name string
			sel  Selector
			want bool
		}{
			{"OptInSelector", optIn, tt.optIn},
			{"EnvSelector(DD_SERVICE)", service, tt.service},
			{"ExePathSelector(api-*)", exeAPI, tt.exeAPI},
			{"ExePathSelector(full paths)", exeFull, tt.exeFull},
			{"AnyOf(OptIn, ExePath)", AnyOf(optIn, exeFull), tt.optIn || tt.exeFull},
		} {
			d := s.sel.Select(p)
			if d.Selected != s.want {
				t.Errorf("pid %d (%s): %s selected=%v, want %v (reason %q)", tt.pid, p.Exe, s.name, d.Selected, s.want, d.Reason)
			}
			if d.Reason == "" {
				t.Errorf("pid %d: %s gave no reason", tt.pid, s.name)
			}
		}
	}
}

func TestExePathSelectorBadGlob(t *testing.T) {
	if _, err := ExePathSelector([]string{"ok", "[unclosed"}); err == nil {
		t.Fatal("ExePathSelector accepted a malformed glob")
	}
}

func TestEnvSelectorVanishedProcess(t *testing.T) {
	p := &Process{PID: 42, Environ: func() ([]string, error) { return nil, errors.New("gone") }}
	for _, sel := range []Selector{OptInSelector(), EnvSelector(OptInEnv, "true")} {
		if d := sel.Select(p); d.Selected {
			t.Errorf("selected a process whose environment cannot be read: %+v", d)
		}
	}
	if d := OptInSelector().Select(&Process{PID: 43}); d.Selected {
		t.Errorf("selected a process without Environ: %+v", d)
	}
}

func TestProcReader(t *testing.T) {
	root := fakeProc(t)
	rd, err := newProcReader(root)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		pid     int
		wantErr error
		start   uint64
		exe     string
		cgroups []string
	}{
		{pid: 2, wantErr: errKernelThread, start: 2},
		{pid: 106, wantErr: errVanished},
		{pid: 999, wantErr: errVanished},
		{pid: 100, start: 5000, exe: "/app/bin/api-server", cgroups: []string{
			"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod4f3c2a1b_5d6e_4f70_8a9b_0c1d2e3f4a5b.slice/cri-containerd-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope",
		}},
		{pid: 109, start: 5009, exe: "/opt/my app/bin/app", cgroups: []string{"12:pids:/docker/abc", "0::/system.slice/docker-abc.scope"}},
	}
	for _, tt := range tests {
		p, err := rd.read(tt.pid)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("read %d: err %v, want %v", tt.pid, err, tt.wantErr)
			continue
		}
		if err != nil {
			if tt.start != 0 && (p == nil || p.StartTime != tt.start) {
				t.Errorf("read %d: %+v, want StartTime %d with the error", tt.pid, p, tt.start)
			}
			continue
		}
		if p.StartTime != tt.start || p.Exe != tt.exe {
			t.Errorf("read %d: StartTime %d Exe %q, want %d %q", tt.pid, p.StartTime, p.Exe, tt.start, tt.exe)
		}
		cg, err := p.CgroupPaths()
		if err != nil || !slices.Equal(cg, tt.cgroups) {
			t.Errorf("read %d: CgroupPaths %q, %v; want %q", tt.pid, cg, err, tt.cgroups)
		}
		if want := root + "/" + strconv.Itoa(tt.pid) + "/exe"; p.BinaryPath() != want {
			t.Errorf("BinaryPath %q, want %q", p.BinaryPath(), want)
		}
		if want := root + "/" + strconv.Itoa(tt.pid) + "/root"; p.RootPath() != want {
			t.Errorf("RootPath %q, want %q", p.RootPath(), want)
		}
	}
	if got := (&Process{PID: 7}).BinaryPath(); got != "/proc/7/exe" {
		t.Errorf("zero Process BinaryPath %q, want /proc/7/exe", got)
	}
}
