package origin

import (
	"reflect"
	"testing"
)

func TestTraceIDString(t *testing.T) {
	for _, tc := range []struct {
		id   TraceID
		want string
	}{
		{TraceID{}, "00000000000000000000000000000000"},
		{TraceID{Low: 1}, "00000000000000000000000000000001"},
		{TraceID{High: 0x6b092b1000000000, Low: 0x3a22203dfbd91f98}, "6b092b10000000003a22203dfbd91f98"},
		{TraceID{High: ^uint64(0), Low: ^uint64(0)}, "ffffffffffffffffffffffffffffffff"},
	} {
		if got := tc.id.String(); got != tc.want {
			t.Errorf("%#v.String() = %s, want %s", tc.id, got, tc.want)
		}
	}
}

func TestTags(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  Record
		want map[string]string
	}{
		{name: "no frames", rec: Record{SpanID: 1}},
		{
			name: "declaration line wins",
			rec: Record{Frames: []Frame{{File: "/src/api/users.go", Line: 42, StartLine: 40,
				Type: "github.com/acme/shop/api.Users", Method: "Get"}, {File: "x.go", Line: 1}}},
			want: map[string]string{
				TagType: "entry", TagFrameFile: "/src/api/users.go", TagFrameLine: "40",
				TagFrameType: "github.com/acme/shop/api.Users", TagFrameMethod: "Get",
			},
		},
		{
			name: "pc line without start line",
			rec:  Record{Frames: []Frame{{File: "main.go", Line: 7, Type: "main", Method: "hello"}}},
			want: map[string]string{TagType: "entry", TagFrameFile: "main.go", TagFrameLine: "7", TagFrameType: "main", TagFrameMethod: "hello"},
		},
	} {
		if got := tc.rec.Tags(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Tags() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestTee(t *testing.T) {
	var a, b []uint64
	s := Tee(SinkFunc(func(r Record) { a = append(a, r.SpanID) }), SinkFunc(func(r Record) { b = append(b, r.SpanID) }))
	s.Put(Record{SpanID: 1})
	s.Put(Record{SpanID: 2})
	if !reflect.DeepEqual(a, []uint64{1, 2}) || !reflect.DeepEqual(b, []uint64{1, 2}) {
		t.Fatalf("tee delivered %v and %v", a, b)
	}
}
