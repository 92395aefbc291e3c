"""The result type shared by every solver and backend: a low-rank completion Z = A Bᵀ."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from ..errors import UserError
from ..io import atomic_path

TRACE_SCHEMA = {
    "iteration": pl.Int64,
    "stage": pl.Int64,
    "lam": pl.Float64,
    "objective": pl.Float64,
    "mse": pl.Float64,
    "ratio": pl.Float64,
    "seconds": pl.Float64,
}


def empty_trace() -> pl.DataFrame:
    return pl.DataFrame(schema=TRACE_SCHEMA)


@dataclass(frozen=True)
class Completion:
    """A rank-q completion Z = U diag(d) Vᵀ = A Bᵀ of a partially observed matrix.

    The factors are balanced as in Hastie et al. (2015): A = U D^{1/2}, B = V D^{1/2}, so
    ½λ(‖A‖²_F + ‖B‖²_F) = λ Σ d_i is the nuclear-norm penalty of Z.

    Attributes
    ----------
    U : ndarray of shape (m, r), orthonormal (or zero) columns.
    d : ndarray of shape (r,), non-negative, descending: the singular values of Z.
    V : ndarray of shape (n, r), orthonormal (or zero) columns.
    mse : float
        Mean squared error over the observed entries, ‖P_Ω(X − Z)‖²_F / |Ω|.
    lam : float
        λ of the last stage (0 after the paper's warm-started second stage).
    solver : str
        "softimpute-als" or "als".
    trace : polars.DataFrame
        One row per iteration: iteration, stage, lam, objective
        (½‖P_Ω(X − ABᵀ)‖² + ½λ(‖A‖² + ‖B‖²)), mse, ratio (relative change of the fit, the
        stopping rule) and seconds (wall time of that iteration).
    converged : bool
        Whether the last stage stopped on ``thresh`` rather than on its iteration limit.
    info : dict
        Run metadata (backend, device, dtype, shape, n_observed, rank requested).
    """

    U: np.ndarray
    d: np.ndarray
    V: np.ndarray
    mse: float
    lam: float
    solver: str
    trace: pl.DataFrame = field(default_factory=empty_trace)
    converged: bool = False
    info: dict = field(default_factory=dict)

    @property
    def A(self) -> np.ndarray:
        """Row factor U D^{1/2}, shape (m, r)."""
        return self.U * np.sqrt(self.d)

    @property
    def B(self) -> np.ndarray:
        """Column factor V D^{1/2}, shape (n, r)."""
        return self.V * np.sqrt(self.d)

    @property
    def rank(self) -> int:
        """Number of factor columns r kept (as R: at most one zero singular value)."""
        return int(self.d.size)

    @property
    def effective_rank(self) -> int:
        """Numerical rank of Z: singular values above max(m, n)·ε·σ₁ (App. C.4)."""
        if self.d.size == 0 or self.d[0] <= 0:
            return 0
        eps = np.finfo(np.dtype(self.info.get("dtype", "float64"))).eps
        return int(np.sum(self.d > max(self.U.shape[0], self.V.shape[0]) * eps * self.d[0]))

    def predict(self, rows, cols) -> np.ndarray:
        """Z_ij for index arrays ``rows`` and ``cols`` of equal length (float64)."""
        rows, cols = np.asarray(rows), np.asarray(cols)
        return np.einsum("ij,ij->i", self.U[rows] * self.d, self.V[cols])

    def save(self, path: str | os.PathLike) -> Path:
        """Write U, d, V, the trace and metadata atomically: ``.safetensors`` or ``.npz``."""
        path = Path(path)
        meta = {
            "mse": self.mse, "lam": self.lam, "solver": self.solver,
            "converged": self.converged, "info": self.info,
        }
        trace = {f"trace.{c}": self.trace[c].to_numpy() for c in self.trace.columns}
        arrays = {"U": self.U, "d": self.d, "V": self.V, **trace}
        with atomic_path(path) as tmp:
            if path.suffix == ".safetensors":
                from safetensors.numpy import save_file

                save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp), metadata={"completion": json.dumps(meta)})
            elif path.suffix == ".npz":
                with open(tmp, "wb") as fh:
                    np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)
            else:
                raise UserError(f"{path}: completions are saved as .safetensors or .npz")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Completion":
        """Read a completion written by :meth:`save`."""
        path = Path(path)
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="numpy") as fh:
                meta = json.loads(fh.metadata()["completion"])
                arrays = {k: fh.get_tensor(k) for k in fh.keys()}
        elif path.suffix == ".npz":
            with np.load(path) as fh:
                arrays = {k: fh[k] for k in fh.files}
            meta = json.loads(str(arrays.pop("meta")))
        else:
            raise UserError(f"{path}: expected a .safetensors or .npz completion")
        trace = pl.DataFrame({c: arrays.get(f"trace.{c}", np.zeros(0)) for c in TRACE_SCHEMA}, schema=TRACE_SCHEMA)
        return cls(U=arrays["U"], d=arrays["d"], V=arrays["V"], trace=trace, mse=meta["mse"], lam=meta["lam"],
                   solver=meta["solver"], converged=meta["converged"], info=meta["info"])
