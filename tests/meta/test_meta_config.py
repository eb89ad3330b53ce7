"""show_config() / get_config(): what rusttorch reports about itself."""

from __future__ import annotations

import platform

import pytest
import torch

import rusttorch
import rusttorch_view


def test_get_config_reports_components_threads_and_environment() -> None:
    config = rusttorch.get_config()
    assert config["rusttorch"] == rusttorch.__version__
    view = next(row for row in config["components"] if row["name"] == "view")
    assert view == {
        "name": "view",
        "module": "rusttorch_view",
        "wheel": "rusttorch-view",
        "version": rusttorch.__version__,
        "num_threads": rusttorch_view.get_num_threads(),
    }
    assert config["num_threads"] == rusttorch.get_num_threads() >= 1
    assert config["cpu_features"] == rusttorch_view.cpu_features()
    assert all(isinstance(feature, str) for feature in config["cpu_features"])
    assert config["torch"] == torch.__version__
    assert config["python"].startswith(platform.python_version())
    assert config["platform"] == platform.platform()


def test_show_config_prints_and_returns_the_report(capsys: pytest.CaptureFixture[str]) -> None:
    text = rusttorch.show_config()
    assert capsys.readouterr().out == text + "\n"
    lines = text.splitlines()
    assert lines[0] == f"rusttorch {rusttorch.__version__}"
    view_row = next(line for line in lines if "rusttorch-view" in line)
    assert rusttorch.__version__ in view_row
    assert f"threads: {rusttorch.get_num_threads()}" in view_row
    assert f"threads: {rusttorch.get_num_threads()} (RUSTTORCH_NUM_THREADS" in text
    assert f"cpu features: {' '.join(rusttorch_view.cpu_features())}" in text
    assert f"torch: {torch.__version__}" in lines
    assert f"python: {platform.python_version()}" in text
    assert f"platform: {platform.platform()}" in lines


def test_show_config_lists_components_that_are_not_installed() -> None:
    config = rusttorch.get_config()
    absent = [row for row in config["components"] if row["version"] is None]
    if not absent:
        pytest.skip("every component is installed")
    text = rusttorch._config.render(config)
    for row in absent:
        assert f"{row['wheel']:<18} not installed" in text
