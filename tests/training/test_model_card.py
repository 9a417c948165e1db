"""The model card measures each cell once per model file: a regenerated card reads the others back."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tests.conftest import configure_engine
from training import model_card


def benchmark_sets(root, images: int) -> None:
    rng = np.random.default_rng(0)
    for name in model_card.SETS:
        folder = root / name / "HR"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(images):
            rgb = rng.integers(0, 256, size=(24, 24, 3), dtype=np.uint8)
            Image.fromarray(rgb).save(folder / f"img{i}.png")


def test_it_measures_a_cell_once_and_reads_it_back_while_the_model_is_the_same(tmp_path, monkeypatch):
    configure_engine(monkeypatch, models_dir=tmp_path / "no-models", precision=None)  # bicubic only
    cache = tmp_path / "cells.json"
    benchmark_sets(tmp_path / "sets", 2)
    first = model_card.measure(tmp_path / "sets", None, scales=(2,), cache=cache)
    benchmark_sets(tmp_path / "sets", 3)  # a new image would change every mean that is measured again
    again = model_card.measure(tmp_path / "sets", None, scales=(2,), cache=cache)
    bicubic = lambda cells: {k: (r.bicubic_psnr, r.bicubic_ssim) for k, r in cells.items()}  # noqa: E731
    assert bicubic(again) == bicubic(first) and all(np.isnan(row.psnr) for row in again.values())
    fresh = model_card.measure(tmp_path / "sets", None, scales=(2,), cache=None)
    assert fresh[("Set5", 2)].bicubic_psnr != first[("Set5", 2)].bicubic_psnr
