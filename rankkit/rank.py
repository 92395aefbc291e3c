"""Numerical rank of reward matrices and rank curves over growing row samples (App. C.4, Figures 1, 7).

The numerical rank of an m × n matrix M counts its singular values above the standard cutoff

    σ_i > max(m, n) · ε · σ_1,

with ε the machine epsilon of M's dtype: the default of ``numpy.linalg.matrix_rank`` and
``torch.linalg.matrix_rank`` that the paper uses (App. C.4). Rows of R̂ are sampled i.i.d. from D_f
(Finlayson et al. 2024), and the rank of the first r rows, for growing r, is the rank curve.

Singular values come from a Householder QR factorisation followed by an SVD of the small triangular
factor (never from MᵀM, which squares the condition number): both steps are backward stable, and
on the wide matrices of R̂ rows (N ≪ |V|) this is several times faster than a direct SVD. torch is
imported only on the GPU path or when the input is a tensor.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .errors import UserError


@dataclass(frozen=True)
class NumericalRank:
    """The numerical rank of a matrix with the spectrum it was read from.

    Attributes
    ----------
    rank : int
        Number of singular values strictly above ``cutoff``.
    singular_values : ndarray of shape (min(m, n),)
        Descending; float32 for float32 input, float64 otherwise.
    cutoff : float
        max(m, n)·ε·σ₁ by default, else the ``tol`` that was given.
    """

    rank: int
    singular_values: np.ndarray = field(repr=False)
    cutoff: float


def numerical_rank(M, tol: float | None = None, *, device: str = "auto") -> NumericalRank:
    """Numerical rank of M: the number of singular values above max(m, n)·ε·σ₁ (App. C.4).

    The count is exactly that of ``numpy.linalg.matrix_rank(M)`` (and ``torch.linalg.matrix_rank``):
    same cutoff, computed in the singular values' dtype, with ε the machine epsilon of M's dtype.
    The singular values are those of the triangular factor of a Householder QR of M (or Mᵀ, whichever
    is tall), which equal M's.

    Parameters
    ----------
    M : array_like or torch.Tensor of shape (m, n)
        A finite, non-empty matrix, e.g. N full rows of R̂ (N × |V|). float32 stays float32;
        float16/bfloat16 tensors are computed in float32 with the float16/bfloat16 ε.
    tol : float, optional
        Absolute cutoff instead of the default (as ``numpy.linalg.matrix_rank``'s ``tol``).
    device : {"auto", "cpu", "cuda"}
        ``auto`` uses CUDA when present. A CPU numpy array is computed with LAPACK (scipy).

    Returns
    -------
    NumericalRank
        ``rank``, ``singular_values`` of shape (min(m, n),), ``cutoff``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> M = rng.standard_normal((40, 3)) @ rng.standard_normal((3, 200))
    >>> numerical_rank(M, device="cpu").rank
    3
    """
    A, eps = _validated(M, "M")
    _check_tol(tol)
    m, n = A.shape
    R = _triangular_factor(A if m >= n else A.T, device)
    s = _svdvals(R)
    return _count(s, (m, n), eps, tol)


def rank_curve(rows, grid: Sequence[int] | None = None, *, tol: float | None = None, device: str = "auto"):
    """Numerical rank of the first r rows of ``rows`` for every r in ``grid`` (Figures 1, 7; App. C.4).

    One Householder QR of rowsᵀ = QR gives rows[:r] = (R[:, :r])ᵀ Qᵀ for every r at once, so the
    singular values of the first r rows are those of the small block R[:min(r, n), :r] and each grid
    point costs O(r³) instead of a fresh O(r²·|V|) SVD. Every point uses one cutoff, that of the
    whole matrix, max(N, n)·ε·σ₁(rows) (App. C.4), so the last point equals ``numerical_rank(rows)``.
    The row sets are nested and, by interlacing, adding a row never lowers any singular value, so
    with a common cutoff the curve is non-decreasing (a per-point cutoff max(r, n)·ε·σ₁(rows[:r])
    rises with σ₁ and r and can make a curve dip).

    Parameters
    ----------
    rows : array_like or torch.Tensor of shape (N, n)
        Rows of R̂ in sampling order (i.i.d. from D_f), n = |V|.
    grid : sequence of int, optional
        Row counts r, each in 1..N. Default: 20 evenly spaced counts ending at N.
    tol : float, optional
        Absolute cutoff for every point instead of the whole matrix's default.
    device : {"auto", "cpu", "cuda"}

    Returns
    -------
    polars.DataFrame
        Columns ``rows`` (Int64), ``rank`` (Int64), ``cutoff`` (Float64), one row per grid point,
        ascending in ``rows``.
    """
    import polars as pl

    A, eps = _validated(rows, "rows")
    _check_tol(tol)
    N, n = A.shape
    counts = default_grid(N) if grid is None else _validated_grid(grid, N)
    R = _triangular_factor(A.T, device)
    if tol is None:
        tol = _count(_svdvals(R[:min(N, n), :N]), (N, n), eps, None).cutoff
    points = [_count(_svdvals(R[:min(r, n), :r]), (r, n), eps, tol) for r in counts]
    return pl.DataFrame(
        {"rows": counts, "rank": [p.rank for p in points], "cutoff": [p.cutoff for p in points]},
        schema={"rows": pl.Int64, "rank": pl.Int64, "cutoff": pl.Float64},
    )


def default_grid(n_rows: int, *, points: int = 20) -> list[int]:
    """``points`` evenly spaced row counts from n_rows/points to n_rows (fewer when n_rows is small)."""
    return sorted({max(1, round(n_rows * (i + 1) / points)) for i in range(points)})


def _validated_grid(grid: Sequence[int], n_rows: int) -> list[int]:
    counts = sorted({int(r) for r in grid})
    if not counts:
        raise UserError("grid: give at least one row count")
    if counts[0] < 1 or counts[-1] > n_rows:
        bad = counts[0] if counts[0] < 1 else counts[-1]
        raise UserError(f"grid: row count {bad} is outside 1..{n_rows} (the number of rows)")
    return counts


def _check_tol(tol: float | None) -> None:
    if tol is not None and not (np.isfinite(tol) and tol >= 0):
        raise UserError(f"tol={tol!r}: must be a finite number ≥ 0")


def _is_tensor(M) -> bool:
    return type(M).__module__.startswith("torch")


def _validated(M, name: str):
    """M as a float numpy array or torch tensor, and the machine epsilon of its dtype."""
    if _is_tensor(M):
        import torch

        if M.ndim != 2 or M.numel() == 0:
            raise UserError(f"{name}: expected a non-empty 2-D matrix, got shape {tuple(M.shape)}")
        eps = float(torch.finfo(M.dtype).eps) if M.dtype.is_floating_point else float(np.finfo(np.float64).eps)
        A = M.float() if M.dtype in (torch.float16, torch.bfloat16) else M if M.dtype.is_floating_point else M.double()
        if not bool(torch.isfinite(A).all()):
            raise UserError(f"{name}: contains NaN or infinite values")
        return A, np.float32(eps) if A.dtype == torch.float32 else np.float64(eps)
    A = np.asarray(M)
    if A.ndim != 2 or A.size == 0:
        raise UserError(f"{name}: expected a non-empty 2-D matrix, got shape {A.shape}")
    if A.dtype not in (np.float32, np.float64):
        A = A.astype(np.float64)
    if not np.isfinite(A).all():
        raise UserError(f"{name}: contains NaN or infinite values")
    return A, np.finfo(A.dtype).eps


def _triangular_factor(A, device: str):
    """R of a Householder QR of A (shape (p, q)): (min(p, q), q), same singular values as A."""
    from .device import resolve_device

    target = resolve_device(device)
    if not _is_tensor(A) and target == "cpu":
        from scipy.linalg import qr

        (packed, _), _ = qr(A, mode="raw", check_finite=False)  # R sits in the upper triangle
        return np.triu(packed[:min(A.shape)])
    import torch

    A = torch.as_tensor(A).to(target)
    return torch.linalg.qr(A, mode="r").R


def _svdvals(R) -> np.ndarray:
    if _is_tensor(R):
        import torch

        return torch.linalg.svdvals(R).cpu().numpy()
    from scipy.linalg import svdvals

    return svdvals(R, check_finite=False)


def _count(s: np.ndarray, shape: tuple[int, int], eps, tol: float | None) -> NumericalRank:
    """Count singular values above the cutoff, computed in s's dtype as numpy's matrix_rank does."""
    cutoff = s.max() * max(shape) * s.dtype.type(eps) if tol is None else s.dtype.type(tol)
    return NumericalRank(int(np.count_nonzero(s > cutoff)), s, float(cutoff))
