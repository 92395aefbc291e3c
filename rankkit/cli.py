"""The ``rankkit`` command line: a thin layer that assembles one module per command group.

Each module in :mod:`rankkit.commands` exposes ``register(app)``. :func:`main` turns user
mistakes (:class:`rankkit.errors.UserError`, missing files, bad option values) into a one-line
``Error: …`` and a non-zero exit; set ``RANKKIT_DEBUG=1`` to see the full traceback.
"""
from __future__ import annotations

import importlib
import os
import sys

import click
import typer
from rich.console import Console

from .errors import UserError

COMMAND_MODULES = ("omega", "impute", "train", "rank", "decode", "demo")

app = typer.Typer(
    name="rankkit",
    help="Rank analysis of reward models for controlled generation: P_Ω(R), softImpute, ARM/RAD, rank curves, guided decoding.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
for _name in COMMAND_MODULES:
    importlib.import_module(f"rankkit.commands.{_name}").register(app)

err_console = Console(stderr=True, highlight=False)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI on ``argv`` (default: ``sys.argv[1:]``); exits with the command's status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        app(args=args, prog_name="rankkit", standalone_mode=False)
    except _EXIT as exc:
        raise SystemExit(exc.exit_code) from None
    except _ABORT:
        err_console.print("Aborted.")
        raise SystemExit(130) from None
    except _USAGE as exc:  # bad option, missing argument: click's own message and exit code
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except (UserError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        if os.environ.get("RANKKIT_DEBUG"):
            raise
        message = str(exc) if isinstance(exc, UserError) else f"{exc.strerror or exc}: {exc.filename}"
        err_console.print(f"[bold red]Error:[/] {message}", soft_wrap=True)
        raise SystemExit(2) from None
    raise SystemExit(0)


def _exceptions(name: str) -> tuple:
    """``click.exceptions.<name>`` and, where typer vendors its own click (typer ≥ 0.20), its twin."""
    modules = [click.exceptions]
    try:
        modules.append(importlib.import_module("typer._click.exceptions"))
    except ImportError:
        pass
    return tuple({getattr(m, name) for m in modules if hasattr(m, name)})


_EXIT = (*_exceptions("Exit"), typer.Exit)
_ABORT = (*_exceptions("Abort"), typer.Abort)
_USAGE = _exceptions("ClickException")


if __name__ == "__main__":  # pragma: no cover
    main()
