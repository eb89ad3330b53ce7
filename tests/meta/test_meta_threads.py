"""rusttorch.set_num_threads sizes every installed component's pool at once."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

import rusttorch
from rusttorch._components import Component


@pytest.fixture(autouse=True)
def restore_thread_count() -> Iterator[None]:
    before = {module: module.get_num_threads() for module in rusttorch._installed.values()}
    yield
    for module, n in before.items():
        module.set_num_threads(n)


class RecordingComponent(ModuleType):
    """Stands in for a second component wheel with its own pool."""

    def __init__(self) -> None:
        super().__init__("rusttorch_recording")
        self.calls: list[int] = []

    def set_num_threads(self, n: int) -> None:
        self.calls.append(n)


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> RecordingComponent:
    component = RecordingComponent()
    monkeypatch.setitem(rusttorch._installed, Component("recording", released=False), component)
    return component


def test_set_num_threads_reaches_every_real_component() -> None:
    rusttorch.set_num_threads(2)
    assert rusttorch.get_num_threads() == 2
    for component, module in rusttorch._installed.items():
        assert module.get_num_threads() == 2, component.wheel


def test_set_num_threads_forwards_to_every_component(recording: RecordingComponent) -> None:
    rusttorch.set_num_threads(3)
    assert recording.calls == [3]
    assert rusttorch.view.get_num_threads() == 3


@pytest.mark.parametrize(
    ("bad", "error"),
    [(0, ValueError), (-1, ValueError), (1025, ValueError), (2.0, TypeError), (True, TypeError)],
)
def test_a_bad_thread_count_changes_no_pool(
    recording: RecordingComponent, bad: object, error: type[Exception]
) -> None:
    before = rusttorch.get_num_threads()
    with pytest.raises(error):
        rusttorch.set_num_threads(bad)  # type: ignore[arg-type]
    assert recording.calls == []
    assert rusttorch.get_num_threads() == before
