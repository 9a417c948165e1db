"""Export and import: official EDSR layout, IR + manifest, int8 twin, and OpenVINO matching PyTorch."""

import json

import numpy as np
import pytest
import torch

from tests.conftest import configure_engine
from tests.engine.conftest import encode, gradient, psnr
from training import export
from training.edsr import EDSR, from_state_dict
from upscale_worker.engine import Options, upscale_array
from upscale_worker.engine.models import sha256


def test_parameter_names_and_shapes_are_the_official_ones():
    state = EDSR.baseline(4).state_dict()
    assert state["head.0.weight"].shape == (64, 3, 3, 3)
    assert state["body.15.body.2.weight"].shape == (64, 64, 3, 3) and "body.16.weight" in state
    assert state["tail.0.0.weight"].shape == state["tail.0.2.weight"].shape == (256, 64, 3, 3)
    assert state["tail.1.weight"].shape == (3, 64, 3, 3) and "sub_mean.bias" in state
    full = EDSR.variant("full", 3).state_dict()
    assert (
        full["body.31.body.0.weight"].shape == (256, 256, 3, 3)
        and full["tail.0.0.weight"].shape[0] == 9 * 256
    )
    for model in (EDSR.baseline(4), EDSR.variant("full", 3)):
        clone = from_state_dict(model.state_dict())  # strict=True inside
        assert (clone.scale, clone.blocks, clone.feats, clone.res_scale) == (
            model.scale,
            model.blocks,
            model.feats,
            model.res_scale,
        )


def test_the_manifest_describes_both_irs(models_dir, checkpoint):
    manifest = json.loads((models_dir / "manifest.json").read_text())
    fp16, int8 = sorted(
        [e for e in manifest["models"] if e["variant"] == "clean"], key=lambda e: e["weights"]
    )
    assert (fp16["name"], int8["name"]) == ("edsr_baseline_x2", "edsr_baseline_x2_int8")
    for entry in (fp16, int8):
        assert entry["scale"] == 2 and entry["parameters"] == 1_369_883
        assert entry["architecture"].startswith("EDSR baseline") and entry["training_data"]
        assert entry["checkpoint_sha256"] == sha256(checkpoint)
        for kind, name in entry["files"].items():
            assert sha256(models_dir / name) == entry["sha256"][kind]
    assert "calibration" in int8 and "LR crops" in int8["calibration"]
    # FP16-compressed weights: about 2 bytes per parameter.
    assert (models_dir / "edsr_baseline_x2.bin").stat().st_size < 2.1 * fp16["parameters"]


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_it_folds_the_linear_tail_into_one_conv_exact_away_from_the_edges(scale):
    torch.manual_seed(scale)
    model = EDSR.baseline(scale).eval()  # PyTorch's random init: every bias non-zero, as trained ones are
    features = torch.randn(2, 64, 23, 18) * 10
    with torch.no_grad():
        unfolded = export.unfolded_tail(model, features)
        folded = torch.nn.functional.pixel_shuffle(export.fold_tail(model)(features), scale)
    assert export.fold_tail(model).weight.shape == (3 * scale * scale, 64, 5, 5)
    reach = export.FOLD_REACH * scale  # the tail's own zero padding reaches this far into the output
    inner = (..., slice(reach, -reach), slice(reach, -reach))
    assert (unfolded - folded)[inner].abs().max() < 1e-5 * unfolded.abs().max()
    assert (unfolded - folded).abs().max() > 1e-2  # the edges do differ: the comparison sees the padding


def test_it_exports_the_folded_network(checkpoint):
    model = from_state_dict(torch.load(checkpoint, weights_only=True))
    ov_model = export.to_openvino(export.FoldedEDSR(model))
    convs = [op for op in ov_model.get_ordered_ops() if op.get_type_name() == "Convolution"]
    assert len(convs) == 1 + 1 + 33 + 1  # mean shift, head, body, the folded tail: no upsampler conv
    assert list(convs[-1].input(1).get_partial_shape().to_shape()) == [12, 64, 5, 5]


def test_openvino_f32_matches_pytorch_of_the_same_checkpoint(checkpoint):
    # The exported graph, folded; the fold itself is checked against the trained tail above and in the
    # tiling tests (tests/engine/test_tiling.py).
    model = export.FoldedEDSR(from_state_dict(torch.load(checkpoint, weights_only=True)))
    img = gradient(60, 44)
    with torch.no_grad():  # the whole image at once, zero-padded at its border as in training
        out = model(torch.from_numpy(img.transpose(2, 0, 1)[None].astype(np.float32)))[0].numpy()
    reference = np.clip(out.transpose(1, 2, 0), 0, 255)
    for tile in (None, 40):  # one window of the image's size, and tiles
        # The network's own padding and nothing after it, as in PyTorch.
        options = Options(precision="f32", tile=tile, border="zero", back_projection=0)
        assert psnr(upscale_array(img, 2, options), reference) >= 50


@pytest.mark.parametrize(("precision", "floor"), [("bf16", 35), ("int8", 25)])
def test_other_precisions_run_and_stay_close(precision, floor):
    from upscale_worker.engine import runtime

    if precision == "bf16" and not runtime.cpu_has_bf16():
        pytest.skip("no bf16 on this CPU")
    img = gradient(40, 30)
    out = upscale_array(img, 2, Options(precision=precision))
    assert psnr(out, upscale_array(img, 2, Options(precision="f32"))) >= floor
    tile = runtime.tile_sizes()[0]
    compiled = runtime.compiled_model(
        runtime.models_dir(), 2, "clean", precision, tile, tile, runtime.threads()
    )
    assert compiled.get_property("INFERENCE_PRECISION_HINT") == runtime.inference_type(precision)


def test_the_default_precision_is_int8_only_where_the_export_found_it_faithful(monkeypatch, tmp_path):
    from upscale_worker.engine import runtime

    def manifest(int8_psnr, held_out_int8=32.40, seams=None):
        measured_seams = {} if seams is None else {"tiled_vs_one_window": {"share_2_levels": seams}}
        return {
            "models": [
                {
                    "scale": 2,
                    "weights": "fp16",
                    "psnr": {
                        "Set5": {"f32": {"psnr": 37.70}, "bf16": {"psnr": 37.69}},
                        "held-out": {"f32": {"psnr": 32.42}},
                    },
                },
                {
                    "scale": 2,
                    "weights": "int8",
                    "psnr": {
                        "Set5": {"int8": {"psnr": int8_psnr}},
                        "held-out": {"int8": {"psnr": held_out_int8}},
                    },
                    **measured_seams,
                },
                {"scale": 4, "weights": "fp16"},  # never evaluated: no claim, no int8
                {"scale": 4, "weights": "int8"},
            ]
        }

    configure_engine(monkeypatch, precision=None, models_dir=tmp_path)
    float_default = "bf16" if runtime.cpu_has_bf16() else "f32"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest(37.66)))
    assert [runtime.precision(2), runtime.precision(4), runtime.precision()] == [
        "int8",
        float_default,
        float_default,
    ]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest(37.64)))  # 0.06 dB below f32 on Set5
    assert runtime.precision(2) == float_default
    (tmp_path / "manifest.json").write_text(
        json.dumps(manifest(37.70, held_out_int8=32.30))
    )  # fine on Set5 only
    assert runtime.precision(2) == float_default
    (tmp_path / "manifest.json").write_text(json.dumps(manifest(37.66, seams=0.0002)))
    assert runtime.precision(2) == "int8"  # its windows keep the tiling's promise
    (tmp_path / "manifest.json").write_text(json.dumps(manifest(37.66, seams=0.008)))
    assert runtime.precision(2) == float_default  # faithful, but 0.8% of pixels 2 levels off at seams
    configure_engine(monkeypatch, precision="f32")
    assert runtime.precision(4) == "f32"


def test_the_export_measures_each_int8_twins_windows_against_one_window(shipped_models, monkeypatch):
    from training import export
    from upscale_worker.engine.models import SEAM_SHARE

    configure_engine(monkeypatch, models_dir=shipped_models, precision=None)
    edsr = export.tiled_vs_one_window(shipped_models, 2, "edsr", "clean", export.TRAIN_DIR)
    rlfn = export.tiled_vs_one_window(shipped_models, 4, "rlfn", "clean", export.TRAIN_DIR)
    assert edsr["share_2_levels"] <= SEAM_SHARE < rlfn["share_2_levels"]  # EDSR keeps the promise, RLFN not
    assert rlfn["max_levels"] >= 2 and rlfn["image"].endswith("300x200 crop")


def official_copy(tmp_path, checkpoint, prefix=None):
    """The checkpoint under an official-style name whose hash prefix is right (or the given wrong one)."""
    path = tmp_path / f"edsr_baseline_x2-{prefix or sha256(checkpoint)[:8]}.pt"
    path.write_bytes(checkpoint.read_bytes())
    return path


def test_import_accepts_an_official_file_and_checks_its_hash_prefix(tmp_path, checkpoint):
    good = official_copy(tmp_path, checkpoint)
    entries = export.main(["--official", str(good), "--out", str(tmp_path / "m"), "--no-int8"])
    assert entries[0]["training_data"] == export.OFFICIAL_DATA and entries[0]["checkpoint"] == good.name
    with pytest.raises(SystemExit, match="does not match the hash prefix"):
        export.main(["--official", str(official_copy(tmp_path, checkpoint, "00000000")), "--no-int8"])
    with pytest.raises(SystemExit, match="not an official EDSR file name"):
        export.main(["--official", str(checkpoint), "--no-int8"])


def test_export_refuses_a_scale_that_is_not_the_checkpoints(checkpoint, tmp_path):
    with pytest.raises(SystemExit, match="x2, not x4"):
        export.main(["--weights", str(checkpoint), "--scale", "4", "--out", str(tmp_path), "--no-int8"])


def test_export_refuses_to_calibrate_on_a_benchmark_set(checkpoint, tmp_path):
    bench = tmp_path / "benchmark" / "Set5"
    bench.mkdir(parents=True)
    with pytest.raises(SystemExit, match="never a benchmark set"):
        export.main(["--weights", str(checkpoint), "--out", str(tmp_path), "--calibration", str(bench)])


def test_a_jpeg_twin_is_exported_beside_the_clean_model(models_dir, jpeg_checkpoint):
    manifest = json.loads((models_dir / "manifest.json").read_text())
    twins = sorted([e for e in manifest["models"] if e["variant"] == "jpeg"], key=lambda e: e["weights"])
    assert [e["name"] for e in twins] == ["edsr_baseline_x2_jpeg", "edsr_baseline_x2_jpeg_int8"]
    assert all(e["checkpoint_sha256"] == sha256(jpeg_checkpoint) and e["scale"] == 2 for e in twins)
    assert "JPEG-compressed at qualities 30-95" in twins[1]["calibration"]


def test_a_jpeg_twin_is_measured_per_quality_beside_bicubic_and_the_clean_model(
    tmp_path, checkpoint, jpeg_checkpoint
):
    set_dir = tmp_path / "Tiny"
    set_dir.mkdir()
    (set_dir / "a.png").write_bytes(encode(gradient(48, 32)))
    out = tmp_path / "m"
    common = ["--out", str(out), "--no-int8", "--evaluate", str(set_dir), "--held-out", "none"]
    export.main(["--weights", str(checkpoint), *common])
    entry = export.main(
        ["--weights", str(jpeg_checkpoint), "--variant", "jpeg", "--jpeg-qualities", "50,90", *common]
    )[0]
    assert entry["psnr_input"].startswith("LR saved as JPEG at quality 75") and "f32" in entry["psnr"]["Tiny"]
    assert set(entry["psnr_by_quality"]["Tiny"]) == {"50", "90"}
    assert set(entry["psnr_by_quality"]["Tiny"]["50"]) == {"bicubic", "clean", "jpeg"}


def test_a_missing_variant_means_clean(tmp_path, models_dir):
    from upscale_worker.engine.models import find_model

    manifest = json.loads((models_dir / "manifest.json").read_text())
    old = [
        {k: v for k, v in e.items() if k != "variant"} for e in manifest["models"] if e["variant"] == "clean"
    ]
    for e in old:
        for name in e["files"].values():
            (tmp_path / name).write_bytes((models_dir / name).read_bytes())
    (tmp_path / "manifest.json").write_text(json.dumps({"models": old}))
    assert find_model(2, "f32", tmp_path).entry["name"] == "edsr_baseline_x2"
    assert find_model(2, "f32", tmp_path, "clean").entry["name"] == "edsr_baseline_x2"


def test_the_model_card_has_a_table_per_quality(monkeypatch, tmp_path):
    from training import model_card

    cells = {
        "50": {"bicubic": 30.0, "clean": 29.8, "jpeg": 31.1},
        "95": {"bicubic": 33.0, "clean": 35.5, "jpeg": 35.0},
    }
    manifest = {
        "models": [{"scale": 2, "weights": "fp16", "variant": "jpeg", "psnr_by_quality": {"Set5": cells}}]
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    configure_engine(monkeypatch, models_dir=tmp_path)
    monkeypatch.setattr(model_card, "JPEG_QUALITY_THRESHOLD", 90)
    rows = model_card.jpeg_table().splitlines()[2:]
    assert rows == [
        "| x2 | Set5 | 50 | 30.00 | 29.80 (-0.20) | 31.10 (+1.10) | JPEG-aware: 31.10 (+1.10) |",
        "| x2 | Set5 | 95 | 33.00 | 35.50 (+2.50) | 35.00 (+2.00) | clean: 35.50 (+2.50) |",
    ]
