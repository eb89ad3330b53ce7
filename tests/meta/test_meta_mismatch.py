"""Importing rusttorch with components of another version fails, naming each and the fix."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

import pytest

import rusttorch
import rusttorch_view
from rusttorch._components import Component
from rusttorch._versions import check_versions, load_installed

VIEW = Component("view", released=True)
SPARSE = Component("sparse", released=False)


def fake_module(version: str | None) -> ModuleType:
    module = ModuleType("fake")
    if version is not None:
        module.__version__ = version  # type: ignore[attr-defined]
    return module


def test_matching_versions_pass() -> None:
    check_versions("0.1.0", {VIEW: fake_module("0.1.0"), SPARSE: fake_module("0.1.0")})


def test_mismatch_names_the_component_both_versions_and_the_pip_command() -> None:
    with pytest.raises(ImportError) as excinfo:
        check_versions("0.1.0", {VIEW: fake_module("0.2.0"), SPARSE: fake_module("0.1.0")})
    message = str(excinfo.value)
    assert "rusttorch-view is 0.2.0 (import rusttorch_view), rusttorch is 0.1.0" in message
    assert "python -m pip install 'rusttorch-view==0.1.0'" in message
    assert "rusttorch-sparse" not in message  # only the culprits are named


def test_every_mismatched_component_is_named_in_one_error() -> None:
    with pytest.raises(ImportError) as excinfo:
        check_versions("0.1.0", {VIEW: fake_module("0.0.9"), SPARSE: fake_module(None)})
    message = str(excinfo.value)
    assert "rusttorch-view is 0.0.9" in message
    assert "rusttorch-sparse is unknown" in message
    assert "pip install 'rusttorch-view==0.1.0' 'rusttorch-sparse==0.1.0'" in message


def test_import_rusttorch_fails_when_an_installed_component_disagrees(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rusttorch_view, "__version__", "9.9.9")
    # A fresh import of the package (its submodules stay cached); monkeypatch puts the
    # original module back afterwards, so other tests keep a working rusttorch.
    monkeypatch.delitem(sys.modules, "rusttorch")
    with pytest.raises(ImportError, match=r"rusttorch-view is 9\.9\.9"):
        importlib.import_module("rusttorch")


def test_a_missing_released_component_is_an_import_error_with_the_fix() -> None:
    missing = Component("doesnotexist", released=True)
    with pytest.raises(ImportError, match=r"pip install 'rusttorch-doesnotexist==0\.1\.0'"):
        load_installed("0.1.0", [missing])


def test_a_missing_planned_component_is_skipped() -> None:
    assert load_installed("0.1.0", [Component("doesnotexist", released=False)]) == {}


def test_installed_components_are_attributes() -> None:
    assert rusttorch.view is rusttorch_view
    for component, module in rusttorch._installed.items():
        assert getattr(rusttorch, component.name) is module


def test_a_component_that_is_not_installed_says_which_wheel_it_needs() -> None:
    absent = [c for c in rusttorch._components.COMPONENTS if c not in rusttorch._installed]
    if not absent:
        pytest.skip("every component is installed")
    with pytest.raises(AttributeError, match=absent[0].wheel):
        getattr(rusttorch, absent[0].name)


def test_an_unknown_attribute_is_a_plain_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'nonsense'"):
        rusttorch.nonsense  # noqa: B018
