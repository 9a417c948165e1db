"""Photo latency: upload to result of one photo, on one worker against two one-core workers sharing it out.

    python -m bench.photo_latency [--sizes 640x480x4,1920x1080x2,1920x1080x4,4000x3000x2] [--pairs 3]
    python -m bench.photo_latency --quick      # 640x480 x4 and 1600x1200 x2 only
    python -m bench.photo_latency --sizes 1280x720x4 --networks edsr,rlfn   # both networks, same run

Three private stacks (bench/stack.py) run side by side, each with its own database, Redis database and
media folder: one worker with one thread (taskset to one core), two workers with one thread each (one core
each: like two small hosts), and one worker with two threads on both cores. Each is warmed up with one job of
every size, then the photos go round the stacks in turn (interleaved, the first stack rotating each round),
and the time from the upload's POST to the poll that sees the job done is taken (polls every 0.1 s). The
table gives the median of ``--pairs`` rounds and the ratio of two one-core workers to one; the goal (issue
19) is at most 0.65 at 1600x1200 x2. ``--networks`` runs every size with each network (issue 23: RLFN beside
EDSR in the same run). ``--peak-gmacs`` adds the floor: the job's MACs (counted from the network's IR) over
that rate.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np

from bench import prepare
from bench.common import fmt, markdown_table, publish, training_paused
from bench.engine_peak import network_macs
from bench.stack import Stack

SIZES = "640x480x4,1920x1080x2,1920x1080x4,4000x3000x2,1600x1200x2"
QUICK = "640x480x4,1600x1200x2"
COUNTED_ON = 276  # window side whose convolutions give the MACs per input pixel (on RLFN's 6-pixel grid)
SETUPS = (("1 worker x 1 thread", 1, 1), ("2 workers x 1 thread", 2, 1), ("1 worker x 2 threads", 1, 2))


def photo(width: int, height: int) -> bytes:
    """A photo-like JPEG (quality 92): smooth shading with texture, so the clean model runs."""
    from PIL import Image

    rng = np.random.default_rng(width * height)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([(x * 255 // width), (y * 255 // height), ((x + y) * 127 // (width + height))], -1)
    noisy = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noisy).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def macs_per_pixel(scale: int, network: str) -> float:
    """Multiply-accumulates per input pixel of the shipped ``network`` model at ``scale``, counted from its IR."""
    from upscale_worker.engine.models import find_model

    xml = find_model(scale, "f32", prepare.MODELS, network=network).xml  # the int8 twin: the same convs
    return network_macs(xml, COUNTED_ON, COUNTED_ON) / COUNTED_ON**2


def parse(sizes: str) -> list[tuple[int, int, int]]:
    return [tuple(int(v) for v in size.split("x")) for size in sizes.split(",")]  # type: ignore[misc]


def start(name: str, workers: int, threads: int) -> Stack:
    stack = Stack(name, prepare.MODELS).__enter__()
    stack.start_web(workers=1, threads=4)
    for i in range(workers):
        first = i * threads
        stack.start_worker(f"worker-{i + 1}", threads=threads, cpus=f"{first}-{first + threads - 1}")
    stack.use(stack.register())
    return stack


def latency(stack: Stack, image: bytes, scale: int, network: str) -> tuple[float, dict]:
    started = time.perf_counter()
    job_id = stack.submit(image, scale, "photo.jpg", network)["id"]
    job = stack.wait_done(job_id, poll=0.1, timeout=3600)
    return time.perf_counter() - started, job


def helpers(stack: Stack, job_id: str) -> list[str]:
    """The job's helper workers, from the stack's database (the API does not show worker names)."""
    import psycopg

    with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
        return conn.execute("SELECT helpers FROM jobs_job WHERE id = %s", [job_id]).fetchone()[0]


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default=SIZES, help="WxHxSCALE,... (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help=f"only {QUICK}")
    p.add_argument("--pairs", type=int, default=3, help="interleaved rounds (median of them)")
    p.add_argument("--networks", default="edsr", help="comma-separated: each size runs with each network")
    p.add_argument("--peak-gmacs", type=float, help="the CPU's measured int8 peak, for the floor column")
    args = p.parse_args(argv)
    cases = [
        (w, h, s, n)
        for w, h, s in parse(QUICK if args.quick else args.sizes)
        for n in args.networks.split(",")
    ]
    images = {(w, h): photo(w, h) for w, h, _, _ in cases}
    stacks = []
    try:
        for _name, workers, threads in SETUPS:
            stacks.append(start(f"latency{workers}x{threads}", workers, threads))
        for stack in stacks:  # warm-up: every model compiled, every size decoded once
            for w, h, s, n in cases:
                latency(stack, images[w, h], s, n)
        times: dict[tuple, list[float]] = {}
        helped: dict[tuple, int] = {}
        with training_paused():
            for round_ in range(args.pairs):
                for case in cases:
                    w, h, s, n = case
                    order = stacks[round_ % len(stacks) :] + stacks[: round_ % len(stacks)]
                    for stack in order:
                        seconds, job = latency(stack, images[w, h], s, n)
                        key = (stacks.index(stack), *case)
                        times.setdefault(key, []).append(seconds)
                        helped[key] = helped.get(key, 0) + bool(helpers(stack, job["id"]))
                        print(SETUPS[key[0]][0], label(case), f"{seconds:.2f} s", flush=True)
    finally:
        for stack in stacks:
            stack.__exit__(None, None, None)
    rows = []
    for case in cases:
        w, h, s, n = case
        medians = [statistics.median(times[(i, *case)]) for i in range(len(SETUPS))]
        floor = w * h * macs_per_pixel(s, n) / (args.peak_gmacs * 1e9) if args.peak_gmacs else None
        rows.append(
            [label(case), *(fmt(m, 2) for m in medians), f"**{medians[1] / medians[0]:.2f}**"]
            + [f"{medians[2] / medians[0]:.2f}", f"{helped[(1, *case)]}/{args.pairs}"]
            + ([fmt(floor, 2)] if floor else [])
        )
    headers = ["photo", *(f"{name} (s)" for name, _, _ in SETUPS), "2x1 / 1x1", "1x2 / 1x1", "helped"]
    headers += ["floor (s)"] if args.peak_gmacs else []
    notes = [
        f"Upload (POST) to the poll that sees the job done, median of {args.pairs} interleaved rounds after a "
        "warm-up job of each size on each stack; JPEG photos (quality 92), default precision and windows.",
        "Each worker taskset to its own core(s) with UPSCALE_THREADS = its cores; web, Redis and PostgreSQL "
        "share the machine. 'helped': rounds in which the job listed a helper worker (it was shared out).",
        "On one host, two one-thread workers can at best tie one two-thread worker (same cores); the gain "
        "of sharing a job out is across hosts, where the second worker brings cores of its own.",
    ]
    title = "Photo latency: one job on one or two workers"
    text = publish("photo-latency", title, markdown_table(headers, rows), notes)
    return text


def label(case: tuple[int, int, int, str]) -> str:
    w, h, s, network = case
    return f"{w}x{h} x{s}" + ("" if network == "edsr" else f" ({network.upper()})")


if __name__ == "__main__":
    main()
