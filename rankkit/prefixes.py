"""Prefix expansion D_f (paper eq. 3): weights λ(t, l), context sampling, and a token cache.

An utterance u of length l gives l prefixes u_{1:t}, t = 1..l, each split as x = [x', v] with
context x' = u_{1:t-1} and next token v = u_t, and weighted by λ(t, l) = t / Σ_{t'≤l} t'.
Corpora are tokenised once at full length and cached on disk, so that building Ω again with
another response or another ``max_tokens`` never tokenises again.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .tokenization import TokenizedCorpus, encode_texts, tokenizer_name

CACHE_ENV = "RANKKIT_CACHE"
TOKEN_CACHE_VERSION = "1"


def positions(lengths: np.ndarray) -> np.ndarray:
    """The 1-based position t of every token, flat in corpus order; shape (Σ l,), int64."""
    lengths = np.asarray(lengths, dtype=np.int64)
    starts = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    return np.arange(1, int(lengths.sum()) + 1, dtype=np.int64) - np.repeat(starts, lengths)


def prefix_weights(lengths: np.ndarray) -> np.ndarray:
    """λ(t, l) = t / (l(l+1)/2) for every prefix u_{1:t} of every utterance (eq. 3).

    Parameters
    ----------
    lengths : array of int, shape (n,)
        Token counts l of the utterances.

    Returns
    -------
    ndarray of shape (Σ l,), float64
        The weights in corpus order; those of one utterance sum to 1.

    Examples
    --------
    >>> prefix_weights([1, 3]).round(3).tolist()
    [1.0, 0.167, 0.333, 0.5]
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if (lengths < 0).any():
        raise ValueError(f"lengths must be non-negative, got {lengths.min()}")
    totals = np.repeat(lengths * (lengths + 1) / 2.0, lengths)
    return positions(lengths) / totals


def sample_contexts(corpus: TokenizedCorpus, n: int, *, random_state: int | np.random.Generator = 0) -> list[np.ndarray]:
    """Draw ``n`` contexts x' = u_{1:t-1} i.i.d. uniformly over all prefix positions of D_f (eq. 3).

    Every (utterance, t) pair is equally likely (the rows Finlayson et al. 2024 sample, App. C.4);
    t = 1 gives the empty context (an empty array).

    Parameters
    ----------
    corpus : TokenizedCorpus
    n : int
        Number of contexts.
    random_state : int or numpy.random.Generator, default 0

    Returns
    -------
    list of ndarray of int32
        Context token ids, one array per draw (length t - 1).
    """
    total = int(corpus.offsets[-1])
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    if total == 0 and n:
        raise ValueError("the corpus has no tokens, so it has no prefixes to sample")
    rng = np.random.default_rng(random_state)
    flat = rng.integers(0, total, size=n)
    starts = corpus.offsets[np.searchsorted(corpus.offsets, flat, side="right") - 1]
    return [corpus.ids[s:p].copy() for s, p in zip(starts.tolist(), flat.tolist())]


def cache_dir() -> Path:
    """Where rankkit keeps caches: ``$RANKKIT_CACHE``, else ``.rankkit-cache`` in the working directory."""
    return Path(os.environ.get(CACHE_ENV) or ".rankkit-cache")


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash of everything that decides a tokenizer's ids (its serialised form when it has one)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    body = backend.to_str() if backend is not None else tokenizer_name(tokenizer)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def texts_fingerprint(texts: Sequence[str]) -> str:
    """A hash of the exact texts, in order."""
    digest = hashlib.sha256()
    digest.update(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)).tobytes())
    for start in range(0, len(texts), 10_000):
        digest.update("".join(texts[start:start + 10_000]).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def encode_cached(texts: Sequence[str], tokenizer, *, cache: str | os.PathLike | None = None,
                  progress: bool = False) -> tuple[TokenizedCorpus, bool]:
    """Tokenise ``texts`` at full length, reusing ``cache`` (a folder) when it holds them already.

    The cache entry is keyed by a hash of the texts and of the tokenizer's serialised form, so it
    serves any response, ``max_tokens`` or output folder built from the same texts. Truncate the
    result with :meth:`TokenizedCorpus.truncate`.

    Returns
    -------
    corpus : TokenizedCorpus
        Untruncated token ids.
    hit : bool
        Whether the ids came from the cache.
    """
    if cache is None:
        return encode_texts(texts, tokenizer, progress=progress), False
    key = hashlib.sha256(
        f"{TOKEN_CACHE_VERSION}|{texts_fingerprint(texts)}|{tokenizer_fingerprint(tokenizer)}".encode()
    ).hexdigest()[:32]
    path = Path(cache) / "tokens" / f"{key}.npz"
    if path.is_file():
        with np.load(path) as stored:
            return TokenizedCorpus(stored["ids"], stored["offsets"]), True
    corpus = encode_texts(texts, tokenizer, progress=progress)
    from .io import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, ids=corpus.ids, offsets=corpus.offsets)
    return corpus, False
