"""``rankkit demo``: the whole pipeline on the embedded synthetic data set, ending in a report folder.

Examples::

    rankkit demo --out demo-out           # about 4 minutes on 2 cores
    rankkit demo --out demo-out --quick   # about 1 minute
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .options import SeedOpt


def demo_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder: report.md, PNG figures, results.json.")] = Path("demo-out"),
    quick: Annotated[bool, typer.Option("--quick", help="Smaller settings (about 1 minute on 2 cores).")] = False,
    seed: SeedOpt = 0,
) -> None:
    """Reproduce the paper's findings in miniature: Ω, minimal rank, ARM/RAD rank curves, capacity, guided decoding."""
    from ..models.report import run_demo

    console = Console(highlight=False, soft_wrap=True)
    results = run_demo(out, quick=quick, seed=seed, echo=lambda text: console.rule(text.strip(" \n─")))
    console.rule("findings")
    for line in results["findings"]:
        console.print(f"• {line}")
    console.print(f"\nreport: {out / 'report.md'}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
