// Package bpf holds originagent's BPF programs: the C sources in this
// directory and the Go bindings and objects bpf2go generates from them. The
// generated files are committed so that `go build` needs no clang; `make
// generate` rebuilds them with the pinned clang (clang-14) and `make
// check-generate` proves the committed files match the sources.
package bpf
