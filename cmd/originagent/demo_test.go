package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/originagent/originagent/internal/e2eservices"
	"github.com/originagent/originagent/internal/symbolize"
	"github.com/originagent/originagent/internal/testutil"
)

// TestDemo runs what `make demo` runs, without a terminal, and checks that
// its table names the example shop's real handlers at their real
// declaration lines (read from the shop binary), with every span tagged.
func TestDemo(t *testing.T) {
	testutil.RequireRoot(t)
	shop := e2eservices.BuildPackage(t, "./examples/shop")
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := runDemo(ctx, &out, slog.New(slog.NewTextHandler(io.Discard, nil)), shop, 2); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())

	sym, err := symbolize.Open(shop, symbolize.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const api = "github.com/originagent/originagent/examples/shop/api."
	for route, fn := range map[string]string{
		"GET /healthz":      api + "Health",
		"GET /users/{id}":   api + "(*Users).Get",
		"GET /products":     api + "Catalog.ServeHTTP",
		"POST /orders":      api + "(*Orders).ServeHTTP",
		"GET /carts/{user}": api + "Register.CartHandler.func1",
	} {
		f, ok := sym.Func(fn)
		if !ok {
			t.Errorf("%s: no function %s in the shop binary", route, fn)
			continue
		}
		frames, err := sym.Lookup(f.Entry, false)
		if err != nil || len(frames) == 0 {
			t.Errorf("%s: lookup %s: %v", route, fn, err)
			continue
		}
		loc := fmt.Sprintf("%s:%d", shortPath(frames[0].File), f.StartLine)
		row := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(route) + `\s+(\S+)\s+(\S+)\s+(\d+)/(\d+)$`).FindStringSubmatch(out.String())
		if row == nil {
			t.Errorf("%s: no row in the table", route)
			continue
		}
		if row[2] != loc {
			t.Errorf("%s: location %s, want %s", route, row[2], loc)
		}
		if row[3] != row[4] || row[3] == "0" {
			t.Errorf("%s: %s of %s spans tagged", route, row[3], row[4])
		}
	}
	if !strings.Contains(out.String(), "_dd.code_origin.type = entry") {
		t.Errorf("no enriched trace printed")
	}
}
