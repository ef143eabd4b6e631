package export

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/originagent/originagent/internal/origin"
)

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestJSONLines(t *testing.T) {
	var buf bytes.Buffer
	j := NewJSONLines(&buf)
	r := testRecord(origin.TraceID{High: 0xabc, Low: 1<<63 + 5}, 1<<62+7, 3, "Get")
	r.Labels = map[string]string{"pod": "shop-1"}
	j.Put(r)
	j.Put(testRecord(origin.TraceID{Low: 9}, 10, 1, "List"))
	if err := j.Flush(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	var lines []map[string]any
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2", len(lines))
	}
	if lines[0]["trace_id"] != r.TraceID.String() || lines[0]["span_id"] != "4611686018427387911" {
		t.Errorf("IDs: %v %v", lines[0]["trace_id"], lines[0]["span_id"])
	}
	f := lines[0]["frames"].([]any)[0].(map[string]any)
	if f["method"] != "Get" || f["start_line"] != 42.0 || f["file"] != "/src/shop/api/users.go" {
		t.Errorf("frame %v", f)
	}
	if lines[0]["labels"].(map[string]any)["pod"] != "shop-1" {
		t.Errorf("labels %v", lines[0]["labels"])
	}

	bad := NewJSONLines(failWriter{})
	bad.Put(r)
	bad.Put(r)
	if err := bad.Flush(); err == nil {
		t.Error("write error not reported")
	}
}
