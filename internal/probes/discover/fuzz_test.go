package discover

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDecodeEvent(t *testing.T) {
	rec := func(ktime, startNS uint64, typ, pid uint32) []byte {
		b := make([]byte, eventSize)
		binary.NativeEndian.PutUint64(b[0:], ktime)
		binary.NativeEndian.PutUint64(b[8:], startNS)
		binary.NativeEndian.PutUint32(b[16:], typ)
		binary.NativeEndian.PutUint32(b[20:], pid)
		return b
	}
	tests := []struct {
		name string
		in   []byte
		want event
		err  bool
	}{
		{"exec", rec(10, 1_234_567_890, 1, 42), event{ktimeNS: 10, startTime: 123, typ: eventExec, pid: 42}, false},
		{"exit", rec(11, 20_000_000, 2, 4<<20), event{ktimeNS: 11, startTime: 2, typ: eventExit, pid: 4 << 20}, false},
		{"short", rec(1, 1, 1, 1)[:eventSize-1], event{}, true},
		{"empty", nil, event{}, true},
		{"unknown type", rec(1, 1, 3, 1), event{}, true},
		{"pid 0", rec(1, 1, 1, 0), event{}, true},
		{"pid beyond PID_MAX_LIMIT", rec(1, 1, 1, 4<<20+1), event{}, true},
		{"negative as int32", rec(1, 1, 2, 0xffffffff), event{}, true},
	}
	for _, tt := range tests {
		got, err := decodeEvent(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("%s: decodeEvent = %+v, %v; want %+v, error %v", tt.name, got, err, tt.want, tt.err)
		}
		if err != nil && !errors.Is(err, errBadEvent) {
			t.Errorf("%s: error %v does not wrap errBadEvent", tt.name, err)
		}
	}
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add(make([]byte, eventSize))
	f.Add([]byte{0x10, 0, 0, 0, 0, 0, 0, 0, 0xd2, 0x02, 0x96, 0x49, 0, 0, 0, 0, 1, 0, 0, 0, 42, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := decodeEvent(b)
		if err != nil {
			if !errors.Is(err, errBadEvent) {
				t.Fatalf("error %v does not wrap errBadEvent", err)
			}
			return
		}
		if ev.pid <= 0 || ev.pid > pidMaxLimit || (ev.typ != eventExec && ev.typ != eventExit) {
			t.Fatalf("accepted an invalid event %+v", ev)
		}
	})
}

// FuzzEnvSelectors feeds arbitrary /proc/PID/environ contents to the
// environment selectors.
func FuzzEnvSelectors(f *testing.F) {
	for _, s := range []string{
		"DD_CODE_ORIGIN_FOR_SPANS_ENABLED=true\x00",
		"A=1\x00DD_CODE_ORIGIN_FOR_SPANS_ENABLED=1\x00B\x00",
		"DD_CODE_ORIGIN_FOR_SPANS_ENABLED=false\x00DD_CODE_ORIGIN_FOR_SPANS_ENABLED=true\x00",
		"DD_CODE_ORIGIN_FOR_SPANS_ENABLED\x00=true\x00",
		"",
		"\x00\x00\x00",
	} {
		f.Add([]byte(s), OptInEnv, "true")
	}
	f.Fuzz(func(t *testing.T, environ []byte, key, value string) {
		env := strings.Split(string(environ), "\x00")
		p := &Process{PID: 1, Environ: func() ([]string, error) { return env, nil }}
		d := EnvSelector(key, value).Select(p)
		v, found := envValue(env, key)
		if d.Selected && (!found || !strings.EqualFold(v, value)) {
			t.Fatalf("EnvSelector(%q, %q) selected %q (value %q found %v)", key, value, environ, v, found)
		}
		if found && !strings.Contains("\x00"+string(environ), "\x00"+key+"="+v) {
			t.Fatalf("envValue(%q) = %q, not in %q", key, v, environ)
		}
		o := OptInSelector().Select(p)
		if o.Selected && (o.Reason == "" || !strings.Contains(string(environ), OptInEnv+"=")) {
			t.Fatalf("OptInSelector selected %q: %+v", environ, o)
		}
	})
}

// FuzzProcReader writes arbitrary stat, environ, cgroup and exe link
// contents into a fake /proc/PID and reads it: the reader must return a
// Process or an error, never panic, and the selectors must cope.
func FuzzProcReader(f *testing.F) {
	for _, pid := range []string{"1", "2", "100", "106", "109"} {
		stat, err := os.ReadFile(filepath.Join("testdata/proc", pid, "stat"))
		if err != nil {
			f.Fatal(err)
		}
		environ, _ := os.ReadFile(filepath.Join("testdata/proc", pid, "environ"))
		cgroup, _ := os.ReadFile(filepath.Join("testdata/proc", pid, "cgroup"))
		exe, _ := os.ReadFile(filepath.Join("testdata/proc", pid, "exe.link"))
		f.Add(stat, environ, cgroup, string(exe))
	}
	f.Add([]byte("7 (x"), []byte{}, []byte{}, "")
	// One tree per fuzzing process, rewritten by every input: a TempDir
	// per input would make file-system work dominate.
	root := f.TempDir()
	dir := filepath.Join(root, "7")
	f.Fuzz(func(t *testing.T, stat, environ, cgroup []byte, exe string) {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range map[string][]byte{"stat": stat, "environ": environ, "cgroup": cgroup} {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if exe != "" && !strings.ContainsRune(exe, 0) {
			if err := os.Symlink(exe, filepath.Join(dir, "exe")); err != nil {
				t.Skip("symlink target the file system refuses")
			}
		}
		rd, err := newProcReader(root)
		if err != nil {
			t.Fatal(err)
		}
		p, err := rd.read(7)
		if err != nil {
			return
		}
		if p.Exe != exe {
			t.Fatalf("Exe %q, want %q", p.Exe, exe)
		}
		_, _ = p.CgroupPaths()
		sel, err := ExePathSelector([]string{"*", "/usr/*"})
		if err != nil {
			t.Fatal(err)
		}
		AnyOf(OptInSelector(), sel).Select(p)
	})
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want procStat
		err  bool
	}{
		{"kernel format", fakeStat(42, "sleep", "S", 0x400000, 61786), procStat{state: 'S', flags: 0x400000, startTime: 61786}, false},
		{"comm with ) and spaces", fakeStat(42, "a) (b c)", "R", 1, 7), procStat{state: 'R', flags: 1, startTime: 7}, false},
		{"zombie", fakeStat(42, "x", "Z", 0, 9), procStat{state: 'Z', startTime: 9}, false},
		{"empty", "", procStat{}, true},
		{") before (", "2 2kthreadd) S 1 ( 2 0 -1 2129984 99 0 0 0 0 0 0 0 20 0 1 0 2 3133440", procStat{}, true},
		{"truncated", "42 (sleep) S 1 42 42 0 -1 4194304 99 0 0 0", procStat{}, true},
		{"NUL state", "1 (x) \x00 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 1 1 1", procStat{}, true},
		{"bad state", strings.Replace(fakeStat(42, "x", "S", 0, 9), ") S ", ") SS ", 1), procStat{}, true},
		{"bad starttime", strings.Replace(fakeStat(42, "x", "S", 0, 9), " 9 ", " -9 ", 1), procStat{}, true},
	}
	for _, tt := range tests {
		got, err := parseStat([]byte(tt.in))
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("%s: parseStat = %+v, %v; want %+v, error %v", tt.name, got, err, tt.want, tt.err)
		}
		if err != nil && !errors.Is(err, errBadStat) {
			t.Errorf("%s: error %v does not wrap errBadStat", tt.name, err)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	for _, pid := range []string{"1", "2", "106", "109"} {
		stat, err := os.ReadFile(filepath.Join("testdata/proc", pid, "stat"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(stat)
	}
	f.Add([]byte("2 2kthreadd) S 1 ( 2 0 -1 2129984 99 0 0 0 0 0 0 0 20 0 1 0 2 3133440"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := parseStat(data)
		if err != nil {
			if !errors.Is(err, errBadStat) {
				t.Fatalf("error %v does not wrap errBadStat", err)
			}
			return
		}
		if !isLetter(st.state) {
			t.Fatalf("accepted %q with state %q", data, st.state)
		}
	})
}
