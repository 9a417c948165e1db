"""The per-host window cost table: measured by calibrate, read by the engine when its key is present, else
the engine chooses windows by pixel counts."""

import json

import numpy as np
import pytest

from tests.conftest import configure_engine
from upscale_worker import calibrate
from upscale_worker.engine import api, costs, runtime
from upscale_worker.engine.config import current


def test_it_interpolates_the_time_per_pixel_between_measured_sides():
    table = costs.CostTable(((100, 100 * 100 * 1.0), (200, 200 * 200 * 3.0)))
    assert table.per_pixel(150) == pytest.approx(2.0)
    assert table.per_pixel(50) == 1.0 and table.per_pixel(400) == 3.0  # the nearest side beyond the ends
    assert table.window_ms(100, 225) == pytest.approx(100 * 225 * 2.0)  # a 150 x 150 square's area


def test_a_saved_table_is_read_back_by_its_key_beside_the_others(tmp_path):
    path = tmp_path / "var" / "window-costs.json"
    costs.save(path, "a", {128: 10.0, 256: 50.0}, {"rounds": 3})
    costs.save(path, "b", {64: 1.0}, {})
    assert costs.lookup(path, "a") == costs.CostTable(((128, 10.0), (256, 50.0)))
    assert costs.lookup(path, "b").sides == (64,) and costs.lookup(path, "c") is None
    assert json.loads(path.read_text())["tables"]["a"]["rounds"] == 3


def test_a_missing_or_damaged_table_means_pixel_counts(tmp_path):
    assert costs.lookup(tmp_path / "none.json", "a") is None
    (tmp_path / "bad.json").write_text("{not json")
    assert costs.lookup(tmp_path / "bad.json", "a") is None


def plan_for(width, height):
    return api._pinned(width, height, 2, api._checked(2, api.Options()))


def this_hosts_key():
    plan = api._checked(2, api.Options())
    sha = runtime.checked_model(runtime.models_dir(), 2, "clean", plan.precision).entry["sha256"]["bin"]
    inference = runtime.inference_type(plan.precision).get_type_name()
    return costs.key(runtime.cpu_name(), sha, inference, runtime.threads())


def test_the_engine_weighs_its_windows_by_this_hosts_table(tmp_path, monkeypatch):
    configure_engine(monkeypatch, window_costs=tmp_path / "costs.json", window_area=200 * 200)
    by_pixels = plan_for(600, 500)
    costs.save(current().window_costs, "another CPU | ...", {64: 1.0, 200: 1000.0}, {})
    assert plan_for(600, 500) == by_pixels  # another host's table is not this one's
    costs.save(current().window_costs, this_hosts_key(), {64: 64 * 64 * 1.0, 200: 200 * 200 * 4.0}, {})
    by_cost = plan_for(600, 500)
    assert by_pixels.win_h * by_pixels.win_w > 150 * 150 > by_cost.win_h * by_cost.win_w


def test_calibrate_measures_each_side_for_this_host_and_the_engine_reads_it(tmp_path, monkeypatch):
    monkeypatch.setenv("UPSCALE_MODELS_DIR", str(runtime.models_dir()))
    monkeypatch.setenv("UPSCALE_PRECISION", "f32")
    out = tmp_path / "costs.json"
    args = ["--scales", "2", "--networks", "edsr", "--variants", "clean", "--sides", "40,56", "--rounds", "1"]
    assert calibrate.main([*args, "--out", str(out)]) == 0
    table = costs.lookup(out, this_hosts_key())
    assert table is not None and table.sides == (40, 56) and all(ms > 0 for _, ms in table.ms)
    configure_engine(monkeypatch, window_costs=out)
    assert api._window_cost(api._checked(2, api.Options()), "f32")(40, 40) == pytest.approx(table.ms[0][1])
    assert np.isfinite(table.per_pixel(48))


def test_calibrate_refuses_nonsense_sides(capsys):
    assert calibrate.main(["--sides", "0"]) == 2
    assert "positive" in capsys.readouterr().err
