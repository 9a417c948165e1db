"""Scale-out: 1 and 2 (or more) worker processes draining the same queue of 20 jobs.

    python -m bench.scale_out [--workers 1,2] [--jobs 20] [--size 256] [--scale 4]

Each worker is a Celery worker in its own working directory (own VAR_DIR, temp folder, model cache), like a
separate host, pinned with taskset to its share of the cores and told UPSCALE_THREADS = its share. The web
server and the database are shared. Workers warm up on one job each, then the jobs are submitted as fast as
the API takes them; the clock runs from the first submit to the last job done.
"""

from __future__ import annotations

import argparse
import os
import time

from bench import prepare
from bench.common import fmt, markdown_table, publish, training_paused
from bench.end_to_end import png_bytes
from bench.stack import Stack


def cpu_sets(workers: int, each: int) -> list[tuple[str, int]]:
    """(taskset list, thread count) per worker: ``each`` cores of their own, like that many small hosts."""
    cores = sorted(os.sched_getaffinity(0))
    return [(",".join(map(str, cores[i * each : (i + 1) * each])), each) for i in range(workers)]


def drain(workers: int, each: int, jobs: int, image: bytes, scale: int) -> dict:
    from upscale_worker.engine import runtime

    with Stack(f"scale{workers}", prepare.MODELS, UPSCALE_PRECISION=runtime.precision(scale)) as stack:
        stack.start_web()
        for i, (cpus, threads) in enumerate(cpu_sets(workers, each)):
            stack.start_worker(f"worker-{i + 1}", threads=threads, cpus=cpus)
        stack.use(stack.register())
        warm = [stack.submit(png_bytes(64, seed=i), scale)["id"] for i in range(2 * workers)]
        for job_id in warm:
            stack.wait_done(job_id)
        with training_paused():
            started = time.perf_counter()
            ids = [stack.submit(image, scale)["id"] for _ in range(jobs)]
            submitted = time.perf_counter() - started
            while stack.count("done") < len(warm) + jobs:
                if stack.count("failed"):
                    raise RuntimeError("a job failed; see the worker logs in " + str(stack.folder))
                time.sleep(0.1)
            elapsed = time.perf_counter() - started
        runs = [stack.job(i)["run_seconds"] for i in ids]
    return {"elapsed": elapsed, "submitted": submitted, "run": sum(runs) / len(runs)}


def main(argv: list[str] | None = None) -> str:
    from upscale_worker.engine import runtime

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", default="1,2", help="worker counts to compare")
    p.add_argument("--jobs", type=int, default=20)
    p.add_argument("--size", type=int, default=256, help="input side of each job's PNG")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--no-reference", action="store_true", help="skip the one-worker-on-every-core run")
    args = p.parse_args(argv)
    prepare.prepare()
    image = png_bytes(args.size, seed=5)
    counts = [int(w) for w in args.workers.split(",")]
    cores = len(os.sched_getaffinity(0))
    each = max(1, cores // max(counts))  # one "host" = the cores the largest run can give each worker
    runs = [(n, each) for n in counts] + ([(1, cores)] if each < cores and not args.no_reference else [])
    results = {}
    for n, c in runs:
        results[n, c] = drain(n, c, args.jobs, image, args.scale)
        print(n, c, results[n, c], flush=True)
    single = args.jobs / results[counts[0], each]["elapsed"] * 60 / counts[0]  # jobs/min of one unit host
    rows = []
    for (n, c), r in results.items():
        per_min = args.jobs / r["elapsed"] * 60
        hosts = "; ".join(f"cpu {cpus}" for cpus, _ in cpu_sets(n, c))
        efficiency = (
            f"**{per_min / (single * n) * 100:.0f}%**" if c == each else f"(reference: all {cores} cores)"
        )
        rows.append(
            [
                f"{n} x {c} core{'s' if c > 1 else ''}",
                hosts,
                fmt(r["elapsed"], 1),
                fmt(r["submitted"], 1),
                fmt(r["run"], 2),
                fmt(per_min, 1),
                efficiency,
            ]
        )
    headers = [
        "workers x cores (UPSCALE_THREADS)",
        "taskset",
        "first submit -> last done (s)",
        "submitting took (s)",
        "mean job run (s)",
        "jobs/min",
        "scaling efficiency",
    ]
    notes = [
        f"{args.jobs} jobs of {args.size}x{args.size} PNG at x{args.scale}, {runtime.precision(args.scale)}; each worker a "
        "Celery worker (concurrency 1) in its own working directory, pinned to its cores; shared gunicorn, "
        "Redis (dedicated database number) and temporary PostgreSQL database; training paused while draining.",
        f"Scaling efficiency: jobs/min of N workers / (N x jobs/min of 1 worker), every worker with {each} "
        f"core(s) of its own, as N small hosts would be (web, Redis and PostgreSQL share the same "
        f"{cores} cores). The last row, one worker on all {cores} cores, is the same hardware as the "
        "largest run: it says whether one job per core or one job on all cores drains a queue faster.",
    ]
    return publish("scale-out", "Scale-out: workers draining one queue", markdown_table(headers, rows), notes)


if __name__ == "__main__":
    main()
