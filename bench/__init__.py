"""Benchmarks: each measures Mesh against a baseline taken in the same run, on this machine."""
