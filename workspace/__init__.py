"""The Kubernetes tree: where it is, which era it is, its GOPATH workspace, getting it."""
