"""The commands around the Go build: `inv doctor`, `inv ci` (the pipeline), `inv smoke`, `inv demo`."""
