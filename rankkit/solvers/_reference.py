"""Slow, dense, obviously-correct versions of the solvers, for tests only.

Each forms the m × n matrices the fast solvers avoid, so it is usable on small inputs only.
"""
from __future__ import annotations

import numpy as np


def filled(X: np.ndarray, mask: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """X* = P_Ω(X) + P_Ω⊥(Z): observed entries from X, the rest from the current fit Z."""
    return np.where(mask, X, Z)


def _shrink(d, lam):
    return d / (d + lam) if lam > 0 else np.ones_like(d)


def softimpute_als(X, mask, U, *, lam: float, iters: int, final_svd: bool = True):
    """Algorithm 3.1 of Hastie et al. (2015) on dense arrays, from U (orthonormal), D = I, V = 0.

    Each half-step solves the ridge problem against the dense X* with ``numpy.linalg.svd``.
    Returns (U, d, V, trace) with d the singular values of the fit and trace a list of
    (objective, mse) after every iteration.
    """
    m, q = U.shape
    d, V = np.ones(q), np.zeros((X.shape[1], q))
    trace = []
    for _ in range(iters):
        Xs = filled(X, mask, (U * d) @ V.T)
        B = (Xs.T @ U) * _shrink(d, lam)  # B̃D = X*ᵀ U D²(D² + λ)⁻¹
        V, d, Rt = np.linalg.svd(B, full_matrices=False)
        U = U @ Rt.T
        Xs = filled(X, mask, (U * d) @ V.T)
        A = (Xs @ V) * _shrink(d, lam)
        U, d, Rt = np.linalg.svd(A, full_matrices=False)
        V = V @ Rt.T
        resid = np.where(mask, X - (U * d) @ V.T, 0.0)
        trace.append((0.5 * np.sum(resid**2) + lam * d.sum(), np.sum(resid**2) / mask.sum()))
    if final_svd and lam > 0:
        Xs = filled(X, mask, (U * d) @ V.T)
        U, s, Rt = np.linalg.svd(Xs @ V, full_matrices=False)
        V, d = V @ Rt.T, np.maximum(s - lam, 0.0)
    return U, d, V, trace


def soft_threshold_impute(X, mask, *, lam: float, iters: int = 5000, tol: float = 1e-13) -> np.ndarray:
    """The nuclear-norm solution argmin ½‖P_Ω(X − Z)‖² + λ‖Z‖_* (Mazumder et al. 2010, Alg. 1).

    Iterates Z ← S_λ(P_Ω(X) + P_Ω⊥(Z)) with full SVDs (S_λ soft-thresholds the singular values)
    until the relative change is below ``tol``.
    """
    Z = np.zeros_like(X, dtype=np.float64)
    for _ in range(iters):
        u, s, vt = np.linalg.svd(filled(X, mask, Z), full_matrices=False)
        Z_new = (u * np.maximum(s - lam, 0.0)) @ vt
        change = np.sum((Z_new - Z) ** 2) / max(np.sum(Z**2), 1e-300)
        Z = Z_new
        if change < tol:
            break
    return Z


def als_row(b_rows: np.ndarray, x: np.ndarray, lam: float) -> np.ndarray:
    """argmin_a ½‖x − B_i a‖² + ½λ‖a‖², minimum-norm at λ = 0 (``numpy.linalg.lstsq``)."""
    q = b_rows.shape[1]
    if lam == 0:
        return np.linalg.lstsq(b_rows, x, rcond=None)[0]
    return np.linalg.solve(b_rows.T @ b_rows + lam * np.eye(q), b_rows.T @ x)


def als(X, mask, B, *, lam: float, iters: int):
    """Plain ALS over the observed entries, one row at a time. Returns (A, B, trace)."""
    A = np.zeros((X.shape[0], B.shape[1]))
    trace = []
    for _ in range(iters):
        A = np.array([als_row(B[mask[i]], X[i, mask[i]], lam) for i in range(X.shape[0])])
        B = np.array([als_row(A[mask[:, j]], X[mask[:, j], j], lam) for j in range(X.shape[1])])
        resid = np.where(mask, X - A @ B.T, 0.0)
        trace.append((0.5 * np.sum(resid**2) + 0.5 * lam * (np.sum(A**2) + np.sum(B**2)), np.sum(resid**2) / mask.sum()))
    return A, B, trace
