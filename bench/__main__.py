"""``python -m bench [NAME ...]``: run every benchmark (or the named ones), each in its own process."""

import subprocess
import sys
import time

from bench import BENCHMARKS
from bench.common import PYTHON, ROOT


def main(names: list[str]) -> int:
    unknown = [n for n in names if n.replace("-", "_") not in BENCHMARKS]
    if unknown:
        print(
            f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr
        )
        return 2
    failed = []
    for name in [n.replace("-", "_") for n in names] or BENCHMARKS:
        started = time.monotonic()
        print(f"=== bench.{name}", flush=True)
        if subprocess.run([PYTHON, "-m", f"bench.{name}"], cwd=ROOT).returncode != 0:
            failed.append(name)
        print(f"=== bench.{name}: {time.monotonic() - started:.0f} s", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
