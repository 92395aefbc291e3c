"""ARM, the low-rank autoregressive reward model (eq. 6–8, 14).

r̂(v|x) = ⟨h(x), w⟩ + ⟨h(x), W e(v)⟩, one (w, W) pair per response, so the reward matrix is
R̂_ARM = H(w1ᵀ + WE) = HA of rank ≤ d (eq. 8). Scoring every next token costs one backbone pass
plus (hᵀW)·Eᵀ; training only gathers e(v) for the observed and sampled tokens.
"""
from __future__ import annotations

import torch
from torch import nn

from rankkit.errors import UserError

from .base import RewardModel

HEADS = ("linear", "mlp")
INIT_STD = 0.02


class ARM(RewardModel):
    """Autoregressive reward model: baseline ⟨h, w⟩ plus token term Δr̂ (eq. 6–7).

    Parameters
    ----------
    causal_lm, responses, decode_response, loss_type, bos_token_id, tokenizer
        See :class:`~rankkit.models.base.RewardModel`.
    head : ``"linear"`` (eq. 7, Δr̂ = ⟨hᵀW, e(v)⟩) or ``"mlp"`` (eq. 14, read with consistent
        shapes as Δr̂ = ⟨W₁ σ(W₂ h), e(v)⟩, W₂ ∈ R^{m×d}, W₁ ∈ R^{d×m}, σ = GELU, m = ``mlp_size``).
        Either way Δr̂ is ⟨g(h), e(v)⟩, so a full row stays one product with Eᵀ and rank ≤ d.
    baseline : bool, keep the baseline term ⟨h, w⟩ (``--no-baseline`` drops it, §5.5).
    mlp_size : int, hidden width m of the MLP head (default d).
    seed : int, seeds the head initialisation (private torch generator). W (or W₁) starts at 0,
        so a fresh ARM predicts the baseline for every token (the abstaining model of §3.3).
    """

    kind = "arm"

    def __init__(self, causal_lm, *, responses, head: str = "linear", baseline: bool = True,
                 mlp_size: int | None = None, seed: int = 0, **common):
        super().__init__(causal_lm, responses=responses, **common)
        if head not in HEADS:
            raise UserError(f"--head {head}: expected one of {', '.join(HEADS)}")
        d, n_resp = self.hidden_size, len(self.responses)
        generator = torch.Generator().manual_seed(seed)
        self.head = head
        self.baseline = bool(baseline)
        self.mlp_size = int(mlp_size or d) if head == "mlp" else None
        dtype = self.output_embeddings.dtype
        self.w = nn.Parameter(INIT_STD * torch.randn(n_resp, d, generator=generator, dtype=dtype)) if baseline else None
        if head == "linear":
            self.W = nn.Parameter(torch.zeros(n_resp, d, d, dtype=dtype))
        else:
            self.W2 = nn.Parameter(INIT_STD * torch.randn(n_resp, self.mlp_size, d, generator=generator, dtype=dtype))
            self.W1 = nn.Parameter(torch.zeros(n_resp, d, self.mlp_size, dtype=dtype))
        self.to(self.device)

    def head_config(self) -> dict:
        return {"head": self.head, "baseline": self.baseline, "mlp_size": self.mlp_size}

    # ---- the two terms of eq. 6 --------------------------------------------------------
    def baselines(self, h: torch.Tensor, index: int | None = None) -> torch.Tensor:
        """⟨h, w⟩: shape (...) for one head ``index``, (..., R) for all heads (None); 0 without baseline."""
        if self.w is None:
            shape = h.shape[:-1] if index is not None else (*h.shape[:-1], len(self.responses))
            return h.new_zeros(shape)
        return h @ (self.w[index] if index is not None else self.w.T)

    def directions(self, h: torch.Tensor, index: int | None = None) -> torch.Tensor:
        """g(h) with Δr̂(e(v)|h) = ⟨g(h), e(v)⟩: hᵀW (eq. 7) or W₁σ(W₂h) (eq. 14).

        Shape (..., d) for one head ``index``, (..., R, d) for all heads (None).
        """
        if self.head == "linear":
            if index is not None:
                return h @ self.W[index]
            return torch.einsum("...d,rde->...re", h, self.W)
        if index is not None:
            return nn.functional.gelu(h @ self.W2[index].T) @ self.W1[index].T
        hidden = nn.functional.gelu(torch.einsum("...d,rmd->...rm", h, self.W2))
        return torch.einsum("...rm,rdm->...rd", hidden, self.W1)

    def token_scores(self, h: torch.Tensor, candidates: torch.Tensor | None = None, response: str | None = None):
        """r̂(v|x) = ⟨h, w⟩ + ⟨h, W e(v)⟩ for candidate tokens v (eq. 7; eq. 14 for the MLP head).

        Parameters
        ----------
        h : FloatTensor of shape (..., d), hidden states h(x).
        candidates : LongTensor of shape (..., k), or None for the whole vocabulary (k = |V|,
            computed as (hᵀW)·Eᵀ).
        response : str or None (the decode response).

        Returns
        -------
        FloatTensor of shape (..., k), raw rewards (no sigmoid).
        """
        index = self.response_index(response)
        g = self.directions(h, index)
        E = self.output_embeddings
        if candidates is None:
            delta = g @ E.T
        else:
            delta = torch.einsum("...d,...kd->...k", g, E[candidates])
        return self.baselines(h, index).unsqueeze(-1) + delta

    # ---- scoring -----------------------------------------------------------------------
    def rewards(self, context_ids, candidates=None, response=None, attention_mask=None):
        """r̂(v|x') for each candidate v of each left-padded context: one backbone pass + a gather.

        Parameters
        ----------
        context_ids : LongTensor of shape (B, T), left padded, without BOS.
        candidates : LongTensor of shape (B, k), or None for the whole vocabulary.
        response : str or None (the decode response).
        attention_mask : (B, T) of 0/1, or None (no padding).

        Returns
        -------
        FloatTensor of shape (B, k), raw rewards.
        """
        ids, mask, positions = self.with_bos(context_ids, attention_mask)
        hidden, _ = self.encode(ids, attention_mask=mask, position_ids=positions)
        if candidates is not None:
            candidates = torch.as_tensor(candidates, dtype=torch.long, device=self.device)
        return self.token_scores(hidden[:, -1], candidates, response)

    def prefix_rewards(self, utterances: torch.Tensor, *, sampled: torch.Tensor | None = None):
        """Teacher-forced scores of every prefix u_{1:t} = [x', u_t], all heads, in one pass.

        The input is ``[BOS] + u_{1:l-1}``; position t-1 gives h(u_{1:t-1}) and u_t indexes E, so
        the |V|-wide product is never formed. With ``sampled`` (one v' per position, eq. 11) it
        also returns Δr̂(e(v')|h).

        Parameters
        ----------
        utterances : LongTensor of shape (B, L), right padded.
        sampled : LongTensor of shape (B, L) or None.

        Returns
        -------
        scores : FloatTensor of shape (B, L, R)
        sampled_delta : FloatTensor of shape (B, L, R), or None
        """
        bos = utterances.new_full((len(utterances), 1), self.bos_token_id)
        hidden, _ = self.encode(torch.cat([bos, utterances[:, :-1]], dim=1))
        g = self.directions(hidden)                                   # (B, L, R, d)
        E = self.output_embeddings
        scores = self.baselines(hidden) + torch.einsum("blrd,bld->blr", g, E[utterances])
        sampled_delta = None if sampled is None else torch.einsum("blrd,bld->blr", g, E[sampled])
        return scores, sampled_delta
