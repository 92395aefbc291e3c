"""Array operations the solvers are written against, on numpy/scipy.

The solver code (:mod:`._softimpute`, :mod:`._als`, :mod:`._linalg`) is backend-agnostic: it
calls the methods of an ops object and the ``@``, ``*``, ``-`` and indexing operators that numpy
arrays and torch tensors share. Tall arrays (m × q, n × q, |Ω|) live on the backend; q-sized
arrays (singular values, q × q rotations) are always numpy float64. :class:`NumpyOps` lives here,
``TorchOps`` in :mod:`._torch_ops` (torch is imported only there).
"""
from __future__ import annotations

import contextlib

import numpy as np
import scipy.sparse as sp

from ._observed import ObservedMatrix

#: Elements per ALS row batch (c × k × max(k, q)): bounds peak memory.
CHUNK_ELEMENTS = 1 << 22
#: Elements per gathered block in the |Ω| × q products and float64 upcasts: small enough to
#: stay in cache (2× faster than 2^22 on 200,000 × 64 factors).
CACHE_ELEMENTS = 1 << 18


class NumpyOps:
    """numpy/scipy backend. ``dtype`` is float32 or float64 for all tall arrays."""

    name = "numpy"
    device = "cpu"

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)

    # conversion -------------------------------------------------------------------------
    def asarray(self, a):
        return np.ascontiguousarray(a, dtype=self.dtype)

    def index(self, a):
        return np.asarray(a, dtype=np.int64)

    def to_numpy(self, a) -> np.ndarray:
        return np.asarray(a)

    def zeros(self, shape):
        return np.zeros(shape, dtype=self.dtype)

    # sparse-plus-low-rank products ------------------------------------------------------
    def prepare(self, obs: ObservedMatrix):
        """Backend-side index of Ω (numpy: the ObservedMatrix itself)."""
        return {"obs": obs, "rows": obs.rows, "cols": obs.cols}

    def _csr(self, h, values) -> sp.csr_matrix:
        obs = h["obs"]
        return sp.csr_matrix((values, obs.cols, obs.indptr), shape=obs.shape)

    def spmm(self, h, values, V):
        """P_Ω(values) @ V, shape (m, q)."""
        return self._csr(h, values) @ V

    def spmm_t(self, h, values, U):
        """P_Ω(values)ᵀ @ U, shape (n, q); reads U in row order (2.4× faster than a CSR of the
        transpose, whose gathers from U are random)."""
        return self._csr(h, values).T @ U

    def observed_dot(self, h, A, B):
        """(A Bᵀ)_ij for every (i, j) ∈ Ω, shape (|Ω|,), never forming A Bᵀ (R's ``suvC``)."""
        rows, cols = h["rows"], h["cols"]
        out = np.empty(rows.size, dtype=self.dtype)
        step = max(1, CACHE_ELEMENTS // max(1, A.shape[1]))
        for s in range(0, rows.size, step):
            out[s : s + step] = np.einsum("ij,ij->i", np.take(A, rows[s : s + step], axis=0), np.take(B, cols[s : s + step], axis=0))
        return out

    # small results (numpy float64) ------------------------------------------------------
    def cross(self, A, B) -> np.ndarray:
        """Aᵀ B as a float64 numpy array (q × q), accumulated in float64."""
        if self.dtype == np.float64:
            return A.T @ B
        out = np.zeros((A.shape[1], B.shape[1]))
        step = max(1, CACHE_ELEMENTS // max(1, A.shape[1], B.shape[1]))
        for s in range(0, A.shape[0], step):  # upcast block by block, in cache
            a = A[s : s + step].astype(np.float64)
            out += a.T @ (a if B is A else B[s : s + step].astype(np.float64))
        return out

    def sum_sq(self, a) -> float:
        return float(np.dot(a.ravel().astype(np.float64), a.ravel().astype(np.float64)))

    def blas_context(self, threads: int | None = 1):
        """Run with ``threads`` BLAS threads (None: unchanged). Every product here is tall-skinny
        (q × m by m × q) or a batch of tiny k × k systems; on a busy 2-core machine spinning BLAS
        threads made Aᵀ B on 10,000 × 64 factors 100× slower (0.69 s against 0.005 s)."""
        if threads is None:
            return contextlib.nullcontext()
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency
            return contextlib.nullcontext()
        return threadpool_limits(threads, user_api="blas")

    def swap(self, a):
        return np.swapaxes(a, -1, -2)

    def eye(self, k):
        return np.eye(k, dtype=self.dtype)

    def solve(self, G, rhs):
        """Solve G y = rhs for a batch of positive-definite G (c, k, k), rhs (c, k).

        Falls back to :meth:`pinv_solve` when a G is numerically singular (factors with entries
        so large that λ is lost next to them, e.g. after a λ = 0 stage).
        """
        try:
            return np.linalg.solve(G, rhs[..., None])[..., 0]
        except np.linalg.LinAlgError:
            return self.pinv_solve(G, rhs)

    def pinv_solve(self, G, rhs):
        """G⁺ rhs for a batch of positive-semidefinite G: the minimum-norm solution."""
        rtol = G.shape[-1] * 10 * np.finfo(self.dtype).eps
        return (np.linalg.pinv(G, rcond=rtol, hermitian=True) @ rhs[..., None])[..., 0]


def get_ops(backend: str, device: str, dtype):
    """The ops object for ``backend`` ("numpy" | "torch") on ``device`` with ``dtype``."""
    if backend == "numpy":
        return NumpyOps(dtype)
    from ._torch_ops import TorchOps

    return TorchOps(dtype, device)
