// Command kube-log-runner is a sample stand-in for Kubernetes' kube-log-runner:
// it runs a command and copies its output to a log file. --version=raw prints
// the stamped version like the other sample commands.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"

	"k8s.io/component-base/version"
)

func main() {
	logFile := flag.String("log-file", "", "also write the command's output here")
	showVersion := flag.String("version", "", "print the version (raw: as JSON) and exit")
	flag.Parse()
	if *showVersion == "raw" {
		out, _ := json.MarshalIndent(version.Get(), "", "  ")
		fmt.Println(string(out))
		return
	}
	if *showVersion != "" {
		fmt.Printf("Kubernetes %s\n", version.Get().GitVersion)
		return
	}
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: kube-log-runner [-log-file FILE] COMMAND [ARGS...]")
		os.Exit(2)
	}
	var out io.Writer = os.Stdout
	if *logFile != "" {
		f, err := os.OpenFile(*logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer f.Close()
		out = io.MultiWriter(os.Stdout, f)
	}
	cmd := exec.Command(flag.Arg(0), flag.Args()[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
