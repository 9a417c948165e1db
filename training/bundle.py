"""Pack the training images into a small folder that can travel to a machine without ../shared.

Lossless WebP keeps every pixel (about 70% of the PNG size). Folders named in --lossy (say BSD200, whose
photographs were JPEG before they were PNG) can go as 4:4:4 JPEG at a high quality to fit a size limit.
The relative paths and their sort order are kept, so the trainer holds out the same validation images.

    python -m training.bundle ../shared/datasets/train .gpu-data --lossy BSD200 --quality 95
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image

from training.data import list_images


def pack(job: tuple[Path, Path, bool, int]) -> int:
    source, target, lossy, quality = job
    image = Image.open(source).convert("RGB")
    target.parent.mkdir(parents=True, exist_ok=True)
    if lossy:
        image.save(target, "JPEG", quality=quality, subsampling=0)
    else:
        image.save(target, "WEBP", lossless=True, quality=100, method=4)
    return target.stat().st_size


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", type=Path)
    p.add_argument("target", type=Path)
    p.add_argument("--lossy", nargs="*", default=[], help="top-level folders to store as JPEG")
    p.add_argument("--quality", type=int, default=95)
    args = p.parse_args(argv)
    jobs = []
    for path in list_images(args.source):
        rel = path.relative_to(args.source)
        lossy = rel.parts[0] in args.lossy
        jobs.append(
            (path, (args.target / rel).with_suffix(".jpg" if lossy else ".webp"), lossy, args.quality)
        )
    with ProcessPoolExecutor() as pool:
        total = sum(pool.map(pack, jobs, chunksize=8))
    print(f"{len(jobs)} images, {total / 2**20:.1f} MiB in {args.target}")


if __name__ == "__main__":
    main()
