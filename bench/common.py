"""What every benchmark shares: its block in docs/benchmarks.md, the training pause, timing and tables."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from training.blocks import DOCS, write_block
from upscale_worker.cli import config_from_env
from upscale_worker.engine import config as engine_config

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
BENCHMARKS = DOCS / "benchmarks.md"  # every benchmark's table lives in a block of this page
BENCHMARK_SETS = ROOT.parent / "shared" / "datasets" / "benchmark"
PYTHON = sys.executable
# Longest time a benchmark keeps the background training stopped in one go (a watchdog resumes it then).
MAX_PAUSE_S = 280
LOADS: list[float] = []  # 1-minute load average sampled as each timed window opens and closes


def publish(name: str, title: str, table: str, notes: list[str]) -> str:
    """Print the table with its caption (load average included) and write it to its block in docs/benchmarks.md."""
    caption = (
        f"**{title}** ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {machine()}, {load_average()})"
    )
    text = "\n".join(
        [caption, "", table, ""]
        + [f"- {n}" for n in notes]
        + ["", f"`python -m bench.{name.replace('-', '_')}` rewrites this block."]
    )
    print("\n" + text + "\n", flush=True)
    write_block(name, text, BENCHMARKS)
    return text


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    during = f"1-min load {min(LOADS):.1f} to {max(LOADS):.1f} while timing, " if LOADS else ""
    return f"{during}load average {one:.2f} / {five:.2f} / {fifteen:.2f} at the end"


def machine() -> str:
    model = "CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores"


def markdown_table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(c) for c in r] for r in rows]
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join(lines)


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:,.{digits}f}"


# --- the background training ---------------------------------------------------------------------------


def training_pids() -> list[int]:
    found = subprocess.run(
        ["pgrep", "-f", "--", r"-m training\.train"], capture_output=True, text=True
    ).stdout
    return [int(p) for p in found.split() if int(p) != os.getpid()]


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


@contextlib.contextmanager
def training_paused(max_seconds: float = MAX_PAUSE_S) -> Iterator[None]:
    """SIGSTOP the background training while measuring; SIGCONT it afterwards, whatever happens.

    A detached watchdog sends SIGCONT after ``max_seconds`` even if this process is killed meanwhile,
    so the training is never left stopped. Keep each window short: pause around each measurement.
    """
    LOADS.append(os.getloadavg()[0])
    pids = [] if os.environ.get("BENCH_NO_PAUSE") else training_pids()
    if not pids:
        try:
            yield
        finally:
            LOADS.append(os.getloadavg()[0])
        return
    ids = " ".join(map(str, pids))
    watchdog = subprocess.Popen(
        ["sh", "-c", f"sleep {int(max_seconds)}; kill -CONT {ids} 2>/dev/null"],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _signal_all(pids, signal.SIGSTOP)
        yield
    finally:
        LOADS.append(os.getloadavg()[0])
        _signal_all(pids, signal.SIGCONT)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(watchdog.pid, signal.SIGTERM)
        watchdog.wait()


# --- timing ----------------------------------------------------------------------------------------------


def time_call(
    fn: Callable[[], object], min_seconds: float = 2.0, max_runs: int = 5, warmup: int = 1, slow: float = 2.0
) -> float:
    """Best (minimum) seconds of ``fn`` after ``warmup`` calls; repeats until ``min_seconds`` or ``max_runs``.

    The minimum, not the median: on a shared machine other processes only ever add time.

    A warm-up call slower than ``slow`` seconds counts as the first sample (one-off set-up costs are small
    next to it), so multi-second runs are not paid twice. Compile models before calling this.
    """
    times: list[float] = []
    spent = 0.0
    for _ in range(warmup):
        t = time.perf_counter()
        fn()
        took = time.perf_counter() - t
        if took > slow:
            times, spent = [took], took
            break
    while len(times) < max_runs and (not times or spent < min_seconds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        spent += times[-1]
    return min(times)


def prioritise() -> None:
    """Run at nice BENCH_NICE (default -5) so that other processes on a shared machine disturb less.

    Called when the package is imported, before any library starts its threads (they inherit it).
    """
    with contextlib.suppress(OSError, ValueError):
        os.setpriority(os.PRIO_PROCESS, 0, int(os.environ.get("BENCH_NICE", "-5")))


def threads() -> int:
    """The engine's inference threads, as configured from UPSCALE_THREADS (see configure_engine)."""
    return engine_config.current().threads or len(os.sched_getaffinity(0))


def configure_engine() -> None:
    """The benchmarks configure the engine as the CLI does, from UPSCALE_* (their child processes too)."""
    engine_config.configure(config_from_env(os.environ))
