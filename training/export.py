"""Export an EDSR or RLFN checkpoint to the OpenVINO IR the workers load, with its manifest entry.

    python -m training.export --weights training/runs/x2/best.pt --scale 2 --evaluate ../shared/datasets/benchmark/Set5
    python -m training.export --official edsr_baseline_x4-6b446fab.pt      # a local file, or downloaded by name
    python -m training.export --weights training/runs/x2-jpeg/best.pt --variant jpeg --evaluate ../shared/datasets/benchmark/Set5
    python -m training.export --weights ../shared/weights/rlfn/rlfn_x4.pth --evaluate ../shared/datasets/benchmark/Set5

Writes ``models/<name>.xml/.bin`` (weights compressed to FP16) and, unless ``--no-int8``, the NNCF int8
twin ``<name>_int8`` calibrated on LR crops of training images (never benchmark images). Each gets an
entry in ``models/manifest.json``: architecture, scale, parameters, sha256 of the files, training data and,
with ``--evaluate``, the PSNR/SSIM measured through the engine itself on those sets and on the held-out
training images (train.py's validation split; ``--held-out none`` skips them).

``--variant jpeg`` exports a JPEG-aware twin (issue 12): ``<name>_jpeg[_int8]``, its int8 calibrated on crops
JPEG-compressed as in training, its PSNR per precision measured on LR inputs saved as JPEGs at
``--reference-quality`` (so the int8-is-faithful rule judges it on what it runs on), and ``psnr_by_quality``:
bicubic, the clean model of ``--out`` and this one at each of ``--jpeg-qualities``, for the model card.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import openvino as ov
import torch
from PIL import Image
from torch import nn

from training import rlfn
from training.data import JpegDegradation, list_images, split_validation
from training.edsr import EDSR, VARIANTS, from_state_dict
from upscale_worker.engine import config as engine_config
from upscale_worker.engine.config import REPO_ROOT
from upscale_worker.engine.imresize import imresize
from upscale_worker.engine.models import read_manifest, sha256, write_manifest

TRAIN_DIR = REPO_ROOT.parent / "shared" / "datasets" / "train"
HELD_OUT = "held-out training images"
OFFICIAL_URL = "https://cv.snu.ac.kr/research/EDSR/models/{}"
# The official release names its files <model>-<first 8 hex digits of the file's sha256>.pt.
OFFICIAL_NAME = re.compile(r"^(edsr_baseline|edsr)_x([234])-([0-9a-f]{8})\.pt$")
OFFICIAL_DATA = "DIV2K train (800 images), official EDSR-PyTorch release"


# --- checkpoints -----------------------------------------------------------------------------------------


def load_checkpoint(path: Path) -> EDSR | rlfn.RLFN:
    """EDSR, or RLFN (its keys start with conv_1) in the engine's grid variant, whatever it was trained as."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("model", state)  # a resumable last.pt wraps the weights
    if "conv_1.weight" in state:
        return rlfn.from_state_dict(state, grid=True).eval()
    return from_state_dict(state).eval()


def official_checkpoint(name_or_path: str, download_dir: Path) -> Path:
    """An official checkpoint file, downloaded by its name when not on disk; its hash prefix is checked."""
    path = Path(name_or_path)
    match = OFFICIAL_NAME.match(path.name)
    if not match:
        raise SystemExit(f"{path.name} is not an official EDSR file name (e.g. edsr_baseline_x4-6b446fab.pt)")
    if not path.exists():
        download_dir.mkdir(parents=True, exist_ok=True)
        path = download_dir / path.name
        if not path.exists():
            torch.hub.download_url_to_file(OFFICIAL_URL.format(path.name), str(path), hash_prefix=match[3])
    if sha256(path)[:8] != match[3]:
        raise SystemExit(f"{path} does not match the hash prefix {match[3]} in its name")
    return path


def variant_name(model: EDSR) -> str:
    return next(n for n, v in VARIANTS.items() if v[:2] == (model.blocks, model.feats))


# --- folding the linear tail ------------------------------------------------------------------------------

# EDSR's tail (upsampler convs, pixel shuffles, the last conv, the mean shift) has no non-linearity, so it is
# one affine map from the body's features to RGB. Each output pixel s*m + r depends on features m-2..m+2 at
# every scale (x2: two 3x3 convs through one shuffle; x3 likewise; x4: three through two), so the map is one
# 5x5 conv (feats -> 3*s*s) at the input's resolution followed by one pixel shuffle. It is exact away from a
# window's edge; within FOLD_REACH input pixels of one the tail's own zero padding differs, which the tiling
# overlap (api.OVERLAP = 8) discards. At x4 it is 77k MACs per input pixel instead of 765k.
FOLD_KERNEL = 5
FOLD_REACH = FOLD_KERNEL // 2


class FoldedEDSR(nn.Module):
    """EDSR with its tail folded (fold_tail()): the same head and body, then one conv and one pixel shuffle.
    Input and output as EDSR: 1x3xHxW float32 RGB in 0..255 -> 1x3x(sH)x(sW)."""

    def __init__(self, model: EDSR):
        super().__init__()
        self.scale, self.blocks, self.feats = model.scale, model.blocks, model.feats
        self.sub_mean, self.head, self.body = model.sub_mean, model.head, model.body
        self.tail = nn.Sequential(fold_tail(model), nn.PixelShuffle(model.scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.sub_mean(x))
        return self.tail(x + self.body(x))


def unfolded_tail(model: EDSR, features: torch.Tensor) -> torch.Tensor:
    """The trained tail as EDSR.forward runs it: N x feats x H x W features -> N x 3 x sH x sW."""
    return model.add_mean(model.tail(features))


@torch.no_grad()
def fold_tail(model: EDSR) -> nn.Conv2d:
    """The 5x5 conv (feats -> 3 * scale**2 channels, padding 2, float32) whose pixel shuffle equals
    unfolded_tail() away from the edges, built from impulse responses of the trained weights: the weights
    from one unit impulse per feature channel with every bias zeroed, the bias from zero features."""
    s, feats, n = model.scale, model.feats, 2 * FOLD_KERNEL - 1  # n: room for the impulse's whole reach
    centre = n // 2
    impulses = torch.zeros(feats, feats, n, n)
    impulses[torch.arange(feats), torch.arange(feats), centre, centre] = 1
    tail = [m for m in [*model.tail.modules(), model.add_mean] if isinstance(m, nn.Conv2d)]
    biases = [conv.bias.clone() for conv in tail]
    try:
        for conv in tail:
            conv.bias.zero_()
        # response[c, o*s*s + ry*s + rx, m] is output channel o at pixel s*m + r for an impulse in channel c
        response = nn.functional.pixel_unshuffle(unfolded_tail(model, impulses), s)
    finally:
        for conv, bias in zip(tail, biases):
            conv.bias.copy_(bias)
    bias = nn.functional.pixel_unshuffle(unfolded_tail(model, torch.zeros(1, feats, n, n)), s)
    folded = nn.Conv2d(feats, 3 * s * s, FOLD_KERNEL, padding=FOLD_REACH)
    # Output at m reads feature m + k - 2 through weight k, so weight k is the response at m = centre + 2 - k.
    window = slice(centre - FOLD_REACH, centre + FOLD_REACH + 1)
    folded.weight.copy_(response[:, :, window, window].flip(2, 3).transpose(0, 1))
    folded.bias.copy_(bias[0, :, centre, centre])
    return folded


# RLFN's needs, for the engine (api.Geometry), measured in docs/rlfn.md: ESA's 6-pixel window grid (windows
# off it differ from one window by up to 26 levels, on it by 1 at an overlap of 8 with tiles of 120 or more;
# 60-pixel tiles differ by up to 9 even at 12, 96 by 2 at 12), the smallest window its stride-2 conv and
# 7x7 pool run on, and the border: the network's own zeros at the image's edge, only the
# grid's extension (bottom and right) reflected. Set5 x4: that 32.212 dB, 8 px reflected 32.065, 8 px
# replicated 31.907 (the paper's protocol, zeros and no extension: 32.229).
RLFN_TILING = {
    "border": "reflect",
    "border_width": 0,
    "overlap": 8,
    "window_grid": rlfn.GRID,
    "min_window": rlfn.MIN_WINDOW,
    "min_tile": 120,
}
RLFN_SOURCE = {
    "source": "RLFN by Kong et al. (arXiv 2205.07514); weights bytedance/RLFN model_zoo/rlfn_x{scale}.pth at "
    "commit bccfde91bf8b2de80789ec033a029e6f2a932330",
    "licence": "Apache-2.0 (models/LICENSE-RLFN; converted to OpenVINO IR, FP16 weights, int8 by NNCF: "
    "models/NOTICE-RLFN)",
}
RLFN_DATA = (
    "DIV2K + Flickr2K with bicubic LR, trained by the authors (research datasets with their own terms)"
)


def describe(model: EDSR | rlfn.RLFN, jpeg: bool) -> tuple[str, dict]:
    """The IR's file name stem and the manifest fields saying what network it is and what it needs."""
    suffix = f"_x{model.scale}{'_jpeg' if jpeg else ''}"
    if isinstance(model, rlfn.RLFN):
        architecture = (
            f"RLFN ({model.blocks} residual local feature blocks, {rlfn.FEATURES} features, ESA "
            f"{rlfn.ESA_CHANNELS} channels; attention map resized by a fixed x{rlfn.GRID})"
        )
        # The authors published x2 and x4; another scale starts from their x2 body (train.py --init-from).
        published = model.scale in rlfn.PUBLISHED_SCALES
        source = {k: v.format(scale=model.scale if published else 2) for k, v in RLFN_SOURCE.items()}
        if not published:
            source["source"] += (
                f" (the body; the x{model.scale} upsampler fitted by least squares and the whole network "
                "fine-tuned here: training/train.py --init-from)"
            )
        return "rlfn" + suffix, {
            "network": "rlfn",
            "architecture": architecture,
            **source,
            "tiling": RLFN_TILING,
        }
    name = variant_name(model)
    blocks, feats, res_scale = VARIANTS[name]
    architecture = f"EDSR {name} ({blocks} residual blocks, {feats} features, res_scale {res_scale})"
    return f"{'edsr_baseline' if name == 'baseline' else 'edsr'}{suffix}", {"architecture": architecture}


# --- conversion ------------------------------------------------------------------------------------------


def to_openvino(model: EDSR | FoldedEDSR | rlfn.RLFN) -> ov.Model:
    example = torch.rand(1, 3, 32, 32) * 255
    ov_model = ov.convert_model(model, example_input=example, input=[ov.PartialShape([1, 3, -1, -1])])
    ov_model.input(0).set_names({"lr"})
    ov_model.output(0).set_names({"sr"})
    return ov_model


def tiled_vs_one_window(out: Path, scale: int, network: str, variant: str, train_dir: Path) -> dict:
    """The int8 twin of ``out`` through the engine on a 300x200 crop of train_dir's first held-out image
    (never a benchmark), 128-px windows (as the engine's tiles) against one window: the share of pixels 2
    grey levels or more apart (0..1) and the largest difference (levels), for models.SEAM_SHARE."""
    from upscale_worker.engine import Options, upscale_array

    engine_config.update(models_dir=out)
    path = split_validation(list_images(train_dir))[1][0]
    rgb = np.ascontiguousarray(np.asarray(Image.open(path).convert("RGB"))[:200, :300])
    source = "compressed" if variant == "jpeg" else "clean"
    tiled, whole = (
        upscale_array(rgb, scale, Options(precision="int8", tile=tile, source=source, network=network))
        for tile in (128, 1024)
    )
    off = np.abs(tiled.astype(int) - whole)
    return {
        "share_2_levels": round(float((off.max(axis=2) >= 2).mean()), 5),
        "max_levels": int(off.max()),
        "image": f"{path.name}, {rgb.shape[1]}x{rgb.shape[0]} crop",
    }


def calibration_crops(
    folder: Path, scale: int, count: int, side: int, seed: int = 0, degradation: JpegDegradation | None = None
) -> list[np.ndarray]:
    """LR crops (1x3xSxS float32, 0..255) made like the engine's inputs: MATLAB bicubic of training HR crops,
    each JPEG-compressed by ``degradation`` when given (as the JPEG-aware model's training patches were)."""
    if degradation is not None:
        degradation.check_patch(side)
    rng = np.random.default_rng(seed)
    hs = side * scale
    # Only images that hold a crop: skipping small ones after the draw left x4 with 12 of 64 crops.
    paths = [p for p in split_validation(list_images(folder))[0] if min(Image.open(p).size) >= hs]
    crops = []
    for path in rng.choice(paths, size=count, replace=count > len(paths)):
        hr = np.asarray(Image.open(path).convert("RGB"))
        y, x = (int(rng.integers(0, n - hs + 1)) for n in hr.shape[:2])
        lr = imresize(hr[y : y + hs, x : x + hs], 1 / scale)
        lr = lr if degradation is None else degradation(lr, rng)
        crops.append(lr.astype(np.float32).transpose(2, 0, 1)[None])
    return crops


def quantize_int8(
    ov_model: ov.Model, crops: list[np.ndarray], network: str = "edsr", scale: int | None = None
) -> ov.Model:
    """Post-training int8 of the residual body's convs; the mean shift, the first conv, the (folded) tail and
    the skip-connection adds stay in float (for RLFN: rlfn_float_ops(scale)).

    Judged on held-out training images (x2, iteration 1000): f32 32.864 dB, all int8 32.625 dB, with the
    RGB-facing convs (mean shifts, head, final conv) kept in float 32.801 dB, at a small cost in speed.
    """
    import nncf  # training-only dependency

    # The adds too (residual and global skips): int8 rounding of the residual stream cost x2/x3/x4 0.049 /
    # 0.026 / 0.019 dB on the held-out images, float adds 0.013 / 0.009 / 0.000, at no measured speed cost.
    # And the upsampler's convs: on General100's sharp, saturated training images int8 ones cost x2/x3/x4
    # 0.87 / 0.28 / 0.19 dB against f32 (float: 0.06 / 0.04 / 0.03), for 12% / 3% / 25% more time at 256².
    # The folded tail (FoldedEDSR) stays float too: 6% of an x4 window's MACs once folded.
    float_ops = [r".*_mean/.*", r".*head\.0/.*", r".*aten::add/Add", r".*tail\..*"]
    preset, fast_bias_correction = None, True
    if network == "rlfn":
        # RLFN's residual stream and LeakyReLU outputs are far from symmetric: asymmetric activations
        # (MIXED) cost x2 0.072 dB on the held-out images where symmetric ones cost 0.094 (f32 float layers).
        # NNCF's full bias correction (each layer's bias fitted to its quantised inputs, not the fast
        # estimate) on the held-out images, float layers in bf16 (AMD EPYC, VNNI): x2 (256 crops) -0.035 ->
        # -0.017 dB, x4 (64 crops) -0.037 -> -0.020, -0.015 with 256. Global min/max activation ranges instead
        # of NNCF's mean of per-crop ones cost x4 -0.103: resolution matters more than the rare extremes.
        float_ops, preset, fast_bias_correction = rlfn_float_ops(scale), nncf.QuantizationPreset.MIXED, False
    keep_float = nncf.IgnoredScope(patterns=float_ops)
    return nncf.quantize(
        ov_model,
        nncf.Dataset(crops),
        preset=preset,
        subset_size=len(crops),
        fast_bias_correction=fast_bias_correction,
        ignored_scope=keep_float,
    )


# RLFN's sensitive layers (issue 23): the first conv, the attention branches, the upsampler and the adds,
RLFN_FLOAT_OPS = [r".*conv_1/.*", r".*\.esa\..*", r".*upsampler.*", r".*aten::add/Add"]
# and per scale the convs NNCF's quantize_with_accuracy_control put back in float to hold 0.02 dB on the
# held-out training images (``--int8-search 0.02``, MIXED preset, the layers above already float; a scale
# not listed was not searched). x2: held-out -0.027 dB, Set5 -0.064 through the engine with the float layers
# in bf16 (this AMX Xeon); with them in f32 (a CPU without bf16) -0.020 / -0.033. x4: held-out -0.018 with
# f32 float layers, but Set5 -0.083: what holds on the training images does not on Set5 (docs/rlfn.md).
RLFN_ACCURACY_CONTROL = {
    2: ["block_1.c1_r", "block_1.c3_r", "block_1.c5", "conv_2"],
    4: ["conv_2"],
}


def rlfn_float_ops(scale: int | None) -> list[str]:
    """The IgnoredScope patterns of RLFN's float layers at ``scale``: RLFN_FLOAT_OPS and its searched ones."""
    searched = RLFN_ACCURACY_CONTROL.get(scale or 0, [])
    return RLFN_FLOAT_OPS + [rf".*__module\.{re.escape(name)}/.*" for name in searched]


def search_float_layers(
    ov_model: ov.Model, crops: list[np.ndarray], scale: int, max_drop: float, train_dir: Path
) -> list[str]:
    """The convs NNCF's quantize_with_accuracy_control keeps in float so that the int8 model's mean Y-PSNR on
    train_dir's held-out images (whole, cut to the window grid; never a benchmark set) drops at most
    ``max_drop`` dB from the float model's, starting from quantize_int8's RLFN recipe. Slow: it ranks every
    quantizer group on the images (about 25 minutes for x2 on 2 shared cores)."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    pairs = held_out_pairs(train_dir, scale)

    def validate(compiled: ov.CompiledModel, data) -> tuple[float, list[float]]:
        scores = openvino_scores(compiled, data, scale)
        return float(np.mean(scores)), scores

    quantized = nncf.quantize_with_accuracy_control(
        ov_model,
        nncf.Dataset(crops),
        nncf.Dataset(pairs),
        validate,
        max_drop=max_drop,
        preset=nncf.QuantizationPreset.MIXED,
        subset_size=len(crops),
        ignored_scope=nncf.IgnoredScope(patterns=RLFN_FLOAT_OPS),
        advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(ranking_subset_size=6),
    )
    int8 = int8_convs(quantized)
    return sorted(c for c in int8_convs(quantize_int8(ov_model, crops, "rlfn")) if c not in int8)


def held_out_pairs(train_dir: Path, scale: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(LR 1 x 3 x h x w float32, HR H x W x 3 uint8) per held-out training image of ``train_dir`` (never a
    benchmark set), whole, cut to a multiple of RLFN's grid times the scale: what its int8 twins are judged on."""
    pairs = []
    for path in split_validation(list_images(train_dir))[1]:
        hr = np.asarray(Image.open(path).convert("RGB"))
        h, w = (n - n % (rlfn.GRID * scale) for n in hr.shape[:2])
        lr = imresize(hr[:h, :w], 1 / scale).astype(np.float32).transpose(2, 0, 1)[None]
        pairs.append((lr, np.ascontiguousarray(hr[:h, :w])))
    return pairs


def openvino_scores(
    compiled: ov.CompiledModel, pairs: list[tuple[np.ndarray, np.ndarray]], scale: int
) -> list[float]:
    """Y-PSNR (dB, ``scale`` pixels shaved) of a compiled model on each (LR, HR) pair, output rounded to 8 bits."""
    from upscale_worker.engine.metrics import psnr_y

    return [
        psnr_y(np.clip(np.round(compiled([lr])[0][0].transpose(1, 2, 0)), 0, 255).astype(np.uint8), hr, scale)
        for lr, hr in pairs
    ]


def int8_convs(ov_model: ov.Model) -> set[str]:
    """Module names (e.g. block_1.c1_r) of the convs whose weights an NNCF int8 model holds as int8."""
    names = set()
    for op in ov_model.get_ops():
        if op.get_type_name() != "Convolution":
            continue
        todo, seen = [op.input_value(1).get_node()], 0
        while todo and seen < 8:  # the weights' path: int8 constant, convert, subtract, multiply
            node, seen = todo.pop(), seen + 1
            if node.get_type_name() == "Constant" and node.get_element_type() == ov.Type.i8:
                names.add(re.sub(r"^__module\.|/aten::.*$", "", op.get_friendly_name()))
                break
            todo += [node.input_value(i).get_node() for i in range(node.get_input_size())]
    return names


# --- the manifest ----------------------------------------------------------------------------------------


def save_ir(ov_model: ov.Model, out: Path, name: str) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    xml = out / f"{name}.xml"
    ov.save_model(ov_model, xml, compress_to_fp16=True)
    files = {"xml": xml.name, "bin": xml.with_suffix(".bin").name}
    return {"files": files, "sha256": {k: sha256(out / f) for k, f in files.items()}}


def add_entry(out: Path, entry: dict) -> None:
    manifest = read_manifest(out)
    manifest["models"] = [e for e in manifest["models"] if e["name"] != entry["name"]] + [entry]
    write_manifest(manifest, out)


def measure(
    out: Path,
    scale: int,
    precisions: list[str],
    datasets: list[Path],
    variant: str = "clean",
    jpeg_quality: int | None = None,
    network: str = "edsr",
) -> dict:
    """Mean Y-PSNR/SSIM per dataset and precision, measured through the engine on the files just written
    (LR saved as a JPEG at ``jpeg_quality`` when given)."""
    from upscale_worker import evaluate
    from upscale_worker.engine import Options

    engine_config.update(models_dir=out)
    source = "compressed" if variant == "jpeg" else "clean"
    scores = {}
    for folder in datasets:
        for precision in precisions:
            rows = evaluate.evaluate(
                folder, scale, Options(precision=precision, source=source, network=network), jpeg_quality
            )
            mean = evaluate.mean_row(rows)
            scores.setdefault(folder.name, {})[precision] = {
                "psnr": round(mean.psnr, 3),
                "ssim": round(mean.ssim, 4),
            }
            print(
                f"{folder.name} x{scale} {variant} {precision}: {mean.psnr:.3f} dB, SSIM {mean.ssim:.4f}",
                flush=True,
            )
    return scores


def measure_by_quality(
    out: Path, scale: int, qualities: list[int], datasets: list[Path], network: str = "edsr"
) -> dict:
    """Per dataset and JPEG quality, mean Y-PSNR of bicubic, the clean model (when ``out`` has one) and the
    JPEG-aware one, each at the engine's default precision, all on the same decoded JPEG LR."""
    from upscale_worker import evaluate
    from upscale_worker.engine.models import has_variant

    engine_config.update(models_dir=out)
    sources = ("clean", "compressed") if has_variant(scale, "clean", out, network) else ("compressed",)
    table = {}
    for folder in datasets:
        for quality in qualities:
            mean = evaluate.mean_jpeg_row(
                evaluate.evaluate_jpeg(folder, scale, quality, None, sources, network)
            )
            cells = {"bicubic": mean.bicubic, "clean": mean.clean, "jpeg": mean.jpeg}
            table.setdefault(folder.name, {})[str(quality)] = {
                k: round(v, 3) for k, v in cells.items() if v == v
            }
            print(f"{folder.name} x{scale} JPEG {quality}: {table[folder.name][str(quality)]}", flush=True)
    return table


def describe_training_data(folder: Path) -> str:
    sets = sorted(d.name for d in folder.iterdir() if d.is_dir()) if folder.is_dir() else []
    return f"{folder.name}: {', '.join(sets)}; LR by MATLAB bicubic; every 40th image held out for validation"


def checkpoint_facts(path: Path) -> dict:
    shown = path.resolve().relative_to(REPO_ROOT) if path.resolve().is_relative_to(REPO_ROOT) else path.name
    facts = {"checkpoint": str(shown), "checkpoint_sha256": sha256(path)}
    meta = path.parent / "meta.json"
    if path.name == "best.pt" and meta.exists():  # a run folder of training/train.py
        m = json.loads(meta.read_text())
        facts["training"] = {
            "iteration": m["best_iteration"],
            "validation_psnr": round(m["best_val_psnr"], 3),
        }
    return facts


def export(
    model: EDSR | rlfn.RLFN, out: Path, source: dict, training_data: str, args: argparse.Namespace
) -> list[dict]:
    jpeg = args.variant == "jpeg"
    name, network = describe(model, jpeg)
    common = {
        **network,
        "variant": args.variant,
        "scale": model.scale,
        "parameters": sum(p.numel() for p in model.parameters()),  # as trained, before the fold
        "training_data": training_data,
        **source,
    }
    if isinstance(model, EDSR):  # RLFN's upsampler is one conv and a shuffle already: nothing to fold
        common["tail"] = (
            f"folded at export: one {FOLD_KERNEL}x{FOLD_KERNEL} conv ({model.feats} -> {3 * model.scale**2}) "
            "and one pixel shuffle (training/export.py, fold_tail)"
        )
    ov_model = to_openvino(FoldedEDSR(model) if isinstance(model, EDSR) else model)
    entries = [{"name": name, "weights": "fp16", **common, **save_ir(ov_model, out, name)}]
    if args.int8:
        degradation = JpegDegradation() if jpeg else None
        crops = calibration_crops(
            args.calibration, model.scale, args.calibration_crops, args.crop, 0, degradation
        )
        calibration = (
            f"{len(crops)} LR crops of {args.crop}x{args.crop} from {args.calibration.name} (seed 0)"
        )
        if degradation:
            calibration += (
                f", JPEG-compressed at qualities {degradation.low}-{degradation.high} (4:2:0), "
                f"{degradation.clean:.0%} left clean"
            )
        int8 = quantize_int8(ov_model, crops, network.get("network", "edsr"), model.scale)
        entries.append(
            {
                "name": f"{name}_int8",
                "weights": "int8",
                **common,
                "calibration": calibration,
                **save_ir(int8, out, f"{name}_int8"),
            }
        )
    for entry in entries:
        add_entry(out, entry)
    if args.evaluate:
        with held_out_images(args.held_out) as held_out:
            datasets = [*args.evaluate, *held_out]
            for entry in entries:
                precisions = float_precisions() if entry["weights"] == "fp16" else ["int8"]
                entry["psnr"] = measure(
                    out,
                    model.scale,
                    precisions,
                    datasets,
                    args.variant,
                    args.reference_quality if jpeg else None,
                    entry.get("network", "edsr"),
                )
                if jpeg:
                    entry["psnr_input"] = (
                        f"LR saved as JPEG at quality {args.reference_quality} (Pillow, 4:2:0)"
                    )
                if entry["weights"] == "int8" and args.held_out:
                    entry["tiled_vs_one_window"] = tiled_vs_one_window(
                        out, model.scale, entry.get("network", "edsr"), args.variant, args.held_out
                    )
                add_entry(out, entry)
            if jpeg:  # at the engine's default precisions, which the entries just measured decide
                by_quality = measure_by_quality(
                    out, model.scale, args.jpeg_qualities, datasets, network.get("network", "edsr")
                )
                for entry in entries:
                    entry["psnr_by_quality"] = by_quality
                    add_entry(out, entry)
    return entries


def float_precisions() -> list[str]:
    """f32, and bf16 where the CPU runs it natively (elsewhere the engine refuses it)."""
    from upscale_worker.engine import runtime

    return ["f32", "bf16"] if runtime.cpu_has_bf16() else ["f32"]


@contextmanager
def held_out_images(train_dir: Path | None):
    """train.py's validation split of ``train_dir`` as one folder of links, measured like a benchmark set:
    the int8 default must hold on it too (models.int8_is_faithful), since Set5 lacks, e.g., sharp graphics."""
    if train_dir is None:
        yield []
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / HELD_OUT
        folder.mkdir()
        for i, path in enumerate(split_validation(list_images(train_dir))[1]):
            (folder / f"{i:02d}_{path.name}").symlink_to(path.resolve())
        yield [folder]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--weights", type=Path, help="a state dict in the official layout (training/runs/*/best.pt)"
    )
    source.add_argument("--official", help="an official file name or path, e.g. edsr_baseline_x4-6b446fab.pt")
    p.add_argument("--scale", type=int, choices=(2, 3, 4), help="checked against the checkpoint's own scale")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "models")
    p.add_argument("--training-data", help="what the weights were trained on (manifest text)")
    p.add_argument(
        "--int8", action=argparse.BooleanOptionalAction, default=True, help="also write the int8 IR"
    )
    p.add_argument("--calibration", type=Path, default=TRAIN_DIR, help="training images for int8 calibration")
    p.add_argument("--calibration-crops", type=int, default=64)
    p.add_argument("--crop", type=int, default=96, help="LR calibration crop side")
    p.add_argument(
        "--int8-search",
        type=float,
        metavar="MAX_DROP",
        help="RLFN: only print the convs NNCF's accuracy control keeps in float for MAX_DROP dB on the "
        "held-out training images (for RLFN_ACCURACY_CONTROL); writes nothing",
    )
    p.add_argument(
        "--evaluate", type=Path, action="append", default=[], help="dataset folder to measure PSNR on"
    )
    p.add_argument(
        "--held-out",
        type=lambda v: None if v == "none" else Path(v),
        default=TRAIN_DIR,
        help="with --evaluate, also measure this training folder's held-out images ('none': skip)",
    )
    p.add_argument("--download-dir", type=Path, default=REPO_ROOT / "var" / "official")
    p.add_argument(
        "--variant",
        choices=("clean", "jpeg"),
        default="clean",
        help="jpeg: a JPEG-aware twin (names *_jpeg, JPEG-compressed calibration and measurements)",
    )
    p.add_argument(
        "--reference-quality",
        type=int,
        default=75,
        help="jpeg variant: the JPEG quality of the LR inputs its PSNR per precision is measured on",
    )
    p.add_argument(
        "--jpeg-qualities",
        type=lambda v: [int(q) for q in v.split(",")],
        default=[50, 75, 90],
        help="jpeg variant: qualities of the model card's table (bicubic, clean, JPEG-aware)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    path = args.weights or official_checkpoint(args.official, args.download_dir)
    model = load_checkpoint(path)
    if "benchmark" in args.calibration.resolve().parts:
        raise SystemExit("int8 calibration must use training images, never a benchmark set")
    if args.scale and args.scale != model.scale:
        raise SystemExit(f"the checkpoint is x{model.scale}, not x{args.scale}")
    data = args.training_data or (OFFICIAL_DATA if args.official else describe_training_data(TRAIN_DIR))
    if isinstance(model, rlfn.RLFN) and not args.training_data:
        data = RLFN_DATA + ("" if path.parent.resolve() == rlfn.PUBLISHED.resolve() else "; then " + data)
    if args.int8_search is not None:
        if not isinstance(model, rlfn.RLFN):
            raise SystemExit("--int8-search is for RLFN")
        crops = calibration_crops(args.calibration, model.scale, args.calibration_crops, args.crop)
        found = search_float_layers(to_openvino(model), crops, model.scale, args.int8_search, TRAIN_DIR)
        print(f"x{model.scale}: accuracy control keeps in float {found}")
        return []
    entries = export(model, args.out, checkpoint_facts(path), data, args)
    for entry in entries:
        print(f"wrote {args.out / entry['files']['xml']} ({entry['weights']})")
    return entries


if __name__ == "__main__":
    main()
