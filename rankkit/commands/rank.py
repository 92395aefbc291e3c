"""``rankkit model-rank`` and ``rankkit capacity-test``: the rank a reward model uses, and the rank it can reach.

Examples::

    rankkit model-rank runs/rad --rows 2000 --data synthetic --out runs/rad-rank
    rankkit model-rank runs/arm --rows 500 --omega runs/omega --grid 50,100,200,500 --out runs/arm-rank
    rankkit capacity-test --n 64 --d 32 --model both --backbone tiny --out runs/capacity
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer
from rich.console import Console

from ..errors import UserError
from .options import (DeviceOpt, LabelColumnOpt, LimitOpt, MaxTokensOpt, OutDirOpt, PathOpt, SeedOpt, SkipBadRowsOpt,
                      TextColumnOpt)

console = Console(highlight=False)


def model_rank_command(
    checkpoint: Annotated[Path, typer.Argument(help="A reward-model folder written by `rankkit train` (ARM or RAD).")],
    out: OutDirOpt = ...,
    rows: Annotated[int, typer.Option("--rows", help="N: contexts sampled i.i.d. from D_f, one full row of R̂ each.")] = 2000,
    data: Annotated[str, typer.Option(
        "--data", help="Data set whose prefixes are sampled: synthetic, jigsaw, sst2, amazon_polarity or a file.")] = "synthetic",
    omega: Annotated[Optional[Path], typer.Option(
        "--omega", help="Sample the contexts from the rows of this Ω folder instead (weighted by occurrences).")] = None,
    path: PathOpt = None,
    text_column: TextColumnOpt = None,
    label_column: LabelColumnOpt = None,
    skip_bad_rows: SkipBadRowsOpt = False,
    limit: LimitOpt = None,
    max_tokens: MaxTokensOpt = 128,
    grid: Annotated[Optional[str], typer.Option(
        "--grid", help="Comma-separated row counts for the rank curve (default: 20 evenly spaced up to --rows).")] = None,
    response: Annotated[Optional[str], typer.Option(
        "--response", help="Head to read (default: the decoding response of the checkpoint).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Contexts per reward-model call.")] = 16,
    save_rows: Annotated[bool, typer.Option("--save-rows", help="Also keep the N × |V| matrix as OUT/rows.npy (float32).")] = False,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
) -> None:
    """Numerical rank of N full rows of R̂ from a checkpoint, as a curve over row counts (Figures 1, 7; App. C.4)."""
    from ..device import resolve_device
    from ..io import atomic_path, write_json
    from ..plots import plot_rank_curves
    from ..rank import rank_curve
    from ..models import load_reward_model
    from ..models.rows import reward_rows

    if rows < 1:
        raise UserError(f"--rows {rows}: must be at least 1")
    counts = _parse_grid(grid, rows)
    target = resolve_device(device)
    model = load_reward_model(checkpoint, device=target)
    head = response or model.decode_response
    model.response_index(head)
    if omega is not None:
        contexts, source = _contexts_from_omega(omega, model, rows, seed), str(omega)
    else:
        contexts, source = _contexts_from_data(data, model, rows, seed, path=path, text_column=text_column,
                                               label_column=label_column, skip_bad_rows=skip_bad_rows, limit=limit,
                                               max_tokens=max_tokens), data
    start = time.perf_counter()
    matrix = reward_rows(model, contexts, response=head, batch_size=batch_size, progress=True)
    seconds = time.perf_counter() - start
    curve = rank_curve(matrix, counts, device=target)
    last = curve.row(-1, named=True)
    summary = {
        "model": model.kind, "checkpoint": str(checkpoint), "response": head, "data": source,
        "d": model.hidden_size, "vocab_size": model.vocab_size, "rows": int(last["rows"]), "rank": int(last["rank"]),
        "cutoff": float(last["cutoff"]), "mean_context_tokens": float(np.mean([len(c) for c in contexts])),
        "seconds": round(seconds, 3), "candidates_per_second": round(rows * model.vocab_size / max(seconds, 1e-9)),
        "seed": seed,
    }
    with atomic_path(out) as tmp:
        tmp.mkdir()
        curve.select("rows", "rank").write_csv(tmp / "rank_curve.csv")
        write_json(tmp / "model_rank.json", summary)
        plot_rank_curves(curve.with_columns(model=np.full(curve.height, model.kind.upper())), tmp / "rank_curve.png",
                         d=model.hidden_size, vocab_size=model.vocab_size)
        if save_rows:
            np.save(tmp / "rows.npy", matrix)
    console.print(", ".join(f"{r}→{k}" for r, k in zip(curve["rows"], curve["rank"])))
    console.print(f"{model.kind.upper()} {checkpoint}: numerical rank {summary['rank']} of {summary['rows']} rows "
                  f"(d = {summary['d']}, |V| = {summary['vocab_size']:,}, cutoff {summary['cutoff']:.3g}); "
                  f"{summary['candidates_per_second']:,} candidates/s; wrote {out}")


def capacity_test_command(
    n: Annotated[int, typer.Option("--n", help="Size of the identity block R_I = I(n) (n distinct contexts × n tokens).")] = 1024,
    model: Annotated[str, typer.Option("--model", help="rad, arm or both.")] = "both",
    backbone: Annotated[str, typer.Option(
        "--backbone", help="'tiny' (a small random GPT-2 of hidden size --d) or a causal-LM hub name / folder.")] = "tiny",
    d: Annotated[int, typer.Option("--d", help="Hidden size of the tiny backbone (ignored for other backbones).")] = 64,
    steps: Annotated[int, typer.Option("--steps", help="Adam steps per model.")] = 1000,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate.")] = 3e-3,
    batch_pairs: Annotated[int, typer.Option("--batch-pairs", help="Block entries per step (all when n² is smaller).")] = 8192,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write OUT/capacity.json (atomically).")] = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
) -> None:
    """Fit R_I = I(n) with ARM and/or RAD and compare the MSE with ARM's bound (n − d)/n² (App. C.1–C.2)."""
    from ..device import resolve_device
    from ..io import write_json
    from ..models.capacity import capacity_model, fit_identity, identity_block
    from ..progress import make_progress

    kinds = {"both": ("arm", "rad"), "arm": ("arm",), "rad": ("rad",)}.get(model)
    if kinds is None:
        raise UserError(f"--model {model}: expected rad, arm or both")
    if n < 2:
        raise UserError(f"--n {n}: must be at least 2")
    target = resolve_device(device)
    report: dict = {"n": n}
    with make_progress() as bar:
        for kind in kinds:
            reward_model = capacity_model(kind, n=n, backbone=backbone, d=d, seed=seed).to(target)
            block = identity_block(n, reward_model.vocab_size, exclude=(reward_model.bos_token_id,), random_state=seed)
            task = bar.add_task(f"{kind.upper()} on I({n})", total=steps, info="")
            result = fit_identity(reward_model, block, steps=steps, lr=lr, batch_pairs=batch_pairs, random_state=seed,
                                  callback=lambda step, _, loss: bar.update(task, completed=step + 1, info=f"loss {loss:.2e}"))
            report.update(d=result.d, bound=result.bound, backbone=backbone, steps=steps, lr=lr)
            report[kind] = {"mse": result.mse, "rank": result.rank, "final_loss": float(result.losses[-1]),
                            "seconds": round(result.seconds, 2)}
    report = {key: report[key] for key in ("n", "d", "bound", *kinds, "backbone", "steps", "lr")}
    if out is not None:
        write_json(Path(out) / "capacity.json", report)
    for kind in kinds:
        verdict = "above" if report[kind]["mse"] >= report["bound"] else "below"
        console.print(f"{kind.upper()}: MSE {report[kind]['mse']:.3g} ({verdict} the ARM bound (n − d)/n² = "
                      f"{report['bound']:.3g}), numerical rank {report[kind]['rank']} of I({n}) with d = {report['d']}")
    if out is not None:
        console.print(f"wrote {Path(out) / 'capacity.json'}")


def _parse_grid(grid: str | None, rows: int) -> list[int]:
    from ..rank import default_grid

    if grid is None:
        return default_grid(rows)
    try:
        counts = sorted({int(part) for part in grid.split(",") if part.strip()})
    except ValueError:
        raise UserError(f"--grid {grid}: expected comma-separated integers such as 100,200,500") from None
    if not counts or counts[0] < 1 or counts[-1] > rows:
        raise UserError(f"--grid {grid}: row counts must lie in 1..{rows} (--rows)")
    return counts if counts[-1] == rows else [*counts, rows]


def _contexts_from_data(data, model, n, seed, **options) -> list[np.ndarray]:
    from ..datasets import load_dataset
    from ..prefixes import sample_contexts
    from ..tokenization import encode_texts

    if model.tokenizer is None:
        raise UserError("the checkpoint holds no tokenizer files, so its contexts cannot be tokenised (use --omega)")
    dataset = load_dataset(data, path=options["path"], text_column=options["text_column"],
                           label_columns=options["label_column"], skip_bad_rows=options["skip_bad_rows"],
                           limit=options["limit"], random_state=seed)
    corpus = encode_texts(dataset.texts, model.tokenizer, max_tokens=options["max_tokens"])
    if int(corpus.offsets[-1]) == 0:
        raise UserError(f"--data {data}: the texts have no tokens under the checkpoint's tokenizer")
    return sample_contexts(corpus, n, random_state=seed)


def _contexts_from_omega(path, model, n, seed) -> list[np.ndarray]:
    """Rows of Ω drawn i.i.d. with probability ∝ their occurrences: i.i.d. prefixes of D_f."""
    from ..omega import Omega

    omega = Omega.load(path)
    if omega.vocab_size > model.vocab_size:
        raise UserError(f"--omega {path}: its vocabulary ({omega.vocab_size}) is larger than the checkpoint's "
                        f"({model.vocab_size}); Ω and the model must share a tokenizer")
    occurrences = np.asarray(omega.counts().sum(axis=1), dtype=np.float64).ravel()
    picks = np.random.default_rng(seed).choice(omega.n_rows, size=n, p=occurrences / occurrences.sum())
    return [np.asarray(omega.context(int(i)), dtype=np.int64) for i in picks]


def register(app: typer.Typer) -> None:
    app.command("model-rank")(model_rank_command)
    app.command("capacity-test")(capacity_test_command)
