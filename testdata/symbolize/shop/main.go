// Command shop is the corpus program of internal/symbolize's tests. Run with
// -truth, it reads hex file addresses of its own binary from stdin, one per
// line, and prints for each the frames runtime.CallersFrames reports (the
// ground truth), as JSON lines. Without flags it exercises its code and exits.
package main

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"

	"github.com/acme/handlers"
	"github.com/acme/shop/api"
	"github.com/acme/shop/health"
	"github.com/acme/shop/internal/store"
)

type frame struct {
	Function  string `json:"function"`
	File      string `json:"file"`
	Line      int    `json:"line"`
	StartLine int    `json:"start_line"`
	Entry     uint64 `json:"entry"`
}

type answer struct {
	Addr    uint64  `json:"addr"`
	Runtime uint64  `json:"runtime"`
	Func    string  `json:"func"`
	Frames  []frame `json:"frames"`
}

//go:noinline
func sentinel() {}

func usersHandler(s string) string { return "handled " + s }

func main() {
	truth := flag.Bool("truth", false, "answer addresses from stdin")
	flag.Parse()
	exercise()
	if !*truth {
		return
	}
	bias, err := loadBias()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sent := reflect.ValueOf(sentinel).Pointer() + 1
	in := bufio.NewScanner(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out)
	fmt.Fprintf(out, "{\"bias\":%d,\"pid\":%d}\n", bias, os.Getpid())
	out.Flush()
	for in.Scan() {
		line := strings.TrimSpace(in.Text())
		if line == "" {
			out.Flush()
			continue
		}
		addr, err := strconv.ParseUint(line, 16, 64)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		rt := uintptr(addr + bias)
		a := answer{Addr: addr, Runtime: uint64(rt)}
		if f := runtime.FuncForPC(rt - 1); f != nil {
			a.Func = f.Name()
		}
		frames := runtime.CallersFrames([]uintptr{rt, sent})
		for {
			f, more := frames.Next()
			if !more {
				break // the last frame is the sentinel's
			}
			a.Frames = append(a.Frames, frame{
				Function: f.Function,
				File:     f.File,
				Line:     f.Line,
				// runtime.Frame keeps the declaration line unexported;
				// reflect may read (not set) unexported fields.
				StartLine: int(reflect.ValueOf(&f).Elem().FieldByName("startLine").Int()),
				Entry:     uint64(f.Entry) - bias,
			})
		}
		if err := enc.Encode(a); err != nil {
			os.Exit(1)
		}
	}
	out.Flush()
}

// loadBias returns the difference between runtime and file addresses of this
// executable (non-zero for PIE), from /proc/self/maps and its ELF headers.
func loadBias() (uint64, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	f, err := elf.Open(exe)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var first *elf.Prog
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Off == 0 {
			first = p
			break
		}
	}
	if first == nil {
		return 0, fmt.Errorf("no PT_LOAD at offset 0")
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(maps), "\n") {
		fs := strings.Fields(l)
		if len(fs) < 6 || fs[2] != "00000000" || fs[5] != exe {
			continue
		}
		start, err := strconv.ParseUint(strings.Split(fs[0], "-")[0], 16, 64)
		if err != nil {
			return 0, err
		}
		return start - first.Vaddr, nil
	}
	return 0, fmt.Errorf("%s not found in /proc/self/maps", exe)
}

var sink []string

// Box is a generic type whose method is used as a method value.
type Box[T any] struct{ v T }

// Get is the method b.Get refers to.
func (b *Box[T]) Get(s string) string { return fmt.Sprint(b.v) + s }

// exercise calls everything once so nothing is dead-code eliminated.
func exercise() {
	u := api.NewUsers(store.New(4))
	for path, h := range api.Routes(u) {
		sink = append(sink, h(path+"U1"))
	}
	var get api.Handler = u.Get
	sink = append(sink, get("u2"), usersHandler("x"))
	for _, c := range api.Counters() {
		sink = append(sink, c("c"))
	}
	sink = append(sink, api.Map([]int{1, 2}, strconv.Itoa)...)
	sink = append(sink, api.Map([]string{"a"}, strings.ToUpper)...)
	var l api.List[int]
	l.Push(1)
	var ls api.List[string]
	ls.Push("a")
	var n api.Namer = u
	sink = append(sink, n.Name(), strconv.Itoa(l.Len()+ls.Len()+u.Count()))
	// Closures made by constructors inlined into exercise from other
	// packages and modules, and a method value of a generic type.
	hs := []func(string) string{health.Health("1.4.2"), api.Ready("2"), u.Wrap("w:"), handlers.Greeter("hi")}
	b := &Box[string]{v: "box"}
	hs = append(hs, b.Get, handlers.Hello)
	for _, h := range hs {
		sink = append(sink, h("x"))
	}
	done := make(chan string)
	go func() { done <- "goroutine" }()
	sink = append(sink, <-done)
	defer func() { sink = sink[:0] }()
}
