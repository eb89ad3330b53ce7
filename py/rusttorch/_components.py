"""The release: rusttorch's version and the table of component wheels it bundles.

This file is the single place to edit when bumping the release or adding a crate. It is also read
by ``py/hatch_build.py`` at build time (to write the ``==`` pins into the wheel's metadata), so it
must stay importable with nothing but the standard library.
"""

from typing import NamedTuple

#: The release version; equals ``[workspace.package] version`` in the root Cargo.toml
#: (tests/meta/test_meta_versions.py checks it).
VERSION = "0.1.0"


class Component(NamedTuple):
    """One crate's Python face: ``rusttorch.<name>`` is the ``rusttorch_<name>`` module."""

    name: str
    #: Whether the wheel exists yet. Released components are hard dependencies of the
    #: meta-package; planned ones are picked up when installed but never required.
    released: bool

    @property
    def module(self) -> str:
        """Import name of the component, e.g. ``rusttorch_view``."""
        return f"rusttorch_{self.name}"

    @property
    def wheel(self) -> str:
        """Distribution name on PyPI, e.g. ``rusttorch-view``."""
        return f"rusttorch-{self.name}"


# Adding a crate is one line here (and one in noxfile.py's CRATES).
COMPONENTS: tuple[Component, ...] = (
    Component("view", released=True),
    Component("simd", released=True),
    Component("sparse", released=True),
    Component("fused", released=False),
    Component("data", released=True),
    Component("queue", released=True),
)
