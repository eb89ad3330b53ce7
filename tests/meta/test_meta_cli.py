"""``python -m rusttorch``: the command-line face of show_config()."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import rusttorch


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rusttorch", *args],
        capture_output=True,
        text=True,
        cwd=cwd,  # away from the repository, so only the installed package can be found
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_info_prints_show_config(tmp_path: Path) -> None:
    result = run_cli("info", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"rusttorch {rusttorch.__version__}\n")
    for label in ("components:", "rusttorch-view", "threads:", "cpu features:", "torch:"):
        assert label in result.stdout


def test_info_json_is_get_config(tmp_path: Path) -> None:
    result = run_cli("info", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout).keys() == rusttorch.get_config().keys()


def test_info_reports_the_thread_count_from_the_environment(tmp_path: Path) -> None:
    result = run_cli("info", cwd=tmp_path, env={"RUSTTORCH_NUM_THREADS": "3"})
    assert result.returncode == 0, result.stderr
    assert "threads: 3 (RUSTTORCH_NUM_THREADS=3)" in result.stdout


def test_no_command_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(cwd=tmp_path)
    assert result.returncode == 2
    assert "usage: python -m rusttorch" in result.stderr
