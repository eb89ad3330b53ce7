"""One release version everywhere: Cargo workspace, meta-package, its pins, installed components."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import pytest

import rusttorch
from rusttorch._components import COMPONENTS

ROOT = Path(__file__).resolve().parents[2]


def workspace_version() -> str:
    with (ROOT / "Cargo.toml").open("rb") as f:
        version: str = tomllib.load(f)["workspace"]["package"]["version"]
    return version


def test_meta_package_version_is_the_workspace_version() -> None:
    assert rusttorch.__version__ == workspace_version()


def test_installed_meta_package_pins_every_released_component_exactly() -> None:
    version = workspace_version()
    assert importlib.metadata.version("rusttorch") == version
    pins = set(importlib.metadata.requires("rusttorch") or [])
    assert pins == {f"{c.wheel}=={version}" for c in COMPONENTS if c.released}


def test_every_installed_component_is_the_workspace_version() -> None:
    version = workspace_version()
    for component, module in rusttorch._installed.items():
        assert module.__version__ == version, component.wheel
        assert importlib.metadata.version(component.wheel) == version, component.wheel


@pytest.mark.parametrize(
    "manifest", sorted(ROOT.glob("crates/*/Cargo.toml")), ids=lambda p: p.parent.name
)
def test_every_crate_takes_the_workspace_version(manifest: Path) -> None:
    with manifest.open("rb") as f:
        declared = tomllib.load(f)["package"]["version"]
    assert declared in ({"workspace": True}, workspace_version())


def test_every_crate_is_a_registered_component() -> None:
    # A crate directory crates/rt-<name> ships the wheel rusttorch-<name>.
    crates = {p.parent.name.removeprefix("rt-") for p in ROOT.glob("crates/*/Cargo.toml")}
    assert crates <= {c.name for c in COMPONENTS}
    released = {c.name for c in COMPONENTS if c.released}
    assert released <= crates, "a released component has no crate directory"
