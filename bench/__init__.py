"""Benchmarks of the engine and the platform (issue 6). Each prints a table and rewrites its block in docs/benchmarks.md.

    python -m bench                      # all of them, one after another (a few minutes each)
    python -m bench engine_peers web     # some of them
    python -m bench.engine_peers --help  # one, with its flags for longer runs

Models for the speed runs are exported into bench/out/ (git-ignored) by bench/prepare.py through
training/export.py; while a benchmark times something, the background training (if any) is paused.
"""

BENCHMARKS = [
    "engine_peers",
    "networks",
    "network_precision",
    "engine_peak",
    "window_cache",
    "engine_overhead",
    "intel_peer",
    "memory",
    "end_to_end",
    "scale_out",
    "photo_latency",
    "web",
    "lossy_links",
    "partial_preview",
    "target_resize",
]

from bench.common import configure_engine, prioritise  # noqa: E402

prioritise()
configure_engine()
