"""The clean model and its JPEG-aware twin side by side: the choice per file and the compiled-model caches."""

import io
import json
import shutil

import numpy as np
import pytest

from tests.conftest import configure_engine
from tests.engine.conftest import encode, gradient
from upscale_worker.engine import EngineError, Options, runtime, upscale_array, upscale_file
from upscale_worker.engine.compression import JPEG_QUALITY_THRESHOLD


def photo(width=40, height=32) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.clip(gradient(width, height) + rng.normal(0, 12, (height, width, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("data", "variant"),
    [
        (encode(photo(), "PNG"), "clean"),
        (encode(photo(), "WEBP", lossless=True), "clean"),
        (encode(photo(), "JPEG", quality=max(95, JPEG_QUALITY_THRESHOLD)), "clean"),
        (encode(photo(), "JPEG", quality=60), "jpeg"),
        (encode(photo(), "WEBP", quality=40), "jpeg"),
    ],
    ids=["png", "lossless-webp", "jpeg-at-the-threshold", "jpeg-q60", "lossy-webp-q40"],
)
def test_auto_picks_the_variant_from_the_file(tmp_path, data, variant):
    result = upscale_file(io.BytesIO(data), tmp_path / "out.png", scale=2)
    assert result.variant == variant
    assert result.model == ("edsr_baseline_x2_jpeg" if variant == "jpeg" else "edsr_baseline_x2")
    assert result.choice.startswith("auto:")


@pytest.mark.parametrize(("source", "variant"), [("clean", "clean"), ("compressed", "jpeg")])
def test_the_source_option_overrides_auto(tmp_path, source, variant):
    data = encode(photo(), "JPEG", quality=60 if source == "clean" else 98)
    assert (
        upscale_file(io.BytesIO(data), tmp_path / "o.png", 2, options=Options(source=source)).variant
        == variant
    )


def test_a_process_holding_both_variants_runs_each_when_asked():
    img = photo()
    clean, jpeg = (upscale_array(img, 2, Options(source=s)) for s in ("clean", "compressed"))
    assert not np.array_equal(clean, jpeg)  # two models, not whichever was compiled first
    assert np.array_equal(upscale_array(img, 2, Options(source="clean")), clean)
    assert np.array_equal(upscale_array(img, 2, Options(source="compressed")), jpeg)
    h, w = img.shape[:2]  # smaller than the tile: one window of its own size, compiled once per variant
    compiled = [
        runtime.compiled_model(runtime.models_dir(), 2, v, "f32", h, w, runtime.threads())
        for v in ("clean", "jpeg")
    ]
    assert compiled[0] is not compiled[1]


def test_without_a_twin_auto_falls_back_to_clean_and_says_so(tmp_path, models_dir, monkeypatch):
    folder = tmp_path / "clean-only"
    folder.mkdir()
    manifest = json.loads((models_dir / "manifest.json").read_text())
    clean = [e for e in manifest["models"] if e["variant"] == "clean"]
    for e in clean:
        for name in e["files"].values():
            shutil.copyfile(models_dir / name, folder / name)
    (folder / "manifest.json").write_text(json.dumps({"models": clean}))
    configure_engine(monkeypatch, models_dir=folder)
    result = upscale_file(io.BytesIO(encode(photo(), "JPEG", quality=40)), tmp_path / "o.png", 2)
    assert result.variant == "clean" and "no JPEG-aware model" in result.choice
    with pytest.raises(EngineError, match="has no JPEG-aware model installed"):
        runtime.checked_model(folder, 2, "jpeg", "f32")


def test_an_unknown_source_is_a_clear_error(tmp_path):
    with pytest.raises(EngineError, match="Unknown source 'sharp'"):
        upscale_array(photo(), 2, Options(source="sharp"))
