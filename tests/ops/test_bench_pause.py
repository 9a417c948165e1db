"""The benchmarks find the background training to pause it (pgrep must not read its pattern as options)."""

import subprocess
import sys

from bench.common import training_pids


def test_the_benchmarks_find_the_training_process():
    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "-m", "training.train"])
    try:
        assert stand_in.pid in training_pids()
    finally:
        stand_in.kill()
        stand_in.wait()
