"""The model folder: ``manifest.json`` lists one OpenVINO IR per (scale, variant, weights) with its provenance.

``variant`` is "clean" (trained on clean bicubic inputs; an entry without one is clean, as every entry written
before the JPEG-aware twins was) or "jpeg" (fine-tuned on JPEG-compressed inputs, see issue 12).

``network`` is "edsr" (the product's own EDSR-baseline; an entry without one is EDSR) or "rlfn" (issue 23:
the published RLFN weights). An entry's ``tiling`` says what its network needs of the windows it runs on
(border, overlap, window grid and smallest side; see api.Geometry); EDSR needs nothing beyond the defaults.
UPSCALE_MODELS (comma-separated networks, default every one) lets an operator leave a network out, and
UPSCALE_DEFAULT_NETWORK (default edsr) names the one a request without a choice gets.

Nothing here imports OpenVINO, so the web app and the export tool can read the manifest cheaply.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from upscale_worker.engine.config import current
from upscale_worker.engine.errors import EngineError

MANIFEST = "manifest.json"
# Runtime precision -> the IR weights it runs: f32 and bf16 run the FP16-compressed IR, int8 its NNCF twin.
WEIGHTS_FOR_PRECISION = {"f32": "fp16", "bf16": "fp16", "int8": "int8"}
# Issue 6: a default precision must stay within 0.05 dB of f32 on Set5 (measured by training.export --evaluate,
# which also measures held-out training images, where the same bound applies).
FAITHFUL_DB = 0.05
# The tiling's promise for int8 (issue 21): the engine's windows against one window, at most this share of
# pixels 2 levels or more apart (EDSR's twins: 0.002% at 128-px windows). An int8 twin whose export measured
# more (``tiled_vs_one_window``: RLFN's, 0.7-0.8%, docs/rlfn.md) is never a default, however faithful its PSNR.
SEAM_SHARE = 0.001
VARIANTS = ("clean", "jpeg")
VARIANT_NAMES = {"clean": "clean", "jpeg": "JPEG-aware"}
NETWORKS = ("edsr", "rlfn")
NETWORK_NAMES = {"edsr": "EDSR", "rlfn": "RLFN"}
DEFAULT_NETWORK = "edsr"


def models_dir() -> Path:
    """The configured models folder (config.py)."""
    return current().models_dir


@dataclass(frozen=True)
class ModelFile:
    xml: Path
    bin: Path
    entry: dict


def read_manifest(folder: Path | None = None) -> dict:
    path = (folder or models_dir()) / MANIFEST
    if not path.exists():
        return {"models": []}
    return json.loads(path.read_text())


def write_manifest(manifest: dict, folder: Path) -> None:
    manifest["models"].sort(key=lambda e: (e["scale"], e["weights"], e["name"]))
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def enabled_networks() -> tuple[str, ...]:
    """The networks this installation offers: the configuration's ``networks`` (UPSCALE_MODELS, e.g. "edsr"),
    else every one."""
    chosen = current().networks
    return tuple(n for n in NETWORKS if n in chosen) if chosen else NETWORKS


def default_network() -> str:
    """The configuration's ``default_network`` (UPSCALE_DEFAULT_NETWORK, else EDSR, the product's model);
    never a network left out."""
    name = current().default_network or DEFAULT_NETWORK
    return name if name in enabled_networks() else enabled_networks()[0]


def network_of(entry: dict) -> str:
    return entry.get("network", "edsr")


def available_scales(folder: Path | None = None, network: str | None = None) -> list[int]:
    """Scales with a model of ``network`` (None: of any network offered)."""
    offered = (network,) if network else enabled_networks()
    return sorted({e["scale"] for e in read_manifest(folder)["models"] if network_of(e) in offered})


def variant_of(entry: dict) -> str:
    return entry.get("variant", "clean")


def entries_for(scale: int, variant: str, folder: Path | None = None, network: str = "edsr") -> list[dict]:
    return [
        e
        for e in read_manifest(folder)["models"]
        if e["scale"] == scale and variant_of(e) == variant and network_of(e) == network
    ]


def has_variant(scale: int, variant: str, folder: Path | None = None, network: str = "edsr") -> bool:
    return bool(entries_for(scale, variant, folder, network))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def measured_psnr(
    scale: int, folder: Path | None = None, variant: str = "clean", network: str = "edsr"
) -> dict[str, dict[str, float]]:
    """Image set -> precision -> PSNR of the ``scale`` models of ``variant`` and ``network``, as recorded by
    the export (empty if never)."""
    psnr: dict[str, dict[str, float]] = {}
    for entry in entries_for(scale, variant, folder, network):
        for image_set, by_precision in entry.get("psnr", {}).items():
            psnr.setdefault(image_set, {}).update({p: v["psnr"] for p, v in by_precision.items()})
    return psnr


def set5_psnr(
    scale: int, folder: Path | None = None, variant: str = "clean", network: str = "edsr"
) -> dict[str, float]:
    return measured_psnr(scale, folder, variant, network).get("Set5", {})


def int8_is_faithful(
    scale: int, folder: Path | None = None, variant: str = "clean", network: str = "edsr"
) -> bool:
    """Whether the manifest records the int8 twin of ``scale`` and ``variant`` within FAITHFUL_DB of f32 on
    Set5 and on every other set the export measured both on (held-out training images: content that Set5
    lacks), and, where the export measured its windows against one window, within SEAM_SHARE. The JPEG-aware
    models are measured on JPEG-compressed inputs, which is what they run on."""
    measured = measured_psnr(scale, folder, variant, network)
    compared = [s for s in measured.values() if {"f32", "int8"} <= s.keys()]
    on_set5 = {"f32", "int8"} <= measured.get("Set5", {}).keys()
    seams = [
        e["tiled_vs_one_window"]["share_2_levels"]
        for e in entries_for(scale, variant, folder, network)
        if "tiled_vs_one_window" in e
    ]
    return (
        on_set5
        and all(s["f32"] - s["int8"] <= FAITHFUL_DB for s in compared)
        and all(share <= SEAM_SHARE for share in seams)
    )


def check_network(network: str, scale: int | None = None, folder: Path | None = None) -> None:
    """Raises EngineError, in words a user can act on, for a network that is unknown, left out by the
    operator, or has no model for ``scale`` where another network has one (RLFN has no x3): never silently
    another network. A scale no network has is left to find_model, which names the scales there are."""
    if network not in NETWORKS:
        raise EngineError(f"Unknown network {network!r}; choose one of {', '.join(enabled_networks())}.")
    if network not in enabled_networks():
        raise EngineError(f"The {NETWORK_NAMES[network]} network is not offered on this server.")
    scales = available_scales(folder, network)
    if not scales and read_manifest(folder)["models"]:
        raise EngineError(f"The {NETWORK_NAMES[network]} network is not installed on this server.")
    if scale is not None and scales and scale not in scales and scale in available_scales(folder):
        others = [n for n in enabled_networks() if n != network and scale in available_scales(folder, n)]
        also = f", or the {NETWORK_NAMES[others[0]]} network" if others else ""
        raise EngineError(
            f"{NETWORK_NAMES[network]} has no x{scale} model; choose x{' or x'.join(map(str, scales))}{also}."
        )


def find_model(
    scale: int, precision: str, folder: Path | None = None, variant: str = "clean", network: str = "edsr"
) -> ModelFile:
    """The IR for ``scale``, ``variant`` and ``network`` at ``precision``, its files checked against the
    manifest's hashes. Raises EngineError when there is none or its files are damaged."""
    folder = folder or models_dir()
    check_network(network, scale, folder)
    if precision not in WEIGHTS_FOR_PRECISION:
        raise EngineError(
            f"Unknown precision {precision!r}; choose one of {', '.join(WEIGHTS_FOR_PRECISION)}."
        )
    if variant not in VARIANTS:
        raise EngineError(f"Unknown model variant {variant!r}; choose one of {', '.join(VARIANTS)}.")
    weights = WEIGHTS_FOR_PRECISION[precision]
    if not [e for e in read_manifest(folder)["models"] if e["scale"] == scale]:
        scales = available_scales(folder)
        offer = f"available: x{', x'.join(map(str, scales))}" if scales else "no model is installed"
        raise EngineError(f"Upscaling x{scale} is not available yet ({offer}).")
    for_variant = entries_for(scale, variant, folder, network)
    if not for_variant:
        label = "" if network == "edsr" else f" {NETWORK_NAMES[network]}"
        raise EngineError(f"Upscaling x{scale} has no {VARIANT_NAMES[variant]}{label} model installed.")
    entries = [e for e in for_variant if e["weights"] == weights]
    if not entries:
        raise EngineError(f"Upscaling x{scale} is not available at {precision} precision; try f32.")
    entry = entries[0]
    model = ModelFile(folder / entry["files"]["xml"], folder / entry["files"]["bin"], entry)
    for kind, path in (("xml", model.xml), ("bin", model.bin)):
        if not path.exists() or sha256(path) != entry["sha256"][kind]:
            raise EngineError(
                f"The x{scale} model file {path.name} is missing or damaged; reinstall the models."
            )
    return model
