"""The whole story on the synthetic world: ``rankkit demo`` (the paper's findings in miniature).

Each stage runs the toolkit's own commands (so the report doubles as a tour of the CLI) and
keeps their JSON results; the synthetic world's exact rewards r*(x) and exact likelihood replace
the external toxicity classifier and the larger fluency LM of §5. The stages:

1. P_Ω(R) statistics, Lemma 1 / Lemma 2 (eq. 5, App. B);
2. minimal rank: MSE-vs-rank sweep, q* at the tolerance, the certified bracket (App. B.2);
3. ARM, RAD and ARM distilled from RAD on tiny backbones, their rank curves (Figures 1, 7) and
   the regulariser ablation (Figure 5, eq. 11);
4. the identity capacity test (App. C.1–C.2);
5. guided decoding across β scored by the ground truth (Figures 3–4) and time per token against
   k (Figure 6);
6. findings written from the numbers.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from rankkit.io import atomic_path, read_json, write_json


@dataclass(frozen=True)
class DemoSize:
    """How much work each stage does; ``quick`` fits in about a minute on 2 cores."""

    utterances: int
    epochs: int
    ranks: str
    model_rows: int
    capacity_n: int
    capacity_d: int
    capacity_steps: int
    base_steps: int
    prompts: int
    samples: int
    new_tokens: int
    betas: str
    top_ks: str
    repeats: int


FULL = DemoSize(utterances=6000, epochs=5, ranks="1,2,4,8,16,32,64", model_rows=400, capacity_n=64, capacity_d=32,
                capacity_steps=1500, base_steps=1000, prompts=48, samples=20, new_tokens=12, betas="0,2,5,10,20,40",
                top_ks="10,20,40", repeats=3)
QUICK = DemoSize(utterances=2000, epochs=4, ranks="1,2,4,8,16", model_rows=200, capacity_n=32, capacity_d=16,
                 capacity_steps=1000, base_steps=300, prompts=12, samples=8, new_tokens=10, betas="0,5,20",
                 top_ks="10,40", repeats=1)

BASE_UTTERANCES = 20_000  # the base LM's own corpus: enough that it generalises instead of memorising

MODELS = {  # name -> (kind, extra `rankkit train` options)
    "RAD": ("rad", []),
    "ARM": ("arm", []),
    "ARM distilled": ("arm", ["--distill-from", "{models}/rad"]),
    "ARM no reg": ("arm", ["--reg-weight", "0"]),
}
SLUG = {"RAD": "rad", "ARM": "arm", "ARM distilled": "arm_distil", "ARM no reg": "arm_noreg"}


def run_demo(out: str | os.PathLike, *, quick: bool = False, seed: int = 0, echo=print) -> dict:
    """Run every stage into ``out`` and write ``out/report.md``; returns the collected results."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    size = QUICK if quick else FULL
    results: dict = {"quick": quick, "seed": seed, "size": size.__dict__, "seconds": {}}
    for name, stage in (("omega", _omega), ("minrank", _minrank), ("models", _models), ("rank_curves", _rank_curves),
                        ("capacity", _capacity), ("decoding", _decoding), ("speed", _speed)):
        echo(f"\n── {name} ──")
        start = time.perf_counter()
        results[name] = stage(out, size, seed)
        results["seconds"][name] = round(time.perf_counter() - start, 1)
    results["findings"] = findings(results)
    write_json(out / "results.json", results)
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(render_report(results))
    return results


def _cli(*args) -> None:
    """Run one ``rankkit`` command in-process (errors propagate as exceptions)."""
    from rankkit.cli import app

    app(args=[str(a) for a in args], prog_name="rankkit", standalone_mode=False)


# ---- stages -------------------------------------------------------------------------------
def _omega(out: Path, size: DemoSize, seed: int) -> dict:
    from rankkit.omega import Omega, omega_stats

    _cli("build-omega", "synthetic", "--limit", size.utterances, "--out", out / "omega")
    _cli("omega-stats", out / "omega")
    stats = omega_stats(Omega.load(out / "omega"))
    write_json(out / "omega_stats.json", stats)
    return stats


def _minrank(out: Path, size: DemoSize, seed: int) -> dict:
    _cli("rank-sweep", out / "omega", "--ranks", size.ranks, "--tol", "1e-3", "--seed", seed, "--out", out / "rank_sweep")
    return read_json(out / "rank_sweep" / "report.json")


def _models(out: Path, size: DemoSize, seed: int) -> dict:
    return train_models(out / "models", utterances=size.utterances, epochs=size.epochs, seed=seed)


def train_models(models: Path, *, utterances: int, epochs: int, seed: int = 0, names=tuple(MODELS)) -> dict:
    """`rankkit train` tiny RAD, ARM, ARM distilled from RAD and ARM without eq. 11 on the synthetic set."""
    trained = {}
    for name in names:
        kind, extra = MODELS[name]
        folder = models / SLUG[name]
        _cli("train", kind, "--data", "synthetic", "--limit", utterances, "--backbone", "tiny",
             "--epochs", epochs, "--seed", seed, "--out", folder, *[e.format(models=models) for e in extra])
        last = read_json(folder / "training.json")["history"][-1]
        trained[name] = {"folder": str(folder), **{key: last[key] for key in ("val_mse", "mean_mse", "teacher_mse") if key in last}}
    return trained


def _rank_curves(out: Path, size: DemoSize, seed: int) -> dict:
    checkpoints = {name: out / "models" / slug for name, slug in SLUG.items()}
    return rank_curves(checkpoints, out, rows=size.model_rows, data_args=["--data", "synthetic", "--limit", size.utterances],
                       seed=seed)


def rank_curves(checkpoints: dict, out: Path, *, rows: int, data_args: list, seed: int = 0) -> dict:
    """`rankkit model-rank` for each named checkpoint, and one figure with all curves (Figures 1, 5, 7)."""
    from rankkit.plots import plot_rank_curves

    curves, summaries = [], {}
    for name, checkpoint in checkpoints.items():
        folder = out / "model_rank" / name.lower().replace(" ", "_")
        _cli("model-rank", checkpoint, "--rows", rows, *data_args, "--seed", seed, "--out", folder)
        summaries[name] = read_json(folder / "model_rank.json")
        curves.append(pl.read_csv(folder / "rank_curve.csv").with_columns(model=pl.lit(name)))
    first = next(iter(summaries.values()))
    plot_rank_curves(pl.concat(curves), out / "rank_curves.png", d=first["d"], vocab_size=first["vocab_size"])
    return summaries


def _capacity(out: Path, size: DemoSize, seed: int) -> dict:
    _cli("capacity-test", "--n", size.capacity_n, "--d", size.capacity_d, "--model", "both", "--backbone", "tiny",
         "--steps", size.capacity_steps, "--seed", seed, "--out", out / "capacity")
    return read_json(out / "capacity" / "capacity.json")


def _decoding(out: Path, size: DemoSize, seed: int) -> dict:
    rewards = {name: out / "models" / SLUG[name] for name in ("RAD", "ARM", "ARM distilled")}
    return tradeoff(out, rewards, utterances=size.utterances, base_steps=size.base_steps, prompts=size.prompts,
                    samples=size.samples, new_tokens=size.new_tokens, betas=size.betas, seed=seed)


def tradeoff(out: Path, rewards: dict, *, utterances: int, base_steps: int, prompts: int, samples: int,
             new_tokens: int, betas: str, top_k: int = 20, seed: int = 0) -> dict:
    """Guided decoding across β on the synthetic world, scored by its exact toxicity and likelihood (Figures 3–4).

    Fits a small base LM to the synthetic corpus (``out/models/base``), prompts it with the first
    three words of held-out utterances, and steers away from toxicity with each reward model.
    """
    from rankkit.plots import plot_tradeoff
    from rankkit.synthetic import SyntheticWorld, generate_corpus
    from rankkit.tokenization import encode_texts, load_tokenizer

    from .base_lm import train_base_lm
    from .evaluate import SyntheticScorer, evaluate_generations, read_generations

    tokenizer = load_tokenizer("synthetic")
    corpus = encode_texts(generate_corpus(BASE_UTTERANCES, random_state=seed + 2)["text"].to_list(), tokenizer)
    base_dir = out / "models" / "base"
    _, losses = train_base_lm(corpus, tokenizer, steps=base_steps, seed=seed, out=base_dir)
    held_out = generate_corpus(prompts, random_state=seed + 1)["text"].to_list()
    prompt_file = out / "prompts.txt"
    prompt_file.write_text("".join(" ".join(text.split()[:3]) + "\n" for text in held_out))
    world, scorer = SyntheticWorld.default(), SyntheticScorer("toxicity")
    frames = []
    for name, reward in rewards.items():
        generations = out / "generations" / f"{name.lower().replace(' ', '_')}.jsonl"
        generations.unlink(missing_ok=True)
        _cli("generate", "--base", base_dir, "--reward", reward, "--beta", betas,
             "--top-k", top_k, "--prompts", prompt_file, "--samples", samples, "--max-new-tokens", new_tokens,
             "--steer", "away", "--seed", seed, "--out", generations)
        records = read_generations(generations)
        frame = evaluate_generations(records, scorer=scorer)
        frames.append(frame.with_columns(reward=pl.lit(name), world_perplexity=pl.Series(
            [world_perplexity(world, tokenizer, [r for r in records if r["beta"] == beta]) for beta in frame["beta"]])))
    table = pl.concat(frames, how="diagonal_relaxed").select(
        "reward", "beta", "avg_max", "toxic_rate", "mean_score", "world_perplexity", "dist_2", "dist_3")
    table.write_csv(out / "tradeoff.csv")
    plot_tradeoff(table, out / "tradeoff.png", x="world_perplexity", y="mean_score",
                  xlabel="perplexity of the continuations under the true world",
                  ylabel="true toxicity r* (mean over samples)")
    world_nll = -np.mean([world.log_prob(corpus.utterance(i)) / len(corpus.utterance(i)) for i in range(min(500, len(corpus)))])
    return {"table": table.to_dicts(), "base_final_loss": float(np.mean(losses[-10:])),
            "world_perplexity_of_corpus": float(np.exp(world_nll))}


def world_perplexity(world, tokenizer, records) -> float:
    """exp of the mean negative log-likelihood per continuation token under the true world model."""
    nll, tokens = 0.0, 0
    for record in records:
        prompt = tokenizer(record["prompt"], add_special_tokens=False)["input_ids"]
        for text in record["continuations"]:
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            if ids:
                nll -= world.log_prob(ids, context_ids=prompt)
                tokens += len(ids)
    return float(np.exp(nll / max(tokens, 1)))


def _speed(out: Path, size: DemoSize, seed: int) -> dict:
    models = out / "models"
    return time_per_token(out, base=models / "base", arm=models / "arm", rad=models / "rad", top_ks=size.top_ks,
                          repeats=size.repeats, seed=seed)


def time_per_token(out: Path, *, base, arm, rad, top_ks: str, repeats: int, samples: int = 25, new_tokens: int = 20,
                   seed: int = 0) -> dict:
    """`rankkit bench-decode`: time per generated token of unguided, ARM and RAD decoding against k (Figure 6)."""
    _cli("bench-decode", "--base", base, "--arm", arm, "--rad", rad, "--top-k", top_ks, "--samples", samples,
         "--max-new-tokens", new_tokens, "--repeats", repeats, "--seed", seed, "--out", out / "speed")
    return {"table": pl.read_csv(out / "speed" / "bench_decode.csv").to_dicts()}


# ---- findings and report ------------------------------------------------------------------
def findings(results: dict) -> list[str]:
    """Sentences drawn from the numbers: each states a check and whether the data passed it."""
    lines = []
    stats, sweep = results["omega"], results["minrank"]
    lines.append(f"P_Ω(R) has {stats['n_rows']:,} rows and {stats['n_observed']:,} observed entries; "
                 f"{stats['lemma1_rows']:,} rows ({stats['lemma1_rows'] / stats['n_rows']:.0%}) hold a single observation "
                 f"(Lemma 1), and [P_Ω(R)]_2 keeps {stats['submatrix_2'][0]:,} rows.")
    bracket = sweep["bracket"]
    if sweep["q_star"] is not None:
        lines.append(f"The smallest swept rank that fits the observed rewards to MSE ≤ {sweep['tol']:g} is q* = {sweep['q_star']} "
                     f"(Lemma 2 bound {sweep['lemma2_bound']}); the certified bracket is {bracket['text']}.")
    else:
        lines.append(f"No swept rank fits the observed rewards to MSE ≤ {sweep['tol']:g}; the certified lower bound is "
                     f"{bracket['q_low']}.")
    curves = results["rank_curves"]
    d = next(iter(curves.values()))["d"]
    arm_ranks = {n: s["rank"] for n, s in curves.items() if n.startswith("ARM")}
    lines.append(f"ARM's learned reward matrices have numerical rank {', '.join(f'{r} ({n})' for n, r in arm_ranks.items())}, "
                 + ("all within the bound d + 1 = " if all(r <= d + 1 for r in arm_ranks.values()) else "VIOLATING the bound d + 1 = ")
                 + f"{d + 1}; RAD's has rank {curves['RAD']['rank']} of {curves['RAD']['rows']} rows "
                 + ("(above d: the flexible model uses more rank than ARM can)." if curves["RAD"]["rank"] > d else
                    "(not above d: RAD does not use its extra flexibility here, as in the paper's Figure 1)."))
    if "ARM no reg" in curves:
        reg, noreg = curves["ARM"]["rank"], curves["ARM no reg"]["rank"]
        lines.append(f"The regulariser (eq. 11) changes ARM's numerical rank from {noreg} (without) to {reg} (with).")
    cap = results["capacity"]
    lines.append(f"Identity capacity test at n = {cap['n']}, d = {cap['d']}: ARM's MSE {cap['arm']['mse']:.3g} "
                 + ("respects" if cap["arm"]["mse"] >= cap["bound"] * (1 - 1e-6) else "BREAKS")
                 + f" the bound (n − d)/n² = {cap['bound']:.3g}; RAD reaches {cap['rad']['mse']:.3g} "
                 + ("(below the bound)." if cap["rad"]["mse"] < cap["bound"] else "(not below the bound at this budget)."))
    trained = results["models"]
    lines.append("Validation MSE against the mean-only baseline: "
                 + "; ".join(f"{n} {m['val_mse']:.4f} vs {m['mean_mse']:.4f}" for n, m in trained.items()) + ".")
    table = pl.DataFrame(results["decoding"]["table"])
    for name in table["reward"].unique(maintain_order=True):
        rows = table.filter(pl.col("reward") == name).sort("beta")
        lo, hi = rows.row(0, named=True), rows.row(-1, named=True)
        lines.append(f"{name}: raising β from {lo['beta']:g} to {hi['beta']:g} moves the true toxicity of samples from "
                     f"{lo['mean_score']:.3f} to {hi['mean_score']:.3f} and the true-world perplexity from "
                     f"{lo['world_perplexity']:.1f} to {hi['world_perplexity']:.1f}.")
    top = table.filter(pl.col("beta") == table["beta"].max())
    by_model = dict(zip(top["reward"], top["mean_score"]))
    spread = abs(by_model.get("ARM distilled", np.nan) - by_model.get("RAD", np.nan))
    lines.append(f"At the largest β the distilled ARM's toxicity is within {spread:.3f} of its RAD teacher's "
                 f"({by_model.get('ARM distilled', float('nan')):.3f} vs {by_model.get('RAD', float('nan')):.3f}).")
    speed = pl.DataFrame(results["speed"]["table"])
    k = speed["top_k"].max()
    at_k = dict(zip(speed.filter(pl.col("top_k") == k)["mode"], speed.filter(pl.col("top_k") == k)["seconds_per_token"]))
    lines.append(f"Time per token at k = {k}: unguided {1e3 * at_k['base']:.1f} ms, ARM {1e3 * at_k['arm']:.1f} ms "
                 f"({at_k['arm'] / at_k['base']:.2f}×), RAD {1e3 * at_k['rad']:.1f} ms ({at_k['rad'] / at_k['base']:.2f}×).")
    return lines


def _certificate(shape) -> str:
    rows, cols = shape
    return (f"certified by a fully observed {rows} × {cols} block (Eckart–Young)" if rows
            else "certified by ‖P_Ω(R)‖² > τ·|Ω|: the zero matrix does not fit")


def _table(rows: list[dict], columns: list[str]) -> str:
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    return head + "".join("| " + " | ".join(fmt(r.get(c)) for c in columns) + " |\n" for r in rows)


def render_report(results: dict) -> str:
    """``report.md``: the figures, the tables they were drawn from, and the findings."""
    stats, sweep, cap = results["omega"], results["minrank"], results["capacity"]
    curves = results["rank_curves"]
    parts = [
        "# rankkit demo: low-rank reward models on the synthetic world\n\n",
        f"Mode: {'quick' if results['quick'] else 'full'} · seed {results['seed']} · stage seconds: "
        + ", ".join(f"{k} {v}" for k, v in results["seconds"].items()) + "\n\n",
        "## Findings\n\n", "".join(f"- {line}\n" for line in results["findings"]),
        "\n## 1. The reward matrix P_Ω(R) (eq. 5, Lemma 1/2)\n\n",
        _table([{"rows": stats["n_rows"], "observed": stats["n_observed"], "one-observation rows (Lemma 1)": stats["lemma1_rows"],
                 "[P_Ω(R)]_2 rows": stats["submatrix_2"][0], "[P_Ω(R)]_2 entries": stats["submatrix_2"][1]}],
               ["rows", "observed", "one-observation rows (Lemma 1)", "[P_Ω(R)]_2 rows", "[P_Ω(R)]_2 entries"]),
        "\n## 2. Minimal rank (softImpute / ALS sweep, App. B.2)\n\n",
        f"![MSE against rank](rank_sweep/sweep.png)\n\nq* = {sweep['q_star']}, Lemma 2 bound = {sweep['lemma2_bound']}; "
        f"{sweep['bracket']['text']} ({_certificate(sweep['bracket']['certificate']['shape'])}).\n",
        "\n## 3. Trained reward models and the rank they use (Figures 1, 5, 7)\n\n",
        "![rank curves](rank_curves.png)\n\n",
        _table([{"model": n, "val MSE": m.get("val_mse"), "mean-only MSE": m.get("mean_mse"),
                 "rank": curves[n]["rank"], "rows": curves[n]["rows"], "d": curves[n]["d"], "|V|": curves[n]["vocab_size"]}
                for n, m in results["models"].items()], ["model", "val MSE", "mean-only MSE", "rank", "rows", "d", "|V|"]),
        "\n## 4. Identity capacity test (App. C.1–C.2)\n\n",
        _table([{"model": k.upper(), "MSE": cap[k]["mse"], "ARM bound (n−d)/n²": cap["bound"], "rank": cap[k]["rank"],
                 "n": cap["n"], "d": cap["d"]} for k in ("arm", "rad")], ["model", "MSE", "ARM bound (n−d)/n²", "rank", "n", "d"]),
        "\n## 5. Guided decoding, scored by the ground truth (Figures 3, 4, 6)\n\n",
        "Toxicity is the exact r*(x) of the synthetic world; fluency is the exact perplexity of the continuation "
        f"under the world (the corpus itself has {results['decoding']['world_perplexity_of_corpus']:.1f}).\n\n",
        "![trade-off](tradeoff.png)\n\n",
        _table(results["decoding"]["table"], ["reward", "beta", "mean_score", "avg_max", "toxic_rate", "world_perplexity", "dist_2"]),
        "\n![time per token](speed/bench_decode.png)\n\n",
        _table(results["speed"]["table"], ["mode", "top_k", "seconds_per_token"]),
        "\nEvery number above is in `results.json`; each stage's own outputs sit in its folder.\n",
    ]
    return "".join(parts)

