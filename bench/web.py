"""Web: a headless Locust run on loopback of users uploading small images and polling their jobs.

    python -m bench.web [--users 20] [--spawn-rate 10] [--duration 60]

The web tier alone: gunicorn (2 processes x 4 threads, as ``make run``) on a private stack (bench/stack.py);
no worker runs, so uploaded jobs stay queued and polls read the queued row: this measures the web server,
the database and the broker publish, not the upscaling. The per-user upload rate limit and queued-job quota
are raised for the run (they would otherwise refuse the load generator's users, by design).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
from pathlib import Path

from bench import prepare
from bench.common import PYTHON, ROOT, fmt, markdown_table, publish, training_paused
from bench.end_to_end import png_bytes
from bench.stack import Stack

LOCUST = Path(PYTHON).parent / "locust"


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--spawn-rate", type=float, default=10)
    p.add_argument("--duration", type=int, default=60, help="seconds")
    p.add_argument("--accounts", type=int, default=5, help="distinct accounts the users share")
    args = p.parse_args(argv)
    prepare.prepare()
    limits = {
        "UPLOADS_PER_MINUTE": "1000000",
        "MAX_QUEUED_JOBS_PER_USER": "1000000",
        "LOGINS_PER_MINUTE": "1000",
    }
    with Stack("web", prepare.MODELS, **limits) as stack:
        stack.start_web()
        tokens = [stack.register() for _ in range(args.accounts)]
        image = stack.folder / "small.png"
        image.write_bytes(png_bytes(64, seed=7))
        prefix = stack.folder / "locust"
        cmd = [
            str(LOCUST),
            "-f",
            str(ROOT / "bench" / "locustfile.py"),
            "--headless",
            "--host",
            stack.url,
            "-u",
            str(args.users),
            "-r",
            str(args.spawn_rate),
            "-t",
            f"{args.duration}s",
            "--csv",
            str(prefix),
            "--only-summary",
            "--stop-timeout",
            "5",
            "--loglevel",
            "WARNING",
        ]
        env = dict(stack.env, BENCH_TOKENS=",".join(tokens), BENCH_IMAGE=str(image))
        with training_paused(max_seconds=args.duration + 120):
            done = subprocess.run(
                cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=args.duration + 120
            )
        print(done.stdout[-3000:], done.stderr[-3000:], flush=True)
        with open(f"{prefix}_stats.csv") as f:
            stats = list(csv.DictReader(f))
        failures = (
            Path(f"{prefix}_failures.csv").read_text() if Path(f"{prefix}_failures.csv").exists() else ""
        )
    rows = []
    for s in stats:
        count = int(s["Request Count"])
        rows.append(
            [
                ("**all requests**" if s["Name"] == "Aggregated" else f"{s['Name']}"),
                str(count),
                fmt(float(s["Requests/s"]), 1),
                s["50%"],
                s["95%"],
                s["99%"],
                s["Max Response Time"].split(".")[0],
                ("**" + s["Failure Count"] + "**") if s["Name"] == "Aggregated" else s["Failure Count"],
            ]
        )
    headers = ["request", "count", "requests/s", "p50 (ms)", "p95 (ms)", "p99 (ms)", "max (ms)", "errors"]
    notes = [
        f"Locust {args.users} users (spawn {args.spawn_rate:g}/s), {args.duration} s, headless on loopback; "
        "each user uploads a 64x64 PNG (x2) with weight 1, polls its latest job with weight 5 and lists its "
        f"jobs with weight 1, waiting 0.5-1.5 s between requests; {args.accounts} accounts, API token auth.",
        "gunicorn 2 x 4 threads, temporary PostgreSQL database, Redis (dedicated database number); no worker "
        "(web tier only). Locust itself runs on the same 2 cores. Training paused during the run.",
        "Goal (issue 6): errors must be 0."
        + (f" Failures: {failures.strip()[:300]}" if failures.count("\n") > 1 else ""),
    ]
    return publish("web", "Web: Locust upload-and-poll users", markdown_table(headers, rows), notes)


if __name__ == "__main__":
    main()
