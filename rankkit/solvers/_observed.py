"""The observed entries Ω of a scipy.sparse matrix, indexed once for both solver sweeps.

Stored entries are the observations, stored zeros included (SPEC §5: y = 0 is a real
observation, unlike R softImpute which treats stored zeros as missing).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..errors import UserError


@dataclass(frozen=True)
class ObservedMatrix:
    """P_Ω(X) in row-major order plus the permutation to column-major order.

    Attributes
    ----------
    shape : tuple (m, n)
    rows, cols : ndarray of shape (|Ω|,), int64, sorted by (row, col).
    values : ndarray of shape (|Ω|,), float64, the observed x_ij.
    indptr : ndarray of shape (m + 1,), CSR row pointers of ``rows``.
    t_indptr : ndarray of shape (n + 1,), CSR row pointers of the transpose.
    t_order : ndarray of shape (|Ω|,), positions of the entries in column-major order.
    """

    shape: tuple[int, int]
    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    indptr: np.ndarray
    t_indptr: np.ndarray
    t_order: np.ndarray

    @property
    def nnz(self) -> int:
        return int(self.values.size)

    def row_counts(self) -> np.ndarray:
        """Observations per row, ndarray of shape (m,)."""
        return np.diff(self.indptr)

    def col_counts(self) -> np.ndarray:
        """Observations per column, ndarray of shape (n,)."""
        return np.diff(self.t_indptr)

    def transpose(self) -> "ObservedMatrix":
        """P_Ω(X)ᵀ, indexed the same way (used for the column half-sweeps)."""
        order = self.t_order
        back = np.empty_like(order)
        back[order] = np.arange(order.size)
        return ObservedMatrix(
            shape=(self.shape[1], self.shape[0]),
            rows=self.cols[order],
            cols=self.rows[order],
            values=self.values[order],
            indptr=self.t_indptr,
            t_indptr=self.indptr,
            t_order=back,
        )

    def drop_empty_columns(self) -> tuple["ObservedMatrix", np.ndarray]:
        """(P_Ω(X) restricted to its observed columns, the kept column indices of X)."""
        kept = np.flatnonzero(self.col_counts() > 0)
        remap = np.full(self.shape[1], -1, dtype=np.int64)
        remap[kept] = np.arange(kept.size)
        t_indptr = np.concatenate([self.t_indptr[kept], self.t_indptr[-1:]])
        return ObservedMatrix((self.shape[0], kept.size), self.rows, remap[self.cols], self.values, self.indptr,
                              t_indptr, self.t_order), kept

    def to_csr(self) -> sp.csr_matrix:
        """The CSR matrix of the observed entries."""
        return sp.csr_matrix((self.values, self.cols, self.indptr), shape=self.shape)


def observe(X, *, name: str = "X") -> ObservedMatrix:
    """Index the stored entries of ``X`` as the observed set Ω, validating it once.

    Raises
    ------
    UserError
        ``X`` is not scipy.sparse, has no rows, columns or stored entries, has duplicate
        stored entries (COO input), or stores a NaN or infinite value (the message names the
        row and column).
    """
    if not sp.issparse(X):
        raise UserError(
            f"{name} must be a scipy.sparse matrix whose stored entries are the observed ones, got {type(X).__name__}"
        )
    m, n = X.shape
    if m == 0 or n == 0 or X.nnz == 0:
        raise UserError(f"{name} is empty ({m} × {n} with {X.nnz} observed entries): nothing to complete")
    coo = X.tocoo()
    rows = np.asarray(coo.row, dtype=np.int64)
    cols = np.asarray(coo.col, dtype=np.int64)
    values = np.asarray(coo.data, dtype=np.float64)
    order = np.lexsort((cols, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    dup = np.flatnonzero((rows[1:] == rows[:-1]) & (cols[1:] == cols[:-1]))
    if dup.size:
        raise UserError(f"{name} stores entry (row {rows[dup[0]]}, column {cols[dup[0]]}) more than once; sum or drop duplicates first")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise UserError(f"{name} holds {values[bad[0]]} at row {rows[bad[0]]}, column {cols[bad[0]]}; observed values must be finite")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=m))]).astype(np.int64)
    t_indptr = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=n))]).astype(np.int64)
    t_order = np.lexsort((rows, cols))
    return ObservedMatrix((m, n), rows, cols, values, indptr, t_indptr, t_order)
