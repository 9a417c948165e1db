"""Lossy links: time per job with 1% packet loss on every worker host's link, against a clean link.

    sudo python -m bench.lossy_links [--jobs 20] [--size 256] [--scale 2] [--rounds 2]

The platform on hosts joined by a real network (scripts/cluster.py: Linux network namespaces, each host in
its own UTS and PID namespace; services host with Redis, PostgreSQL and moto's S3; web host; two worker
hosts, media in S3). Loss is nftables' ``numgen random mod 100 < 1 drop`` inside each worker host, in and out
(this kernel has no tc netem). Rounds alternate clean and lossy so the machine's drift falls on both; each
round submits the jobs at once through the web host and waits for the last to finish. Needs root.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, fmt, markdown_table, publish, training_paused
from bench.end_to_end import png_bytes
from scripts import cluster as hosts

LOSS_PERCENT = 1


def run_round(platform: hosts.Cluster, user: hosts.Client, image: bytes, jobs: int, scale: int) -> dict:
    """Submit ``jobs`` at once; returns the drain time and each job's run and submit-to-done seconds."""
    started = time.perf_counter()
    ids = [user.submit(image, scale) for _ in range(jobs)]

    def finished():
        rows = platform.query(
            "SELECT status, created_at, started_at, finished_at FROM jobs_job WHERE id::text = ANY(%s)", ids
        )
        return rows if all(r[0] in ("done", "failed", "cancelled") for r in rows) else None

    rows = hosts.wait_until(finished, f"{jobs} jobs finished", 600, every=0.2)
    drained = time.perf_counter() - started
    failed = [r for r in rows if r[0] != "done"]
    if failed:
        raise RuntimeError(f"{len(failed)} jobs did not finish done; logs under {platform.net.folder}")
    return {
        "drain": drained,
        "run": [(r[3] - r[2]).total_seconds() for r in rows],
        "latency": [(r[3] - r[1]).total_seconds() for r in rows],
    }


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def main(argv: list[str] | None = None) -> str | None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=20)
    p.add_argument("--size", type=int, default=256, help="input side of each job's PNG")
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2, help="rounds of each condition, alternating")
    args = p.parse_args(argv)
    reason = hosts.unavailable()
    if reason:
        print(f"bench.lossy_links skipped: {reason}", file=sys.stderr)
        return None
    image = png_bytes(args.size, seed=3)
    results: dict[str, list[dict]] = {"clean": [], "lossy": []}
    with tempfile.TemporaryDirectory(prefix="bench-lossy-") as folder:
        platform = hosts.Cluster(
            Path(folder),
            ROOT / "models",
            UPSCALE_THREADS="1",
            UPLOADS_PER_MINUTE="10000",
            MAX_QUEUED_JOBS_PER_USER="1000",
        )
        try:
            user = hosts.Client(platform.url, "bench")
            for _ in range(2):  # warm-up: each worker compiles the model for this size
                run_round(platform, user, image, len(platform.workers), args.scale)
            dropped = 0
            with training_paused():
                for _ in range(args.rounds):
                    for condition in ("clean", "lossy"):
                        for host in platform.workers:
                            dropped += host.lost()
                            host.restore()
                            if condition == "lossy":
                                host.lose(LOSS_PERCENT)
                        results[condition].append(run_round(platform, user, image, args.jobs, args.scale))
                        print(condition, fmt(results[condition][-1]["drain"], 2), "s", flush=True)
            dropped += sum(host.lost() for host in platform.workers)
        finally:
            platform.close()
    rows = []
    for condition, rounds in results.items():
        drains = [r["drain"] / args.jobs for r in rounds]
        runs = [x for r in rounds for x in r["run"]]
        latency = [x for r in rounds for x in r["latency"]]
        rows.append(
            [
                f"{'1% loss each way on both worker links' if condition == 'lossy' else 'clean links'}",
                fmt(statistics.mean(drains), 3),
                fmt(statistics.mean(runs), 3),
                fmt(statistics.median(latency), 2),
                fmt(p95(latency), 2),
                f"{len(runs)}/{len(runs)}",
            ]
        )
    clean, lossy = (statistics.mean(r["drain"] for r in results[c]) for c in ("clean", "lossy"))
    headers = [
        "links",
        "wall s per job (drain / jobs)",
        "mean job run (s)",
        "submit -> done p50 (s)",
        "p95 (s)",
        "jobs done",
    ]
    notes = [
        f"{args.jobs} jobs of {args.size}x{args.size} PNG at x{args.scale} per round, submitted at once through the "
        f"web host; {args.rounds} rounds of each condition, alternating; 2 worker hosts (Celery, concurrency 1, "
        "1 OpenVINO thread each), web, Redis, PostgreSQL and moto's S3 on their own hosts, all on one machine.",
        f"Loss: nftables `numgen random mod 100 < {LOSS_PERCENT} drop` in the input and output hooks of each worker "
        f"host ({dropped} packets dropped in the lossy rounds). Lossy / clean wall time per job: "
        f"**{lossy / clean:.2f}x**.",
        "Why it costs that much: a job is a chain of short request/response exchanges (claim, progress writes, "
        "S3 reads and uploads), and a lost packet in one is recovered only by a retransmission timeout (at least "
        "200 ms on Linux), not by fast retransmit, which needs later packets of the same stream.",
        "Run as root: `sudo .venv/bin/python -m bench.lossy_links`.",
    ]
    return publish(
        "lossy-links",
        "Lossy links: time per job with 1% packet loss on every worker link",
        markdown_table(headers, rows),
        notes,
    )


if __name__ == "__main__":
    main()
