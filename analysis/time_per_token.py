"""Figure 6: time per generated token of unguided, ARM- and RAD-guided decoding against k.

With real models (a larger base sharing the reward models' tokenizer)::

    python analysis/time_per_token.py --base gpt2-large --arm runs/arm --rad runs/rad --top-k 10,20,40

Without, it trains tiny ARM and RAD on the synthetic set and times them under a random tiny base
several times larger than the reward backbone.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import polars as pl

from rankkit.models.report import SLUG, time_per_token, train_models

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="tiny")
    parser.add_argument("--arm", default=None)
    parser.add_argument("--rad", default=None)
    parser.add_argument("--top-k", default="10,20,40")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=25)
    parser.add_argument("--new-tokens", type=int, default=20)
    parser.add_argument("--utterances", type=int, default=1000, help="tiny models only")
    parser.add_argument("--epochs", type=int, default=1, help="tiny models only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "time_per_token")
    args = parser.parse_args(argv)
    if (args.arm is None) != (args.rad is None):
        print("error: give both --arm and --rad, or neither", file=sys.stderr)
        return 2
    arm, rad = args.arm, args.rad
    if arm is None:
        train_models(args.out / "models", utterances=args.utterances, epochs=args.epochs, seed=args.seed, names=("RAD", "ARM"))
        arm, rad = args.out / "models" / SLUG["ARM"], args.out / "models" / SLUG["RAD"]
    result = time_per_token(args.out, base=args.base, arm=arm, rad=rad, top_ks=args.top_k, repeats=args.repeats,
                            samples=args.samples, new_tokens=args.new_tokens, seed=args.seed)
    print(pl.DataFrame(result["table"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
