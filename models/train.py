"""Training ARM and RAD with teacher forcing (§2.2, §3.3, App. D).

One optimiser step sees ``batch_size`` utterances (micro-batches with gradient accumulation
when memory is short); every prefix u_{1:t} of an utterance is scored in one pass and the loss
is eq. 9 (responses, weights λ(t, l)), eq. 13 (BCE) or eq. 10 (a frozen RAD teacher's r̃ of
every prefix, computed in one teacher pass), plus ``reg_weight`` × eq. 11 for ARM. Optimiser
as App. D: AdamW β = (0.9, 0.95), ε = 1e-12, weight decay 0.02, batch 100; linear warm-up.

The output folder always holds a loadable reward model: the latest checkpoint while training
(``trainer_state.pt`` next to it makes ``resume=True`` continue exactly where it stopped), the
final model afterwards, plus ``training.json`` with the per-epoch history.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from rankkit.device import resolve_device
from rankkit.errors import UserError
from rankkit.io import atomic_path, read_json, write_json
from rankkit.tokenization import TokenizedCorpus

from .data import TeacherForcedBatch, iterate_batches, make_batch, token_index
from .io import check_output_folder, load_weights, write_reward_model
from .losses import LOSSES, token_regulariser, weighted_squared_loss

logger = logging.getLogger(__name__)

PRETRAINED_LR = 1e-5   # App. E, for pretrained backbones
TINY_LR = 3e-3         # a randomly initialised tiny GPT-2 needs a far larger step to learn in minutes
ARM_REG_WEIGHT = 0.1   # eq. 11 is on by default for ARM (§5.1); the paper gives no coefficient
STATE_NAME = "trainer_state.pt"
LOG_NAME = "training.json"


def default_lr(backbone: str) -> float:
    """The learning rate used when none is given: 1e-5 (App. E) for real backbones, more for ``tiny``."""
    return TINY_LR if backbone == "tiny" else PRETRAINED_LR


@dataclass(frozen=True)
class TrainingResult:
    """What a training run did.

    Attributes
    ----------
    history : tuple of dict, one per epoch: ``epoch``, ``step``, ``train_loss``, ``val_mse``,
        ``mean_mse`` (the mean-only baseline) and, when distilling, ``teacher_mse``.
    val_mse, mean_mse : float, of the last epoch: λ-weighted MSE over all validation prefixes
        (σ(r̂) for a BCE model), and the same for predicting the training mean of each response.
    tokens_per_s : float, training tokens per second of the steps run in this call.
    n_train, n_val : int, utterances; ``n_empty`` were dropped for having no tokens.
    steps : int, optimiser steps in total; ``lr`` and ``reg_weight`` as used.
    out : Path or None, the folder holding the model.
    """

    history: tuple
    val_mse: float
    mean_mse: float
    tokens_per_s: float
    n_train: int
    n_val: int
    n_empty: int
    steps: int
    lr: float
    reg_weight: float
    out: Path | None


def split_rows(n: int, *, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split of ``range(n)`` into (train rows, validation rows); both non-empty."""
    if not 0 < val_fraction < 1:
        raise UserError(f"--val-fraction {val_fraction}: must be strictly between 0 and 1")
    if n < 2:
        raise UserError(f"the data set has {n} usable utterance(s); training needs at least 2")
    order = np.random.default_rng([seed, 0]).permutation(n)
    n_val = min(n - 1, max(1, round(val_fraction * n)))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def train_reward_model(model, corpus: TokenizedCorpus, labels: np.ndarray, *, teacher=None, epochs: int = 3,
                       lr: float = PRETRAINED_LR, batch_size: int = 100, micro_batch_size: int | None = None,
                       warmup: int = 0, clip: float | None = 1.0, weight_decay: float = 0.02,
                       reg_weight: float | None = None, val_fraction: float = 0.1, seed: int = 0,
                       device: str = "auto", out: str | os.PathLike | None = None, checkpoint_every: int = 0,
                       resume: bool = False, progress: bool = False,
                       callback: Callable[[int, float, float], None] | None = None) -> TrainingResult:
    """Train ``model`` (ARM or RAD) on prefixes of ``corpus`` with responses ``labels``.

    Minimises, per optimiser batch, [Σ w·ℓ + reg_weight · Σ w·Δr̂(e(v')|h)²] / Σ w over all prefix
    positions, where ℓ is eq. 9 (``model.loss_type == "mse"``, w = λ(t, l)), eq. 13 (``"bce"``)
    or, with a ``teacher``, eq. 10 against the teacher's r̃ of the same prefix (w = 1), and the
    last term is eq. 11 with one v' ~ U(V) per position (ARM only).

    Parameters
    ----------
    model : ARM or RAD, trained in place (embeddings stay frozen).
    corpus : TokenizedCorpus of n utterances; empty ones are dropped.
    labels : ndarray of shape (n, R), responses in the order of ``model.responses``.
    teacher : RAD or None, a frozen teacher with a head for every response of ``model``.
    epochs, lr, batch_size, warmup, clip, weight_decay : the optimisation (App. D); ``warmup`` is
        a number of steps of linear warm-up, ``clip`` a gradient-norm bound (None: off).
    micro_batch_size : int or None, utterances per forward pass (gradient accumulation); lower it
        when memory is short. Default ``batch_size``.
    reg_weight : float or None, coefficient of eq. 11; default ``ARM_REG_WEIGHT`` for ARM, 0 for RAD.
    val_fraction : float, share of utterances held out for the per-epoch validation MSE.
    seed : int, all randomness (split, shuffles, sampled tokens, dropout) flows from it; the
        global torch RNG is left as it was.
    device : ``auto``, ``cpu`` or ``cuda``; bf16 autocast on CUDA only.
    out : folder for checkpoints and the final model (None: keep nothing).
    checkpoint_every : int, write a checkpoint every this many steps (0: only per epoch end).
    resume : bool, continue from ``out``'s checkpoint when there is one.
    progress : bool, show a bar with the loss and tokens/s.
    callback : called as ``callback(step, elapsed_seconds, loss)`` after every step.

    Returns
    -------
    TrainingResult
    """
    labels = _check_inputs(model, corpus, labels, teacher=teacher, epochs=epochs, lr=lr, batch_size=batch_size)
    reg_weight = (ARM_REG_WEIGHT if model.kind == "arm" else 0.0) if reg_weight is None else float(reg_weight)
    if reg_weight < 0 or (reg_weight > 0 and model.kind != "arm"):
        raise UserError(f"--reg-weight {reg_weight}: the regulariser (eq. 11) is ARM's and must be non-negative")
    keep = np.flatnonzero(corpus.lengths > 0)
    n_empty = len(corpus) - len(keep)
    corpus, labels = corpus.select(keep), labels[keep]
    train_rows, val_rows = split_rows(len(corpus), val_fraction=val_fraction, seed=seed)
    means = labels[train_rows].mean(axis=0)
    device = resolve_device(device)
    model.to(device)
    teacher_heads = _teacher_heads(model, teacher, device)
    micro = micro_batch_size or batch_size
    autocast = torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda"))
    # eq. 10: the frozen teacher scores every prefix once, not once per epoch
    teacher_scores = (None if teacher is None else
                      score_prefixes(teacher, corpus, teacher_heads, batch_size=micro, device=device, autocast=autocast))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), eps=1e-12, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / max(1, warmup)))
    n_batches = math.ceil(len(train_rows) / batch_size)
    out = None if out is None else Path(out)
    if out is not None:
        check_output_folder(out)
    state = {"step": 0, "history": [], "sampler": None, "torch_rng": None}
    if resume and out is not None and (out / STATE_NAME).is_file():
        state = _restore(out, model, optimizer, scheduler)
    sampler = torch.Generator().manual_seed(seed)
    fit_loss = LOSSES["mse" if teacher is not None else model.loss_type]

    def save(step_history):
        if out is None:
            return
        trainer_state = {"step": step, "history": step_history, "sampler": sampler.get_state(),
                         "torch_rng": torch.get_rng_state(), "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict(), "kind": model.kind}
        with atomic_path(out) as tmp:
            tmp.mkdir()
            write_reward_model(model, tmp)
            torch.save(trainer_state, tmp / STATE_NAME)
            write_json(tmp / LOG_NAME, {"history": step_history, "lr": lr, "reg_weight": reg_weight,
                                        "n_train": len(train_rows), "n_val": len(val_rows), "steps": step})

    history = list(state["history"])
    step, tokens, seconds = state["step"], 0, 0.0
    with torch.random.fork_rng(devices=[torch.device(device).index or 0] if device.startswith("cuda") else []):
        torch.manual_seed(seed)
        if state["torch_rng"] is not None:
            torch.set_rng_state(state["torch_rng"])
            sampler.set_state(state["sampler"])
        bar, task = _start_bar(progress, model.kind, epochs * n_batches, step)
        try:
            for epoch in range(step // n_batches, epochs):
                model.train()
                order = np.random.default_rng([seed, 1, epoch]).permutation(train_rows)
                losses = []
                for index, batch in enumerate(iterate_batches(corpus, labels, order, batch_size=batch_size,
                                                              micro_batch_size=micro, teacher=teacher_scores)):
                    if epoch * n_batches + index < step:
                        continue  # already done before the resume
                    started = time.perf_counter()
                    loss = _step(model, [b.to(device) for b in batch], fit_loss=fit_loss, reg_weight=reg_weight,
                                 sampler=sampler, autocast=autocast)
                    if clip:
                        torch.nn.utils.clip_grad_norm_(params, clip)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    step += 1
                    seconds += time.perf_counter() - started
                    tokens += sum(b.n_tokens for b in batch)
                    losses.append(loss)
                    if bar is not None:
                        bar.update(task, completed=step, info=f"loss {loss:.4f} · {tokens / max(seconds, 1e-9):,.0f} tok/s")
                    if callback is not None:
                        callback(step, seconds, loss)
                    if checkpoint_every and step % checkpoint_every == 0 and step % n_batches:
                        save(history)
                scores = evaluate(model, corpus, labels, val_rows, means=means, teacher_scores=teacher_scores,
                                  batch_size=micro, device=device)
                record = {"epoch": epoch + 1, "step": step, "train_loss": float(np.mean(losses)) if losses else math.nan,
                          **scores}
                history.append(record)
                logger.info("epoch %d: %s", epoch + 1, record)
                save(history)
        finally:
            if bar is not None:
                bar.stop()
    model.eval()
    last = history[-1] if history else evaluate(model, corpus, labels, val_rows, means=means,
                                                teacher_scores=teacher_scores, batch_size=micro, device=device)
    return TrainingResult(tuple(history), float(last["val_mse"]), float(last["mean_mse"]),
                          tokens / seconds if seconds else math.nan, len(train_rows), len(val_rows), n_empty,
                          step, float(lr), reg_weight, out)


def _step(model, batch: list[TeacherForcedBatch], *, fit_loss, reg_weight: float, sampler: torch.Generator,
          autocast) -> float:
    """Forward and backward over the micro-batches of one optimiser batch; returns the batch loss."""
    weights = [b.mask.float() if b.teacher is not None else b.prefix_weight for b in batch]
    total = sum(float(w.sum()) for w in weights)
    value = 0.0
    for micro, weight in zip(batch, weights):
        sampled = None
        if reg_weight:
            sampled = torch.randint(0, model.vocab_size, micro.ids.shape, generator=sampler).to(micro.ids.device)
        with autocast:
            scores, sampled_delta = model.prefix_rewards(micro.ids, sampled=sampled)
        targets = micro.teacher if micro.teacher is not None else micro.position_targets()
        mask = micro.mask
        loss = fit_loss(scores[mask], targets[mask], weight[mask])
        if reg_weight:
            loss = loss + reg_weight * token_regulariser(sampled_delta[mask], weight[mask])
        loss = loss / total
        loss.backward()
        value += float(loss.detach())
    return value


@torch.no_grad()
def score_prefixes(teacher, corpus: TokenizedCorpus, heads: list[int], *, batch_size: int, device: str,
                   autocast=contextlib.nullcontext()) -> np.ndarray:
    """The teacher's r̃ of every prefix of ``corpus`` (eq. 10), heads ``heads``: shape (total_tokens, R),
    aligned with ``corpus.ids``; one teacher-forced pass per utterance."""
    out = np.empty((len(corpus.ids), len(heads)), dtype=np.float32)
    order = np.argsort(corpus.lengths, kind="stable")  # similar lengths together: little padding
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        batch = make_batch(corpus, np.zeros((len(corpus), 0)), rows).to(device)
        with autocast:
            scores, _ = teacher.prefix_rewards(batch.ids)
        out[token_index(corpus, rows)] = scores[..., heads][batch.mask].float().cpu().numpy()
    return out


@torch.no_grad()
def evaluate(model, corpus: TokenizedCorpus, labels: np.ndarray, rows: np.ndarray, *, means: np.ndarray,
             teacher_scores: np.ndarray | None = None, batch_size: int = 100, device: str = "cpu") -> dict:
    """Validation MSE over all prefixes of the utterances ``rows``, λ-weighted, averaged over responses.

    Returns ``val_mse`` (prediction σ(r̂) for BCE models, r̂ otherwise), ``mean_mse`` (predicting
    ``means`` for every prefix) and, given ``teacher_scores`` (:func:`score_prefixes`),
    ``teacher_mse`` (the student against the teacher's r̃).
    """
    was_training = model.training
    model.eval()
    sums = {"val_mse": 0.0, "mean_mse": 0.0, "teacher_mse": 0.0}
    total = 0.0
    mean_scores = torch.as_tensor(means, dtype=torch.float32, device=device)
    for batch in iterate_batches(corpus, labels, rows, batch_size=batch_size, micro_batch_size=batch_size,
                                 teacher=teacher_scores):
        batch = batch[0].to(device)
        scores, _ = model.prefix_rewards(batch.ids)
        predictions = torch.sigmoid(scores.float()) if model.loss_type == "bce" else scores.float()
        mask, weight, targets = batch.mask, batch.prefix_weight[batch.mask], batch.position_targets()[batch.mask]
        sums["val_mse"] += float(weighted_squared_loss(predictions[mask], targets, weight))
        sums["mean_mse"] += float(weighted_squared_loss(mean_scores.expand_as(targets), targets, weight))
        if batch.teacher is not None:
            sums["teacher_mse"] += float(weighted_squared_loss(scores[mask], batch.teacher[mask], weight))
        total += float(weight.sum()) * len(model.responses)
    model.train(was_training)
    if teacher_scores is None:
        del sums["teacher_mse"]
    return {key: value / total for key, value in sums.items()}


def _check_inputs(model, corpus, labels, *, teacher, epochs, lr, batch_size) -> np.ndarray:
    labels = np.asarray(labels, dtype=np.float64)
    if labels.ndim == 1:
        labels = labels[:, None]
    if labels.shape != (len(corpus), len(model.responses)):
        raise UserError(f"labels have shape {labels.shape}, expected ({len(corpus)}, {len(model.responses)}) "
                        f"for responses {', '.join(model.responses)}")
    if not np.isfinite(labels).all():
        raise UserError("labels hold NaN or infinite values")
    if model.loss_type == "bce" and teacher is None and ((labels < 0) | (labels > 1)).any():
        raise UserError("--loss bce needs responses in [0, 1]")
    for name, value in (("--epochs", epochs), ("--batch-size", batch_size)):
        if value < 1:
            raise UserError(f"{name} {value}: must be at least 1")
    if not lr > 0:
        raise UserError(f"--lr {lr}: must be positive")
    return labels


def _teacher_heads(model, teacher, device) -> list[int] | None:
    """Indices of the teacher's heads for the student's responses; the teacher gets frozen."""
    if teacher is None:
        return None
    if teacher.kind != "rad":
        raise UserError("--distill-from: the teacher must be a RAD checkpoint (eq. 10)")
    if teacher.loss_type != model.loss_type:
        raise UserError(f"--distill-from: the teacher was trained with --loss {teacher.loss_type}; "
                        f"train the student with the same loss (got {model.loss_type})")
    if teacher.vocab_size != model.vocab_size:
        raise UserError(f"--distill-from: the teacher's vocabulary ({teacher.vocab_size}) differs from the student's ({model.vocab_size})")
    missing = [r for r in model.responses if r not in teacher.responses]
    if missing:
        raise UserError(f"--distill-from: the teacher has no head for response {missing[0]!r} (it has {', '.join(teacher.responses)})")
    teacher.to(device).eval().requires_grad_(False)
    return [teacher.responses.index(r) for r in model.responses]


def _restore(out: Path, model, optimizer, scheduler) -> dict:
    """Load the checkpoint in ``out`` into the model, optimizer and scheduler; returns the trainer state."""
    state = torch.load(out / STATE_NAME, map_location="cpu", weights_only=True)
    if state.get("kind") != model.kind:
        raise UserError(f"--resume: {out} holds a {str(state.get('kind')).upper()} checkpoint, not {model.kind.upper()}")
    load_weights(model, out)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return state


def _start_bar(enabled: bool, kind: str, total: int, completed: int):
    if not enabled:
        return None, None
    from rankkit.progress import make_progress

    bar = make_progress()
    bar.start()
    return bar, bar.add_task(f"training {kind.upper()}", total=total, completed=completed, info="")


def read_training_log(out: str | os.PathLike) -> dict:
    """The ``training.json`` of a training output folder."""
    return read_json(Path(out) / LOG_NAME)


__all__ = ["train_reward_model", "evaluate", "split_rows", "default_lr", "TrainingResult", "read_training_log"]
