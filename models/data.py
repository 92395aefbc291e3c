"""From a tokenised corpus and its responses to teacher-forced batches (§2.2).

One utterance u with responses y gives l prefixes u_{1:t}, all scored in one pass; each prefix
carries y and its weight λ(t, l) (eq. 3). A batch is a right-padded id matrix with the per-token
mask, weights and the utterance labels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from rankkit.prefixes import prefix_weights
from rankkit.tokenization import TokenizedCorpus


@dataclass(frozen=True)
class TeacherForcedBatch:
    """Utterances padded on the right.

    Attributes
    ----------
    ids : LongTensor of shape (B, L), padding 0
    mask : BoolTensor of shape (B, L), True on real tokens
    prefix_weight : FloatTensor of shape (B, L), λ(t, l) on real tokens, 0 on padding
    labels : FloatTensor of shape (B, R), the utterances' responses y
    teacher : FloatTensor of shape (B, L, R) or None, a distillation teacher's r̃ of every prefix
    """

    ids: torch.Tensor
    mask: torch.Tensor
    prefix_weight: torch.Tensor
    labels: torch.Tensor
    teacher: torch.Tensor | None = None

    @property
    def n_tokens(self) -> int:
        return int(self.mask.sum())

    def to(self, device) -> "TeacherForcedBatch":
        return TeacherForcedBatch(*(None if t is None else t.to(device, non_blocking=True)
                                    for t in (self.ids, self.mask, self.prefix_weight, self.labels, self.teacher)))

    def position_targets(self) -> torch.Tensor:
        """y of each position's utterance: shape (B, L, R)."""
        return self.labels[:, None, :].expand(-1, self.ids.shape[1], -1)


def token_index(corpus: TokenizedCorpus, rows: np.ndarray) -> np.ndarray:
    """Indices into ``corpus.ids`` of the tokens of utterances ``rows``, utterance after utterance."""
    lengths = corpus.lengths[rows]
    shift = corpus.offsets[:-1][rows] - (np.cumsum(lengths) - lengths)  # utterance start − its place in the output
    return np.repeat(shift, lengths) + np.arange(lengths.sum())


def make_batch(corpus: TokenizedCorpus, labels: np.ndarray, rows: np.ndarray,
               teacher: np.ndarray | None = None) -> TeacherForcedBatch:
    """The utterances ``rows`` of ``corpus`` (all non-empty) with their ``labels`` rows and, given
    ``teacher`` of shape (total_tokens, R) aligned with ``corpus.ids``, their teacher scores."""
    lengths = corpus.lengths[rows]
    width = int(lengths.max())
    mask = np.arange(width)[None, :] < lengths[:, None]
    flat = token_index(corpus, rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    ids[mask] = corpus.ids[flat]
    weight = np.zeros((len(rows), width), dtype=np.float32)
    weight[mask] = prefix_weights(lengths)
    scores = None
    if teacher is not None:
        scores = np.zeros((len(rows), width, teacher.shape[1]), dtype=np.float32)
        scores[mask] = teacher[flat]
        scores = torch.from_numpy(scores)
    return TeacherForcedBatch(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(weight),
                              torch.as_tensor(labels[rows], dtype=torch.float32), scores)


def iterate_batches(corpus: TokenizedCorpus, labels: np.ndarray, order: np.ndarray, *, batch_size: int,
                    micro_batch_size: int, teacher: np.ndarray | None = None) -> Iterator[list[TeacherForcedBatch]]:
    """Yield each optimiser batch of ``batch_size`` utterances (in ``order``) as micro-batches.

    Inside a batch the utterances are sorted by length before the split, which keeps padding small.
    """
    lengths = corpus.lengths
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        rows = rows[np.argsort(lengths[rows], kind="stable")]
        yield [make_batch(corpus, labels, rows[i:i + micro_batch_size], teacher)
               for i in range(0, len(rows), micro_batch_size)]
