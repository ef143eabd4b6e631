package bpf

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc ${BPF_CLANG} -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86 -I/usr/include/x86_64-linux-gnu" -target amd64 -go-package bpf -type event -type recipe -type pc_kind -type recipe_flags -type kv_limits -type reg -type chain -type node_kind -type event_flags -type layout_flags -type layout_limits -type node_flags -type stat -output-stem origin Origin origin.c
