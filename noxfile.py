"""Build, test, lint and run rusttorch. `nox -l` lists every session; README.md has the basics."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import nox

nox.needs_version = ">=2024.10.9"
# uv links the large torch wheel from its cache into every environment instead of
# downloading or copying it again.
nox.options.default_venv_backend = "uv"
# What a bare `nox` (and .ci/run) runs.
nox.options.sessions = ["tests", "isolated", "rust", "asan", "lint"]

ROOT = Path(__file__).resolve().parent
DIST = ROOT / "dist"


@dataclass(frozen=True)
class Crate:
    """A workspace crate and the Python wheel maturin builds from it."""

    directory: str  # holds Cargo.toml and the maturin pyproject.toml
    wheel: str  # distribution name
    module: str  # import name
    tests: str  # pytest directory that must pass with only this wheel installed

    @property
    def name(self) -> str:
        return Path(self.directory).name


# Adding a crate is one line here (and one in py/rusttorch/_components.py).
CRATES: tuple[Crate, ...] = (
    Crate("crates/rt-view", "rusttorch-view", "rusttorch_view", "tests/view"),
    Crate("crates/rt-queue", "rusttorch-queue", "rusttorch_queue", "tests/queue"),
    Crate("crates/rt-simd", "rusttorch-simd", "rusttorch_simd", "tests/simd"),
    Crate("crates/rt-sparse", "rusttorch-sparse", "rusttorch_sparse", "tests/sparse"),
    Crate("crates/rt-data", "rusttorch-data", "rusttorch_data", "tests/data"),
)

TORCH = "torch"
# The test suites compare against these as references; only the `tests` session runs SciPy.
ISOLATED_TEST_DEPS = ("numpy", "pyarrow", "pandas", "pytest", "hypothesis")
TEST_DEPS = (*ISOLATED_TEST_DEPS, "scipy")
MATURIN = "maturin>=1.9,<2"


@nox.session
def build(session: nox.Session) -> None:
    """Build every component wheel and the meta-package wheel into dist/."""
    for path in _build_wheels(session).values():
        session.log(f"built {path.relative_to(ROOT)}")


@nox.session
def tests(session: nox.Session) -> None:
    """Install all wheels and the meta-package together and run pytest over tests/."""
    wheels = _build_wheels(session)
    session.install(TORCH, *TEST_DEPS)
    _install_wheels(session, wheels.values())
    session.run("pytest", "tests", *session.posargs)


@nox.session
@nox.parametrize("crate", [crate.name for crate in CRATES], ids=[c.name for c in CRATES])
def isolated(session: nox.Session, crate: str) -> None:
    """Install one wheel alone with torch, run its tests, and check rusttorch is absent."""
    (spec,) = (c for c in CRATES if c.name == crate)
    wheels = _build_wheels(session)
    session.install(TORCH, *ISOLATED_TEST_DEPS)
    _install_wheels(session, [wheels[spec.wheel]])
    session.run("pytest", spec.tests, *session.posargs)
    # Proof that `pip install <wheel>` stands alone: its tests passed above, and neither the
    # meta-package nor another component came with it.
    for absent in ["rusttorch", *(c.module for c in CRATES if c != spec)]:
        out = session.run("python", "-c", f"import {absent}", success_codes=[1], silent=True)
        if f"No module named '{absent}'" not in str(out):
            session.error(f"`import {absent}` should fail with ModuleNotFoundError:\n{out}")
        session.log(f"ok: `import {absent}` fails next to {spec.wheel} alone")


@nox.session(venv_backend="none")
def rust(session: nox.Session) -> None:
    """cargo fmt, clippy (with and without Python features), test, loom, and the rust-consumer."""
    consumer = ["--manifest-path", "examples/rust-consumer/Cargo.toml"]
    cargo = functools.partial(session.run, "cargo", external=True)
    cargo("fmt", "--all", "--check")
    cargo("fmt", *consumer, "--check")
    cargo("clippy", "--workspace", "--all-targets", "--", "-D", "warnings")
    # Type-checks the PyO3 layers as well (check only: nothing is linked against libpython).
    cargo("clippy", "--workspace", "--all-targets", "--all-features", "--", "-D", "warnings")
    # No Python features: the crates must build and pass without an interpreter.
    cargo("test", "--workspace")
    # Model-check rt-queue's locking over every interleaving (crates/rt-queue/src/sync.rs),
    # in its own target dir so that the `--cfg loom` build does not evict the normal one.
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "loom"
    loom = ["-p", "rt-queue", "--release", "--lib", "--target-dir", str(target), "loom"]
    cargo("test", *loom, env={"RUSTFLAGS": "--cfg loom"})
    cargo("clippy", *consumer, "--all-targets", "--", "-D", "warnings")
    cargo("run", *consumer)


@nox.session(venv_backend="none")
def asan(session: nox.Session) -> None:
    """Rust unit tests under AddressSanitizer, for the unsafe code in rt-view."""
    host = next(
        line.split(":", 1)[1].strip()
        for line in str(session.run("rustc", "-vV", silent=True, external=True)).splitlines()
        if line.startswith("host:")
    )
    env = {
        # Sanitizers are unstable flags; RUSTC_BOOTSTRAP lets the stable toolchain take them.
        "RUSTC_BOOTSTRAP": "1",
        "RUSTFLAGS": "-Zsanitizer=address",
        "LSAN_OPTIONS": f"suppressions={ROOT / '.ci' / 'lsan.supp'}",
    }
    # An explicit --target keeps build scripts and proc-macros uninstrumented, and keeps
    # these artifacts apart from the normal ones in the same target dir.
    session.run("cargo", "test", "--workspace", "--lib", "--target", host, env=env, external=True)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and format --check; stubtest on every wheel's stubs; mypy on the meta-package."""
    session.install("ruff", "mypy")
    paths = [
        "noxfile.py",
        "py",
        "tests",
        "benchmarks",
        "examples",
        *sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("crates/*/python")),
    ]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)

    wheels = _build_wheels(session)
    session.install(TORCH, "numpy", "pytest")
    _install_wheels(session, wheels.values())
    # The stubs (`_native.pyi`) are the Python docs of each wheel; stubtest holds them to
    # what the compiled module really exports.
    allowlist = ".ci/stubtest-allowlist.txt"  # one reason per entry
    session.run(
        "python", "-m", "mypy.stubtest", "--allowlist", allowlist, *(c.module for c in CRATES)
    )
    # The meta-package is typed inline; check it (and its tests) against those stubs.
    session.run("mypy", "--strict", "py/rusttorch", "tests/meta")


@nox.session
def demo(session: nox.Session) -> None:
    """Build and install everything; run zero_copy_demo.py, then tabular_training.py (examples/)."""
    wheels = _build_wheels(session)
    session.install(TORCH, "numpy", "pyarrow", "pandas")
    _install_wheels(session, wheels.values())
    session.run("python", "examples/zero_copy_demo.py", *session.posargs)
    session.run("python", "examples/tabular_training.py")


@nox.session
def bench(session: nox.Session) -> None:
    """Run every benchmarks/*.py, passing on args after `--`; results in benchmarks/results/."""
    wheels = _build_wheels(session)
    # The baselines the benchmarks compare against (SciPy for sparse; pandas/polars for data).
    session.install(TORCH, "numpy", "pyarrow", "scipy", "pandas", "polars")
    _install_wheels(session, wheels.values())
    scripts = sorted(p for p in (ROOT / "benchmarks").glob("*.py") if not p.name.startswith("_"))
    if not scripts:
        session.skip("no benchmarks/*.py yet")
    for script in scripts:
        session.run("python", str(script.relative_to(ROOT)), *session.posargs)


# The wheels built earlier in this nox run and the interpreter they were built for, so that
# `nox -s tests isolated lint` builds once.
_built: tuple[str, dict[str, Path]] | None = None


def _build_wheels(session: nox.Session) -> dict[str, Path]:
    """Build every component wheel and the meta-package wheel; returns {wheel name: path}.

    maturin builds against the base interpreter behind the session's virtualenv rather than
    the virtualenv's own python: PyO3's build script reruns whenever the interpreter path
    changes, which would recompile PyO3 and every crate for each session. The wheel tags only
    depend on the Python version, which the two share.
    """
    global _built
    python = _base_interpreter(session)
    if _built is not None and _built[0] == python:
        return _built[1]

    session.install(MATURIN)
    DIST.mkdir(exist_ok=True)
    # Every build has the same version string; a stale wheel must never be installed.
    for stale in DIST.glob("rusttorch*.whl"):
        stale.unlink()
    for crate in CRATES:
        session.run(
            "maturin",
            "build",
            "--release",
            "--manifest-path",
            f"{crate.directory}/Cargo.toml",
            "--interpreter",
            python,
            "--out",
            str(DIST),
        )
    # The meta-package is pure Python; uv builds it in an isolated environment with hatchling.
    session.run("uv", "build", "--wheel", "--out-dir", str(DIST), "py", external=True)

    wheels = {crate.wheel: _one_wheel(crate.wheel) for crate in CRATES}
    wheels["rusttorch"] = _one_wheel("rusttorch")
    _built = (python, wheels)
    return wheels


def _base_interpreter(session: nox.Session) -> str:
    """Path of the interpreter the session's virtualenv was created from."""
    out = session.run("python", "-c", "import sys; print(sys._base_executable)", silent=True)
    return str(out).strip()


def _one_wheel(distribution: str) -> Path:
    """The single wheel of ``distribution`` in dist/ (wheel file names use underscores)."""
    found = sorted(DIST.glob(f"{distribution.replace('-', '_')}-*.whl"))
    if len(found) != 1:
        raise RuntimeError(f"expected one {distribution} wheel in dist/, found {found}")
    return found[0]


def _install_wheels(session: nox.Session, wheels: Iterable[Path]) -> None:
    """Install local wheel files, replacing any same-version copy from an earlier build."""
    paths = list(wheels)
    # Wheel file names start with the distribution name, "-" spelled "_".
    names = [path.name.split("-")[0].replace("_", "-") for path in paths]
    reinstall = [arg for name in names for arg in ("--reinstall-package", name)]
    session.install(*reinstall, *map(str, paths))


if __name__ == "__main__":
    sys.exit("run this file with nox: `nox -l` lists the sessions")
