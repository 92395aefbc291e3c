"""Tokenizers by name or folder, and corpus encoding to flat token-id arrays.

A corpus is encoded once into a :class:`TokenizedCorpus` (all ids in one int32 array plus
offsets), the form every later step (prefix expansion, Ω, training) consumes.
"""
from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import UserError

SYNTHETIC_TOKENIZER_DIR = Path(__file__).parent / "data" / "synthetic_tokenizer"


def load_tokenizer(name_or_path: str | os.PathLike):
    """Load a HF tokenizer: ``synthetic`` (shipped), a folder, or a hub name.

    A folder holding OpenAI's raw GPT-2 files (``encoder.json`` + ``vocab.bpe``) is read into a
    ``GPT2TokenizerFast`` built from the vocabulary and merges directly (SPEC §5: the
    ``vocab_file=`` constructors of transformers 5 silently build a 1-token vocabulary).
    """
    from transformers import AutoTokenizer, GPT2TokenizerFast

    name = str(name_or_path)
    if name == "synthetic":
        return AutoTokenizer.from_pretrained(SYNTHETIC_TOKENIZER_DIR)
    path = Path(name)
    if path.is_dir():
        if (path / "encoder.json").is_file() and (path / "vocab.bpe").is_file():
            vocab = json.loads((path / "encoder.json").read_text(encoding="utf-8"))
            lines = (path / "vocab.bpe").read_text(encoding="utf-8").splitlines()
            merges = [tuple(line.split(" ")) for line in lines if line and not line.startswith("#version")]
            return GPT2TokenizerFast(vocab=vocab, merges=merges, unk_token="<|endoftext|>",
                                     bos_token="<|endoftext|>", eos_token="<|endoftext|>")
        try:
            return AutoTokenizer.from_pretrained(path)
        except Exception as exc:  # noqa: BLE001 - any loader failure is a user-facing error
            raise UserError(f"--tokenizer {name}: the folder holds no tokenizer that transformers can load ({exc.__class__.__name__})") from exc
    if name.startswith((".", os.sep, "~")):  # a local path that is not a folder (hub ids look like owner/name)
        raise UserError(f"--tokenizer {name}: no such folder")
    try:  # the local HF cache first: an offline machine then answers at once
        return AutoTokenizer.from_pretrained(name, local_files_only=True)
    except Exception:  # noqa: BLE001 - not cached: try the hub
        pass
    try:
        return AutoTokenizer.from_pretrained(name)
    except Exception as exc:  # noqa: BLE001
        raise UserError(
            f"--tokenizer {name}: cannot load it by name (offline machine, or unknown name); "
            "pass a local folder instead"
        ) from exc


def tokenizer_name(tokenizer) -> str:
    """A short, stable description of a tokenizer (for reports and cache keys)."""
    return f"{getattr(tokenizer, 'name_or_path', '') or type(tokenizer).__name__}|{len(tokenizer)}"


@dataclass(frozen=True)
class TokenizedCorpus:
    """Utterance i is ``ids[offsets[i]:offsets[i+1]]``.

    Attributes
    ----------
    ids : ndarray of shape (total_tokens,), int32
    offsets : ndarray of shape (n_utterances + 1,), int64
    n_truncated : int, utterances cut at ``max_tokens``
    max_tokens : int or None
    """

    ids: np.ndarray
    offsets: np.ndarray
    n_truncated: int = 0
    max_tokens: int | None = None

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def utterance(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i]:self.offsets[i + 1]]

    def truncate(self, max_tokens: int | None) -> "TokenizedCorpus":
        """Keep the first ``max_tokens`` tokens of every utterance (vectorised)."""
        if max_tokens is None:
            return self
        if max_tokens < 1:
            raise UserError(f"--max-tokens {max_tokens}: must be at least 1")
        lengths = self.lengths
        kept = np.minimum(lengths, max_tokens)
        new_offsets = np.zeros_like(self.offsets)
        np.cumsum(kept, out=new_offsets[1:])
        position = np.arange(len(self.ids)) - np.repeat(self.offsets[:-1], lengths)
        ids = self.ids[position < np.repeat(kept, lengths)]
        return TokenizedCorpus(ids, new_offsets, int((lengths > max_tokens).sum()), max_tokens)

    def select(self, rows: np.ndarray) -> "TokenizedCorpus":
        """The utterances at ``rows``, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.lengths[rows]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        starts = np.repeat(self.offsets[:-1][rows], lengths)
        position = np.arange(offsets[-1]) - np.repeat(offsets[:-1], lengths)
        return TokenizedCorpus(self.ids[starts + position], offsets, self.n_truncated, self.max_tokens)


def encode_texts(texts: Sequence[str], tokenizer, *, max_tokens: int | None = None, batch_size: int = 10_000,
                 progress: bool = False) -> TokenizedCorpus:
    """Tokenise ``texts`` (no special tokens) into a :class:`TokenizedCorpus`, truncating at ``max_tokens``."""
    from .progress import track

    chunks, lengths = [], []  # one int32 array per batch: no Python int per token outlives its batch
    starts = range(0, len(texts), batch_size)
    for start in track(starts, total=len(starts), description="tokenising", enabled=progress):
        batch = list(texts[start:start + batch_size])
        encoded = _encode_batch(tokenizer, batch)
        batch_lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        chunks.append(np.fromiter(itertools.chain.from_iterable(encoded), dtype=np.int32,
                                  count=int(batch_lengths.sum())))
        lengths.append(batch_lengths)
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    if lengths:
        np.cumsum(np.concatenate(lengths), out=offsets[1:])
    ids = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32)
    return TokenizedCorpus(ids, offsets).truncate(max_tokens)


def _encode_batch(tokenizer, batch: list[str]) -> list[list[int]]:
    """Token ids of ``batch`` without special tokens.

    A fast tokenizer's Rust backend is called directly when it neither truncates nor pads:
    the same ids, about twice as fast as ``tokenizer(batch)``, which also builds attention masks.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or backend.truncation is not None or backend.padding is not None:
        return tokenizer(batch, add_special_tokens=False)["input_ids"]
    encode = getattr(backend, "encode_batch_fast", backend.encode_batch)  # _fast: no character offsets
    return [e.ids for e in encode(batch, add_special_tokens=False)]
