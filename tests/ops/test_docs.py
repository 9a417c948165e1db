"""The README stays a five-minute read and every page it leads to is there: links and anchors resolve, each
generated block has its page, and nothing points at a command line that no longer exists."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(page):
    """GitHub's heading slugs: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_the_readme_is_at_most_16_kb_and_runs_make_test_first():
    text = (ROOT / "README.md").read_text()
    assert len(text.encode()) <= 16 * 1024
    assert "make run" in text and re.search(r"^make test", text, re.M)


def test_the_readme_links_every_docs_page():
    linked = {m for m in LINK.findall((ROOT / "README.md").read_text()) if m.startswith("docs/")}
    pages = {f"docs/{p.name}" for p in PAGES[1:]}
    assert pages <= {link.split("#")[0] for link in linked}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_and_anchor_resolves(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists() or (anchor and file.suffix == ".md" and anchor not in anchors(file)):
            broken.append(target)
    assert broken == []


def test_every_benchmark_and_the_model_card_have_their_block():
    published = set(
        re.findall(r'publish\(\s*"([\w-]+)"', "".join(p.read_text() for p in (ROOT / "bench").glob("*.py")))
    )
    benchmarks = (ROOT / "docs" / "benchmarks.md").read_text()
    assert published and all(f"<!-- bench:{name} -->" in benchmarks for name in published)
    assert "<!-- bench:model-card -->" in (ROOT / "docs" / "models.md").read_text()


def test_no_page_names_the_old_celery_app():
    assert [p.name for p in PAGES if "-A upscale_worker" in p.read_text()] == []
