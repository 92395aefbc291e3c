"""App. C.1–C.2: the identity capacity test across block sizes n, with ARM's bound (n − d)/n².

    python analysis/capacity.py --d 32 --n 16,32,64 --out results/capacity          # tiny backbones
    python analysis/capacity.py --backbone gpt2 --n 1024 --steps 3000                 # the paper's setting

Writes ``capacity.csv`` (n, model, mse, bound, rank) and ``capacity.png`` (MSE against n, the bound
as a dashed line: ARM can never go below it once n > d; RAD can).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

from rankkit.cli import app
from rankkit.io import read_json
from rankkit.plots import plot_capacity

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", default="16,32,64", help="comma-separated block sizes")
    parser.add_argument("--d", type=int, default=32, help="hidden size of the tiny backbone")
    parser.add_argument("--backbone", default="tiny")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "capacity")
    args = parser.parse_args(argv)
    rows = []
    for n in (int(v) for v in args.n.split(",")):
        folder = args.out / f"n{n}"
        app(args=["capacity-test", "--n", str(n), "--d", str(args.d), "--backbone", args.backbone, "--model", "both",
                  "--steps", str(args.steps), "--seed", str(args.seed), "--out", str(folder)], standalone_mode=False)
        report = read_json(folder / "capacity.json")
        rows += [{"n": n, "d": report["d"], "model": kind.upper(), "mse": report[kind]["mse"], "bound": report["bound"],
                  "rank": report[kind]["rank"]} for kind in ("arm", "rad")]
    frame = pl.DataFrame(rows)
    frame.write_csv(args.out / "capacity.csv")
    plot_capacity(frame, args.out / "capacity.png")
    print(frame)
    return 0


if __name__ == "__main__":
    sys.exit(main())
