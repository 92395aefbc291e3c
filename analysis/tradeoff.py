"""Figures 3–4: the attribute-vs-fluency trade-off across β, one line per reward model.

From your own evaluations (``rankkit evaluate … --out eval.json`` per reward model)::

    python analysis/tradeoff.py --eval results/eval_rad.json --eval results/eval_arm.json --out results/tradeoff

Without any, on the synthetic world: tiny ARM / RAD / distilled ARM steer a small base LM away
from toxicity, and samples are scored by the world's exact toxicity and likelihood.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

from rankkit.cli import app
from rankkit.models.report import SLUG, tradeoff, train_models

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", action="append", default=[], help="a `rankkit evaluate --out` JSON (repeatable)")
    parser.add_argument("--x", default="perplexity", help="fluency metric (with --eval)")
    parser.add_argument("--y", default="avg_max", help="attribute metric (with --eval)")
    parser.add_argument("--utterances", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--base-steps", type=int, default=300)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--new-tokens", type=int, default=12)
    parser.add_argument("--betas", default="0,2,5,10,20")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "tradeoff")
    args = parser.parse_args(argv)
    if args.eval:
        args.out.mkdir(parents=True, exist_ok=True)
        app(args=["tradeoff", *args.eval, "--x", args.x, "--y", args.y, "--out", str(args.out / "tradeoff.png")],
            standalone_mode=False)
        return 0
    names = ("RAD", "ARM", "ARM distilled")
    train_models(args.out / "models", utterances=args.utterances, epochs=args.epochs, seed=args.seed, names=names)
    result = tradeoff(args.out, {n: args.out / "models" / SLUG[n] for n in names}, utterances=args.utterances,
                      base_steps=args.base_steps, prompts=args.prompts, samples=args.samples,
                      new_tokens=args.new_tokens, betas=args.betas, seed=args.seed)
    print(pl.DataFrame(result["table"]))
    print(f"figure: {args.out / 'tradeoff.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
