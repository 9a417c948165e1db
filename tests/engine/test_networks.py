"""The network choice (issue 23): EDSR by default, RLFN on request; what each needs comes from the manifest."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import configure_engine
from tests.engine.conftest import encode, gradient
from upscale_worker.engine import EngineError, Options, upscale_array, upscale_file
from upscale_worker.engine.api import Geometry, _checked


def test_edsr_stays_the_default_and_keeps_its_border(with_rlfn):
    plan = _checked(2, Options())
    assert plan.network == "edsr" and plan.model.startswith("edsr_baseline_x2")
    assert plan.geometry == Geometry("replicate", 8, 8, 1, 1)


def test_rlfn_runs_on_request_with_the_needs_its_manifest_entry_names(with_rlfn):
    plan = _checked(2, Options(network="rlfn"))
    assert (plan.network, plan.model) == ("rlfn", "rlfn_x2")
    assert plan.geometry == Geometry("reflect", 0, 8, 6, 15, 120)
    assert plan.tiles == (120,)  # the configured 64, raised to the smallest tile that keeps the promise
    assert _checked(2, Options(network="rlfn", tile=280)).tiles == (276,)  # cut to the window grid


def test_the_operator_can_make_rlfn_the_default(with_rlfn, monkeypatch, tmp_path):
    configure_engine(monkeypatch, default_network="rlfn")
    result = upscale_file(_png(tmp_path), tmp_path / "out.png", 2)
    assert (result.network, result.model) == ("rlfn", "rlfn_x2")


def test_the_operator_can_leave_rlfn_out(with_rlfn, monkeypatch):
    configure_engine(monkeypatch, networks=("edsr",), default_network="rlfn")  # never a network left out
    assert _checked(2, Options()).network == "edsr"
    with pytest.raises(EngineError, match="RLFN network is not offered"):
        _checked(2, Options(network="rlfn"))


def test_a_scale_the_network_lacks_is_refused_never_switched(with_rlfn, monkeypatch):
    from upscale_worker.engine import models

    scales = {None: [2, 3], "edsr": [2, 3], "rlfn": [2]}  # as if EDSR x3 were installed
    monkeypatch.setattr(models, "available_scales", lambda folder=None, network=None: scales[network])
    with pytest.raises(EngineError, match=r"^RLFN has no x3 model; choose x2, or the EDSR network\.$"):
        _checked(3, Options(network="rlfn"))


def test_an_unknown_network_is_a_clear_error(with_rlfn):
    with pytest.raises(EngineError, match="Unknown network 'srgan'; choose one of edsr, rlfn"):
        _checked(2, Options(network="srgan"))


@pytest.mark.parametrize("size", [(1, 1), (3, 20), (16, 15)])
def test_rlfn_runs_images_smaller_than_its_smallest_window(with_rlfn, size):
    """RLFN needs 15 pixels a side: smaller images are extended (reflected) and the extension cut away."""
    h, w = size
    img = np.full((h, w, 3), (200, 120, 40), np.uint8)
    out = upscale_array(img, 2, Options(network="rlfn"))
    assert out.shape == (2 * h, 2 * w, 3)
    assert np.abs(out.astype(int) - (200, 120, 40)).max() <= 3


def _png(tmp_path):
    path = tmp_path / "in.png"
    path.write_bytes(encode(gradient(20, 16)))
    return path


def test_the_cli_takes_the_network_and_refuses_a_scale_it_lacks_in_one_line(with_rlfn, tmp_path, capsys):
    from upscale_worker.cli import main

    src = _png(tmp_path)
    assert main(["upscale", str(src), str(tmp_path / "a.png"), "--scale", "2", "--network", "rlfn"]) == 0
    assert "rlfn_x2" in capsys.readouterr().out
    assert main(["upscale", str(src), str(tmp_path / "b.png"), "--scale", "4", "--network", "rlfn"]) == 1
    assert capsys.readouterr().err.endswith("error: Upscaling x4 is not available yet (available: x2).\n")


def test_rlfn_runs_bf16_where_the_cpu_has_it_natively_and_f32_elsewhere(shipped_models, monkeypatch):
    from pathlib import Path

    from upscale_worker.engine import runtime
    from upscale_worker.engine.models import int8_is_faithful

    configure_engine(monkeypatch, models_dir=shipped_models, precision=None)
    flags = set(Path("/proc/cpuinfo").read_text().split())
    if flags & {"avx512_bf16", "amx_bf16"}:  # OpenVINO sees what the CPU's flags say (this Xeon: AMX)
        assert runtime.cpu_has_bf16()
    for scale in (2, 4):
        # the manifest's measurements: x2's twin misses 0.05 dB on Set5; x4's holds it, but not the seams
        assert not int8_is_faithful(scale, shipped_models, "clean", "rlfn")
        assert runtime.precision(scale, "clean", "rlfn") == ("bf16" if runtime.cpu_has_bf16() else "f32")
        assert runtime.precision(scale, "clean", "edsr") == "int8"  # EDSR's twin holds 0.05 dB
    monkeypatch.setattr(runtime, "cpu_has_bf16", lambda: False)  # an AVX2 CPU
    assert runtime.precision(4, "clean", "rlfn") == "f32"
