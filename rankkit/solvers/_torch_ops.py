"""The torch backend of the solver ops (CPU and CUDA); the only solver module importing torch.

Same methods as :class:`rankkit.solvers._ops.NumpyOps`; see there for the contract.
"""
from __future__ import annotations

import contextlib
import warnings

import numpy as np
import torch

from ._observed import ObservedMatrix
from ._ops import CACHE_ELEMENTS

_TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


class TorchOps:
    """torch backend on ``device`` ("cpu", "cuda", "cuda:N")."""

    name = "torch"

    def __init__(self, dtype, device: str):
        self.dtype = np.dtype(dtype)
        self.tdtype = _TORCH_DTYPES[self.dtype]
        self.device = torch.device(device)

    def asarray(self, a):
        return torch.as_tensor(np.asarray(a), dtype=self.tdtype, device=self.device).contiguous()

    def index(self, a):
        return torch.as_tensor(np.asarray(a, dtype=np.int64), device=self.device)

    def to_numpy(self, a) -> np.ndarray:
        return a.detach().cpu().numpy()

    def zeros(self, shape):
        return torch.zeros(shape, dtype=self.tdtype, device=self.device)

    def prepare(self, obs: ObservedMatrix):
        m, n = obs.shape
        return {
            "shape": (m, n),
            "rows": self.index(obs.rows),
            "cols": self.index(obs.cols),
            "crow": self.index(obs.indptr),
            "t_crow": self.index(obs.t_indptr),
            "t_order": self.index(obs.t_order),
            "t_indices": self.index(obs.rows[obs.t_order]),
        }

    @staticmethod
    def _csr(crow, col, values, shape):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
            return torch.sparse_csr_tensor(crow, col, values, size=shape, check_invariants=False)

    def spmm(self, h, values, V):
        return self._csr(h["crow"], h["cols"], values, h["shape"]) @ V

    def spmm_t(self, h, values, U):
        m, n = h["shape"]
        return self._csr(h["t_crow"], h["t_indices"], values[h["t_order"]], (n, m)) @ U

    def observed_dot(self, h, A, B):
        rows, cols = h["rows"], h["cols"]
        step = max(1, CACHE_ELEMENTS // max(1, A.shape[1]))
        parts = [(A[rows[s : s + step]] * B[cols[s : s + step]]).sum(1) for s in range(0, rows.numel(), step)]
        return torch.cat(parts) if parts else self.zeros(0)

    def cross(self, A, B) -> np.ndarray:
        return (A.to(torch.float64).T @ B.to(torch.float64)).cpu().numpy()

    def sum_sq(self, a) -> float:
        a = a.reshape(-1).to(torch.float64)
        return float(a @ a)

    def blas_context(self, threads: int | None = 1):
        """torch manages its own threads (``torch.set_num_threads``)."""
        return contextlib.nullcontext()

    def swap(self, a):
        return a.transpose(-1, -2)

    def eye(self, k):
        return torch.eye(k, dtype=self.tdtype, device=self.device)

    def solve(self, G, rhs):
        y, info = torch.linalg.solve_ex(G, rhs)
        return self.pinv_solve(G, rhs) if bool(info.any()) else y

    def pinv_solve(self, G, rhs):
        rtol = G.shape[-1] * 10 * np.finfo(self.dtype).eps
        return (torch.linalg.pinv(G, rtol=rtol, hermitian=True) @ rhs[..., None])[..., 0]
