"""Training losses of the reward models (eq. 9, 10, 11, 13), on flat prefix positions.

Every function takes per-position tensors (N prefix positions, R responses) and a per-position
weight, and returns the weighted *sum*; the training loop divides by the batch's total weight.
With the prefix weights λ(t, l) (eq. 3) that total is the number of utterances, so the loss is
the mean over utterances of eq. 9; with weight 1 (eq. 10) it is the mean over prefixes.
Several responses add up: each head gets the loss it would get alone.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F


def weighted_squared_loss(scores: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Σ_i λ_i Σ_r (r̂_ir − y_ir)² (eq. 9; eq. 10 when the targets are a frozen teacher's r̃).

    Parameters
    ----------
    scores, targets : FloatTensor of shape (N, R)
    weight : FloatTensor of shape (N,), λ(t, l) for eq. 9, 1 for the distillation loss eq. 10.

    Returns
    -------
    FloatTensor scalar
    """
    return (weight[:, None] * (scores.float() - targets.float()).square()).sum()


def weighted_bce_loss(scores: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """−Σ_i λ_i Σ_r [y log σ(r̂) + (1 − y) log(1 − σ(r̂))] (eq. 13; the scores are logits).

    Shapes as :func:`weighted_squared_loss`; y ∈ [0, 1] may be fractional.
    """
    losses = F.binary_cross_entropy_with_logits(scores.float(), targets.float(), reduction="none")
    return (weight[:, None] * losses).sum()


def token_regulariser(sampled_delta: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Σ_i λ_i Σ_r Δr̂(e(v'_i)|h(x_i))² with one v' ~ U(V) per position (eq. 11).

    Pushes ARM's token term towards 0 for unrelated tokens, i.e. the prediction towards the
    prefix baseline. ``sampled_delta`` has shape (N, R), ``weight`` (N,).
    """
    return (weight[:, None] * sampled_delta.float().square()).sum()


LOSSES = {"mse": weighted_squared_loss, "bce": weighted_bce_loss}
