package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/originagent/originagent/internal/e2eservices"
	"github.com/originagent/originagent/internal/symbolize"
	"github.com/originagent/originagent/internal/testbuild"
	"github.com/originagent/originagent/internal/testutil"
)

// TestDemo runs what `make demo` runs, without a terminal, and checks that
// its table names the example services' real handlers (the net/http shop's
// and the gin shop's) at their real declaration lines (read from each
// binary), with every span tagged.
func TestDemo(t *testing.T) {
	testutil.RequireRoot(t)
	root, err := e2eservices.RootDir()
	if err != nil {
		t.Fatal(err)
	}
	bins := testbuild.BuildAll(t,
		testbuild.Spec{Dir: root, Pkg: "./examples/shop"},
		// Its own module; stripped PIE -trimpath like the framework test
		// services, whose compiled dependencies it then shares.
		testbuild.Spec{Dir: filepath.Join(root, "examples", "ginshop"), Pkg: ".",
			Flags: []string{"-buildmode=pie", "-trimpath", "-ldflags=-s -w"}})
	shop, ginshop := bins[0], bins[1]
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svcs := []demoService{
		{name: "shop", bin: shop, requests: shopRequests},
		{name: "ginshop", bin: ginshop, requests: ginshopRequests},
	}
	if err := runDemo(ctx, &out, slog.New(slog.NewTextHandler(io.Discard, nil)), svcs, 2); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())

	const api = "github.com/originagent/originagent/examples/shop/api."
	checkDemoRows(t, out.String(), "shop", shop, map[string]string{
		"GET /healthz":      api + "Health",
		"GET /users/{id}":   api + "(*Users).Get",
		"GET /products":     api + "Catalog.ServeHTTP",
		"POST /orders":      api + "(*Orders).ServeHTTP",
		"GET /carts/{user}": api + "Register.CartHandler.func1",
	})
	const ginapi = "github.com/originagent/originagent/examples/ginshop/api."
	checkDemoRows(t, out.String(), "ginshop", ginshop, map[string]string{
		"GET /healthz":              ginapi + "Health",
		"GET /books":                ginapi + "(*Shelf).List",
		"GET /books/:isbn":          ginapi + "(*Shelf).Get",
		"GET /authors/:name":        ginapi + "Register.Authors.func2",
		"POST /admin/books":         ginapi + "(*Shelf).Add",
		"DELETE /admin/books/:isbn": ginapi + "Catalog.Remove",
	})
	for _, svc := range []string{"shop", "ginshop"} {
		if !regexp.MustCompile(`(?m)^` + svc + `: trace [0-9a-f]+, span \d+ .*\n(  _dd\.code_origin\..*\n)*  _dd\.code_origin\.type = entry$`).MatchString(out.String()) {
			t.Errorf("no enriched trace of %s printed", svc)
		}
	}
}

// checkDemoRows checks the demo table's rows of service against want
// (route to function symbol): the location must be the function's file
// and declaration line in bin, and every span of the route tagged.
func checkDemoRows(t *testing.T, out, service, bin string, want map[string]string) {
	t.Helper()
	sym, err := symbolize.Open(bin, symbolize.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for route, fn := range want {
		f, ok := sym.Func(fn)
		if !ok {
			t.Errorf("%s %s: no function %s in its binary", service, route, fn)
			continue
		}
		frames, err := sym.Lookup(f.Entry, false)
		if err != nil || len(frames) == 0 {
			t.Errorf("%s %s: lookup %s: %v", service, route, fn, err)
			continue
		}
		loc := fmt.Sprintf("%s:%d", shortPath(frames[0].File), f.StartLine)
		row := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(service) + `\s+` + regexp.QuoteMeta(route) + `\s+(\S+)\s+(\S+)\s+(\d+)/(\d+)$`).FindStringSubmatch(out)
		if row == nil {
			t.Errorf("%s %s: no row in the table", service, route)
			continue
		}
		if row[2] != loc {
			t.Errorf("%s %s: location %s, want %s", service, route, row[2], loc)
		}
		if row[3] != row[4] || row[3] == "0" {
			t.Errorf("%s %s: %s of %s spans tagged", service, route, row[3], row[4])
		}
	}
}
