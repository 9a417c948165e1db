"""`make test`: pytest against a real PostgreSQL and Redis (the machine's, or private ones under var/)."""

from __future__ import annotations

import os
import subprocess
import sys

from scripts.services import ROOT, ensure_postgres, ensure_redis


def main(args: list[str]) -> int:
    os.environ["REDIS_URL"] = ensure_redis()
    os.environ["DATABASE_URL"] = ensure_postgres()
    return subprocess.run([sys.executable, "-m", "pytest", *args], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
