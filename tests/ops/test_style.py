"""The test command's style gate (scripts/test.py): ruff's lint and formatter and mypy pass on the tree, and
a finding stops it."""

import shutil

from scripts.test import ROOT, check


def test_the_tree_passes_every_style_check():
    assert check() == 0


def test_a_lint_finding_fails_the_check(tmp_path):
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "upscale_worker").mkdir()
    (tmp_path / "upscale_worker" / "bad.py").write_text("import os\n")  # unused import: F401
    assert check(tmp_path) != 0


def test_unformatted_code_fails_the_check(tmp_path):
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "upscale_worker").mkdir()
    (tmp_path / "upscale_worker" / "ugly.py").write_text("x  =  1\n")
    assert check(tmp_path) != 0
