"""``python -m rusttorch``: command-line entry point (``info`` prints the configuration)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m rusttorch",
        description="rusttorch: fast, memory-safe CPU kernels for PyTorch, written in Rust.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info = commands.add_parser(
        "info", help="print components and versions, threads, CPU features and environment"
    )
    info.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)

    # Imported here so that `--help` works even when the components are broken.
    import rusttorch

    if args.command == "info":
        if args.json:
            print(json.dumps(rusttorch.get_config(), indent=2))
        else:
            rusttorch.show_config()
    return 0


if __name__ == "__main__":
    sys.exit(main())
