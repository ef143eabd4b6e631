// This file is a copy of ../internal/truth/truth.go (this program is its own
// module and cannot import it); keep the two in sync. It lets the program
// report, from inside the running process, the facts internal/gotypes must
// derive from the file alone: type descriptor and itab addresses (converted
// to file addresses with the process's own load bias), struct field offsets
// and type sizes.
package main

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"unsafe"
)

// TypeInfo is one runtime type descriptor.
type TypeInfo struct {
	Name string `json:"name"`
	Addr uint64 `json:"addr"`
	Kind uint   `json:"kind"`
	Size uint64 `json:"size"`
}

// FieldInfo is the offset of a (possibly nested, pointer-free) field path.
type FieldInfo struct {
	Type   string `json:"type"`
	Path   string `json:"path"`
	Offset uint64 `json:"offset"`
}

// ItabInfo is the itab of a non-empty interface value.
type ItabInfo struct {
	Interface string `json:"interface"`
	Type      string `json:"type"`
	Addr      uint64 `json:"addr"`
}

// Report collects the truth and prints it as JSON.
type Report struct {
	Bias   uint64               `json:"bias"`
	Types  []TypeInfo           `json:"types"`
	Fields []FieldInfo          `json:"fields"`
	Itabs  []ItabInfo           `json:"itabs"`
	seen   map[reflect.Type]int // deepest expansion done + 1
}

// New computes the load bias of the running executable.
func New() (*Report, error) {
	bias, err := loadBias()
	if err != nil {
		return nil, err
	}
	return &Report{Bias: bias, seen: make(map[reflect.Type]int)}, nil
}

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
		if p.Type == elf.PT_LOAD {
			first = p
			break
		}
	}
	if first == nil {
		return 0, fmt.Errorf("%s: no PT_LOAD", exe)
	}
	mf, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer mf.Close()
	sc := bufio.NewScanner(mf)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || fs[5] != exe {
			continue
		}
		off, err := strconv.ParseUint(fs[2], 16, 64)
		if err != nil || off != first.Off&^0xfff {
			continue
		}
		start, err := strconv.ParseUint(strings.SplitN(fs[0], "-", 2)[0], 16, 64)
		if err != nil {
			return 0, err
		}
		return start - first.Vaddr&^0xfff, nil
	}
	return 0, fmt.Errorf("%s not found in /proc/self/maps", exe)
}

// Canon names t the way internal/gotypes does, from reflect's view.
func Canon(t reflect.Type) string {
	if t.Name() != "" {
		if t.PkgPath() == "" {
			return t.Name()
		}
		return t.PkgPath() + "." + t.Name()
	}
	switch t.Kind() {
	case reflect.Pointer:
		return "*" + Canon(t.Elem())
	case reflect.Slice:
		return "[]" + Canon(t.Elem())
	case reflect.Array:
		return "[" + strconv.Itoa(t.Len()) + "]" + Canon(t.Elem())
	case reflect.Map:
		return "map[" + Canon(t.Key()) + "]" + Canon(t.Elem())
	case reflect.Chan:
		e := Canon(t.Elem())
		switch t.ChanDir() {
		case reflect.RecvDir:
			return "<-chan " + e
		case reflect.SendDir:
			return "chan<- " + e
		}
		if t.Elem().Kind() == reflect.Chan && t.Elem().ChanDir() == reflect.RecvDir {
			e = "(" + e + ")"
		}
		return "chan " + e
	case reflect.Func:
		var sb strings.Builder
		sb.WriteString("func(")
		for i := 0; i < t.NumIn(); i++ {
			if i > 0 {
				sb.WriteString(", ")
			}
			if t.IsVariadic() && i == t.NumIn()-1 {
				sb.WriteString("..." + Canon(t.In(i).Elem()))
			} else {
				sb.WriteString(Canon(t.In(i)))
			}
		}
		sb.WriteString(")")
		switch t.NumOut() {
		case 0:
		case 1:
			sb.WriteString(" " + Canon(t.Out(0)))
		default:
			sb.WriteString(" (")
			for i := 0; i < t.NumOut(); i++ {
				if i > 0 {
					sb.WriteString(", ")
				}
				sb.WriteString(Canon(t.Out(i)))
			}
			sb.WriteString(")")
		}
		return sb.String()
	}
	return t.String()
}

// typeAddr is the address of t's descriptor: the data word of the
// reflect.Type interface is the *abi.Type.
func typeAddr(t reflect.Type) uint64 {
	return uint64((*[2]uintptr)(unsafe.Pointer(&t))[1])
}

// AddType records t and, up to depth levels, the types it references, with
// the offsets of every struct field path that does not cross a pointer.
func (r *Report) AddType(t reflect.Type, depth int) {
	done, ok := r.seen[t]
	if depth < 0 || done > depth {
		return
	}
	r.seen[t] = depth + 1
	if !ok {
		r.Types = append(r.Types, TypeInfo{Name: Canon(t), Addr: typeAddr(t) - r.Bias, Kind: uint(t.Kind()), Size: uint64(t.Size())})
		if t.Kind() == reflect.Struct {
			r.addFields(Canon(t), "", 0, t, 3)
		}
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Chan:
		r.AddType(t.Elem(), depth-1)
	case reflect.Map:
		r.AddType(t.Key(), depth-1)
		r.AddType(t.Elem(), depth-1)
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			r.AddType(t.Field(i).Type, depth-1)
		}
	}
}

func (r *Report) addFields(root, prefix string, base uint64, t reflect.Type, depth int) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Name == "_" {
			continue
		}
		path := prefix + f.Name
		off := base + uint64(f.Offset)
		r.Fields = append(r.Fields, FieldInfo{Type: root, Path: path, Offset: off})
		if f.Type.Kind() == reflect.Struct && depth > 0 {
			r.addFields(root, path+".", off, f.Type, depth-1)
		}
	}
}

// AddField records an offset computed by the program itself (unsafe.Offsetof).
func (r *Report) AddField(typ, path string, off uintptr) {
	r.Fields = append(r.Fields, FieldInfo{Type: typ, Path: path, Offset: uint64(off)})
}

// AddItab records the itab of the interface value v of interface type I.
func AddItab[I any](r *Report, v I) {
	itab := (*[2]uintptr)(unsafe.Pointer(&v))[0]
	r.Itabs = append(r.Itabs, ItabInfo{
		Interface: Canon(reflect.TypeFor[I]()),
		Type:      Canon(reflect.TypeOf(v)),
		Addr:      uint64(itab) - r.Bias,
	})
	r.AddType(reflect.TypeOf(v), 2)
}

// Print writes the report as JSON to stdout.
func (r *Report) Print() error {
	return json.NewEncoder(os.Stdout).Encode(r)
}
