"""RLFN (Kong et al., "Residual Local Feature Network for Efficient Super-Resolution", CVPR 2022 workshops,
arXiv 2205.07514), written from the paper with the parameter names and shapes of the authors' release.

``rlfn_x2.pth`` and ``rlfn_x4.pth`` (52 features, 6 blocks, 16 attention channels) load into ``RLFN(2)``
and ``RLFN(4)`` with ``strict=True``. Pixels are RGB in 0..255 in and out; there is no mean shift.

The network: a 3x3 conv to features; six residual local feature blocks (three 3x3 conv + LeakyReLU(0.05)
with a skip over them, a 1x1 conv, then enhanced spatial attention, ESA); a 3x3 conv and a skip from the
first features; a 3x3 conv to 3 s^2 channels and a pixel shuffle.

ESA's attention map is computed on a coarse grid: a 3x3 conv of stride 2 (no padding), a 7x7 max-pool of
stride 3, a 3x3 conv, then a bilinear resize back to the window's size. The paper resizes to the window's
own size, so the map (and the output) depends on where a window starts and how big it is: tiles would
show seams. ``grid=True`` (the engine's variant, see docs/rlfn.md) resizes by a fixed x6 instead, the map's
cells centred on their receptive fields and its edge cells replicated: a window whose origin lies on the
6-pixel grid then sees the same map as the whole image, away from its edges.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from upscale_worker.engine.config import REPO_ROOT

# The authors' files (see ../shared/weights/SOURCES.md); UPSCALE_SHARED_DIR where ../shared lies elsewhere.
SHARED = Path(os.environ.get("UPSCALE_SHARED_DIR") or REPO_ROOT.parent / "shared")
PUBLISHED = SHARED / "weights" / "rlfn"
PUBLISHED_SCALES = (2, 4)  # the authors' rlfn_x2.pth and rlfn_x4.pth
FEATURES, BLOCKS, ESA_CHANNELS = 52, 6, 16
NEGATIVE_SLOPE = 0.05
# ESA's grid: a stride-2 conv then a stride-3 pool, so one coarse cell per 6 input pixels.
GRID = 6
# The smallest window side the network runs on: the stride-2 conv's output must hold one 7-wide pool.
MIN_WINDOW = 15
# Coarse cell j's receptive field (input pixels 6j .. 6j+14) is centred on pixel 6j+7; after padding by
# _PAD_CELLS and a x6 bilinear resize it sits at 6 (j + _PAD_CELLS) + 2.5, so the map is cut from here.
_PAD_CELLS = 2
_OFFSET = 5  # 6 * _PAD_CELLS + 2.5 - 7 = 7.5 - 2 rounded down to a whole pixel


def conv3(in_ch: int, out_ch: int, stride: int = 1, padding: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=padding)


class ESA(nn.Module):
    """Enhanced spatial attention: x (N x C x H x W, H and W >= MIN_WINDOW) times a sigmoid map."""

    def __init__(self, feats: int = FEATURES, inner: int = ESA_CHANNELS, grid: bool = False):
        super().__init__()
        self.grid = grid
        self.conv1 = nn.Conv2d(feats, inner, 1)
        self.conv_f = nn.Conv2d(inner, inner, 1)
        self.conv2 = conv3(inner, inner, stride=2, padding=0)
        self.conv3 = conv3(inner, inner)
        self.conv4 = nn.Conv2d(inner, feats, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1 = self.conv1(x)
        coarse = self.conv3(F.max_pool2d(self.conv2(c1), kernel_size=7, stride=3))
        if self.grid:
            coarse = F.pad(coarse, [_PAD_CELLS] * 4, mode="replicate")
            up = F.interpolate(coarse, scale_factor=GRID, mode="bilinear", align_corners=False)
            up = up[:, :, _OFFSET : _OFFSET + x.shape[2], _OFFSET : _OFFSET + x.shape[3]]
        else:
            up = F.interpolate(coarse, size=(x.shape[2], x.shape[3]), mode="bilinear", align_corners=False)
        return x * torch.sigmoid(self.conv4(up + self.conv_f(c1)))


class RLFB(nn.Module):
    """Residual local feature block."""

    def __init__(self, feats: int = FEATURES, grid: bool = False):
        super().__init__()
        self.c1_r, self.c2_r, self.c3_r = conv3(feats, feats), conv3(feats, feats), conv3(feats, feats)
        self.c5 = nn.Conv2d(feats, feats, 1)
        self.esa = ESA(feats, ESA_CHANNELS, grid)
        self.act = nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.c1_r(x))
        out = self.act(self.c2_r(out))
        out = self.act(self.c3_r(out))
        return self.esa(self.c5(out + x))


class RLFN(nn.Module):
    """N x 3 x H x W float in 0..255 (H, W >= MIN_WINDOW) -> N x 3 x sH x sW, the same range (unclipped)."""

    def __init__(self, scale: int, grid: bool = False, feats: int = FEATURES, blocks: int = BLOCKS):
        super().__init__()
        self.scale, self.grid = scale, grid
        self.conv_1 = conv3(3, feats)
        for i in range(1, blocks + 1):
            self.add_module(f"block_{i}", RLFB(feats, grid))
        self.blocks = blocks
        self.conv_2 = conv3(feats, feats)
        self.upsampler = nn.Sequential(conv3(feats, 3 * scale * scale), nn.PixelShuffle(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upsampler(self.body(x))

    def body(self, x: torch.Tensor) -> torch.Tensor:
        """Everything before the upsampler: N x 3 x H x W -> N x feats x H x W (the same at every scale)."""
        features = self.conv_1(x)
        out = features
        for i in range(1, self.blocks + 1):
            out = getattr(self, f"block_{i}")(out)
        return self.conv_2(out) + features

    def load_body_from(self, other_state: dict[str, torch.Tensor]) -> int:
        """Copy every tensor but the upsampler's from another scale's state dict (EDSR's x2 -> x3 start);
        returns how many were copied."""
        own = self.state_dict()
        shared = {k: v for k, v in other_state.items() if not k.startswith(UPSAMPLER) and k in own}
        own.update(shared)
        self.load_state_dict(own)
        return len(shared)


UPSAMPLER = "upsampler.0."


@torch.no_grad()
def fit_upsampler(model: RLFN, lr: torch.Tensor, hr: torch.Tensor, ridge: float = 1e-3) -> float:
    """Set the upsampler's conv (3x3, feats -> 3 s^2, then the pixel shuffle) to the least-squares fit of
    ``hr`` from the body's features of ``lr``, the body held as it is: with a body from another scale this
    starts training where a random upsampler would need thousands of iterations.

    ``lr``: N x 3 x h x w float in 0..255; ``hr``: N x 3 x sh x sw, the same range. The conv is linear in
    its 9 * feats inputs (im2col, ``F.unfold``), so the fit solves the normal equations (A^T A + ridge *
    trace/n I) w = A^T t in float64, A the unfolded features with a column of ones (the bias), t the HR
    pixels pixel-unshuffled to 3 s^2 channels. Returns the fit's RMS error in grey levels.
    """
    conv, s = model.upsampler[0], model.scale
    features = model.body(lr).double()
    a = F.unfold(features, 3, padding=1).transpose(1, 2).reshape(-1, conv.in_channels * 9)
    a = torch.cat([a, torch.ones(len(a), 1, dtype=a.dtype)], 1)
    t = F.pixel_unshuffle(hr.double(), s).flatten(2).transpose(1, 2).reshape(len(a), -1)
    gram = a.T @ a
    gram += ridge * gram.diagonal().mean() * torch.eye(len(gram), dtype=gram.dtype)
    w = torch.linalg.solve(gram, a.T @ t)
    conv.weight.copy_(w[:-1].T.reshape(conv.weight.shape))
    conv.bias.copy_(w[-1])
    return float((a @ w - t).pow(2).mean().sqrt())


def scale_of(state: dict[str, torch.Tensor]) -> int:
    """The upscaling factor a state dict's upsampler was made for."""
    return round((state["upsampler.0.weight"].shape[0] // 3) ** 0.5)


def from_state_dict(state: dict[str, torch.Tensor], grid: bool = False) -> RLFN:
    """An RLFN holding ``state`` (loaded strictly: a wrong name or shape raises RuntimeError)."""
    model = RLFN(scale_of(state), grid)
    model.load_state_dict(state, strict=True)
    return model
