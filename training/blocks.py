"""Generated blocks in the documentation pages: a tool that measures something rewrites its own block."""

from __future__ import annotations

import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def write_block(name: str, text: str, page: Path) -> None:
    """Replace what lies between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` in ``page`` (a markdown
    file); nothing else. A page without the block is left alone, with a note on stderr."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    content = page.read_text()
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(content):
        print(f"note: {page.name} has no {start} block; table not written there", file=sys.stderr)
        return
    page.write_text(pattern.sub(lambda _: f"{start}\n{text.rstrip()}\n{end}", content, count=1))
