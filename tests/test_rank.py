"""numerical_rank and rank_curve against numpy.linalg.matrix_rank on matrices of planted rank (App. C.4)."""
from __future__ import annotations

import numpy as np
import pytest

from rankkit import numerical_rank, rank_curve
from rankkit.errors import UserError


def planted(m: int, n: int, spectrum: np.ndarray, dtype, seed: int = 0) -> np.ndarray:
    """U diag(spectrum) Vᵀ with random orthonormal U (m × k), V (n × k), built in float64, cast to dtype."""
    rng = np.random.default_rng(seed)
    k = len(spectrum)
    U, _ = np.linalg.qr(rng.standard_normal((m, k)))
    V, _ = np.linalg.qr(rng.standard_normal((n, k)))
    return ((U * spectrum) @ V.T).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(60, 300), (300, 60), (80, 80)])
def test_singular_values_just_above_and_below_the_cutoff(dtype, shape):
    m, n = shape
    cutoff = max(m, n) * np.finfo(dtype).eps  # σ₁ = 1
    # 5 clear values, 4 at 2-4x the cutoff (counted), 4 at 0.25-0.5x (not counted)
    spectrum = np.concatenate([np.linspace(1.0, 0.1, 5), cutoff * np.array([4, 3, 2.5, 2]),
                               cutoff * np.array([0.5, 0.4, 0.3, 0.25])])
    M = planted(m, n, spectrum, dtype)
    result = numerical_rank(M, device="cpu")
    assert result.rank == 9
    assert result.rank == np.linalg.matrix_rank(M)
    assert result.singular_values.dtype == dtype
    assert result.singular_values.shape == (min(m, n),)
    assert np.all(np.diff(result.singular_values) <= 0)
    np.testing.assert_allclose(result.cutoff, max(m, n) * np.finfo(dtype).eps * result.singular_values[0], rtol=1e-6)
    np.testing.assert_allclose(result.singular_values, np.linalg.svd(M, compute_uv=False),
                               atol=10 * np.finfo(dtype).eps * max(m, n) ** 0.5)


def test_float64_resolves_what_the_gram_matrix_cannot():
    """σ down to 1e-11 is far above float64's cutoff; MᵀM would have pushed it below ε (σ² = 1e-22)."""
    spectrum = np.logspace(0, -11, 12)
    M = planted(50, 200, spectrum, np.float64, seed=1)
    result = numerical_rank(M, device="cpu")
    assert result.rank == 12 == np.linalg.matrix_rank(M)
    np.testing.assert_allclose(result.singular_values[:12], spectrum, rtol=1e-4)


def test_matches_numpy_on_random_low_rank_products():
    rng = np.random.default_rng(3)
    for k in (1, 7, 40):
        for dtype in (np.float32, np.float64):
            M = (rng.standard_normal((45, k)) @ rng.standard_normal((k, 120))).astype(dtype)
            assert numerical_rank(M, device="cpu").rank == np.linalg.matrix_rank(M) == k


def test_explicit_tol_is_an_absolute_cutoff_like_numpy():
    M = planted(30, 90, np.array([1.0, 0.5, 1e-3, 1e-5]), np.float64)
    for tol in (1e-6, 1e-4, 0.7):
        result = numerical_rank(M, tol, device="cpu")
        assert result.rank == np.linalg.matrix_rank(M, tol=tol)
        assert result.cutoff == tol


def test_zero_matrix_and_integer_input():
    assert numerical_rank(np.zeros((4, 6)), device="cpu").rank == 0
    ints = np.array([[1, 2, 3], [2, 4, 6], [0, 1, 0]])
    result = numerical_rank(ints, device="cpu")
    assert result.rank == 2 == np.linalg.matrix_rank(ints)
    assert result.singular_values.dtype == np.float64


def test_torch_tensors_give_the_same_answer():
    torch = pytest.importorskip("torch")
    spectrum = np.concatenate([np.ones(3), [2e-3, 3e-6]])
    M = planted(40, 500, spectrum, np.float32)
    ours = numerical_rank(torch.from_numpy(M), device="cpu")
    assert ours.rank == numerical_rank(M, device="cpu").rank == int(torch.linalg.matrix_rank(torch.from_numpy(M)))
    half = numerical_rank(torch.from_numpy(M).to(torch.float16), device="cpu")  # computed in float32
    assert half.cutoff == pytest.approx(500 * 2.0**-10 * half.singular_values[0], rel=1e-3)  # float16's ε
    assert half.rank == 3


@pytest.mark.parametrize("bad", [np.zeros(5), np.zeros((0, 3)), np.array([[1.0, np.nan]])])
def test_bad_matrices_are_user_errors(bad):
    with pytest.raises(UserError, match="M:"):
        numerical_rank(bad, device="cpu")
    with pytest.raises(UserError, match="tol"):
        numerical_rank(np.eye(3), -1.0, device="cpu")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rank_curve_equals_numpy_on_every_prefix_and_is_non_decreasing(dtype):
    rng = np.random.default_rng(5)
    basis, _ = np.linalg.qr(rng.standard_normal((400, 65)))
    rows = (rng.standard_normal((120, 65)) @ basis.T).astype(dtype)  # i.i.d. rows in a 65-dim row space
    grid = [1, 5, 10, 15, 20, 40, 64, 65, 100, 120]
    curve = rank_curve(rows, grid, device="cpu")
    assert curve.columns[:2] == ["rows", "rank"]
    assert curve["rows"].to_list() == grid
    cutoff = numerical_rank(rows, device="cpu").cutoff
    expected = [int(np.linalg.matrix_rank(rows[:r], tol=cutoff)) for r in grid]
    assert curve["rank"].to_list() == expected
    assert expected == [1, 5, 10, 15, 20, 40, 64, 65, 65, 65]  # min(r, 65)
    assert np.all(np.diff(curve["rank"].to_numpy()) >= 0)
    assert np.allclose(curve["cutoff"].to_numpy(), cutoff)


def test_rank_curve_uses_one_cutoff_so_a_large_late_row_cannot_make_it_dip():
    """Per-prefix cutoffs max(r, n)·ε·σ₁(rows[:r]) rise with a huge late row and drop tiny directions;
    the common cutoff of the whole matrix keeps the nested-rows curve non-decreasing (interlacing)."""
    rng = np.random.default_rng(7)
    small = np.diag(np.logspace(0, -3, 10)) @ np.linalg.qr(rng.standard_normal((50, 10)))[0].T
    rows = np.vstack([small, 1e3 * rng.standard_normal((1, 50))]).astype(np.float32)
    per_prefix = [int(np.linalg.matrix_rank(rows[:r])) for r in (10, 11)]
    assert per_prefix[1] < per_prefix[0]  # numpy's per-matrix default dips here
    curve = rank_curve(rows, [10, 11], device="cpu")
    assert np.all(np.diff(curve["rank"].to_numpy()) >= 0)
    assert curve["rank"][-1] == numerical_rank(rows, device="cpu").rank


def test_rank_curve_on_tall_matrices_and_default_grid():
    rng = np.random.default_rng(6)
    rows = rng.standard_normal((90, 30)) @ np.diag(np.r_[np.ones(20), np.zeros(10)]) @ rng.standard_normal((30, 30))
    curve = rank_curve(rows, device="cpu")
    assert curve["rows"].to_list()[-1] == 90 and curve.height == 20
    cutoff = numerical_rank(rows, device="cpu").cutoff
    assert curve["rank"].to_list() == [int(np.linalg.matrix_rank(rows[:r], tol=cutoff)) for r in curve["rows"]]
    with pytest.raises(UserError, match="grid: row count 91"):
        rank_curve(rows, [10, 91], device="cpu")
