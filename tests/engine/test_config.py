"""One door for configuration: the engine reads no environment variable; its callers build the configuration
(the CLI from flags, then the environment; the workers from settings, see tests/platform/test_settings.py)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from upscale_worker import cli
from upscale_worker.engine import EngineError
from upscale_worker.engine.config import DEFAULT_TILES, EngineConfig

ENGINE = Path(cli.__file__).parent / "engine"


def test_no_engine_module_reads_the_environment():
    readers = [p.name for p in ENGINE.glob("*.py") if re.search(r"os\.environ|getenv", p.read_text())]
    assert readers == []


def test_a_process_that_configures_nothing_gets_the_defaults_whatever_its_environment():
    code = "from upscale_worker.engine import config; print(config.current() == config.EngineConfig())"
    env = {"PATH": "/usr/bin:/bin", "UPSCALE_PRECISION": "bf16", "UPSCALE_TILE": "40", "UPSCALE_THREADS": "7"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ENGINE.parents[1], capture_output=True, text=True
    )
    assert out.stdout.strip() == "True", out.stderr


def test_the_cli_builds_it_from_the_environment_and_its_flags_come_first(tmp_path):
    environ = {
        "UPSCALE_MODELS_DIR": "/models/from/env",
        "UPSCALE_CACHE_DIR": str(tmp_path),
        "UPSCALE_PRECISION": "int8",
        "UPSCALE_THREADS": "3",
        "UPSCALE_TILE": "280, 96",
        "UPSCALE_WINDOW_AREA": "0",
        "UPSCALE_WINDOW_COSTS": str(tmp_path / "costs.json"),
    }
    assert cli.config_from_env(environ) == EngineConfig(
        models_dir=Path("/models/from/env"),
        cache_dir=tmp_path,
        precision="int8",
        threads=3,
        tiles=(96, 280),
        window_area=0,
        window_costs=tmp_path / "costs.json",
    )
    flagged = cli.config_from_env(environ, models_dir=Path("/flag"), threads=1)
    assert (flagged.models_dir, flagged.threads) == (Path("/flag"), 1)
    assert cli.config_from_env({}) == EngineConfig() and EngineConfig().tiles == DEFAULT_TILES
    base = EngineConfig(models_dir=tmp_path, precision="f32", threads=2, tiles=(64,))
    assert cli.config_from_env({}, base=base) == base  # the CLI's main builds on the process' configuration
    assert cli.config_from_env({"UPSCALE_THREADS": "5"}, base=base).threads == 5


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("UPSCALE_THREADS", "two", "UPSCALE_THREADS='two' is not a int number"),
        ("UPSCALE_TILE", "128,big", "UPSCALE_TILE='big' is not a int number"),
        ("UPSCALE_PRECISION", "fp16", "Unknown precision 'fp16'"),
        ("UPSCALE_WINDOW_AREA", "-1", "The window area must be 0 or more"),
        ("UPSCALE_THREADS", "0", None),  # 0 reads as unset: every core
    ],
)
def test_the_cli_refuses_a_value_it_cannot_use_naming_it(name, value, message):
    if message is None:
        assert cli.config_from_env({name: value}).threads is None
        return
    with pytest.raises(EngineError, match=re.escape(message)):
        cli.config_from_env({name: value})


def test_the_cli_says_so_in_one_line(tmp_path, capsys):
    assert cli.main(["upscale", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--threads", "0"]) == 1
    assert capsys.readouterr().err.strip() == "error: Threads must be at least 1, not 0."
