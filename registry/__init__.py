"""The registry HTTP API (OCI distribution), shared by the build cache and the image set."""
