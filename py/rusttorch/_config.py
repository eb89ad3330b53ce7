"""What rusttorch sees at runtime: components, versions, threads, CPU features, environment."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from collections.abc import Mapping
from types import ModuleType
from typing import TypedDict

import torch

from rusttorch._components import COMPONENTS, VERSION, Component

#: Environment variable every component's thread pool reads at start-up.
NUM_THREADS_ENV = "RUSTTORCH_NUM_THREADS"


class ComponentConfig(TypedDict):
    """One row of the component table; ``version`` is None when the wheel is not installed."""

    name: str
    module: str
    wheel: str
    version: str | None
    num_threads: int | None


class Config(TypedDict):
    """Everything :func:`rusttorch.show_config` prints, as data."""

    rusttorch: str
    components: list[ComponentConfig]
    num_threads: int
    num_threads_env: str | None
    cpu_features: list[str]
    torch: str
    numpy: str | None
    python: str
    platform: str


def collect(installed: Mapping[Component, ModuleType]) -> Config:
    """Gather the configuration of this process."""
    view = next(module for component, module in installed.items() if component.name == "view")
    rows: list[ComponentConfig] = []
    for component in COMPONENTS:
        module = installed.get(component)
        rows.append(
            ComponentConfig(
                name=component.name,
                module=component.module,
                wheel=component.wheel,
                version=None if module is None else str(module.__version__),
                num_threads=None if module is None else int(module.get_num_threads()),
            )
        )
    return Config(
        rusttorch=VERSION,
        components=rows,
        num_threads=int(view.get_num_threads()),
        num_threads_env=os.environ.get(NUM_THREADS_ENV),
        cpu_features=[str(feature) for feature in view.cpu_features()],
        torch=str(torch.__version__),
        numpy=_distribution_version("numpy"),
        python=(
            f"{platform.python_version()} ({platform.python_implementation()}, {sys.executable})"
        ),
        platform=platform.platform(),
    )


def render(config: Config) -> str:
    """Format a :class:`Config` as the text ``show_config()`` prints."""
    lines = [f"rusttorch {config['rusttorch']}", "components:"]
    for row in config["components"]:
        where = f"rusttorch.{row['name']}"
        if row["version"] is None:
            lines.append(f"  {where:<18} {row['wheel']:<18} not installed")
        else:
            lines.append(
                f"  {where:<18} {row['wheel']:<18} {row['version']:<10} "
                f"threads: {row['num_threads']}"
            )
    env = config["num_threads_env"]
    env_note = f"{NUM_THREADS_ENV}={env}" if env is not None else f"{NUM_THREADS_ENV} not set"
    lines += [
        f"threads: {config['num_threads']} ({env_note})",
        f"cpu features: {' '.join(config['cpu_features']) or 'none detected'}",
        f"torch: {config['torch']}",
        f"numpy: {config['numpy'] or 'not installed'}",
        f"python: {config['python']}",
        f"platform: {config['platform']}",
    ]
    return "\n".join(lines)


def _distribution_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
