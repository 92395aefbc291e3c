"""Sampling continuations from a base LM, unguided or guided by ARM/RAD (§5.1–§5.3), and timing it (§5.6).

The base model and the reward model must share a tokenizer (§5.1: GPT-2-Large guided by a reward
model finetuned from GPT-2-Small). Prompts of one batch are left padded; every prompt gets
``n_samples`` continuations (``num_return_sequences``) of at most ``max_new_tokens`` tokens drawn
by top-k (or nucleus) sampling from eq. (2).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rankkit.errors import UserError

from .guidance import ARMGuidance, RADGuidance, clock
from .rows import left_pad

TINY = "tiny"


def build_tiny_base(vocab_size: int, *, n_layer: int = 4, n_embd: int = 256, n_head: int = 4, seed: int = 0):
    """A random GPT-2 base LM several times larger than the tiny reward backbone (2 × 64).

    With the defaults it has 2× the layers and 4× the width of
    :func:`~rankkit.models.build_tiny_backbone`'s default, about 30× its per-token compute, as
    GPT-2-Large is to GPT-2-Small (§5.1). Its vocabulary is the reward model's tokenizer's.
    """
    from .backbone import build_tiny_backbone

    return build_tiny_backbone(vocab_size, n_layer=n_layer, n_embd=n_embd, n_head=n_head, seed=seed)


def same_tokenizer(first, second) -> bool:
    """True when two HF tokenizers map the same strings to the same ids."""
    return len(first) == len(second) and first.get_vocab() == second.get_vocab()


def load_base(name_or_dir: str, reward, *, seed: int = 0, device: str = "cpu"):
    """The base LM and its tokenizer: ``tiny`` (:func:`build_tiny_base` over the reward model's
    tokenizer), a local folder or a hub name (``AutoModelForCausalLM``).

    Raises :class:`UserError` when it cannot be loaded or its tokenizer is not the reward model's.
    """
    from transformers import AutoModelForCausalLM

    from rankkit.tokenization import load_tokenizer

    if reward.tokenizer is None:
        raise UserError("the reward model was saved without a tokenizer; guided decoding needs the shared tokenizer")
    if name_or_dir == TINY:
        return build_tiny_base(reward.vocab_size, seed=seed).to(device).eval(), reward.tokenizer
    path = Path(name_or_dir)
    if path.exists() and not path.is_dir():
        raise UserError(f"--base {name_or_dir}: is a file, expected a model folder, a hub name or 'tiny'")
    try:
        base = AutoModelForCausalLM.from_pretrained(name_or_dir)
    except Exception as exc:  # noqa: BLE001 - any loader failure is a user-facing error
        raise UserError(f"--base {name_or_dir}: cannot load a causal LM from it ({exc.__class__.__name__})") from exc
    try:
        tokenizer = load_tokenizer(name_or_dir)
    except UserError:
        tokenizer = reward.tokenizer  # a folder with weights only: the caller vouches for the tokenizer
    if not same_tokenizer(tokenizer, reward.tokenizer) or base.config.vocab_size != reward.vocab_size:
        raise UserError(f"--base {name_or_dir}: its tokenizer ({len(tokenizer)} tokens, vocabulary "
                        f"{base.config.vocab_size}) is not the reward model's ({len(reward.tokenizer)} tokens, "
                        f"vocabulary {reward.vocab_size}); guided decoding needs one shared tokenizer")
    return base.to(device).eval(), tokenizer


def make_guidance(reward, *, beta: float, top_k: int | None, top_p: float | None = None, steer: str = "away",
                  attention_mask=None, use_cache: bool = True):
    """A fresh :class:`ARMGuidance` or :class:`RADGuidance` for one ``generate`` call."""
    from .arm import ARM

    guidance = ARMGuidance if isinstance(reward, ARM) else RADGuidance
    return guidance(reward, beta=beta, top_k=top_k, top_p=top_p, steer=steer, attention_mask=attention_mask,
                    use_cache=use_cache)


@dataclass(frozen=True)
class SamplingResult:
    """Continuations of one batch of prompts and what they cost.

    Attributes
    ----------
    continuations : list (one per prompt) of lists of ``n_samples`` decoded continuations.
    seconds : float, wall time of the ``generate`` call.
    reward_seconds : float, the part of it spent in the reward model (0 when unguided).
    n_steps : int, decoding steps (one new token for every sequence of the batch per step).
    """

    continuations: list
    seconds: float
    reward_seconds: float
    n_steps: int


@torch.no_grad()
def sample_continuations(base, tokenizer, prompts: list[str], *, reward=None, beta: float = 0.0,
                         top_k: int | None = 20, top_p: float | None = None, steer: str = "away",
                         n_samples: int = 25, max_new_tokens: int = 20, seed: int = 0,
                         use_cache: bool = True) -> SamplingResult:
    """Sample ``n_samples`` continuations of every prompt, guided by ``reward`` (eq. 1–2) when given.

    Unguided sampling (``reward=None``) is plain top-k / nucleus sampling of the base model. The
    draw uses a private RNG stream seeded with ``seed`` (the global torch RNG is restored).

    Returns
    -------
    SamplingResult
    """
    device = next(base.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad_id is None:
        raise UserError("the tokenizer has neither a pad nor an EOS token to pad a batch of prompts")
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    for prompt, ids in zip(prompts, encoded):
        if not ids:
            raise UserError(f"prompt {prompt!r}: has no tokens under the base model's tokenizer")
    input_ids, mask = left_pad([np.asarray(ids) for ids in encoded])
    input_ids, mask = input_ids.masked_fill(mask == 0, pad_id).to(device), mask.to(device)
    width = input_ids.shape[1]  # where the new tokens start
    processors = []
    if reward is not None:
        processors.append(make_guidance(reward, beta=beta, top_k=top_k, top_p=top_p, steer=steer,
                                        attention_mask=mask, use_cache=use_cache))
    sampling = {} if reward is not None else {"top_k": top_k or 0, "top_p": top_p or 1.0}
    start = clock(device)
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        out = base.generate(input_ids=input_ids, attention_mask=mask, do_sample=True, max_new_tokens=max_new_tokens,
                            num_return_sequences=n_samples, pad_token_id=pad_id, logits_processor=processors,
                            **{"top_k": 0, "top_p": 1.0, **sampling})
    seconds = clock(device) - start
    new = out[:, width:]
    texts = [_continuation_text(tokenizer, encoded[i // n_samples], _until_eos(row, tokenizer.eos_token_id))
             for i, row in enumerate(new.tolist())]
    return SamplingResult([texts[i * n_samples:(i + 1) * n_samples] for i in range(len(prompts))], seconds,
                          processors[0].reward_seconds if processors else 0.0, new.shape[1])


def _continuation_text(tokenizer, prompt_ids: list[int], new_ids: list[int]) -> str:
    """The continuation as it reads after the decoded prompt (with its leading space, if any)."""
    prompt = tokenizer.decode(prompt_ids, skip_special_tokens=True)
    return tokenizer.decode(prompt_ids + new_ids, skip_special_tokens=True)[len(prompt):]


def _until_eos(ids: list[int], eos: int | None) -> list[int]:
    """The tokens before the first EOS (``generate`` pads a finished sequence after it)."""
    return ids[:ids.index(eos)] if eos is not None and eos in ids else ids


def sweep_generations(base, tokenizer, prompts: list[str], *, reward, betas: list[float], top_k: int | None,
                      top_p: float | None = None, steer: str = "away", n_samples: int = 25,
                      max_new_tokens: int = 20, batch_size: int = 8, seed: int = 0, skip=frozenset(),
                      progress: bool = False):
    """Sample every prompt at every β (eq. 1–2); β = 0 is plain top-k / nucleus sampling.

    Yields, batch by batch, lists of records ``{"prompt_index", "prompt", "beta", "continuations"}``.
    Pairs ``(prompt_index, beta)`` in ``skip`` are not generated again (resuming). Each batch draws
    from its own seed, derived from ``seed``, β's position and its first prompt index.
    """
    import numpy as np

    from rankkit.progress import track

    todo = [(j, [i for i in range(len(prompts)) if (i, beta) not in skip]) for j, beta in enumerate(betas)]
    batches = [(j, rows[s:s + batch_size]) for j, rows in todo for s in range(0, len(rows), batch_size)]
    for j, rows in track(batches, total=len(batches), description="generating", enabled=progress):
        beta = betas[j]
        batch_seed = int(np.random.SeedSequence([seed, j, rows[0]]).generate_state(1)[0])
        result = sample_continuations(base, tokenizer, [prompts[i] for i in rows], reward=reward if beta else None,
                                      beta=beta, top_k=top_k, top_p=top_p, steer=steer, n_samples=n_samples,
                                      max_new_tokens=max_new_tokens, seed=batch_seed)
        yield [{"prompt_index": i, "prompt": prompts[i], "beta": beta, "continuations": c}
               for i, c in zip(rows, result.continuations)]


def benchmark_prompts(tokenizer, *, n_prompts: int, n_tokens: int, seed: int = 0) -> list[str]:
    """``n_prompts`` prompts of exactly ``n_tokens`` tokens, cut from a synthetic corpus (any tokenizer)."""
    from rankkit.synthetic import generate_corpus

    text = " ".join(generate_corpus(max(50, 4 * n_prompts * n_tokens // 8), random_state=seed)["text"])
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) < n_prompts * n_tokens:
        raise ValueError(f"the corpus has {len(ids)} tokens, fewer than {n_prompts} × {n_tokens}")
    return [tokenizer.decode(ids[i * n_tokens:(i + 1) * n_tokens]) for i in range(n_prompts)]


def decoding_speed(base, tokenizer, prompts: list[str], *, guides: dict, top_ks: list[int], n_samples: int = 25,
                   max_new_tokens: int = 20, repeats: int = 3, seed: int = 0, progress: bool = False):
    """Time per generated token of unguided and guided top-k sampling (§5.6, Figure 6).

    Every (mode, k) runs ``repeats`` times after one warm-up run and keeps the fastest; a token
    is one decoding step of the whole batch (all prompts × ``n_samples``).

    Parameters
    ----------
    guides : dict mode -> (reward model, use_cache), e.g. ``{"arm": (arm, True), "rad": (rad, True)}``;
        the unguided ``base`` mode is always timed.

    Returns
    -------
    polars.DataFrame with columns ``mode``, ``top_k``, ``seconds_per_token``,
    ``reward_seconds_per_token`` (the reward model's part of it).
    """
    import polars as pl

    from rankkit.progress import track

    runs = [(mode, k) for k in top_ks for mode in ("base", *guides)]
    rows = []
    for mode, k in track(runs, total=len(runs), description="timing", enabled=progress):
        reward, use_cache = guides.get(mode, (None, True))
        results = [sample_continuations(base, tokenizer, prompts, reward=reward, beta=1.0, top_k=k,
                                        n_samples=n_samples, max_new_tokens=max_new_tokens, seed=seed,
                                        use_cache=use_cache) for _ in range(repeats + 1)][1:]
        best = min(results, key=lambda r: r.seconds)
        rows.append({"mode": mode, "top_k": k, "seconds_per_token": best.seconds / best.n_steps,
                     "reward_seconds_per_token": best.reward_seconds / best.n_steps})
    return pl.DataFrame(rows)
