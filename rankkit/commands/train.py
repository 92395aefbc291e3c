"""``rankkit train arm|rad``: train an ARM or RAD reward model and save it as a reloadable folder.

Examples::

    rankkit train arm --data synthetic --backbone tiny --out runs/arm
    rankkit train rad --data synthetic --backbone tiny --out runs/rad
    rankkit train arm --data synthetic --backbone tiny --distill-from runs/rad --out runs/arm-distil
    rankkit train arm --data sst2 --path ../shared/data/sst2/train.tsv --backbone gpt2 --out runs/sst2-arm
    rankkit train arm --data jigsaw --path civil.csv --backbone gpt2 --decode-response toxicity --out runs/jigsaw
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from ..errors import UserError
from .options import (DeviceOpt, LabelColumnOpt, LimitOpt, MaxTokensOpt, OutDirOpt, PathOpt, SeedOpt, SkipBadRowsOpt,
                      TextColumnOpt)

KINDS = ("arm", "rad")


def train_command(
    kind: Annotated[str, typer.Argument(help="arm (low-rank, eq. 6–8) or rad (candidate as input).")],
    out: OutDirOpt = ...,
    backbone: Annotated[str, typer.Option(
        "--backbone", help="AutoModelForCausalLM hub name (gpt2) or local folder, or 'tiny' (a small random GPT-2).")] = ...,
    data: Annotated[str, typer.Option(
        "--data", help="synthetic (embedded default), jigsaw, sst2, amazon_polarity, or a CSV/TSV/JSONL/parquet file.")] = "synthetic",
    path: PathOpt = None,
    text_column: TextColumnOpt = None,
    label_column: LabelColumnOpt = None,
    skip_bad_rows: SkipBadRowsOpt = False,
    limit: LimitOpt = None,
    response: Annotated[Optional[list[str]], typer.Option(
        "--response", help="Train a head for this response (repeatable); default: all responses of the data set.")] = None,
    decode_response: Annotated[Optional[str], typer.Option(
        "--decode-response", help="The response used at decoding time (default: the first).")] = None,
    tokenizer: Annotated[Optional[str], typer.Option(
        "--tokenizer", help="HF tokenizer (default: the teacher's, else the data set's (synthetic), else the backbone's).")] = None,
    distill_from: Annotated[Optional[Path], typer.Option(
        "--distill-from", help="A trained RAD folder: distil its scores of every prefix (eq. 10) instead of the responses.")] = None,
    reg_weight: Annotated[Optional[float], typer.Option(
        "--reg-weight", help="Weight of the ARM regulariser eq. 11 (default: 0.1 for ARM; 0 turns it off).")] = None,
    loss: Annotated[str, typer.Option("--loss", help="mse (eq. 9) or bce (eq. 13, sigmoid at decoding).")] = "mse",
    head: Annotated[str, typer.Option("--head", help="ARM head: linear (eq. 7) or mlp (eq. 14).")] = "linear",
    no_baseline: Annotated[bool, typer.Option("--no-baseline", help="ARM without the baseline term ⟨h, w⟩.")] = False,
    epochs: Annotated[int, typer.Option("--epochs", help="Passes over the training utterances.")] = 5,
    lr: Annotated[Optional[float], typer.Option(
        "--lr", help="Learning rate (default: 1e-5 (App. E) for real backbones, 3e-3 for tiny).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Utterances per optimiser step (App. D: 100).")] = 100,
    micro_batch_size: Annotated[Optional[int], typer.Option(
        "--micro-batch-size", help="Utterances per forward pass; lower it when memory is short (gradient accumulation).")] = None,
    max_tokens: MaxTokensOpt = 128,
    warmup: Annotated[int, typer.Option("--warmup", help="Steps of linear learning-rate warm-up.")] = 10,
    clip: Annotated[float, typer.Option("--clip", help="Clip the gradient norm at this value (0: off).")] = 1.0,
    val_fraction: Annotated[float, typer.Option("--val-fraction", help="Share of utterances held out for validation.")] = 0.1,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    checkpoint_every: Annotated[int, typer.Option(
        "--checkpoint-every", help="Also write a checkpoint every N steps (one is always written per epoch).")] = 0,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the checkpoint in --out.")] = False,
    threads: Annotated[Optional[int], typer.Option(
        "--threads", help="torch CPU threads (default: 1 for --backbone tiny (fastest for tiny models), else torch's choice).")] = None,
) -> None:
    """Train an ARM or RAD reward model with teacher forcing on a labelled data set (§2.2, §3.3)."""
    from ..datasets import load_dataset
    from ..models import ARM, RAD, load_reward_model
    from ..models.train import STATE_NAME, default_lr, train_reward_model
    from ..tokenization import encode_texts, load_tokenizer

    console = Console(highlight=False, soft_wrap=True)
    kind = kind.lower()
    if kind not in KINDS:
        raise UserError(f"model {kind!r}: expected arm or rad")
    if kind == "rad" and (head != "linear" or no_baseline):
        raise UserError("--head and --no-baseline are ARM options; RAD has one linear head")
    if max_tokens < 1:
        raise UserError(f"--max-tokens {max_tokens}: must be at least 1")
    threads = 1 if threads is None and backbone == "tiny" else threads
    if threads is not None:
        if threads < 1:
            raise UserError(f"--threads {threads}: must be at least 1")
        import torch

        torch.set_num_threads(threads)
    teacher = load_reward_model(distill_from) if distill_from is not None else None
    dataset = load_dataset(data, path=path, text_column=text_column, label_columns=label_column,
                           skip_bad_rows=skip_bad_rows, limit=limit, random_state=seed)
    responses = tuple(response) if response else dataset.responses
    labels = dataset.labels(responses)
    tok = (load_tokenizer(tokenizer) if tokenizer else teacher.tokenizer if teacher is not None and teacher.tokenizer is not None
           else load_tokenizer(dataset.tokenizer_hint or _backbone_tokenizer(backbone)))
    corpus = encode_texts(dataset.texts, tok, max_tokens=max_tokens, progress=True)
    options = {"head": head, "baseline": not no_baseline} if kind == "arm" else {}
    model = (ARM if kind == "arm" else RAD).from_backbone(
        backbone, tokenizer=tok, responses=responses, decode_response=decode_response, loss_type=loss, seed=seed, **options)
    lr = default_lr(backbone) if lr is None else lr
    resuming = resume and (out / STATE_NAME).is_file()
    console.print(f"{kind.upper()} on {backbone} (d = {model.hidden_size}, |V| = {model.vocab_size:,}) · {dataset.name}: "
                  f"{len(dataset):,} texts · responses {', '.join(responses)} (decoding: {model.decode_response})"
                  + (f" · distilling {distill_from}" if teacher is not None else "")
                  + (f" · resuming from {out}" if resuming else " · --resume: no checkpoint yet, starting fresh" if resume else ""))
    result = train_reward_model(model, corpus, labels, teacher=teacher, epochs=epochs, lr=lr, batch_size=batch_size,
                                micro_batch_size=micro_batch_size, warmup=warmup, clip=clip or None,
                                reg_weight=reg_weight, val_fraction=val_fraction, seed=seed, device=device, out=out,
                                checkpoint_every=checkpoint_every, resume=resume, progress=True)
    console.print(f"lr {result.lr:g}" + (" (default for --backbone tiny; 1e-5 for pretrained backbones)" if backbone == "tiny" and lr == default_lr("tiny") else "")
                  + f" · reg weight {result.reg_weight:g} · {result.n_train:,} train / {result.n_val:,} validation utterances"
                  + (f" ({result.n_empty:,} empty after tokenising, dropped)" if result.n_empty else "")
                  + f" · {result.steps:,} steps")
    for record in result.history:
        console.print(f"epoch {record['epoch']}: train loss {record['train_loss']:.4f} · val MSE {record['val_mse']:.4f} "
                      f"(mean-only {record['mean_mse']:.4f})"
                      + (f" · MSE to teacher {record['teacher_mse']:.4f}" if "teacher_mse" in record else ""))
    console.print(f"validation MSE {result.val_mse:.4f} vs mean-only {result.mean_mse:.4f} "
                  f"({result.val_mse / result.mean_mse:.0%}) · {result.tokens_per_s:,.0f} tokens/s")
    console.print(f"saved to {out} (rankkit.models.load_reward_model)")


def _backbone_tokenizer(backbone: str) -> str:
    if backbone == "tiny":
        raise UserError("--backbone tiny needs --tokenizer (a folder or hub name) unless the data set names one")
    return backbone


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
