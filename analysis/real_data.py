"""The paper's App. B.2 analysis (Lemma 2 table, MSE-vs-rank sweep, certified bracket) on real data.

Runs Ω → rank sweep → bracket on the real SST-2 train set and the Jigsaw 2018 toxic-comment
files with the real GPT-2 tokenizer (and on the synthetic default), and writes one folder per
data set plus ``summary.json`` / ``summary.md`` (the Lemma 2 table)::

    python analysis/real_data.py                                       # ../shared/data, full size
    python analysis/real_data.py --limit 2000 --ranks 1,2,4            # a quick look
    python analysis/real_data.py --sets synthetic --out results/synth  # no real data needed
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rankkit.cli import app
from rankkit.io import atomic_path, read_json, write_json

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1] / "shared" / "data"


def data_sets(root: Path) -> dict[str, list[str]]:
    """name -> `rankkit build-omega` arguments (data set, file, tokenizer) for each data set."""
    gpt2 = ["--tokenizer", str(root / "gpt2_tokenizer")]
    return {
        "synthetic": ["synthetic"],
        "sst2": ["sst2", "--path", str(root / "sst2" / "train.tsv"), *gpt2],
        "jigsaw2018": ["jigsaw", "--path", str(root / "jigsaw_toxic_2018" / "jigsaw_toxic_2018_train_10k_balanced.csv"),
                       "--response", "toxic", *gpt2],
    }


def run(root: Path, out: Path, *, sets: list[str], limit: int | None, ranks: str, tol: float, iters: int, warm_iters: int) -> dict:
    summary = {}
    known = data_sets(root)
    for name in sets:
        build = known[name]
        folder = out / name
        limit_args = ["--limit", str(limit)] if limit else []
        app(args=["build-omega", *build, *limit_args, "--out", str(folder / "omega")],
            standalone_mode=False)
        app(args=["rank-sweep", str(folder / "omega"), "--ranks", ranks, "--tol", str(tol), "--iters", str(iters),
                  "--warm-iters", str(warm_iters), "--out", str(folder / "rank_sweep")], standalone_mode=False)
        meta = read_json(folder / "omega" / "meta.json")
        sweep = read_json(folder / "rank_sweep" / "report.json")
        summary[name] = {"rows": sweep["shape"][0], "vocab_size": sweep["shape"][1], "observed": sweep["n_observed"],
                         "texts": meta["info"]["n_utterances"], "q_star": sweep["q_star"], "q_star_2": sweep["q_star_2"],
                         "lemma2_bound": sweep["lemma2_bound"], "bracket": sweep["bracket"]["text"],
                         "certificate_shape": sweep["bracket"]["certificate"]["shape"], "tol": tol}
    write_json(out / "summary.json", summary)
    with atomic_path(out / "summary.md") as tmp:
        tmp.write_text(render(summary))
    return summary


def render(summary: dict) -> str:
    lines = ["| data set | texts | rows | observed | q* (P_Ω(R)) | q* ([P_Ω(R)]_2) | Lemma 2 bound | bracket |",
             "|---|---|---|---|---|---|---|---|"]
    for name, s in summary.items():
        lines.append(f"| {name} | {s['texts']} | {s['rows']:,} | {s['observed']:,} | {s['q_star']} | {s['q_star_2']} | "
                     f"{s['lemma2_bound']} | {s['bracket']} ({_certificate(s['certificate_shape'])}) |")
    return "\n".join(lines) + "\n"


def _certificate(shape) -> str:
    rows, cols = shape
    return f"certified by a fully observed {rows}×{cols} block" if rows else "certified by ‖P_Ω(R)‖² > τ·|Ω|"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA, help="folder holding sst2/, jigsaw_toxic_2018/, gpt2_tokenizer/")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "real_data")
    parser.add_argument("--sets", default="synthetic,sst2,jigsaw2018", help="comma-separated: synthetic, sst2, jigsaw2018")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N texts of each data set")
    parser.add_argument("--ranks", default="1,2,4,8,16,32")
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--warm-iters", type=int, default=50)
    args = parser.parse_args(argv)
    sets = args.sets.split(",")
    unknown = set(sets) - set(data_sets(args.data_root))
    if unknown:
        print(f"error: --sets {args.sets}: unknown {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    if set(sets) - {"synthetic"} and not args.data_root.is_dir():
        print(f"error: real data not found at {args.data_root} (see data/README.md)", file=sys.stderr)
        return 2
    summary = run(args.data_root, args.out, sets=sets, limit=args.limit, ranks=args.ranks, tol=args.tol, iters=args.iters,
                  warm_iters=args.warm_iters)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
