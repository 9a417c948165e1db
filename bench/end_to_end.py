"""End to end: API submit -> result ready for one 512x512 x4 job on an idle platform, against the engine alone.

    python -m bench.end_to_end [--size 512] [--scale 4] [--jobs 7]

Starts gunicorn and one Celery worker (bench/stack.py: real Redis on a free database number, a temporary
PostgreSQL database), sends a warm-up job (the worker compiles its model lazily), then ``--jobs`` jobs one
after another, each polled as the job page polls (bench.stack.next_poll: the worker's ETA, else a backoff from
0.5 s; ``--poll`` sets a fixed interval) until done, and its result downloaded. The engine alone is
``upscale_file`` on the same PNG with the same precision and threads, in this process.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench import prepare
from bench.common import OUT, fmt, markdown_table, publish, threads, training_paused
from bench.engine_peers import test_image
from bench.stack import Stack
from upscale_worker.engine import config as engine_config


def png_bytes(size: int, seed: int = 0) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(test_image(size, seed)).save(buf, "PNG", compress_level=3)
    return buf.getvalue()


def seconds(a: str | None, b: str | None) -> float:
    if not a or not b:
        return float("nan")
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def platform_job(stack: Stack, image: bytes, scale: int, poll: float) -> dict:
    wall0, t0 = time.time(), time.perf_counter()
    job = stack.submit(image, scale)
    t_submitted = time.perf_counter()
    done = stack.wait_done(job["id"], poll=poll)
    t_done = time.perf_counter()
    result = stack.session.get(done["result_url"], timeout=60)
    result.raise_for_status()
    t_fetched = time.perf_counter()
    finished = datetime.fromisoformat(done["finished_at"]).timestamp()  # same host, same clock
    return {
        "submit": t_submitted - t0,
        "finished": finished - wall0,
        "done": t_done - t0,
        "fetched": t_fetched - t0,
        "queued": seconds(done["created_at"], done["started_at"]),
        "run": seconds(done["started_at"], done["finished_at"]),
    }


def main(argv: list[str] | None = None) -> str:
    from upscale_worker.engine import runtime, upscale_file

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--jobs", type=int, default=7)
    p.add_argument(
        "--poll", type=float, default=None, help="fixed polling interval, seconds (default: as the page)"
    )
    args = p.parse_args(argv)
    prepare.prepare()

    engine_config.update(models_dir=prepare.MODELS)
    image = png_bytes(args.size)
    precision = runtime.precision(args.scale)
    with Stack("e2e", prepare.MODELS, UPSCALE_PRECISION=precision) as stack:
        stack.start_web()
        stack.start_worker("worker-1", threads=threads())
        stack.use(stack.register())
        platform_job(stack, png_bytes(64, seed=3), args.scale, args.poll)  # warm-up: the worker compiles
        platform_job(stack, image, args.scale, args.poll)
        with tempfile.TemporaryDirectory(dir=OUT) as tmp:
            src, dst = Path(tmp) / "in.png", Path(tmp) / "out.png"
            src.write_bytes(image)
            upscale_file(src, dst, args.scale)  # warm-up in this process
            jobs, engine_runs = [], []
            with training_paused():
                for _ in range(args.jobs):  # alternated, so that both see the machine at the same speed
                    jobs.append(platform_job(stack, image, args.scale, args.poll))
                    started = time.perf_counter()
                    upscale_file(src, dst, args.scale)
                    engine_runs.append(time.perf_counter() - started)
    engine = min(engine_runs)
    med = {k: min(j[k] for j in jobs) for k in jobs[0]}
    print(jobs, engine, flush=True)
    rows = [
        ["engine alone: upscale_file (decode, tiles, PNG encode)", fmt(engine * 1000, 0), "", ""],
        [
            "platform: POST /api/v1/jobs answered (upload stored, row committed, task published)",
            fmt(med["submit"] * 1000, 0),
            "",
            "",
        ],
        ["platform: job row created -> worker claimed it (queue wait)", fmt(med["queued"] * 1000, 0), "", ""],
        [
            "platform: worker run (claim -> DONE: engine, result and 3 previews stored)",
            fmt(med["run"] * 1000, 0),
            fmt((med["run"] - engine) * 1000, 0),
            f"{(med['run'] - engine) / engine * 100:.1f}%",
        ],
        [
            "**platform: submit -> job DONE (the row's finished_at)**",
            fmt(med["finished"] * 1000, 0),
            fmt((med["finished"] - engine) * 1000, 0),
            f"**{(med['finished'] - engine) / engine * 100:.1f}%**",
        ],
        [
            "platform: submit -> client sees done ("
            + (f"polling every {args.poll * 1000:.0f} ms)" if args.poll else "polling as the job page does)"),
            fmt(med["done"] * 1000, 0),
            fmt((med["done"] - engine) * 1000, 0),
            f"{(med['done'] - engine) / engine * 100:.1f}%",
        ],
        [
            "platform: submit -> result downloaded",
            fmt(med["fetched"] * 1000, 0),
            fmt((med["fetched"] - engine) * 1000, 0),
            f"{(med['fetched'] - engine) / engine * 100:.1f}%",
        ],
    ]
    headers = ["step", "ms (best of N)", "overhead vs engine (ms)", "overhead %"]
    notes = [
        f"One {args.size}x{args.size} PNG at x{args.scale}, {precision}, {threads()} threads for the worker and for the "
        f"engine alone; best of {args.jobs} jobs sent one at a time after a warm-up job (each column its own best), "
        "each followed by one engine-alone run (the VM's speed drifts by 10-15%), training paused.",
        "Platform: gunicorn (2 processes x 4 threads) + one Celery worker (concurrency 1) started by "
        "bench/stack.py on the machine's Redis (a dedicated database number) and a temporary PostgreSQL "
        "database; job times from the API's created_at / started_at / finished_at.",
        "Goal (issue 6): submit -> done overhead under 10%. Each status poll costs about 3 ms of CPU (gunicorn "
        "1.8 ms, PostgreSQL, the client) taken from the worker on these 2 cores: polling every 100 ms added about "
        "80 ms to the worker run (7.9% instead of 2.4%), which is why the page polls at the worker's ETA instead.",
    ]
    return publish(
        "end-to-end",
        "End to end: API submit -> result ready, against the engine alone",
        markdown_table(headers, rows),
        notes,
    )


if __name__ == "__main__":
    main()
