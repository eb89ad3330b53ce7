"""Hatch metadata hook: the version and the component pins come from rusttorch/_components.py.

Keeping them in the same table the package reads at runtime means adding a crate or bumping the
release is one edit, and the installed metadata can never disagree with the import-time check.
"""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

from hatchling.metadata.plugin.interface import MetadataHookInterface


class ComponentPinsHook(MetadataHookInterface):
    """Set `version` and pin every released component wheel to exactly that version."""

    def update(self, metadata: dict[str, Any]) -> None:
        # run_path, not import: the package's __init__ imports the compiled components,
        # which are not installed in the isolated build environment.
        table = runpy.run_path(str(Path(self.root) / "rusttorch" / "_components.py"))
        version: str = table["VERSION"]
        metadata["version"] = version
        metadata["dependencies"] = [
            f"{component.wheel}=={version}"
            for component in table["COMPONENTS"]
            if component.released
        ]
