"""EDSR (Lim et al., 2017) with the parameter names and shapes of the official EDSR-PyTorch code.

An official checkpoint such as ``edsr_baseline_x4-6b446fab.pt`` loads into ``EDSR.baseline(4)`` with
``strict=True``. Pixels are RGB in 0..255; the DIV2K mean shift is inside the network.
"""

from __future__ import annotations

import math

import torch
from torch import nn

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)
RGB_RANGE = 255.0

# name -> (blocks, features, res_scale), as the paper defines them.
VARIANTS = {"baseline": (16, 64, 1.0), "full": (32, 256, 0.1)}


def conv(in_ch: int, out_ch: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, padding=1)


class MeanShift(nn.Conv2d):
    """A frozen 1x1 conv that subtracts (sign=-1) or adds back (sign=+1) the dataset mean."""

    def __init__(self, sign: int):
        super().__init__(3, 3, kernel_size=1)
        self.weight.data = torch.eye(3).view(3, 3, 1, 1)
        self.bias.data = sign * RGB_RANGE * torch.tensor(DIV2K_RGB_MEAN)
        for p in self.parameters():
            p.requires_grad = False


class ResBlock(nn.Module):
    def __init__(self, feats: int, res_scale: float):
        super().__init__()
        self.body = nn.Sequential(conv(feats, feats), nn.ReLU(True), conv(feats, feats))
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


class Upsampler(nn.Sequential):
    def __init__(self, scale: int, feats: int):
        layers: list[nn.Module] = []
        if scale & (scale - 1) == 0:  # 2, 4, 8: repeated x2 stages
            for _ in range(int(math.log2(scale))):
                layers += [conv(feats, 4 * feats), nn.PixelShuffle(2)]
        elif scale == 3:
            layers += [conv(feats, 9 * feats), nn.PixelShuffle(3)]
        else:
            raise ValueError(f"EDSR supports scales 2, 3, 4 and 8, not {scale}")
        super().__init__(*layers)


class EDSR(nn.Module):
    def __init__(self, scale: int, blocks: int = 16, feats: int = 64, res_scale: float = 1.0):
        super().__init__()
        self.scale, self.blocks, self.feats, self.res_scale = scale, blocks, feats, res_scale
        self.sub_mean = MeanShift(-1)
        self.add_mean = MeanShift(+1)
        self.head = nn.Sequential(conv(3, feats))
        self.body = nn.Sequential(*[ResBlock(feats, res_scale) for _ in range(blocks)], conv(feats, feats))
        self.tail = nn.Sequential(Upsampler(scale, feats), conv(feats, 3))

    @classmethod
    def variant(cls, name: str, scale: int) -> EDSR:
        blocks, feats, res_scale = VARIANTS[name]
        return cls(scale, blocks, feats, res_scale)

    @classmethod
    def baseline(cls, scale: int) -> EDSR:
        return cls.variant("baseline", scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.sub_mean(x))
        x = x + self.body(x)
        return self.add_mean(self.tail(x))

    def load_body_from(self, other_state: dict[str, torch.Tensor]) -> int:
        """Copy every tensor except the upsampler's (the paper's x2 -> x3/x4 initialisation)."""
        own = self.state_dict()
        shared = {k: v for k, v in other_state.items() if not k.startswith("tail.0.") and k in own}
        own.update(shared)
        self.load_state_dict(own)
        return len(shared)


def variant_of(state: dict[str, torch.Tensor]) -> tuple[int, int, int]:
    """(scale, blocks, features) read from a state dict's shapes."""
    feats = state["head.0.weight"].shape[0]
    blocks = sum(1 for k in state if k.endswith(".body.0.weight") and k.startswith("body."))
    stages = sorted(
        {int(k.split(".")[2]) for k in state if k.startswith("tail.0.") and k.endswith(".weight")}
    )
    first = state["tail.0.0.weight"].shape[0] // feats
    scale = 3 if first == 9 else 2 ** len(stages)
    return scale, blocks, feats


def from_state_dict(state: dict[str, torch.Tensor]) -> EDSR:
    scale, blocks, feats = variant_of(state)
    res_scale = 0.1 if feats == 256 else 1.0
    model = EDSR(scale, blocks, feats, res_scale)
    model.load_state_dict(state, strict=True)
    return model
