"""softImpute-ALS and plain ALS against dense references, closed forms and planted ranks."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from rankkit.device import has_cuda
from rankkit.errors import UserError
from rankkit.solvers import Completion, ConvergenceWarning, RankClippedWarning, soft_impute
from rankkit.solvers import _als, _reference, _softimpute
from rankkit.solvers._ops import NumpyOps

pytestmark = pytest.mark.filterwarnings("ignore::rankkit.solvers.ConvergenceWarning")


def planted(m, n, r, *, density, noise=0.0, seed=0):
    """A rank-r matrix U Vᵀ (+ noise) observed on a random pattern with every row/column hit."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((m, r)) @ rng.standard_normal((r, n)) / np.sqrt(r)
    X = Z + noise * rng.standard_normal((m, n))
    mask = rng.random((m, n)) < density
    mask[np.arange(m), rng.integers(0, n, m)] = True
    mask[rng.integers(0, m, n), np.arange(n)] = True
    return X, mask, Z


def sparse(X, mask):
    rows, cols = np.nonzero(mask)
    return sp.csr_matrix((X[rows, cols], (rows, cols)), shape=X.shape)


def fit_matrix(c: Completion) -> np.ndarray:
    return (c.U * c.d) @ c.V.T


def test_softimpute_als_follows_dense_algorithm_3_1():
    X, mask, _ = planted(40, 30, 3, density=0.5, noise=0.1)
    mask[:, :4] = False  # unobserved columns (dropped internally, restored as zeros)
    q, lam = 5, 0.5
    U0, _, _ = _softimpute.initial_factors(NumpyOps("float64"), np.random.default_rng(7), X.shape, q)
    U, d, V, trace = _reference.softimpute_als(X, mask, U0, lam=lam, iters=25)
    fit = soft_impute(sparse(X, mask), q, lam=lam, iters=25, warm_iters=0, thresh=0, random_state=7)
    np.testing.assert_allclose(fit.trace["mse"].to_numpy(), [t[1] for t in trace], rtol=1e-9)
    np.testing.assert_allclose(fit.trace["objective"].to_numpy(), [t[0] for t in trace], rtol=1e-9)
    np.testing.assert_allclose(fit_matrix(fit), (U * d) @ V.T, atol=1e-9)
    assert fit.V.shape == (30, fit.rank) and not fit.V[:4].any()


@pytest.mark.parametrize("solver", ["softimpute-als", "als"])
@pytest.mark.parametrize("lam", [0.3, 0.0])
def test_objective_never_increases(solver, lam):
    X, mask, _ = planted(50, 35, 4, density=0.3, noise=0.2, seed=1)
    fit = soft_impute(sparse(X, mask), 6, lam=lam, iters=40, warm_iters=0, thresh=0, solver=solver)
    obj = fit.trace["objective"].to_numpy()
    assert np.all(np.diff(obj) <= 1e-10 * obj[:-1])


def test_als_follows_dense_row_by_row_reference():
    # rows hold 1..q+3 observations: both the Woodbury (k < q) and the Gram (k ≥ q) forms run
    X, mask, _ = planted(60, 25, 3, density=0.12, noise=0.1, seed=2)
    mask[:, -2:] = False
    q = 5
    for lam in (0.2, 0.0):
        _, B0 = _als.initial_factors(NumpyOps("float64"), np.random.default_rng(3), X.shape, q)
        A, B, trace = _reference.als(X, mask, B0, lam=lam, iters=6)
        fit = soft_impute(sparse(X, mask), q, lam=lam, iters=6, warm_iters=0, thresh=0, solver="als", random_state=3)
        # at λ = 0 the solver uses the ridge floor 1e-9·rms(x) (the λ → 0⁺ limit of the minimum-norm solve)
        rtol = 1e-6 if lam else 1e-5
        np.testing.assert_allclose(fit.trace["mse"].to_numpy(), [t[1] for t in trace], rtol=rtol, atol=1e-12)
        where = slice(None) if lam else mask  # unobserved entries are least determined at λ = 0
        np.testing.assert_allclose(fit_matrix(fit)[where], (A @ B.T)[where], atol=1e-7 if lam else 1e-6)
    assert set(mask.sum(1)) & set(range(1, q)) and max(mask.sum(1)) >= q


def test_lambda_zero_fully_observed_is_truncated_svd():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((30, 20))
    s = np.linalg.svd(X, compute_uv=False)
    fit = soft_impute(sp.csr_matrix(X), 4, lam=0.0, iters=500, warm_iters=0, thresh=1e-14)
    assert fit.mse * X.size == pytest.approx(np.sum(s[4:] ** 2), rel=1e-6)
    np.testing.assert_allclose(fit.d, s[:4], rtol=1e-6)


@pytest.mark.parametrize("solver,factor", [("softimpute-als", 1.01), ("als", 2.0)])
def test_lambda_above_largest_singular_value_gives_zero(solver, factor):
    # softimpute-als lands on 0 exactly (final soft-thresholding); ALS decays to it geometrically
    X, mask, _ = planted(30, 20, 2, density=0.6, seed=5)
    Xs = sparse(X, mask)
    sigma1 = np.linalg.svd(Xs.toarray(), compute_uv=False)[0]
    fit = soft_impute(Xs, 4, lam=factor * sigma1, iters=60, warm_iters=0, solver=solver)
    np.testing.assert_allclose(fit_matrix(fit), 0.0, atol=1e-8)
    assert fit.d[0] < 1e-8 and (solver == "als" or fit.effective_rank == 0)
    assert fit.mse == pytest.approx(np.mean(Xs.data**2))


@pytest.mark.parametrize("solver", ["als", "softimpute-als"])
def test_planted_rank_recovered_at_r_not_below(solver):
    X, mask, Z = planted(40, 30, 3, density=0.6, seed=6)
    iters = 40 if solver == "als" else 300
    at_r = soft_impute(sparse(X, mask), 3, lam=0.01, iters=20, warm_iters=iters, thresh=1e-16, solver=solver)
    below = soft_impute(sparse(X, mask), 2, lam=0.01, iters=20, warm_iters=iters, thresh=1e-16, solver=solver)
    assert at_r.mse < 1e-8
    assert below.mse > 1e-2
    np.testing.assert_allclose(fit_matrix(at_r), Z, atol=1e-3)  # the unobserved entries too


def test_agrees_with_nuclear_norm_solution_when_rank_is_large_enough():
    X, mask, _ = planted(30, 20, 3, density=0.7, noise=0.3, seed=8)
    lam = 2.0
    Z = _reference.soft_threshold_impute(X, mask, lam=lam)
    r = np.linalg.matrix_rank(Z, tol=1e-6)
    assert 1 <= r <= 5
    fit = soft_impute(sparse(X, mask), r + 3, lam=lam, iters=3000, warm_iters=0, thresh=1e-15)
    np.testing.assert_allclose(fit_matrix(fit), Z, atol=1e-5)
    assert fit.effective_rank == r


BACKENDS = [("torch", "cpu")] + ([("torch", "cuda")] if has_cuda() else [])


@pytest.mark.parametrize("solver", ["softimpute-als", "als"])
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-9), ("float32", 2e-3)])
@pytest.mark.parametrize("backend,device", BACKENDS)
def test_torch_and_numpy_agree(solver, dtype, tol, backend, device):
    X, mask, _ = planted(45, 30, 3, density=0.25, noise=0.1, seed=9)
    kw = dict(lam=0.05, iters=15, warm_iters=10, thresh=0, solver=solver, dtype=dtype, random_state=1)
    ref = soft_impute(sparse(X, mask), 5, backend="numpy", **kw)
    got = soft_impute(sparse(X, mask), 5, backend=backend, device=device, **kw)
    assert got.info["backend"] == "torch" and got.U.dtype == np.dtype(dtype)
    np.testing.assert_allclose(fit_matrix(got), fit_matrix(ref), atol=tol * np.abs(fit_matrix(ref)).max())
    assert got.mse == pytest.approx(ref.mse, rel=10 * tol)


def test_stored_zeros_are_observations():
    X = np.ones((6, 5))
    X[0, 0] = 0.0
    Xs = sp.csr_matrix((X.ravel(), np.tile(np.arange(5), 6), np.arange(0, 31, 5)), shape=(6, 5))
    assert Xs.nnz == 30  # the zero is stored
    fit = soft_impute(Xs, 1, lam=0.0, iters=200, warm_iters=0, thresh=1e-14, solver="als")
    # as a missing value the rank-1 completion would be all ones with zero error
    assert fit.info["n_observed"] == 30
    assert fit.mse > 1e-3 and fit.predict([0], [0])[0] < 0.9


def test_save_load_round_trip(tmp_path):
    X, mask, _ = planted(20, 15, 2, density=0.5, seed=10)
    fit = soft_impute(sparse(X, mask), 3, iters=5, warm_iters=5)
    for name in ("fit.npz", "fit.safetensors"):
        back = Completion.load(fit.save(tmp_path / name))
        np.testing.assert_array_equal(back.A, fit.A)
        np.testing.assert_array_equal(back.B, fit.B)
        assert back.trace.equals(fit.trace) and back.mse == fit.mse and back.info == fit.info
    with pytest.raises(UserError, match="fit.txt"):
        fit.save(tmp_path / "fit.txt")


def test_warm_start_from_converged_fit_stays_put():
    X, mask, _ = planted(30, 25, 2, density=0.5, noise=0.1, seed=11)
    Xs = sparse(X, mask)
    first = soft_impute(Xs, 4, lam=0.5, iters=2000, warm_iters=0, thresh=1e-14)
    again = soft_impute(Xs, 4, lam=0.5, iters=2000, warm_iters=0, thresh=1e-10, warm_start=first)
    assert again.trace.height < 10
    np.testing.assert_allclose(fit_matrix(again), fit_matrix(first), atol=1e-6)


def test_paper_schedule_and_warnings():
    X, mask, _ = planted(30, 20, 2, density=0.5, seed=12)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = soft_impute(sparse(X, mask), 3, thresh=0)
    assert fit.trace.height == 100 and fit.lam == 0.0
    assert fit.trace.filter(fit.trace["stage"] == 1)["lam"].unique().to_list() == [0.01]
    assert sum(issubclass(w.category, ConvergenceWarning) for w in caught) == 2


def test_degenerate_inputs():
    with pytest.raises(UserError, match="empty"):
        soft_impute(sp.csr_matrix((5, 4)), 2)
    with pytest.raises(UserError, match="1 × 4"):
        soft_impute(sp.csr_matrix(np.ones((1, 4))), 1)
    bad = sp.csr_matrix(np.array([[1.0, 2.0], [np.nan, 3.0], [1.0, 1.0]]))
    with pytest.raises(UserError, match="row 1, column 0"):
        soft_impute(bad, 1)
    dup = sp.coo_matrix(([1.0, 2.0, 3.0], ([0, 0, 1], [1, 1, 0])), shape=(3, 3))
    with pytest.raises(UserError, match="more than once"):
        soft_impute(dup, 1)
    with pytest.raises(UserError, match="scipy.sparse"):
        soft_impute(np.ones((3, 3)), 1)
    with pytest.raises(UserError, match="solver"):
        soft_impute(sp.csr_matrix(np.ones((3, 3))), 1, solver="svd")
    with pytest.raises(UserError, match="rank"):
        soft_impute(sp.csr_matrix(np.ones((3, 3))), 0)
    with pytest.raises(UserError, match="warm_start"):
        soft_impute(sp.csr_matrix(np.ones((3, 3))), 1, warm_start=np.ones(3))
    with pytest.warns(RankClippedWarning, match="clipped to 2"):
        fit = soft_impute(sp.csr_matrix(np.ones((3, 4))), 10, iters=3, warm_iters=0)
    assert fit.info["rank_used"] == 2


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_numerically_singular_ridge_systems_fall_back_to_minimum_norm(backend):
    from rankkit.solvers._ops import get_ops

    ops = get_ops(backend, "cpu", "float64")
    F = np.array([[[1e12, 1e12], [1e12, 1e12]]])  # λ = 0.01 is lost next to 1e24
    G = F @ F.transpose(0, 2, 1) + 0.01 * np.eye(2)
    rhs = np.array([[1.0, 1.0]])
    y = ops.to_numpy(ops.solve(ops.asarray(G), ops.asarray(rhs)))
    np.testing.assert_allclose(y, (np.linalg.pinv(G[0]) @ rhs[0])[None], rtol=1e-6)


@pytest.mark.parametrize("solver", ["softimpute-als", "als"])
def test_blas_thread_count_does_not_change_the_answer(solver):
    X, mask, _ = planted(60, 40, 3, density=0.4, seed=11)
    S = sparse(X, mask)
    one = soft_impute(S, 5, solver=solver, iters=20, warm_iters=20, blas_threads=1)
    two = soft_impute(S, 5, solver=solver, iters=20, warm_iters=20, blas_threads=2)
    free = soft_impute(S, 5, solver=solver, iters=20, warm_iters=20, blas_threads=None)
    np.testing.assert_allclose(two.d, one.d, rtol=1e-8)
    np.testing.assert_allclose(free.mse, one.mse, rtol=1e-8)


def test_softimpute_cli_rejects_zero_threads(cli, tmp_path):
    X, mask, _ = planted(20, 15, 2, density=0.5, seed=12)
    path = tmp_path / "x.mtx"
    import scipy.io

    scipy.io.mmwrite(str(path), sparse(X, mask))
    code, _, err = cli("softimpute", path, "--rank", 2, "--threads", 0, "--out", tmp_path / "fit")
    assert code == 2 and "--threads 0" in err
