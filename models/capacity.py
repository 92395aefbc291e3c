"""The identity capacity test (App. C.1–C.2): can a reward model fit a reward matrix of rank > d?

The data set is a fully observed n × n block R_I = I(n) of the reward matrix: n distinct contexts
x'_i (one token each) × n candidate tokens v_j, with y = 1 when i = j and 0 elsewhere. ARM's block is
H(w1ᵀ + W E) of rank ≤ d, so by Eckart–Young its mean squared error is at least that of the best
rank-d approximation of I(n),

    MSE_ARM ≥ (n − d) / n²   (App. C.2; 0.00024 for n = 1024, d = 768),

while RAD, which reads v as an input, can go far below it (MSE < 1e-7 in App. C.1).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from rankkit.errors import UserError
from rankkit.rank import numerical_rank

RESPONSE = "identity"


@dataclass(frozen=True)
class IdentityBlock:
    """Contexts x'_i = [contexts[i]] and candidates v_j = candidates[j] whose rewards form I(n).

    Attributes
    ----------
    contexts : ndarray of shape (n,), int64, distinct token ids.
    candidates : ndarray of shape (n,), int64, distinct token ids.
    """

    contexts: np.ndarray
    candidates: np.ndarray

    @property
    def n(self) -> int:
        return len(self.contexts)

    @property
    def target(self) -> np.ndarray:
        """R_I = I(n), float32."""
        return np.eye(self.n, dtype=np.float32)


@dataclass(frozen=True)
class CapacityResult:
    """Outcome of fitting one model to R_I.

    Attributes
    ----------
    model : "arm" or "rad"
    n, d : block size and the model's hidden size
    mse : mean over the n² entries of (R̂ − I)², read with the model's ``rewards``
    bound : ARM's lower bound (n − d)/n² (0 when n ≤ d)
    rank : numerical rank of the learned n × n block (App. C.4)
    losses : ndarray of shape (steps,), the training loss per step
    seconds : training time
    """

    model: str
    n: int
    d: int
    mse: float
    bound: float
    rank: int
    losses: np.ndarray = field(repr=False)
    seconds: float = 0.0


def arm_bound(n: int, d: int) -> float:
    """(n − d)/n²: the least MSE of any rank-d approximation of I(n) (Eckart–Young; App. C.2)."""
    return max(n - d, 0) / n**2


def identity_block(n: int, vocab_size: int, *, exclude: tuple[int, ...] = (), random_state=0) -> IdentityBlock:
    """Draw n distinct context tokens and n distinct candidate tokens from the vocabulary.

    The 2n ids are distinct from each other and from ``exclude`` (the BOS token), so no diagonal
    pair shares a token and the model cannot read i = j off token identity: it has to store the
    n² entries.

    Parameters
    ----------
    n : int, block size (n > d makes the test meaningful).
    vocab_size : int, |V|; needs 2n + len(exclude) ≤ |V|.
    exclude : token ids never used.
    random_state : int or numpy.random.Generator
    """
    allowed = np.setdiff1d(np.arange(vocab_size), np.asarray(exclude, dtype=np.int64))
    if n < 1 or 2 * n > len(allowed):
        raise UserError(f"--n {n}: the identity block needs 2n distinct tokens but the vocabulary has {len(allowed)} usable ids")
    ids = np.random.default_rng(random_state).choice(allowed, size=2 * n, replace=False).astype(np.int64)
    return IdentityBlock(ids[:n], ids[n:])


def block_rows(model, block: IdentityBlock, rows: torch.Tensor) -> torch.Tensor:
    """R̂[x'_i, v_j] for the contexts i in ``rows`` and every candidate j: shape (len(rows), n).

    Goes through the model's own ``rewards`` (ARM: one pass and a gather; RAD: the n candidates
    batched over each context's cached key/values), differentiably unless called under
    ``torch.inference_mode``.
    """
    device = model.device
    contexts = torch.as_tensor(block.contexts, device=device)[rows][:, None]
    candidates = torch.as_tensor(block.candidates, device=device).expand(len(rows), -1)
    options = {"chunk_rows": len(rows) * block.n} if model.kind == "rad" else {}
    return model.rewards(contexts, candidates, RESPONSE, **options)


def learned_block(model, block: IdentityBlock, *, pairs_per_call: int = 8192) -> np.ndarray:
    """R̂ on the whole block, n × n float32, in calls of about ``pairs_per_call`` entries (bounded memory)."""
    step = max(1, pairs_per_call // block.n)
    with torch.inference_mode():
        parts = [block_rows(model, block, torch.arange(first, min(first + step, block.n)))
                 for first in range(0, block.n, step)]
    return torch.cat(parts).float().cpu().numpy()


def fit_identity(model, block: IdentityBlock, *, steps: int = 1000, lr: float = 3e-3, batch_pairs: int = 8192,
                 random_state=0, callback: Callable[[int, float, float], None] | None = None) -> CapacityResult:
    """Train ``model`` (ARM or RAD with a response named ``"identity"``) on R_I by squared loss.

    Each step is one Adam step (the paper's β = (0.9, 0.95), ε = 1e-12; the learning rate decays
    linearly from ``lr`` to 0) on the mean squared error
    over ⌊batch_pairs / n⌋ whole rows of the block drawn uniformly without replacement (all n rows
    when n² ≤ batch_pairs), an unbiased estimate of the block's MSE. The embeddings stay frozen,
    as in training (App. D).

    Parameters
    ----------
    model : ARM or RAD, on the device to train on.
    block : IdentityBlock
    steps : int, Adam steps.
    lr : float, learning rate.
    batch_pairs : int, block entries per step (rounded down to whole rows, at least one).
    random_state : int or numpy.random.Generator, for the entry draws.
    callback : callable(step, elapsed_seconds, loss), called after every step.

    Returns
    -------
    CapacityResult
    """
    if steps < 1 or lr <= 0 or batch_pairs < 1:
        raise UserError(f"steps={steps}, lr={lr}, batch_pairs={batch_pairs}: all must be positive")
    n, d = block.n, model.hidden_size
    rng = np.random.default_rng(random_state)
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=lr, betas=(0.9, 0.95), eps=1e-12)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / steps)
    rows_per_step = min(n, max(1, batch_pairs // n))
    target = torch.eye(n, device=model.device)
    losses = np.empty(steps)
    model.train()
    start = time.perf_counter()
    for step in range(steps):
        rows = torch.randperm(n, generator=generator)[:rows_per_step].to(model.device)
        loss = torch.mean((block_rows(model, block, rows) - target[rows]) ** 2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses[step] = loss.item()
        if callback is not None:
            callback(step, time.perf_counter() - start, losses[step])
    seconds = time.perf_counter() - start
    model.eval()
    R = learned_block(model, block, pairs_per_call=batch_pairs)
    mse = float(np.mean((R.astype(np.float64) - block.target) ** 2))
    return CapacityResult(model.kind, n, d, mse, arm_bound(n, d), numerical_rank(R, device="cpu").rank, losses, seconds)


def capacity_model(kind: str, *, n: int, backbone: str = "tiny", d: int = 64, n_layer: int = 2, n_head: int = 4,
                   seed: int = 0):
    """A fresh ARM or RAD with one response, ``"identity"``, for a block of size n.

    ``backbone="tiny"`` builds a random GPT-2 of hidden size d over a vocabulary of 2n + 1 tokens
    (the last one is BOS); any other name or folder loads that causal LM (``d`` is then its own).
    """
    from .arm import ARM
    from .backbone import build_tiny_backbone, load_backbone
    from .rad import RAD

    classes = {"arm": ARM, "rad": RAD}
    if kind not in classes:
        raise UserError(f"--model {kind}: expected arm, rad or both")
    if backbone == "tiny":
        if d < 1 or d % n_head:
            raise UserError(f"--d {d}: must be a positive multiple of the {n_head} attention heads")
        causal_lm = build_tiny_backbone(2 * n + 1, n_layer=n_layer, n_embd=d, n_head=n_head, seed=seed)
    else:
        causal_lm = load_backbone(backbone)
    config = causal_lm.config
    bos = next((t for t in (config.bos_token_id, config.eos_token_id) if t is not None), config.vocab_size - 1)
    return classes[kind](causal_lm, responses=(RESPONSE,), bos_token_id=int(bos), seed=seed)
