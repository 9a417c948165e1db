"""One job in parts: plan once, run any subset of windows in any process, assemble: the same bytes as whole."""

import io
import json
from dataclasses import asdict

import cv2
import numpy as np
import pytest

from tests.conftest import configure_engine
from upscale_worker.engine import EngineError
from upscale_worker.engine.api import (
    OVERLAP,
    Pinned,
    assemble,
    finish_file,
    prepare_file,
    run_windows,
    upscale_file,
)
from upscale_worker.engine.tiling import run_window, source_of, upscale_tiled, window_grid


def nearest(batch: np.ndarray) -> np.ndarray:
    return batch.repeat(2, axis=2).repeat(2, axis=3)


def rgba16(width: int, height: int) -> bytes:
    """A 16-bit RGBA PNG with texture everywhere and a transparent corner (alpha and 16-bit both travel)."""
    px = np.random.default_rng(1).integers(0, 65536, (height, width, 4), dtype=np.uint16)
    px[: height // 3, : width // 3, 3] = 0
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(px, cv2.COLOR_RGBA2BGRA))
    assert ok
    return encoded.tobytes()


@pytest.mark.parametrize("size", [(1, 1), (65, 104), (333, 517)])
@pytest.mark.parametrize("grid", [1, 6])  # EDSR's windows start anywhere, RLFN's on a 6-pixel grid
def test_it_places_windows_computed_in_any_order_where_the_whole_run_puts_them(size, grid):
    img = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    cut = window_grid(*size, 2, 64, OVERLAP, 8, grid, 15)
    source = source_of(img, cut, "replicate")
    out = np.zeros((size[0] * 2, size[1] * 2, 3), np.uint8)
    for index in reversed(range(cut.total)):
        out[cut.kept(index)] = run_window(source, cut, index, nearest)
    whole = upscale_tiled(img, 2, nearest, 64, OVERLAP, pad=8, border="replicate", grid=grid, min_window=15)
    assert np.array_equal(out, whole)


def test_a_file_run_in_two_processes_parts_equals_the_file_run_whole(tmp_path, monkeypatch):
    """16-bit RGBA: the coordinator pins the plan (a window fitted to the picture, not square), a 'helper'
    whose own choice would differ gets it through JSON and runs every other window with it, and the
    assembled, encoded result has the same bytes as upscale_file's."""
    data = rgba16(150, 110)
    upscale_file(io.BytesIO(data), tmp_path / "whole.png", scale=2)
    coordinator = prepare_file(data, 2)
    configure_engine(monkeypatch, window_area=0)  # the helper alone would run the 64 tile
    assert prepare_file(data, 2).cut.win_h == 64
    pinned = Pinned.from_dict(json.loads(json.dumps(asdict(coordinator.pinned))))  # as Job.plan carries it
    helper = prepare_file(data, 2, pinned=pinned)
    assert coordinator.pinned.win_h != coordinator.pinned.win_w and helper.cut == coordinator.cut
    assert coordinator.cut.total >= 2
    every = range(coordinator.cut.total)
    interiors = dict(run_windows(helper, every[1::2])) | dict(run_windows(coordinator, every[::2]))
    finish_file(coordinator, assemble(coordinator, interiors), tmp_path / "parts.png")
    assert (tmp_path / "parts.png").read_bytes() == (tmp_path / "whole.png").read_bytes()


def test_a_plan_pinned_with_one_square_tile_runs_as_that_window(tmp_path):
    """A coordinator of the release before fitted windows wrote ``tile``: a newer helper reads it as (tile, tile)
    and its windows equal a run pinned to that square window."""
    data = rgba16(150, 110)
    plan = asdict(prepare_file(data, 2).pinned)
    plan["win_h"] = plan["win_w"] = 64
    square = prepare_file(data, 2, pinned=Pinned(**plan))
    old = {k: v for k, v in plan.items() if k not in ("win_h", "win_w")} | {"tile": 64}
    helper = prepare_file(data, 2, pinned=Pinned.from_dict(json.loads(json.dumps(old))))
    assert helper.cut == square.cut and (helper.cut.win_h, helper.cut.win_w) == (64, 64)
    assert np.array_equal(dict(run_windows(helper, [1]))[1], dict(run_windows(square, [1]))[1])
    with pytest.raises(TypeError):
        Pinned.from_dict(old | {"unknown": 1})


def test_it_refuses_to_assemble_with_a_window_missing():
    data = rgba16(150, 110)
    prepared = prepare_file(data, 2)
    interiors = dict(run_windows(prepared, range(1, prepared.cut.total)))
    with pytest.raises(EngineError, match="1 of"):
        assemble(prepared, interiors)


def test_a_pinned_plan_for_another_scale_is_refused():
    prepared = prepare_file(rgba16(20, 20), 2)
    with pytest.raises(EngineError, match="x2"):
        prepare_file(rgba16(20, 20), 3, pinned=prepared.pinned)
