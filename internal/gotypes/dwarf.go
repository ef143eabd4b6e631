package gotypes

import (
	"debug/dwarf"
	"debug/elf"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/go-delve/delve/pkg/dwarf/godwarf"
)

// dwarfTypes resolves Go type names through DWARF. Delve's godwarf decodes
// Go's DWARF extensions (DW_AT_go_kind, embedded fields, map and chan
// element types), which debug/dwarf does not.
type dwarfTypes struct {
	d      *dwarf.Data
	byName map[string]dwarf.Offset
	cache  map[dwarf.Offset]godwarf.Type
	conv   map[dwarf.Offset]*Type
}

func newDwarfTypes(d *dwarf.Data) (*dwarfTypes, error) {
	dt := &dwarfTypes{
		d:      d,
		byName: make(map[string]dwarf.Offset),
		cache:  make(map[dwarf.Offset]godwarf.Type),
		conv:   make(map[dwarf.Offset]*Type),
	}
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			return nil, fmt.Errorf("scan type entries: %w", err)
		}
		if e == nil {
			break
		}
		switch e.Tag {
		case dwarf.TagCompileUnit:
			continue // descend into the unit's children
		case dwarf.TagBaseType, dwarf.TagPointerType, dwarf.TagStructType,
			dwarf.TagTypedef, dwarf.TagArrayType, dwarf.TagSubroutineType,
			dwarf.TagUnspecifiedType:
			if name, ok := e.Val(dwarf.AttrName).(string); ok {
				name = unescapePath(name)
				if _, dup := dt.byName[name]; !dup {
					dt.byName[name] = e.Offset
				}
			}
		}
		// Types are children of compile units; skip everything nested
		// deeper (function bodies, struct members).
		if e.Children {
			r.SkipChildren()
		}
	}
	return dt, nil
}

// loadDWARF is elf.File.DWARF without the line, frame, location and range
// tables, which type lookups never read: decompressing them was about half
// of the cost of the first DWARF lookup.
func loadDWARF(f *elf.File) (*dwarf.Data, error) {
	sect := func(name string) ([]byte, error) {
		s := f.Section(name)
		if s == nil || s.Type == elf.SHT_NOBITS {
			return nil, nil
		}
		b, err := s.Data()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		return b, nil
	}
	abbrev, err := sect(".debug_abbrev")
	if err != nil {
		return nil, err
	}
	info, err := sect(".debug_info")
	if err != nil {
		return nil, err
	}
	str, err := sect(".debug_str")
	if err != nil {
		return nil, err
	}
	if abbrev == nil || info == nil {
		// Old-style .zdebug sections and other rarities: let debug/elf
		// handle them.
		return f.DWARF()
	}
	d, err := dwarf.New(abbrev, nil, nil, info, nil, nil, nil, str)
	if err != nil {
		return nil, err
	}
	for _, name := range []string{".debug_addr", ".debug_str_offsets", ".debug_line_str"} {
		b, err := sect(name)
		if err != nil {
			return nil, err
		}
		if b != nil {
			if err := d.AddSection(name, b); err != nil {
				return nil, fmt.Errorf("add %s: %w", name, err)
			}
		}
	}
	return d, nil
}

// lookup converts the named DWARF type; addrOf supplies runtime descriptor
// addresses by canonical name.
func (dt *dwarfTypes) lookup(name string, addrOf func(string) uint64) (t *Type, err error) {
	off, ok := dt.byName[name]
	if !ok {
		return nil, ErrNotFound
	}
	// godwarf is not hardened against malformed DWARF; keep a corrupt file
	// from taking the daemon down.
	defer func() {
		if p := recover(); p != nil {
			t, err = nil, fmt.Errorf("decode DWARF type %q: %v", name, p)
		}
	}()
	gt, err := godwarf.ReadType(dt.d, 0, off, dt.cache)
	if err != nil {
		return nil, fmt.Errorf("decode DWARF type %q: %w", name, err)
	}
	return dt.convert(gt, addrOf, 0)
}

func (dt *dwarfTypes) convert(gt godwarf.Type, addrOf func(string) uint64, depth int) (*Type, error) {
	c := gt.Common()
	if t, ok := dt.conv[c.Offset]; ok {
		return t, nil
	}
	if depth > maxDepth {
		return nil, fmt.Errorf("DWARF type %q: nesting too deep", c.Name)
	}
	size := gt.Size()
	if size < 0 {
		size = 0
	}
	t := &Type{Name: c.Name, Kind: c.ReflectKind, Size: uint64(size)}
	if t.Name == "" {
		t.Name = gt.String()
	}
	t.Name = unescapePath(t.Name)
	t.Addr = addrOf(t.Name)
	dt.conv[c.Offset] = t
	sub := func(x godwarf.Type) (*Type, error) {
		if x == nil {
			return nil, nil
		}
		return dt.convert(x, addrOf, depth+1)
	}
	under := godwarf.ResolveTypedef(gt)
	var err error
	switch u := under.(type) {
	case *godwarf.PtrType:
		if t.Name == "unsafe.Pointer" {
			t.Kind = reflect.UnsafePointer // Go's DWARF gives it no go_kind
		}
		if t.Kind == reflect.Invalid {
			t.Kind = reflect.Pointer
		}
		if t.Kind == reflect.Pointer || t.Kind == reflect.UnsafePointer {
			if _, void := u.Type.(*godwarf.VoidType); !void {
				t.Elem, err = sub(u.Type)
			}
		}
	case *godwarf.SliceType:
		t.Kind = reflect.Slice
		t.Elem, err = sub(u.ElemType)
	case *godwarf.StringType:
		t.Kind = reflect.String
	case *godwarf.InterfaceType:
		t.Kind = reflect.Interface
	case *godwarf.MapType:
		t.Kind = reflect.Map
		if t.Key, err = sub(u.KeyType); err == nil {
			t.Elem, err = sub(u.ElemType)
		}
	case *godwarf.ChanType:
		t.Kind = reflect.Chan
		t.Elem, err = sub(u.ElemType)
	case *godwarf.ArrayType:
		t.Kind = reflect.Array
		if u.Count > 0 {
			t.Len = uint64(u.Count)
		}
		t.Elem, err = sub(u.Type)
	case *godwarf.FuncType:
		t.Kind = reflect.Func
	case *godwarf.StructType:
		if t.Kind == reflect.Invalid {
			t.Kind = reflect.Struct
		}
		if t.Kind == reflect.Struct {
			t.Fields = make([]Field, 0, len(u.Field))
			for _, f := range u.Field {
				var ft *Type
				if ft, err = sub(f.Type); err != nil {
					break
				}
				if ft == nil || f.ByteOffset < 0 {
					err = fmt.Errorf("DWARF type %q: field %q has no type or offset", t.Name, f.Name)
					break
				}
				t.Fields = append(t.Fields, Field{Name: f.Name, Offset: uint64(f.ByteOffset), Embedded: f.Embedded, Type: ft})
			}
		}
	}
	if err != nil {
		delete(dt.conv, c.Offset)
		return nil, err
	}
	return t, nil
}

// unescapePath undoes the linker's escaping of import paths in symbol and
// DWARF names (cmd/internal/objabi.PathToPrefix: "%2e" for dots in the last
// path element, "%xx" for control characters, '%' and '"'), so that
// "crypto/internal/entropy/v1%2e0%2e0.source" matches the canonical
// "crypto/internal/entropy/v1.0.0.source".
func unescapePath(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
