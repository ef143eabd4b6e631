// Package config fills a command's flags from ORIGINAGENT_* environment
// variables and an optional YAML file, so that a DaemonSet can configure
// the agent through its manifest's env or a mounted ConfigMap without
// repeating every flag in args. Precedence, highest first: the command
// line, the environment, the file, the flag's default.
//
// The file is a flat YAML mapping from flag names to values:
//
//	listen-unix: /var/run/datadog/apm.socket
//	frameworks: [net/http, gin]
package config

import (
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// skip are flags that configure the parsing itself, never bound.
var skip = map[string]bool{"help": true}

// EnvName returns the environment variable that sets flag name:
// EnvName("ORIGINAGENT", "listen-unix") is ORIGINAGENT_LISTEN_UNIX.
func EnvName(prefix, name string) string {
	r := strings.NewReplacer("-", "_", ".", "_")
	return strings.ToUpper(strings.TrimSuffix(prefix, "_") + "_" + r.Replace(name))
}

// Bind sets every flag of cmd (its own and the persistent flags it
// inherits) that was not given on the command line from the environment
// variable EnvName(envPrefix, flag), else from the YAML file's key of the
// same name when file is not empty. Call it once the flags are parsed, e.g.
// from PersistentPreRunE; flags it sets count as changed, so cobra's
// required-flag check accepts them.
//
// An environment variable set to the empty string counts as set: it gives
// a string flag the empty value (which turns off flags such as
// --select-env) and a slice flag the empty list. Slice flags take YAML
// lists or comma-separated values. A key of the file that names no flag, a value
// a flag rejects, or an unreadable file is an error naming the key, flag
// and source.
func Bind(cmd *cobra.Command, envPrefix, file string) error {
	fs := pflag.NewFlagSet(cmd.Name(), pflag.ContinueOnError)
	seen := map[string]bool{}
	add := func(f *pflag.Flag) {
		if !seen[f.Name] {
			seen[f.Name] = true
			fs.AddFlag(f) // shares *Flag, so values land on cmd's flags
		}
	}
	cmd.Flags().VisitAll(add)
	cmd.InheritedFlags().VisitAll(add)
	return BindFlagSet(fs, envPrefix, file)
}

// BindFlagSet is Bind for a plain pflag.FlagSet.
func BindFlagSet(fs *pflag.FlagSet, envPrefix, file string) error {
	var data []byte
	if file != "" {
		var err error
		if data, err = os.ReadFile(file); err != nil {
			return fmt.Errorf("read config file: %w", err)
		}
	}
	return bind(fs, envPrefix, file, data)
}

// bind is BindFlagSet with the file's content already read; file names it
// in errors and is empty when there is no file.
func bind(fs *pflag.FlagSet, envPrefix, file string, data []byte) error {
	var fileVals map[string]*yaml.Node
	if file != "" {
		var err error
		if fileVals, err = parseFile(file, data); err != nil {
			return err
		}
		if err := checkKeys(fs, file, fileVals); err != nil {
			return err
		}
	}
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || skip[f.Name] {
			return
		}
		env := EnvName(envPrefix, f.Name)
		if v, ok := os.LookupEnv(env); ok {
			if err := setFromString(f, v); err != nil {
				errs = append(errs, fmt.Errorf("invalid value %q for flag --%s from environment variable %s: %w", v, f.Name, env, err))
				return
			}
			f.Changed = true
			return
		}
		if n, ok := fileVals[f.Name]; ok {
			if err := setFromNode(f, n); err != nil {
				errs = append(errs, fmt.Errorf("%s:%d: invalid value for flag --%s: %w", file, n.Line, f.Name, err))
				return
			}
			f.Changed = true
		}
	})
	return errors.Join(errs...)
}

// parseFile returns the file's top-level mapping, keyed by flag name.
func parseFile(file string, data []byte) (map[string]*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse config file %s: %w", file, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 { // empty file or comments only
		return nil, nil
	}
	top := resolve(doc.Content[0])
	if top.Kind == yaml.ScalarNode && top.Tag == "!!null" {
		return nil, nil
	}
	if top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: config file must be a mapping of flag names to values", file, top.Line)
	}
	vals := make(map[string]*yaml.Node, len(top.Content)/2)
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := resolve(top.Content[i]), resolve(top.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("%s:%d: key must be a flag name", file, k.Line)
		}
		if k.Value == "<<" {
			return nil, fmt.Errorf("%s:%d: merge keys are not supported", file, k.Line)
		}
		if _, dup := vals[k.Value]; dup {
			return nil, fmt.Errorf("%s:%d: key %q appears twice", file, k.Line, k.Value)
		}
		vals[k.Value] = v
	}
	return vals, nil
}

// checkKeys rejects keys that name no flag: a typo must not be ignored.
func checkKeys(fs *pflag.FlagSet, file string, vals map[string]*yaml.Node) error {
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return vals[keys[i]].Line < vals[keys[j]].Line })
	var errs []error
	for _, k := range keys {
		if fs.Lookup(k) == nil || skip[k] {
			errs = append(errs, fmt.Errorf("%s:%d: unknown key %q: no flag --%s", file, vals[k].Line, k, k))
		}
	}
	return errors.Join(errs...)
}

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func setFromString(f *pflag.Flag, v string) error {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		items, err := splitList(v)
		if err != nil {
			return err
		}
		return sv.Replace(items)
	}
	return f.Value.Set(v)
}

func setFromNode(f *pflag.Flag, n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return errors.New("no value")
		}
		return setFromString(f, n.Value)
	case yaml.SequenceNode:
		sv, ok := f.Value.(pflag.SliceValue)
		if !ok {
			return fmt.Errorf("a list, but the flag takes a single %s", f.Value.Type())
		}
		items := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			c = resolve(c)
			if c.Kind != yaml.ScalarNode || c.Tag == "!!null" {
				return fmt.Errorf("line %d: list items must be plain values", c.Line)
			}
			items = append(items, c.Value)
		}
		return sv.Replace(items)
	case yaml.MappingNode:
		// Map-valued flags (pflag's StringToString and friends) parse "k=v,k=v".
		if !strings.HasPrefix(f.Value.Type(), "stringTo") {
			return fmt.Errorf("a mapping, but the flag takes a %s", f.Value.Type())
		}
		pairs := make([]string, 0, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
			if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: mapping entries must be plain values", k.Line)
			}
			pairs = append(pairs, k.Value+"="+v.Value)
		}
		return f.Value.Set(strings.Join(pairs, ","))
	default:
		return fmt.Errorf("unsupported YAML node kind %d", n.Kind)
	}
}

// splitList splits comma-separated values as pflag's slice flags do
// (CSV, so a quoted item may contain a comma).
func splitList(v string) ([]string, error) {
	if strings.TrimSpace(v) == "" {
		return []string{}, nil
	}
	r := csv.NewReader(strings.NewReader(v))
	r.TrimLeadingSpace = true
	items, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("split list: %w", err)
	}
	return items, nil
}

// AnnotateEnv appends "(env PREFIX_NAME)" to the usage of each flag of fs,
// so --help says how to set it from the environment. It is idempotent.
func AnnotateEnv(fs *pflag.FlagSet, prefix string) {
	fs.VisitAll(func(f *pflag.Flag) {
		if skip[f.Name] {
			return
		}
		note := "(env " + EnvName(prefix, f.Name) + ")"
		if strings.Contains(f.Usage, note) {
			return
		}
		if f.Usage == "" {
			f.Usage = note
		} else {
			f.Usage += " " + note
		}
	})
}
