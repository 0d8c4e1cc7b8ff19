"""The offline kit: one file that builds Kubernetes on a machine with no network (`inv kit`)."""
