"""rusttorch.release_cached_outputs empties the output cache of every installed component
that keeps one, and skips those that do not."""

from __future__ import annotations

from types import ModuleType

import pytest

import rusttorch
from rusttorch._components import Component


class CachingComponent(ModuleType):
    """Stands in for a component wheel that keeps `held` bytes of dropped outputs."""

    def __init__(self, name: str, held: int) -> None:
        super().__init__(name)
        self.held = held

    def release_cached_outputs(self) -> int:
        released, self.held = self.held, 0
        return released


def test_release_reaches_every_caching_component(monkeypatch: pytest.MonkeyPatch) -> None:
    rusttorch.release_cached_outputs()  # whatever the real components hold
    first = CachingComponent("rusttorch_first", 5 << 20)
    second = CachingComponent("rusttorch_second", 7 << 20)
    plain = ModuleType("rusttorch_plain")  # a component without a cache
    for name, module in [("first", first), ("second", second), ("plain", plain)]:
        monkeypatch.setitem(rusttorch._installed, Component(name, released=False), module)
    assert rusttorch.release_cached_outputs() == 12 << 20
    assert first.held == second.held == 0
    assert rusttorch.release_cached_outputs() == 0
