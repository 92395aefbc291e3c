"""softImpute-ALS (Hastie, Mazumder, Lee & Zadeh 2015, Algorithm 3.1), backend-agnostic.

Minimises ½‖P_Ω(X − ABᵀ)‖²_F + ½λ(‖A‖²_F + ‖B‖²_F) with A = U D, B = V D (the paper's D; here
``d`` = D², the singular values of the fit Z = U diag(d) Vᵀ). Each half-step solves a ridge
regression against the filled matrix X* = P_Ω(X − Z) + Z, which is never formed: with the
residual r = P_Ω(X − Z) stored on Ω only,

    X*ᵀ U = rᵀ U + V diag(d),        X* V = r V + U diag(d),

so one iteration costs O(|Ω|·q + (m + n)·q²).
"""
from __future__ import annotations

import numpy as np

from ._linalg import random_orthonormal, thin_svd
from .convergence import relative_change


def initial_factors(ops, rng: np.random.Generator, shape, q: int, warm=None):
    """Starting (U, d, V) of Algorithm 3.1, step 1, or of a warm start.

    From scratch: U random orthonormal, D = I, V = 0. From a warm start (U₀, d₀, V₀) with r₀
    positive singular values: its first q components; when r₀ < q, U is padded with random
    orthonormal columns ⟂ U₀, d with the smallest positive d₀ and V with zeros (as R's
    ``Ssimpute.als``).
    """
    m, n = shape
    if warm is None or not np.any(warm.d > 0):
        return random_orthonormal(ops, rng, m, q), np.ones(q), ops.zeros((n, q))
    r0 = int(np.sum(warm.d > 0))
    k = min(r0, q)
    U, d, V = ops.asarray(warm.U[:, :k]), np.asarray(warm.d[:k], dtype=np.float64), ops.asarray(warm.V[:, :k])
    if k == q:
        return U, d, V
    pad = q - k
    U_pad = random_orthonormal(ops, rng, m, pad, against=U)
    U = ops.asarray(np.hstack([ops.to_numpy(U), ops.to_numpy(U_pad)]))
    V = ops.asarray(np.hstack([ops.to_numpy(V), np.zeros((n, pad))]))
    return U, np.concatenate([d, np.full(pad, d[-1])]), V


class SoftImputeALS:
    """One stage of Algorithm 3.1 at a fixed λ, advanced one iteration per :meth:`step`."""

    def __init__(self, ops, handle, x, start, *, lam: float):
        self.ops, self.h, self.x, self.lam = ops, handle, x, float(lam)
        self.U, self.d, self.V = start
        self.resid = self._residual()

    def _residual(self, U=None, Vd=None):
        """r = P_Ω(X − U (V diag(d))ᵀ) on the observed entries only (R's ``suvC``)."""
        ops = self.ops
        if U is None:
            U, Vd = self.U, self.V * ops.asarray(self.d)
        return self.x - ops.observed_dot(self.h, U, Vd)

    def _shrink(self):
        """d / (d + λ): the ridge solution times D, Algorithm 3.1 steps 2a and 3a (None at λ = 0)."""
        return None if self.lam == 0 else self.d / (self.d + self.lam)

    def step(self) -> tuple[float, float, float]:
        """One iteration (B-step then A-step). Returns (objective, sse, ratio).

        The U ← U R update of the B-step is kept implicit (U₀ R), which moves its m·q² product
        into the A-step's X* V = r V + U₀ (R D²); the relative change uses
        U₁ᵀU₀ = Sᵀ(Vᵀ(rᵀU₀) + (R D²)ᵀ) with S the A-step rotation, so no other m × q product is
        needed.
        """
        ops, h = self.ops, self.h
        U0, d0, V0 = self.U, self.d, self.V
        # B-step: B̃D = X*ᵀ U D²(D² + λ)⁻¹; SVD B̃D = Ṽ D̃² Rᵀ; V ← Ṽ, D ← D̃, U ← U R.
        B = ops.spmm_t(h, self.resid, U0)
        B += V0 * ops.asarray(d0)
        self.V, self.d, R = thin_svd(ops, B, self._shrink())
        M = R * self.d  # U diag(d) = U₀ R diag(d)
        self.resid = self._residual(U0, self.V @ ops.asarray(M.T))
        # A-step: ÃD = X* V D²(D² + λ)⁻¹; SVD ÃD = Ũ D̃² Sᵀ; U ← Ũ, D ← D̃, V ← V S.
        A = U0 @ ops.asarray(M)
        A += ops.spmm(h, self.resid, self.V)
        rtU0 = ops.cross(self.V, ops.spmm_t(h, self.resid, U0))  # (r V)ᵀ U₀
        scale = self._shrink()
        self.U, s, S = thin_svd(ops, A, scale)
        scale = np.ones_like(self.d) if scale is None else scale
        inv = np.divide(1.0, s, out=np.zeros_like(s), where=s > 0)
        live = (d0 > 0).astype(np.float64)  # U₀ᵀU₀ = diag(live): zero columns where d₀ = 0
        cross_U = (S * inv).T @ (scale[:, None] * (rtU0 + M.T * live[None, :]))  # U₁ᵀ U₀
        self.d, self.V = s, self.V @ ops.asarray(S)
        self.resid = self._residual()
        sse = ops.sum_sq(self.resid)
        ratio = relative_change((d0, V0), (self.d, self.V), cross_U, ops)
        return 0.5 * sse + self.lam * float(self.d.sum()), sse, ratio

    def finish(self):
        """The final step of R's ``final.svd``, then drop all but one zero component.

        For λ > 0: X* V = U diag(s) Rᵀ, V ← V R, d ← (s − λ)₊ (soft-thresholding). Keeps
        min(#{d > 0} + 1, q) components. Returns (U, d, V, sse) with U, V on the backend.
        """
        ops = self.ops
        if self.lam > 0:
            A = ops.spmm(self.h, self.resid, self.V) + self.U * ops.asarray(self.d)
            self.U, s, R = thin_svd(ops, A)
            self.V = self.V @ ops.asarray(R)
            self.d = np.maximum(s - self.lam, 0.0)
            self.resid = self._residual()
        keep = min(int(np.sum(self.d > 0)) + 1, self.d.size)
        return self.U[:, :keep], self.d[:keep], self.V[:, :keep], ops.sum_sq(self.resid)
