"""Find the installed component wheels and refuse to run when their versions disagree.

A component compiled for another release may expect different Rust-side invariants, so a
mismatch is an ImportError rather than a warning (DESIGN.md: "says clearly, on import, when they
disagree").
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable, Mapping
from types import ModuleType

from rusttorch._components import COMPONENTS, Component


def load_installed(
    expected: str, components: Iterable[Component] = COMPONENTS
) -> dict[Component, ModuleType]:
    """Import every installed component; a released one that is missing is an ImportError."""
    installed: dict[Component, ModuleType] = {}
    for component in components:
        if importlib.util.find_spec(component.module) is None:
            if component.released:
                raise ImportError(
                    f"rusttorch {expected} needs {component.wheel}, which is not installed.\n"
                    f"Fix with: python -m pip install '{component.wheel}=={expected}'"
                )
            continue
        installed[component] = importlib.import_module(component.module)
    return installed


def check_versions(expected: str, installed: Mapping[Component, ModuleType]) -> None:
    """Raise ImportError naming every component whose ``__version__`` is not ``expected``."""
    mismatched = [
        (component, getattr(module, "__version__", "unknown"))
        for component, module in installed.items()
        if getattr(module, "__version__", None) != expected
    ]
    if not mismatched:
        return
    lines = [f"rusttorch {expected} found components of a different version:"]
    lines += [
        f"  {component.wheel} is {found} (import {component.module}), rusttorch is {expected}"
        for component, found in mismatched
    ]
    pins = " ".join(f"'{component.wheel}=={expected}'" for component, _ in mismatched)
    lines.append(f"Fix with: python -m pip install {pins}")
    raise ImportError("\n".join(lines))
