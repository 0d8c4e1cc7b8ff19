"""Helpers for tests that need real parts (a Docker engine, a registry)."""
