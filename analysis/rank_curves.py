"""Figures 1, 5 and 7: numerical rank of R̂ against the number of sampled rows, one curve per model.

With checkpoints (e.g. RAD and ARM trained on Jigsaw with ``--backbone gpt2``)::

    python analysis/rank_curves.py --checkpoint RAD=runs/rad --checkpoint ARM=runs/arm \\
        --data jigsaw --path civil.csv --rows 2000 --out results/rank_curves

Without any, it trains tiny RAD, ARM, distilled ARM and unregularised ARM on the synthetic set
first (the regulariser ablation of Figure 5 is the ARM / ARM no reg pair).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rankkit.models.report import rank_curves, train_models

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", action="append", default=[], metavar="NAME=DIR", help="a trained reward model (repeatable)")
    parser.add_argument("--data", default="synthetic", help="data set whose prefixes are sampled (rankkit model-rank --data)")
    parser.add_argument("--path", default=None, help="local file of the data set")
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--utterances", type=int, default=2000, help="tiny models only: training utterances")
    parser.add_argument("--epochs", type=int, default=3, help="tiny models only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "rank_curves")
    args = parser.parse_args(argv)
    try:
        checkpoints = dict(item.split("=", 1) for item in args.checkpoint)
    except ValueError:
        print(f"error: --checkpoint expects NAME=DIR, got {args.checkpoint}", file=sys.stderr)
        return 2
    if not checkpoints:
        folders = train_models(args.out / "models", utterances=args.utterances, epochs=args.epochs, seed=args.seed)
        checkpoints = {name: info["folder"] for name, info in folders.items()}
    data_args = ["--data", args.data] + (["--path", args.path] if args.path else [])
    summaries = rank_curves(checkpoints, args.out, rows=args.rows, data_args=data_args, seed=args.seed)
    for name, s in summaries.items():
        print(f"{name}: rank {s['rank']} of {s['rows']} rows (d = {s['d']}, |V| = {s['vocab_size']})")
    print(f"figure: {args.out / 'rank_curves.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
