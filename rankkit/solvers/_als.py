"""Plain alternating ridge least squares over the observed entries only, backend-agnostic.

Minimises the same objective as softImpute-ALS, ½‖P_Ω(X − ABᵀ)‖²_F + ½λ(‖A‖²_F + ‖B‖²_F), but
each half-step solves every row exactly against the observed entries instead of the filled
matrix X*: for row i with observed columns Ω_i, B_i = B[Ω_i] (k_i × q), x_i = X[i, Ω_i],

    a_i = (B_iᵀ B_i + λ I_q)⁻¹ B_iᵀ x_i = B_iᵀ (B_i B_iᵀ + λ I_k)⁻¹ x_i     (Woodbury),

the second form (a k_i × k_i system) for the many rows with k_i < q; at λ = 0 both become the
minimum-norm least-squares solution a_i = B_i⁺ x_i. At λ = 0 the objective does not bound the
factors: alternating exact minimum-norm solves let row and column scales drift apart (on SST-2's
P_Ω(R) at rank 8 the fit's σ₁ reached 6e15 within 50 iterations and the factors lost all
precision). So a λ = 0 stage solves with the ridge floor λ₀ = 1e-9 · rms(x) (the λ → 0⁺ limit,
minimum-norm to ~1e-9) and uses the pseudo-inverse only when x = 0. Rows are grouped by padded k (zero-padded observations change neither form) and
solved batched; the column step is the same call on P_Ω(X)ᵀ.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._linalg import svd_of_product
from ._observed import ObservedMatrix
from ._ops import CHUNK_ELEMENTS
from .convergence import relative_change_factors


#: Ridge floor of λ = 0 stages, relative to the root mean square of the observed values.
LAMBDA_FLOOR = 1e-9


def _padded_size(k: np.ndarray) -> np.ndarray:
    """Bucket sizes 1, 2, 3, 4, 6, 8, 12, 16, 24, … (padding wastes at most a third)."""
    p = np.maximum(np.ceil(np.log2(np.maximum(k, 1))), 0).astype(np.int64)
    full = 2**p
    three_quarter = 3 * 2 ** np.maximum(p - 2, 0)
    return np.where((p >= 2) & (k <= three_quarter), three_quarter, full)


@dataclass(frozen=True)
class _Batch:
    rows: object  # (c,) rows solved in this batch
    pos: object  # (c, k) positions in the side's value array; padding points at a trailing 0
    cols: object  # (c, k) observed columns; padding points at column 0
    mask: object  # (c, k) 1 for real observations, 0 for padding
    k: int


def _batches(ops, obs: ObservedMatrix, q: int) -> list[_Batch]:
    """Group the rows of ``obs`` with ≥ 1 observation into padded, memory-bounded batches."""
    counts = obs.row_counts()
    size = _padded_size(counts)
    out = []
    for k in np.unique(size[counts > 0]):
        rows = np.flatnonzero((size == k) & (counts > 0))
        offsets = np.arange(k)
        valid = offsets[None, :] < counts[rows, None]
        pos = np.where(valid, obs.indptr[rows, None] + offsets[None, :], obs.nnz)
        cols = np.where(valid, obs.cols[np.minimum(pos, obs.nnz - 1)], 0)
        step = max(1, CHUNK_ELEMENTS // int(k * max(q, k)))
        for s in range(0, rows.size, step):
            out.append(_Batch(ops.index(rows[s : s + step]), ops.index(pos[s : s + step]), ops.index(cols[s : s + step]),
                              ops.asarray(valid[s : s + step]), int(k)))
    return out


def _solve_side(ops, batches, values_ext, other, lam: float, n_out: int):
    """Ridge (λ > 0) or minimum-norm (λ = 0) solution of every row against ``other``."""
    q = other.shape[1]
    out = ops.zeros((n_out, q))
    for b in batches:
        F = other[b.cols] * b.mask[..., None]  # (c, k, q)
        x = values_ext[b.pos]  # (c, k)
        small = b.k < q
        G = F @ ops.swap(F) if small else ops.swap(F) @ F
        rhs = x if small else (ops.swap(F) @ x[..., None])[..., 0]
        if lam > 0:
            y = ops.solve(G + lam * ops.eye(G.shape[-1]), rhs)
        else:
            y = ops.pinv_solve(G, rhs)
        out[b.rows] = (ops.swap(F) @ y[..., None])[..., 0] if small else y
    return out


class ObservedALS:
    """One stage of plain ALS at a fixed λ, advanced one iteration per :meth:`step`."""

    def __init__(self, ops, handle, obs: ObservedMatrix, x, start, *, lam: float):
        self.ops, self.h, self.x, self.lam = ops, handle, x, float(lam)
        self.lam_solve = self.lam or LAMBDA_FLOOR * float(np.sqrt(np.mean(obs.values**2)))
        q = start[0].shape[1]
        self.A, self.B = start
        self.m, self.n = obs.shape
        self.x_rows = ops.asarray(np.concatenate([ops.to_numpy(x), [0.0]]))
        self.x_cols = ops.asarray(np.concatenate([ops.to_numpy(x)[obs.t_order], [0.0]]))
        self.row_batches = _batches(ops, obs, q)
        self.col_batches = _batches(ops, obs.transpose(), q)
        self.resid = x - ops.observed_dot(handle, self.A, self.B)

    def step(self) -> tuple[float, float, float]:
        """One iteration (A given B, then B given A). Returns (objective, sse, ratio)."""
        ops = self.ops
        old = (self.A, self.B)
        self.A = _solve_side(ops, self.row_batches, self.x_rows, self.B, self.lam_solve, self.m)
        self.B = _solve_side(ops, self.col_batches, self.x_cols, self.A, self.lam_solve, self.n)
        self.resid = self.x - ops.observed_dot(self.h, self.A, self.B)
        sse = ops.sum_sq(self.resid)
        objective = 0.5 * sse + 0.5 * self.lam * (ops.sum_sq(self.A) + ops.sum_sq(self.B))
        return objective, sse, relative_change_factors(ops, old, (self.A, self.B))

    def finish(self):
        """The fit as U diag(d) Vᵀ (balanced factors); keeps min(#{d > 0} + 1, q) components."""
        U, d, V = svd_of_product(self.ops, self.A, self.B)
        keep = min(int(np.sum(d > 0)) + 1, d.size)
        return U[:, :keep], d[:keep], V[:, :keep], self.ops.sum_sq(self.resid)


def initial_factors(ops, rng: np.random.Generator, shape, q: int, warm=None):
    """Starting (A, B): B ~ N(0, 1/q) from scratch (A is solved first), or a warm start.

    A warm start (U₀, d₀, V₀) gives A = U₀ D₀^{1/2}, B = V₀ D₀^{1/2}; missing columns up to q
    are drawn at the scale of the smallest kept component so that every column can grow.
    """
    m, n = shape
    if warm is None or not np.any(warm.d > 0):
        return ops.zeros((m, q)), ops.asarray(rng.standard_normal((n, q)) / np.sqrt(q))
    k = min(int(np.sum(warm.d > 0)), q)
    root = np.sqrt(warm.d[:k])
    A = np.zeros((m, q))
    B = rng.standard_normal((n, q)) * np.sqrt(warm.d[k - 1] / n)
    A[:, :k] = warm.U[:, :k] * root
    B[:, :k] = warm.V[:, :k] * root
    return ops.asarray(A), ops.asarray(B)
