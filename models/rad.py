"""RAD, the reward-augmented-decoding reward model (Deng & Raffel 2023; §2.2, §3.1.2).

A linear head with one output per response on the backbone's hidden state: the score of the
prefix u_{1:t} is read at position t of ``[BOS] + u``. The candidate v is an *input*, so
R̂_RAD[x', v] = r̂([x', v]) needs one backbone step per candidate and can have rank > d.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import RewardModel

INIT_STD = 0.02
CANDIDATE_ROWS = 2048  # (context, candidate) rows per cached step: bounds the expanded cache (1024–2048 fastest on CPU)


class RAD(RewardModel):
    """Reward model scoring a whole prefix with a linear head (one output per response).

    Parameters
    ----------
    causal_lm, responses, decode_response, loss_type, bos_token_id, tokenizer
        See :class:`~rankkit.models.base.RewardModel`.
    seed : int, seeds the head initialisation (private torch generator).
    """

    kind = "rad"

    def __init__(self, causal_lm, *, responses, seed: int = 0, **common):
        super().__init__(causal_lm, responses=responses, **common)
        generator = torch.Generator().manual_seed(seed)
        self.score = nn.Linear(self.hidden_size, len(self.responses), dtype=self.output_embeddings.dtype)
        with torch.no_grad():
            self.score.weight.copy_(INIT_STD * torch.randn(self.score.weight.shape, generator=generator))
            self.score.bias.zero_()
        self.to(self.device)

    def prefix_scores(self, h: torch.Tensor, response: str | None = None) -> torch.Tensor:
        """The head on the hidden state h of a prefix's last token: shape (...) from h of shape (..., d)."""
        index = self.response_index(response)
        return h @ self.score.weight[index] + self.score.bias[index]

    def rewards(self, context_ids, candidates=None, response=None, attention_mask=None, *,
                chunk_rows: int = CANDIDATE_ROWS):
        """r̂([x', v]) for each candidate v of each left-padded context, over one cached prefix pass.

        ``[BOS] + x'`` runs once; its key/value cache is expanded along the batch
        (``DynamicCache.batch_repeat_interleave``) to c candidates per context, the candidates run
        as one step at position |x'| + 1, and the cache is cropped back before the next chunk.

        Parameters
        ----------
        context_ids : LongTensor of shape (B, T), left padded, without BOS.
        candidates : LongTensor of shape (B, k), or None for the whole vocabulary (k = |V|).
        response : str or None (the decode response).
        attention_mask : (B, T) of 0/1, or None (no padding).
        chunk_rows : int, at most this many (context, candidate) rows per step (memory bound).

        Returns
        -------
        FloatTensor of shape (B, k), raw rewards.
        """
        self.response_index(response)  # validate once, before any work
        ids, mask, positions = self.with_bos(context_ids, attention_mask)
        n_contexts = len(ids)
        if candidates is None:
            candidates = torch.arange(self.vocab_size, device=self.device).expand(n_contexts, -1)
        candidates = torch.as_tensor(candidates, dtype=torch.long, device=self.device)
        k = candidates.shape[1]
        per_step = max(1, min(k, chunk_rows // max(1, n_contexts)))
        _, cache = self.encode(ids, attention_mask=mask, position_ids=positions, use_cache=True)
        cache.batch_repeat_interleave(per_step)
        step_mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1).repeat_interleave(per_step, dim=0)
        step_position = (positions[:, -1:] + 1).repeat_interleave(per_step, dim=0)
        out = []
        for start in range(0, k, per_step):
            chunk = candidates[:, start:start + per_step]
            width = chunk.shape[1]
            if width < per_step:  # last chunk: pad with copies of its first column, discard after
                chunk = torch.cat([chunk, chunk[:, :1].expand(-1, per_step - width)], dim=1)
            hidden, cache = self.encode(chunk.reshape(-1, 1), attention_mask=step_mask, position_ids=step_position,
                                        past_key_values=cache, use_cache=True)
            cache.crop(-1)
            out.append(self.prefix_scores(hidden[:, 0], response).view(n_contexts, per_step)[:, :width])
        return torch.cat(out, dim=1) if out else candidates.new_zeros((n_contexts, 0), dtype=torch.float)

    def prefix_rewards(self, utterances: torch.Tensor, *, sampled: torch.Tensor | None = None):
        """Teacher-forced scores of every prefix u_{1:t}, all heads, in one pass over ``[BOS] + u``.

        Parameters
        ----------
        utterances : LongTensor of shape (B, L), right padded.
        sampled : ignored (the regulariser of eq. 11 is ARM's); accepted for a common signature.

        Returns
        -------
        scores : FloatTensor of shape (B, L, R); position t-1 holds r̂(u_{1:t}).
        None
        """
        bos = utterances.new_full((len(utterances), 1), self.bos_token_id)
        hidden, _ = self.encode(torch.cat([bos, utterances], dim=1))
        return self.score(hidden[:, 1:]), None
