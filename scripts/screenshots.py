"""`make screenshots`: the pictures of every page in docs/ (docs/<page>-<width>.png at 390 and 1280 px), taken
by headless Chromium (Debian's, /usr/bin/chromium; never `playwright install`) against a live server and a
real worker, started as the browser tests start them (tests/browser/screenshots.py, through scripts.test:
PostgreSQL and Redis found or started). Unattended, in about a minute or two.

    python -m scripts.screenshots [--out FOLDER] [pytest options]
"""

from __future__ import annotations

import argparse
import os
import sys

from scripts import test
from scripts.services import ROOT


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs"), help="folder for the PNGs (default: docs/)")
    args, rest = parser.parse_known_args(argv)
    os.environ["SCREENSHOTS_OUT"] = os.path.abspath(args.out)
    os.environ["LINT"] = "0"  # pictures, not a style check
    return test.main(["tests/browser/screenshots.py", "-q", "-p", "no:cacheprovider", *rest])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
