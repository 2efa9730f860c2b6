"""The ``distillwatch`` command: one subcommand per job, each registered by its own module.

A module joins the CLI by exposing ``register(sub)``, which adds its
subparser and sets ``func=run`` where ``run(args, settings) -> int``.
User mistakes (``DistillWatchError``) print one line and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pipeline.compiled import check_fresh
from pipeline.errors import DistillWatchError
from pipeline.settings import load_settings

# (module that registers the subcommand) in --help order.
COMMAND_MODULES = (
    "pipeline.worker",
    "pipeline.sink",
    "pipeline.simulate",
    "pipeline.evaluate",
    "pipeline.query",
    "pipeline.feedback",
    "pipeline.report",
    "pipeline.replay",
    "pipeline.demo",
    "pipeline.topics",
    "pipeline.bench",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (imports each command module, none of which has import side effects)."""
    parser = argparse.ArgumentParser(
        prog="distillwatch",
        description="Catch model-distillation abuse of an LLM API as it happens. "
        "Configuration comes from DW_* environment variables (see README).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``distillwatch`` console script."""
    args = build_parser().parse_args(argv)
    try:
        check_fresh()  # an editable checkout edited after its build would run the old compiled core
        settings = load_settings()
        return int(args.func(args, settings) or 0)
    except DistillWatchError as exc:
        print(f"distillwatch {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
