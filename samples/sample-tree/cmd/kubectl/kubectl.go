// Command kubectl is a sample stand-in for the real kubectl.
// Reads its version from k8s.io/client-go/pkg/version.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"k8s.io/client-go/pkg/version"
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
	fs := flag.NewFlagSet("kubectl", flag.ExitOnError)
	fs.Var(&ver, "version", "Print version information and quit (--version=raw for JSON)")
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

	fmt.Printf("kubectl %s: nothing to do (sample binary)\n", version.Get().GitVersion)
}
