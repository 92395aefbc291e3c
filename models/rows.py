"""Full rows of the reward matrix R̂ (§3.1.2, App. C.4): R̂[x', v] = r̂(v|x') for every v in V.

A row of R̂_ARM is one backbone pass over ``[BOS] + x'`` and the product h(x')ᵀA (eq. 8); a row of
R̂_RAD is |V| reward-model calls r̂([x', v]), which :meth:`RAD.rewards` batches over the context's
cached key/values. :func:`reward_rows` drives either model over many contexts; :func:`reference_rad_rows`
is the slow, plain computation (every candidate re-encodes its whole context) that tests and the
benchmark compare against.
"""
from __future__ import annotations

import contextlib
import time
from typing import Sequence

import numpy as np
import torch

from rankkit.progress import make_progress

from .rad import CANDIDATE_ROWS



def reward_rows(model, contexts: Sequence[np.ndarray], *, response: str | None = None, batch_size: int = 16,
                chunk_rows: int = CANDIDATE_ROWS, progress: bool = False) -> np.ndarray:
    """The rows R̂[x', :] of ``model`` (ARM or RAD) for each context x', as float32.

    Contexts are grouped by length (so batches need no padding when lengths repeat) and the rows
    come back in the order given. On CUDA the backbone runs under bfloat16 autocast; the rows are
    float32 either way.

    Parameters
    ----------
    model : ARM or RAD, on the device to compute on.
    contexts : sequence of int arrays, the contexts x' (without BOS; empty for t = 1).
    response : str or None, the head to read (default: the model's decode response).
    batch_size : int, contexts per reward-model call.
    chunk_rows : int, RAD only: (context, candidate) rows per cached step; bounds memory at about
        chunk_rows · (|x'| + 2) key/value vectors per layer.
    progress : bool, show a bar with the candidates scored per second.

    Returns
    -------
    ndarray of shape (len(contexts), |V|), float32
    """
    if batch_size < 1 or chunk_rows < 1:
        raise ValueError(f"batch_size={batch_size}, chunk_rows={chunk_rows}: both must be positive")
    model.response_index(response)
    V = model.vocab_size
    order = sorted(range(len(contexts)), key=lambda i: len(contexts[i]))
    rows = np.empty((len(contexts), V), dtype=np.float32)
    options = {"chunk_rows": chunk_rows} if model.kind == "rad" else {}
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if model.device.type == "cuda"
                else contextlib.nullcontext())
    bar = make_progress() if progress else None
    with torch.inference_mode(), autocast, (bar or contextlib.nullcontext()):
        task = bar.add_task(f"{model.kind.upper()} rows", total=len(contexts), info="") if bar else None
        start = time.perf_counter()
        for first in range(0, len(order), batch_size):
            batch = order[first:first + batch_size]
            ids, mask = left_pad([contexts[i] for i in batch])
            scores = model.rewards(ids.to(model.device), None, response, mask.to(model.device), **options)
            rows[batch] = scores.float().cpu().numpy()
            if bar:
                done = first + len(batch)
                rate = done * V / max(time.perf_counter() - start, 1e-9)
                bar.update(task, completed=done, info=f"{rate:,.0f} candidates/s")
    return rows


def reference_rad_rows(model, contexts: Sequence[np.ndarray], *, response: str | None = None,
                       batch_size: int = 256) -> np.ndarray:
    """R̂_RAD rows the plain way: each candidate v runs the backbone over all of ``[BOS] + x' + v``.

    ``batch_size`` candidates share one forward call (``1``: one call per candidate, as a
    per-candidate reward API would do). No cache, no padding; O(|x'|) times the work of
    :meth:`RAD.rewards`.

    Returns
    -------
    ndarray of shape (len(contexts), |V|), float32
    """
    V = model.vocab_size
    rows = np.empty((len(contexts), V), dtype=np.float32)
    with torch.inference_mode():
        for i, context in enumerate(contexts):
            prefix = torch.tensor([model.bos_token_id, *np.asarray(context).tolist()], device=model.device)
            for first in range(0, V, batch_size):
                candidates = torch.arange(first, min(first + batch_size, V), device=model.device)
                ids = torch.cat([prefix.expand(len(candidates), -1), candidates[:, None]], dim=1)
                hidden, _ = model.encode(ids)
                rows[i, first:first + len(candidates)] = model.prefix_scores(hidden[:, -1], response).float().cpu().numpy()
    return rows


def left_pad(contexts: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad contexts with 0 into (ids, attention mask), each LongTensor of shape (B, max length)."""
    width = max((len(c) for c in contexts), default=0)
    ids = torch.zeros((len(contexts), width), dtype=torch.long)
    mask = torch.zeros((len(contexts), width), dtype=torch.long)
    for row, context in enumerate(contexts):
        if len(context):
            ids[row, width - len(context):] = torch.as_tensor(np.asarray(context, dtype=np.int64))
            mask[row, width - len(context):] = 1
    return ids, mask
