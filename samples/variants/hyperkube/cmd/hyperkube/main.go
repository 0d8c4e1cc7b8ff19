// Command hyperkube is a sample stand-in for the all-in-one hyperkube binary
// that Kubernetes trees shipped up to v1.18: one binary that becomes a server
// by the name it is called with (a kube-apiserver -> hyperkube symlink) or by
// its first argument (hyperkube kube-apiserver ...).
// Reads its version from k8s.io/component-base/version.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/component-base/version"
)

// servers are the commands this hyperkube can become.
var servers = []string{
	"kube-apiserver",
	"kube-controller-manager",
	"kube-scheduler",
	"kube-proxy",
	"kubelet",
	"kubectl",
}

// versionValue implements --version / --version=raw like Kubernetes' verflag.
type versionValue string

func (v *versionValue) String() string   { return string(*v) }
func (v *versionValue) IsBoolFlag() bool { return true }
func (v *versionValue) Set(s string) error {
	switch s {
	case "true", "false", "raw":
		*v = versionValue(s)
		return nil
	}
	return fmt.Errorf("invalid value %q (want true, false or raw)", s)
}

func isServer(name string) bool {
	for _, s := range servers {
		if s == name {
			return true
		}
	}
	return false
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: hyperkube <server> [flags]\n   or: <server> [flags]  (via a symlink named after the server)\n\nServers:\n")
	for _, s := range servers {
		fmt.Fprintf(w, "  %s\n", s)
	}
}

func main() {
	name, args := filepath.Base(os.Args[0]), os.Args[1:]
	if !isServer(name) {
		if len(args) == 0 || !isServer(args[0]) {
			if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
				fmt.Fprintf(os.Stderr, "Error: unknown server %q\n", args[0])
			}
			usage(os.Stderr)
			os.Exit(1)
		}
		name, args = args[0], args[1:]
	}
	os.Exit(runServer(name, args))
}

// runServer stands in for the named server's own command.
func runServer(name string, args []string) int {
	ver := versionValue("false")
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(&ver, "version", "Print version information and quit (--version=raw for JSON)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Printf("Usage of %s (hyperkube):\n", name)
			fs.SetOutput(os.Stdout)
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		return 1
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "Error: %q does not take any arguments, got %q\n", name, fs.Args())
		return 1
	}
	switch ver {
	case "raw":
		out, err := json.MarshalIndent(version.Get(), "", "  ")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(string(out))
		return 0
	case "true":
		fmt.Printf("Kubernetes %s\n", version.Get().GitVersion)
		return 0
	}
	fmt.Printf("%s: sample hyperkube server\n", name)
	return 0
}
