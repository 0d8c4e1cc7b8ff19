// Command kube-apiserver is a sample stand-in for the real kube-apiserver.
// Needs the generated OpenAPI definitions (make gen_openapi).
//
// Besides --version and --openapi-count it is a tiny but real HTTPS server
// shaped like the v1.20 kube-apiserver: it needs a reachable etcd
// (--etcd-servers), authenticates bearer tokens from --token-auth-file,
// writes a self-signed serving certificate into --cert-dir, and serves
// /version, /healthz, /livez, /readyz and an in-memory ConfigMap store under
// /api/v1/namespaces/{ns}/configmaps.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"k8s.io/component-base/version"

	"k8s.io/kubernetes/pkg/generated/openapi"
)

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

func main() {
	ver := versionValue("false")
	fs := flag.NewFlagSet("kube-apiserver", flag.ContinueOnError)
	fs.Var(&ver, "version", "Print version information and quit (--version=raw for JSON)")
	openapiCount := fs.Bool("openapi-count", false, "Print the number of OpenAPI definitions and quit")
	opts := addServerFlags(fs)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stdout)
			fmt.Println("Usage of kube-apiserver:")
			fs.PrintDefaults()
			os.Exit(0)
		}
		// Unknown flags and bad values are errors, like the real command.
		fmt.Fprintf(os.Stderr, "Error: %v\nRun 'kube-apiserver --help' for usage.\n", err)
		os.Exit(1)
	}
	// Like the real command (cobra Args check): no positional arguments.
	for _, arg := range fs.Args() {
		if len(arg) > 0 {
			fmt.Fprintf(os.Stderr, "Error: %q does not take any arguments, got %q\n", "kube-apiserver", fs.Args())
			os.Exit(1)
		}
	}

	switch ver {
	case "raw":
		out, err := rawVersion()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Stdout.Write(out)
		return
	case "true":
		fmt.Printf("Kubernetes %s\n", version.Get().GitVersion)
		return
	}
	defs := openapi.GetOpenAPIDefinitions()
	if *openapiCount {
		fmt.Println(len(defs))
		return
	}
	if err := run(opts, len(defs)); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}

// rawVersion is what --version=raw prints and GET /version serves.
func rawVersion() ([]byte, error) {
	out, err := json.MarshalIndent(version.Get(), "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}
