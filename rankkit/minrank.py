"""How much rank does P_Ω(R) need? An upper bound by fitting, a certified lower bound, a bracket.

For a tolerance τ on the mean squared error over the observed entries, the rank needed is
q_τ = min{rank Z : ‖P_Ω(R − Z)‖²_F ≤ τ·|Ω|}. This module brackets it:

- **Upper bounds** (App. B.2). :func:`rank_sweep` fits rank-q completions (``soft_impute``) for
  a list of ranks; q* = the smallest q whose observed MSE ≤ τ. Lemma 2 gives a second one:
  minrank(P_Ω(R)) ≤ 1 + minrank([P_Ω(R)]_2), where [P_Ω(R)]_2 keeps the rows with ≥ 2
  observations (a rank-q fit of those plus one column of ones fits every single-observation
  row exactly, Lemma 1), so q_τ ≤ 1 + q*([P_Ω(R)]_2).
- **A certified lower bound.** If S is a fully observed block of P_Ω(R) (rows = contexts,
  columns = tokens observed in all of them) with singular values σ_i, every rank-q Z has
  ‖P_Ω(R − Z)‖² ≥ ‖S − Z_S‖² ≥ Σ_{i>q} σ_i² (Eckart–Young), so q_τ ≥ min{q : Σ_{i>q} σ_i² ≤ τ·|Ω|}.
  :func:`certified_lower_bound` searches such blocks greedily from the most frequent contexts.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import scipy.sparse as sp

from .errors import UserError
from .progress import track
from .solvers import RankClippedWarning, soft_impute
from .solvers._observed import observe

SWEEP_SCHEMA = {
    "matrix": pl.Utf8, "rank": pl.Int64, "rank_used": pl.Int64, "mse": pl.Float64, "objective": pl.Float64,
    "effective_rank": pl.Int64, "iterations": pl.Int64, "seconds": pl.Float64,
}
ALL_ROWS, ROWS_2 = "P_Ω(R)", "[P_Ω(R)]_2"


@dataclass(frozen=True)
class RankSweep:
    """Observed MSE against rank for P_Ω(R) and (for Lemma 2) [P_Ω(R)]_2.

    Attributes
    ----------
    frame : polars.DataFrame
        One row per (matrix, rank): matrix ("P_Ω(R)" or "[P_Ω(R)]_2"), rank, rank_used (after
        clipping to min(m, n) − 1), mse, objective, effective_rank, iterations, seconds.
    tol : float
        τ, the MSE target.
    q_star : int or None
        Smallest swept rank with MSE ≤ τ on P_Ω(R) (None: no swept rank reached τ).
    q_star_2 : int or None
        The same on [P_Ω(R)]_2 (0 when it has no rows, 1 when it has one).
    lemma2_bound : int or None
        1 + q_star_2 (Lemma 2); 1 when every row has one observation (Lemma 1).
    n_observed, n_observed_2 : int
        |Ω| of the two matrices.
    """

    frame: pl.DataFrame
    tol: float
    q_star: int | None
    q_star_2: int | None
    lemma2_bound: int | None
    n_observed: int
    n_observed_2: int

    @property
    def q_high(self) -> int | None:
        """The best upper bound on the rank needed: min(q*, Lemma 2 bound)."""
        found = [q for q in (self.q_star, self.lemma2_bound) if q is not None]
        return min(found) if found else None


@dataclass(frozen=True)
class Certificate:
    """A fully observed block S of P_Ω(R) and the rank it forces (Eckart–Young).

    Attributes
    ----------
    q_low : int
        min{q : Σ_{i>q} σ_i(S)² ≤ budget}: every completion with total observed squared error
        ≤ budget has rank ≥ q_low.
    rows, cols : ndarray of int64
        The block's rows (contexts) and columns (token ids); empty when the certificate is the
        zero matrix alone (‖P_Ω(R)‖² > budget ⇒ rank ≥ 1).
    singular_values : ndarray of float64
        σ(S), descending.
    budget : float
        τ·|Ω|.
    """

    q_low: int
    rows: np.ndarray
    cols: np.ndarray
    singular_values: np.ndarray
    budget: float


@dataclass(frozen=True)
class Bracket:
    """q_low ≤ (rank needed for observed MSE ≤ τ) ≤ q_high, with what certifies each side."""

    q_low: int
    q_high: int | None
    tol: float
    certificate: Certificate
    sweep: RankSweep | None = field(default=None, repr=False)

    @property
    def rows(self) -> np.ndarray:
        """Rows (contexts) of the block certifying q_low (empty: the zero-matrix certificate)."""
        return self.certificate.rows

    @property
    def cols(self) -> np.ndarray:
        """Columns (token ids) of the block certifying q_low."""
        return self.certificate.cols

    @property
    def text(self) -> str:
        high = str(self.q_high) if self.q_high is not None else "? (no swept rank reached it)"
        return f"{self.q_low} ≤ rank needed for MSE ≤ {self.tol:g} ≤ {high}"

    def to_dict(self) -> dict:
        c = self.certificate
        return {
            "q_low": self.q_low, "q_high": self.q_high, "tol": self.tol, "text": self.text,
            "certificate": {"rows": c.rows.tolist(), "cols": c.cols.tolist(), "shape": [int(c.rows.size), int(c.cols.size)],
                            "singular_values": c.singular_values.tolist(), "budget": c.budget},
            "q_star": None if self.sweep is None else self.sweep.q_star,
            "lemma2_bound": None if self.sweep is None else self.sweep.lemma2_bound,
        }


def as_matrix(omega, response: str | None = None) -> sp.csr_matrix:
    """P_Ω(R) as CSR from an :class:`rankkit.omega.Omega` (one response) or a scipy.sparse matrix."""
    if hasattr(omega, "matrix"):
        return omega.matrix(response)
    if sp.issparse(omega):
        return omega.tocsr()
    raise UserError(f"expected an Omega or a scipy.sparse matrix, got {type(omega).__name__}")


def rows_with_min_obs(X: sp.csr_matrix, min_obs: int = 2) -> sp.csr_matrix:
    """[X]_k: the rows of X with at least ``min_obs`` stored entries (stored zeros count)."""
    X = X.tocsr()
    return X[np.flatnonzero(np.diff(X.indptr) >= min_obs)]


def check_ranks(ranks) -> list[int]:
    """Validate a rank list: positive integers, returned sorted and without repeats."""
    try:
        values = [int(r) for r in ranks]
    except (TypeError, ValueError):
        raise UserError(f"ranks must be positive integers, got {ranks!r}") from None
    if not values or any(r < 1 for r in values) or any(float(r) != float(v) for r, v in zip(values, ranks)):
        raise UserError(f"ranks must be a non-empty list of positive integers, got {list(ranks)!r}")
    return sorted(set(values))


def rank_sweep(X, ranks, *, tol: float = 1e-3, lemma2: bool = True, stop_at_fit: bool = False,
               response: str | None = None, solver: str = "als", lam: float = 0.01, iters: int = 50,
               warm_iters: int = 50, device: str | None = "auto", backend: str | None = None, dtype=None,
               thresh: float = 1e-5, random_state: int = 0, progress: bool = False) -> RankSweep:
    """Observed MSE of the best rank-q completion found, for each q in ``ranks`` (App. B.2).

    q* = min{q : MSE_Ω(q) ≤ τ} is an upper bound on the rank needed (a fit was found); with
    ``lemma2`` the same sweep on [P_Ω(R)]_2 gives the Lemma 2 bound 1 + q*([P_Ω(R)]_2). Each
    rank is warm-started from the previous rank's fit (extra columns start random), so the
    solver refines a good lower-rank solution instead of restarting.

    Parameters
    ----------
    X : scipy.sparse matrix or Omega
        P_Ω(R); stored entries are observed (zeros included). An Omega uses ``response``.
    ranks : sequence of int
        Ranks to fit (sorted, repeats dropped). Ranks ≥ min(m, n) are clipped to min(m, n) − 1.
    tol : float, default 1e-3
        τ, the MSE target over the observed entries.
    lemma2 : bool, default True
        Also sweep [P_Ω(R)]_2 for the Lemma 2 bound.
    stop_at_fit : bool, default False
        Stop a matrix's sweep at the first rank reaching τ.
    solver : {"als", "softimpute-als"}, default "als"
        "als" by default: on reward matrices (1–3 observations per row) it reaches far lower
        MSE in the paper's 50 + 50 schedule than softImpute-ALS, so q* is tighter.
    lam, iters, warm_iters, device, backend, dtype, thresh, random_state
        Passed to :func:`rankkit.solvers.soft_impute` (paper schedule by default).
    progress : bool
        Progress bar over the ranks.

    Returns
    -------
    RankSweep
    """
    if not np.isfinite(tol) or tol < 0:
        raise UserError(f"tol must be a finite number ≥ 0, got {tol!r}")
    ranks = check_ranks(ranks)
    X = as_matrix(X, response)
    options = dict(solver=solver, lam=lam, iters=iters, warm_iters=warm_iters, device=device, backend=backend,
                   dtype=dtype, thresh=thresh, random_state=random_state)
    rows = _sweep_one(ALL_ROWS, X, ranks, tol, stop_at_fit, options, progress)
    q_star = _smallest_fit(rows, tol)
    q2, n2 = None, 0
    if lemma2:
        X2 = rows_with_min_obs(X, 2)
        n2 = int(X2.nnz)
        if X2.shape[0] <= 1:
            q2 = X2.shape[0]  # no rows: Lemma 1; one row: a rank-1 fit is exact
        elif X2.shape[0] == X.shape[0]:  # every row already has ≥ 2 observations: same matrix, same fits
            rows += [{**row, "matrix": ROWS_2} for row in rows]
            q2 = q_star
        else:
            rows2 = _sweep_one(ROWS_2, X2, ranks, tol, stop_at_fit, options, progress)
            rows += rows2
            q2 = _smallest_fit(rows2, tol)
    frame = pl.DataFrame(rows, schema=SWEEP_SCHEMA)
    return RankSweep(frame=frame, tol=float(tol), q_star=q_star, q_star_2=q2,
                     lemma2_bound=None if q2 is None else 1 + q2, n_observed=int(X.nnz), n_observed_2=n2)


def _sweep_one(label, X, ranks, tol, stop_at_fit, options, progress) -> list[dict]:
    """Fit each rank in turn, warm-started from the previous rank's fit (a rank path)."""
    rows, fit = [], None
    for q in track(ranks, total=len(ranks), description=f"rank sweep {label}", enabled=progress):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RankClippedWarning)  # reported through rank_used
            fit = soft_impute(X, q, warm_start=fit, **options)
        rows.append({"matrix": label, "rank": q, "rank_used": fit.info["rank_used"], "mse": fit.mse,
                     "objective": float(fit.trace["objective"][-1]), "effective_rank": fit.effective_rank,
                     "iterations": fit.trace.height, "seconds": fit.info["seconds"]})
        if stop_at_fit and fit.mse <= tol:
            break
    return rows


def _smallest_fit(rows: list[dict], tol: float) -> int | None:
    fits = [r["rank_used"] for r in rows if r["mse"] <= tol]
    return min(fits) if fits else None


def eckart_young_rank(singular_values: np.ndarray, budget: float) -> int:
    """min{q ≥ 0 : Σ_{i>q} σ_i² ≤ budget} (the rank any fit within ``budget`` must have on S)."""
    energy = np.asarray(singular_values, dtype=np.float64) ** 2
    tails = np.concatenate([np.cumsum(energy[::-1])[::-1], [0.0]])  # tails[q] = Σ_{i>q} σ_i²
    return int(np.flatnonzero(tails <= budget)[0])


def certified_lower_bound(X, tol: float, *, response: str | None = None, seeds: int = 8, max_rows: int = 256,
                          pool: int = 4096) -> Certificate:
    """The largest rank forced by a fully observed block found by greedy search.

    Starting from each of the ``seeds`` most observed rows, rows are added one at a time from
    the ``pool`` most observed rows, each time the one sharing the most columns with the block
    (the block's columns are those observed in all of its rows); every intermediate block S is
    scored with :func:`eckart_young_rank` at budget τ·|Ω|. The zero matrix is the trivial
    certificate: ‖P_Ω(R)‖² > τ·|Ω| forces rank ≥ 1.

    Parameters
    ----------
    X : scipy.sparse matrix or Omega
    tol : float
        τ, the MSE target over the observed entries.
    seeds, max_rows, pool : int
        Search effort: starting rows, rows per block, candidate rows.

    Returns
    -------
    Certificate
    """
    if not np.isfinite(tol) or tol < 0:
        raise UserError(f"tol must be a finite number ≥ 0, got {tol!r}")
    obs = observe(as_matrix(X, response))
    csr = obs.to_csr()
    budget = float(tol) * obs.nnz
    empty = np.zeros(0, dtype=np.int64)
    best = Certificate(int(np.dot(obs.values, obs.values) > budget), empty, empty, np.zeros(0), budget)
    counts = obs.row_counts()
    candidates = np.argsort(-counts, kind="stable")[: min(pool, obs.shape[0])]
    candidates = candidates[counts[candidates] >= 2]
    pattern = sp.csr_matrix((np.ones(obs.nnz), obs.cols, obs.indptr), shape=obs.shape)[candidates]
    for start in range(min(seeds, candidates.size)):
        chosen = [start]
        cols = pattern.indices[pattern.indptr[start] : pattern.indptr[start + 1]]
        while len(chosen) < max_rows and cols.size >= 2:
            shared = np.asarray(pattern[:, cols].sum(axis=1)).ravel()
            shared[chosen] = -1
            nxt = int(np.argmax(shared))
            if shared[nxt] < 2:
                break
            chosen.append(nxt)
            row = pattern.indices[pattern.indptr[nxt] : pattern.indptr[nxt + 1]]
            cols = np.intersect1d(cols, row, assume_unique=True)
            if min(len(chosen), cols.size) <= best.q_low:
                continue  # rank(S) ≤ min(rows, cols) cannot beat the best certificate
            rows = candidates[chosen]
            S = csr[rows][:, cols].toarray()
            sigma = np.linalg.svd(S, compute_uv=False)
            q = eckart_young_rank(sigma, budget)
            if q > best.q_low:
                best = Certificate(q, np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64), sigma, budget)
    return best


def rank_bracket(omega, tol: float = 1e-3, *, sweep: RankSweep | None = None, ranks=None,
                 response: str | None = None, max_rank: int = 512, progress: bool = False, **solver_options) -> Bracket:
    """q_low ≤ rank needed for observed MSE ≤ τ ≤ q_high for P_Ω(R).

    q_low comes from :func:`certified_lower_bound` (a proof: no completion of lower rank fits);
    q_high = min(q*, 1 + q*([P_Ω(R)]_2)) from ``sweep``, or from a :func:`rank_sweep` over
    ``ranks`` (default 1, 2, 4, … up to ``max_rank``, stopping at the first fit) run here.

    Parameters
    ----------
    omega : Omega or scipy.sparse matrix
    tol : float, default 1e-3
    sweep : RankSweep, optional
        Reuse a finished sweep instead of fitting.
    ranks : sequence of int, optional
    response : str, optional
        Which response of an Omega.
    max_rank : int, default 512
    progress : bool
    **solver_options
        Passed to :func:`rank_sweep` (solver, lam, iters, warm_iters, device, dtype, …).

    Returns
    -------
    Bracket
        ``text`` reads "q_low ≤ rank needed for MSE ≤ tol ≤ q_high".

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X = sp.csr_matrix(np.outer(np.arange(1.0, 7.0), np.ones(5)))
    >>> rank_bracket(X, 1e-6, ranks=[1, 2], lemma2=False).text
    '1 ≤ rank needed for MSE ≤ 1e-06 ≤ 1'
    """
    X = as_matrix(omega, response)
    certificate = certified_lower_bound(X, tol)
    if sweep is None:
        if ranks is None:
            ranks = [2**k for k in range(int(np.log2(max(1, max_rank))) + 1)]
        sweep = rank_sweep(X, ranks, tol=tol, stop_at_fit=True, progress=progress, **solver_options)
    return Bracket(q_low=certificate.q_low, q_high=sweep.q_high, tol=float(tol), certificate=certificate, sweep=sweep)
