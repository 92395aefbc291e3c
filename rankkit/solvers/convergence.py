"""The stopping rule of softImpute: relative change of the low-rank fit, from the factors alone.

As R softImpute's ``Frob`` (Hastie et al. 2015, §3): with the fit Z = U diag(d) Vᵀ,

    ratio = ‖Z_old − Z_new‖²_F / ‖Z_old‖²_F,

computed through q × q products, never forming Z. Iteration stops when ``ratio < thresh``.
"""
from __future__ import annotations

import numpy as np


def relative_change(old, new, cross_U, ops) -> float:
    """‖Z_old − Z_new‖²_F / max(‖Z_old‖²_F, 1e-9) for fits Z = U diag(d) Vᵀ.

    Parameters
    ----------
    old, new : tuple (d, V)
        d of shape (q,), numpy float64; V of shape (n, q) with orthonormal (or zero) columns
        on the backend.
    cross_U : ndarray of shape (q, q)
        U_newᵀ U_old (the caller often has it without an m × q product).
    ops : solver ops object (numpy or torch backend).

    Returns
    -------
    float
        The relative squared change; with orthonormal U, V: ‖Z‖² = Σ d_i² and
        ⟨Z_old, Z_new⟩ = tr(D_new U_newᵀU_old D_old V_oldᵀ V_new).
    """
    (d0, V0), (d1, V1) = old, new
    denom = float(d0 @ d0)
    inner = np.sum((d1[:, None] * cross_U) * (d0[:, None] * ops.cross(V0, V1)).T)
    num = denom + float(d1 @ d1) - 2.0 * inner
    return max(num, 0.0) / max(denom, 1e-9)


def relative_change_factors(ops, old, new) -> float:
    """The same ratio for fits given as factor pairs Z = A Bᵀ (plain ALS, not orthogonal).

    ‖A₀B₀ᵀ − A₁B₁ᵀ‖² = tr(A₀ᵀA₀ B₀ᵀB₀) + tr(A₁ᵀA₁ B₁ᵀB₁) − 2 tr(A₀ᵀA₁ B₁ᵀB₀).
    """
    (A0, B0), (A1, B1) = old, new
    denom = float(np.sum(ops.cross(A0, A0) * ops.cross(B0, B0)))
    new_sq = float(np.sum(ops.cross(A1, A1) * ops.cross(B1, B1)))
    inner = float(np.sum(ops.cross(A0, A1) * ops.cross(B0, B1)))
    return max(denom + new_sq - 2.0 * inner, 0.0) / max(denom, 1e-9)
