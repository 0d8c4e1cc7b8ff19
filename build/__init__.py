"""Building Kubernetes: version stamps, the Go toolchain, the go build plan and its execution."""
