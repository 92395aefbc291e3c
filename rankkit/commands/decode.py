"""Guided decoding commands (eq. 1–2, §5): generate, evaluate, bench-decode, tradeoff.

Examples::

    rankkit generate --base tiny --reward runs/arm --beta 0,10,50 --top-k 20 --prompts prompts.jsonl --out gen.jsonl
    rankkit evaluate gen.jsonl --scorer synthetic --ppl-model runs/base --out eval.json
    rankkit bench-decode --base tiny --arm runs/arm --rad runs/rad --top-k 10,20,40 --out runs/bench
    rankkit tradeoff eval_arm.json eval_rad.json --out tradeoff.png
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..errors import UserError
from .options import DeviceOpt, LimitOpt, SeedOpt

BaseOpt = Annotated[str, typer.Option("--base", help="Base LM: 'tiny' (random GPT-2 over the reward model's tokenizer), a folder or a hub name.")]
TopKOpt = Annotated[int, typer.Option("--top-k", help="Candidates V' per step: the k most likely tokens of the base model (0: none, use --top-p).")]
TopPOpt = Annotated[Optional[float], typer.Option("--top-p", help="Nucleus of this mass instead of (or inside) the top-k.")]
SamplesOpt = Annotated[int, typer.Option("--samples", help="Continuations per prompt (§5.2: 25).")]
MaxNewOpt = Annotated[int, typer.Option("--max-new-tokens", help="At most this many new tokens per continuation (§5.2: 20).")]
BatchOpt = Annotated[int, typer.Option("--batch-size", help="Prompts per generate call (left padded); RAD keeps k copies of their reward-model cache.")]
# settings a resumed output file must share with the current run
# metric columns printed by evaluate (all of them go to --out), with their table headers
SHOWN = {"reward": "model", "beta": "β", "avg_max": "avg max", "toxic_rate": "toxic rate",
         "positive_rate": "pos. rate", "perplexity": "ppl", "dist_2": "dist-2", "dist_3": "dist-3", "mauve": "mauve"}
RUN_KEYS = ("base", "reward", "top_k", "top_p", "steer", "seed", "max_new_tokens", "samples")


def _floats(text: str, option: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{option} {text!r}: expected comma-separated numbers such as 0,10,50") from None


def _ints(text: str, option: str) -> list[int]:
    values = _floats(text, option)
    if not values or any(v != int(v) or v < 1 for v in values):
        raise UserError(f"{option} {text!r}: expected comma-separated positive integers such as 10,20,40")
    return [int(v) for v in values]


def _check_counts(**options: int) -> None:
    """Every count option (keyword = option name with _ for -) must be at least 1."""
    for name, value in options.items():
        if value < 1:
            raise UserError(f"--{name.replace('_', '-')} {value}: must be at least 1")


def _done_records(out: Path, run: dict) -> set:
    """(prompt_index, beta) pairs already in ``out``; cuts a torn last line; refuses other settings."""
    if not out.exists():
        return set()
    raw = out.read_bytes()
    good = raw[:raw.rfind(b"\n") + 1]  # a crash can only leave a partial *last* line
    if len(good) != len(raw):
        with open(out, "r+b") as handle:
            handle.truncate(len(good))
    done = set()
    for n, line in enumerate(good.decode("utf-8").splitlines(), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise UserError(f"{out}, line {n}: not valid JSON; not a file written by rankkit generate") from None
        other = {key: record.get(key) for key in RUN_KEYS}
        if other != run:
            changed = ", ".join(f"{k}={other[k]!r}" for k in RUN_KEYS if other[k] != run[k])
            raise UserError(f"{out}: written with other settings ({changed}); choose another --out to start afresh")
        done.add((record["prompt_index"], record["beta"]))
    return done


def generate_command(
    prompts: Annotated[Path, typer.Option("--prompts", help="JSONL ({\"prompt\": {\"text\": …}}, RealToxicityPrompts / DExperts) or one prompt per line.")],
    reward: Annotated[Path, typer.Option("--reward", help="Reward-model folder (ARM or RAD) from `rankkit train`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output JSONL, one line per prompt and β; an existing file is resumed.")],
    base: BaseOpt = "tiny",
    beta: Annotated[str, typer.Option("--beta", help="Guidance weights β, comma-separated; 0 = unguided.")] = "0,10,50,100",
    top_k: TopKOpt = 20,
    top_p: TopPOpt = None,
    steer: Annotated[str, typer.Option("--steer", help="away (1 − r, e.g. toxicity) or towards (r, e.g. sentiment).")] = "away",
    samples: SamplesOpt = 25,
    max_new_tokens: MaxNewOpt = 20,
    batch_size: BatchOpt = 4,
    limit: LimitOpt = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
) -> None:
    """Sample continuations of every prompt at every β with ARM/RAD guidance (eq. 1–2)."""
    from ..device import resolve_device
    from ..models import load_reward_model
    from ..models.decoding import load_base, make_guidance, sweep_generations
    from ..models.prompts import read_prompts

    betas = _floats(beta, "--beta")
    if not betas or min(betas) < 0:
        raise UserError(f"--beta {beta}: give one or more weights ≥ 0 (the direction is --steer)")
    _check_counts(samples=samples, max_new_tokens=max_new_tokens, batch_size=batch_size)
    top_k = top_k or None
    texts = read_prompts(prompts, limit=limit)
    device = resolve_device(device)
    model = load_reward_model(reward, device=device)
    make_guidance(model, beta=1.0, top_k=top_k, top_p=top_p, steer=steer)  # validate before loading the base
    base_model, tokenizer = load_base(base, model, seed=seed, device=device)
    run = {"base": base, "reward": reward.name, "top_k": top_k, "top_p": top_p, "steer": steer, "seed": seed,
           "max_new_tokens": max_new_tokens, "samples": samples}
    done = _done_records(out, run)
    console = Console(highlight=False, soft_wrap=True)
    todo = len(texts) * len(betas) - len({(i, b) for i, b in done if i < len(texts) and b in betas})
    console.print(f"{len(texts):,} prompts × {len(betas)} β: {todo:,} to generate"
                  + (f" ({len(done):,} already in {out})" if done else ""))
    out.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        for records in sweep_generations(base_model, tokenizer, texts, reward=model, betas=betas, top_k=top_k,
                                         top_p=top_p, steer=steer, n_samples=samples, max_new_tokens=max_new_tokens,
                                         batch_size=batch_size, seed=seed, skip=done, progress=True):
            lines = "".join(json.dumps({**run, "reward_kind": model.kind, **r}, ensure_ascii=False) + "\n"
                            for r in records)
            os.write(descriptor, lines.encode("utf-8"))  # whole lines in one append
            os.fsync(descriptor)
    finally:
        os.close(descriptor)
    console.print(f"saved to {out}")


def evaluate_command(
    generations: Annotated[Path, typer.Argument(help="JSONL written by `rankkit generate`.")],
    scorer: Annotated[str, typer.Option("--scorer", help="HF sequence classifier (name or folder), 'synthetic[:response]' (exact synthetic reward) or 'perspective[:ATTRIBUTE]' (key in PERSPECTIVE_API_KEY).")],
    label: Annotated[Optional[str], typer.Option("--label", help="Classifier label to score (name or index) (default: the only one, or class 1).")] = None,
    ppl_model: Annotated[Optional[str], typer.Option("--ppl-model", help="Causal LM (folder or name) for perplexity and MAUVE features.")] = None,
    mauve: Annotated[bool, typer.Option("--mauve", help="MAUVE against the β = 0 samples (needs mauve-text).")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the metrics as JSON here.")] = None,
    device: DeviceOpt = "auto",
) -> None:
    """Average max attribute, toxic rate, positive rate, perplexity, dist-1/2/3 (and MAUVE) per model and β."""
    from transformers import AutoModelForCausalLM

    from ..device import resolve_device
    from ..io import write_json
    from ..models.evaluate import evaluate_generations, load_scorer, read_generations
    from ..tokenization import load_tokenizer

    records = read_generations(generations)
    device = resolve_device(device)
    score = load_scorer(scorer, label=label, device=device)
    lm = lm_tokenizer = None
    if ppl_model is not None:
        try:
            lm = AutoModelForCausalLM.from_pretrained(ppl_model).to(device).eval()
        except Exception as exc:  # noqa: BLE001 - any loader failure is a user-facing error
            raise UserError(f"--ppl-model {ppl_model}: cannot load a causal LM from it ({exc.__class__.__name__})") from exc
        lm_tokenizer = load_tokenizer(ppl_model)
    frame = evaluate_generations(records, scorer=score, lm=lm, lm_tokenizer=lm_tokenizer, mauve=mauve, progress=True)
    shown = [c for c in SHOWN if c in frame.columns]
    table = Table(title=f"{generations.name}: {len(records):,} prompt × β records, scorer {scorer}")
    for column in shown:
        table.add_column(SHOWN[column], justify="right")
    for row in frame.select(shown).iter_rows():
        table.add_row(*("–" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v) for v in row))
    Console(highlight=False, soft_wrap=True).print(table)
    if out is not None:
        write_json(out, frame.to_dicts())
        print(f"saved to {out}")


def bench_decode_command(
    arm: Annotated[Path, typer.Option("--arm", help="ARM folder.")],
    rad: Annotated[Path, typer.Option("--rad", help="RAD folder (same tokenizer).")],
    base: BaseOpt = "tiny",
    top_k: Annotated[str, typer.Option("--top-k", help="Candidate counts k, comma-separated.")] = "10,20,40",
    prompts: Annotated[int, typer.Option("--prompts", help="Prompts per batch (cut from the synthetic corpus).")] = 1,
    prompt_tokens: Annotated[int, typer.Option("--prompt-tokens", help="Tokens per prompt.")] = 20,
    samples: SamplesOpt = 25,
    max_new_tokens: MaxNewOpt = 20,
    repeats: Annotated[int, typer.Option("--repeats", help="Timed runs per setting (the fastest counts).")] = 3,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for bench_decode.csv and bench_decode.png.")] = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
) -> None:
    """Time per generated token of unguided, ARM- and RAD-guided top-k sampling (§5.6, Figure 6)."""
    from ..device import resolve_device
    from ..io import atomic_path
    from ..models import load_reward_model
    from ..models.decoding import benchmark_prompts, decoding_speed, load_base, same_tokenizer
    from ..plots import plot_time_per_token

    ks = _ints(top_k, "--top-k")
    _check_counts(samples=samples, max_new_tokens=max_new_tokens, prompts=prompts, prompt_tokens=prompt_tokens,
                  repeats=repeats)
    device = resolve_device(device)
    arm_model, rad_model = load_reward_model(arm, device=device), load_reward_model(rad, device=device)
    if arm_model.kind != "arm" or rad_model.kind != "rad":
        raise UserError(f"--arm {arm} holds a {arm_model.kind.upper()}, --rad {rad} a {rad_model.kind.upper()}: "
                        "expected an ARM and a RAD")
    if not same_tokenizer(arm_model.tokenizer, rad_model.tokenizer):
        raise UserError(f"--arm {arm} and --rad {rad} use different tokenizers")
    if max(ks) > arm_model.vocab_size:
        raise UserError(f"--top-k {max(ks)}: larger than the vocabulary of {arm_model.vocab_size}")
    base_model, tokenizer = load_base(base, arm_model, seed=seed, device=device)
    texts = benchmark_prompts(tokenizer, n_prompts=prompts, n_tokens=prompt_tokens, seed=seed)
    frame = decoding_speed(base_model, tokenizer, texts, guides={"arm": (arm_model, True), "rad": (rad_model, True)},
                           top_ks=ks, n_samples=samples, max_new_tokens=max_new_tokens, repeats=repeats, seed=seed,
                           progress=True)
    table = Table(title=f"time per generated token ({prompts} × {samples} sequences, {max_new_tokens} new tokens)")
    for column in ("mode", "top-k", "ms / token", "reward model ms / token", "× unguided"):
        table.add_column(column, justify="right")
    unguided = {row["top_k"]: row["seconds_per_token"] for row in frame.iter_rows(named=True) if row["mode"] == "base"}
    for row in frame.iter_rows(named=True):
        table.add_row(row["mode"], str(row["top_k"]), f"{1000 * row['seconds_per_token']:.2f}",
                      f"{1000 * row['reward_seconds_per_token']:.2f}",
                      f"{row['seconds_per_token'] / unguided[row['top_k']]:.2f}")
    console = Console(highlight=False, soft_wrap=True)
    console.print(table)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / "bench_decode.csv") as tmp:
            frame.select("mode", "top_k", "seconds_per_token").write_csv(tmp)
        plot_time_per_token(frame, out / "bench_decode.png")
        console.print(f"saved {out / 'bench_decode.csv'} and {out / 'bench_decode.png'}")


def tradeoff_command(
    results: Annotated[list[Path], typer.Argument(help="JSON files written by `rankkit evaluate --out`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG to write.")],
    x: Annotated[str, typer.Option("--x", help="Fluency metric on the horizontal axis.")] = "perplexity",
    y: Annotated[str, typer.Option("--y", help="Attribute metric on the vertical axis.")] = "avg_max",
) -> None:
    """Attribute vs fluency across β, one line per reward model (Figures 3–4)."""
    import polars as pl

    from ..io import read_json
    from ..plots import plot_tradeoff

    rows = []
    for path in results:
        if not path.is_file():
            raise UserError(f"{path}: no such file")
        try:
            data = read_json(path)
        except ValueError as exc:
            raise UserError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) and {"reward", "beta", x, y} <= r.keys() for r in data):
            raise UserError(f"{path}: expected `rankkit evaluate --out` records with reward, beta, {x} and {y} "
                            f"(perplexity needs --ppl-model)")
        rows.extend({"reward": str(r["reward"]), "beta": float(r["beta"]), x: r[x], y: r[y]} for r in data)
    if not rows:
        raise UserError("tradeoff: the result files hold no records")
    plot_tradeoff(pl.DataFrame(rows), out, x=x, y=y)
    print(f"saved to {out}")


def register(app: typer.Typer) -> None:
    app.command("generate")(generate_command)
    app.command("evaluate")(evaluate_command)
    app.command("bench-decode")(bench_decode_command)
    app.command("tradeoff")(tradeoff_command)
