"""Deep-zoom (DZI) pyramids of a job's input ("before") and result ("after"), for the job page's zoomable
comparison (OpenSeadragon). The worker writes them beside the result; the web only serves the files.

Layout, flat in one storage folder per job (one listing deletes them all, on any storage):
``<folder>/<layer>-<level>-<col>_<row>.<ext>``, where level 0 is 1x1 and the last level is the image at
its full size, as in the DZI format (tiles of TILE_SIZE plus OVERLAP pixels on each inner side).
"""

import math
import re

TILE_SIZE = 254  # + 2 x OVERLAP = 256, OpenSeadragon's and Deep Zoom's usual tile
OVERLAP = 1
LAYERS = ("before", "after")
TILE_NAME = re.compile(r"^(before|after)/(\d{1,2})/(\d{1,5})_(\d{1,5})\.(jpg|webp)$")


def tile_name(layer, level, col, row, ext):
    """The tile's name inside its job's folder."""
    return f"{layer}-{level}-{col}_{row}.{ext}"


def stored_name(folder, path):
    """The storage name of the tile the viewer asks for as ``path`` ("after/12/3_4.jpg") in ``folder``
    ("tiles/<token>/"), or None when ``path`` is not a tile's."""
    m = TILE_NAME.match(path)
    return folder + tile_name(*m.groups()) if m else None


def levels(width, height):
    """[(width, height)] of each level, level 0 (1x1) first and the full size last."""
    top = math.ceil(math.log2(max(width, height, 1)))
    return [(math.ceil(width / 2 ** (top - n)), math.ceil(height / 2 ** (top - n))) for n in range(top + 1)]


def write_pyramid(rgb, alpha, layer, write):
    """Cut a picture (``rgb`` H x W x 3, ``alpha`` H x W or None; uint8 or uint16) into a DZI pyramid and
    hand each encoded tile to ``write(tile_name(layer, ...), data: bytes)``. Opaque pictures make JPEG
    tiles (quality 90), transparent ones WebP (quality 90). Memory: the smaller levels, a third of the
    picture; the picture itself is only read. Returns {"width", "height", "ext"}."""
    import cv2

    ext = "jpg" if alpha is None else "webp"
    params = [cv2.IMWRITE_JPEG_QUALITY, 90] if alpha is None else [cv2.IMWRITE_WEBP_QUALITY, 90]
    height, width = rgb.shape[:2]
    level_sizes = levels(width, height)
    planes = [p for p in (rgb, alpha) if p is not None]
    for level in range(len(level_sizes) - 1, -1, -1):
        w, h = level_sizes[level]
        if planes[0].shape[:2] != (h, w):
            planes = [cv2.resize(p, (w, h), interpolation=cv2.INTER_AREA) for p in planes]
        for row in range(math.ceil(h / TILE_SIZE)):
            for col in range(math.ceil(w / TILE_SIZE)):
                ok, data = cv2.imencode(f".{ext}", _tile(planes, col, row, w, h), params)
                if not ok:
                    raise ValueError(f"OpenCV could not encode a {ext} tile")
                write(tile_name(layer, level, col, row, ext), data.tobytes())
    return {"width": width, "height": height, "ext": ext}


def _tile(planes, col, row, w, h):
    """The BGR(A) uint8 tile (col, row) with its overlap, from a level's planes."""
    import cv2
    import numpy as np

    x0, y0 = max(0, col * TILE_SIZE - OVERLAP), max(0, row * TILE_SIZE - OVERLAP)
    x1, y1 = min(w, (col + 1) * TILE_SIZE + OVERLAP), min(h, (row + 1) * TILE_SIZE + OVERLAP)
    tile = np.dstack([p[y0:y1, x0:x1] for p in planes])
    if tile.dtype == np.uint16:
        tile = np.rint(tile / 257.0).astype(np.uint8)
    return cv2.cvtColor(tile, cv2.COLOR_RGB2BGR if tile.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
