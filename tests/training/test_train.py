"""The trainer: a few iterations on a few crops make the loss fall, resume continues, x2 initialises x4."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import configure_engine
from training import export, train
from training.bundle import main as pack_main
from training.data import JpegDegradation, PatchSampler, list_images, load_pair
from training.edsr import EDSR
from upscale_worker.engine import Options, upscale_array


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """Six smooth synthetic pictures: enough structure for the loss to fall within a few steps."""
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:96, 0:96] / 96.0
    for i in range(6):
        f = rng.uniform(1, 4, size=3)
        rgb = np.stack([np.sin(f[c] * np.pi * (xx + c * yy)) for c in range(3)], axis=-1)
        Image.fromarray(((rgb + 1) * 127.5).astype(np.uint8)).save(folder / f"img{i}.png")
    return folder


def run_args(images: Path, run: Path, *extra: str) -> list[str]:
    return [
        "--data",
        str(images),
        "--scale",
        "2",
        "--run",
        str(run),
        "--patch",
        "16",
        "--batch",
        "4",
        "--val-every",
        "10",
        "--val-crop",
        "32",
        "--val-holdout",
        "6",
        "--lr",
        "5e-4",
        "--threads",
        "2",
        *extra,
    ]


def logged_losses(run: Path) -> list[float]:
    with (run / "log.csv").open() as f:
        return [float(row["loss"]) for row in csv.DictReader(f)]


def test_it_lowers_the_loss_and_saves_resumable_weights(images, tmp_path):
    run = tmp_path / "run"
    meta = train.main(run_args(images, run, "--iterations", "40"))
    losses = logged_losses(run)
    assert meta["iteration"] == 40 and "CPU threads" in meta["device_name"]  # for the model card
    assert losses[-1] < 0.8 * losses[0], losses
    for name in ("last.pt", "latest.pt", "best.pt", "meta.json"):
        assert (run / name).exists()
    weights = torch.load(run / "latest.pt", weights_only=True)
    assert "optimizer" not in weights and "head.0.weight" in weights  # model only: small enough to commit


def test_it_resumes_where_it_stopped(images, tmp_path):
    run = tmp_path / "run"
    train.main(run_args(images, run, "--iterations", "10"))
    (run / "last.pt").unlink()  # as on a new machine: only the committed weights are there
    meta = train.main(run_args(images, run, "--iterations", "20"))
    assert meta["iteration"] == 20
    assert len(logged_losses(run)) == 2


def test_it_starts_x4_from_the_x2_body(images, tmp_path):
    train.main(run_args(images, tmp_path / "x2", "--iterations", "10"))
    x2 = torch.load(tmp_path / "x2" / "latest.pt", weights_only=True)
    model = EDSR.baseline(4)
    copied = model.load_body_from(x2)
    state = model.state_dict()
    assert torch.equal(state["body.3.body.0.weight"], x2["body.3.body.0.weight"])
    assert torch.equal(state["tail.1.weight"], x2["tail.1.weight"])
    assert copied == len([k for k in x2 if not k.startswith("tail.0.")])


def test_learning_rate_halves_at_each_decay_step():
    args = train.parse_args(["--data", ".", "--scale", "2", "--run", ".", "--decay", "100,200"])
    assert [train.learning_rate(args, i) for i in (0, 99, 100, 250)] == [1e-4, 1e-4, 5e-5, 2.5e-5]


def test_learning_rate_also_halves_at_minutes_of_the_piece():
    args = train.parse_args(
        ["--data", ".", "--scale", "2", "--run", ".", "--decay", "100", "--decay-minutes", "4.8,6.96"]
    )
    assert [train.learning_rate(args, 0, m) for m in (0, 4.8, 7)] == [1e-4, 5e-5, 2.5e-5]
    assert train.learning_rate(args, 100, 7) == 1.25e-5


def test_a_piece_stopped_between_validations_still_validates_its_last_weights(images, tmp_path):
    run = tmp_path / "run"
    meta = train.main(run_args(images, run, "--minutes", "0.003", "--val-every", "100000"))
    with (run / "log.csv").open() as f:
        assert [int(row["iteration"]) for row in csv.DictReader(f)] == [meta["iteration"]]
    assert meta["best_iteration"] == meta["iteration"] > 0 and (run / "best.pt").exists()


def test_the_bundle_keeps_every_pixel_and_the_validation_split(images, tmp_path):
    bundle = tmp_path / "bundle"
    pack_main([str(images), str(bundle)])
    originals, packed = list_images(images), list_images(bundle)
    assert [p.stem for p in packed] == [p.stem for p in originals]
    assert all(p.suffix == ".webp" for p in packed)
    for original, copy in zip(originals, packed):
        assert np.array_equal(np.asarray(Image.open(original).convert("RGB")), np.asarray(Image.open(copy)))


def test_the_trained_weights_export_to_an_ir_the_engine_runs(images, tmp_path, monkeypatch):
    run = tmp_path / "run"
    train.main(run_args(images, run, "--iterations", "10"))
    models = tmp_path / "models"
    export.main(
        [
            "--weights",
            str(run / "best.pt"),
            "--out",
            str(models),
            "--no-int8",
            "--training-data",
            "six synthetic pictures",
        ]
    )
    configure_engine(monkeypatch, models_dir=models, cache_dir=tmp_path / "ov-cache")
    lr = np.asarray(Image.open(images / "img0.png"))[:40, :30]
    sr = upscale_array(lr, 2, Options(precision="f32", tile=64))
    assert sr.shape == (80, 60, 3) and sr.dtype == np.uint8
    assert sr.std() > 10  # a picture, not a constant


def test_it_compresses_lr_patches_on_the_jpeg_block_grid(images):
    pairs = [load_pair(p, 2, None) for p in list_images(images)]
    clean = PatchSampler(pairs, 2, 16, seed=3)
    degraded = PatchSampler(pairs, 2, 16, seed=3, degradation=JpegDegradation(30, 30, clean=0))
    (lr_clean, hr_clean), (lr_jpeg, hr_jpeg) = clean.batch(4), degraded.batch(4)
    assert lr_jpeg.shape == lr_clean.shape == (4, 3, 16, 16) and hr_jpeg.shape == (4, 3, 32, 32)
    assert np.array_equal(hr_jpeg, hr_clean)  # the target is the clean picture
    assert 0 < np.abs(lr_jpeg - lr_clean).mean() < 20  # compressed, not another patch
    with pytest.raises(ValueError, match="multiple of 16"):
        PatchSampler(pairs, 2, 24, degradation=JpegDegradation())


def test_it_parses_a_quality_range_and_refuses_a_wrong_one():
    assert JpegDegradation.parse("30-95", 0.1) == JpegDegradation(30, 95, 0.1)
    for text in ("0-50", "60-40", "30-100"):
        with pytest.raises(ValueError):
            JpegDegradation.parse(text, 0.1)


def test_it_turns_bf16_on_only_where_the_cpu_has_it(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: fpu sse2 avx avx2 fma\n")
    assert not train.native_bf16("cpu", cpuinfo)
    cpuinfo.write_text("flags\t\t: fpu avx2 avx512f avx512_bf16\n")
    assert train.native_bf16("cpu", cpuinfo)
    cpuinfo.write_text("flags\t\t: fpu avx2 amx_tile amx_bf16\n")
    assert train.native_bf16("cpu", cpuinfo) and train.native_bf16("cuda", tmp_path / "none")


def test_a_jpeg_run_fine_tunes_whole_weights_and_validates_on_compressed_images(images, tmp_path):
    train.main(run_args(images, tmp_path / "clean", "--iterations", "10"))
    run = tmp_path / "jpeg"
    meta = train.main(
        run_args(
            images,
            run,
            "--iterations",
            "10",
            "--init-weights",
            str(tmp_path / "clean" / "latest.pt"),
            "--jpeg",
            "40-90",
            "--val-jpeg",
            "50,75",
        )
    )
    assert meta["jpeg"] == "40-90" and meta["init_weights"].endswith("latest.pt")
    assert meta["iteration"] == 10 and (run / "best.pt").exists()
