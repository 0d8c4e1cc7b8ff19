// Command kube-apiserver is a sample stand-in for the real kube-apiserver.
// Needs the generated OpenAPI definitions (make gen_openapi).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
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
	fs := flag.NewFlagSet("kube-apiserver", flag.ExitOnError)
	fs.Var(&ver, "version", "Print version information and quit (--version=raw for JSON)")
	openapiCount := fs.Bool("openapi-count", false, "Print the number of OpenAPI definitions and quit")
	_ = fs.Parse(os.Args[1:])

	switch ver {
	case "raw":
		out, err := json.MarshalIndent(version.Get(), "", "  ")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(string(out))
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
	fmt.Printf("kube-apiserver %s: nothing to do (sample binary)\n", version.Get().GitVersion)
}
