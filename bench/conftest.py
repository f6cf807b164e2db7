"""Benchmarks are not timed tests: nothing here is for pytest to collect, even when it is
pointed at bench/ (the root configuration's testpaths leave it out anyway)."""

collect_ignore_glob = ["*.py"]
