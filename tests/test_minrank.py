"""Minimal-rank estimation: Eckart–Young certificates, Lemma 1/2 bounds, sweeps, the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from rankkit.errors import UserError
from rankkit.minrank import (certified_lower_bound, check_ranks, eckart_young_rank, rank_bracket, rank_sweep,
                             rows_with_min_obs)
from rankkit.solvers import Completion

pytestmark = pytest.mark.filterwarnings("ignore::rankkit.solvers.ConvergenceWarning")


FAST = dict(iters=20, warm_iters=40, thresh=1e-12)


def observed(Z, mask):
    rows, cols = np.nonzero(mask)
    return sp.csr_matrix((Z[rows, cols], (rows, cols)), shape=Z.shape)


def planted(m, n, r, *, density, seed):
    rng = np.random.default_rng(seed)
    Z = rng.random((m, r)) @ rng.random((r, n)) / r
    mask = rng.random((m, n)) < density
    mask[np.arange(m), rng.integers(0, n, m)] = True
    return Z, mask


def test_eckart_young_rank_closed_form():
    sigma = np.array([3.0, 2.0, 1.0])  # tails: q=0: 14, q=1: 5, q=2: 1, q=3: 0
    assert [eckart_young_rank(sigma, b) for b in (20, 14, 13.9, 5, 1, 0.99, 0)] == [0, 0, 1, 1, 2, 3, 3]


def test_fully_observed_planted_matrix_certifies_its_rank():
    Z, _ = planted(30, 20, 3, density=1.0, seed=0)
    cert = certified_lower_bound(sp.csr_matrix(Z), 1e-10)
    assert cert.q_low == 3
    assert cert.rows.size >= 3 and cert.cols.size >= 3


@pytest.mark.parametrize("seed", range(4))
def test_lower_bound_never_exceeds_a_planted_rank_that_fits(seed):
    rng = np.random.default_rng(seed)
    r = int(rng.integers(1, 5))
    Z, mask = planted(40, 25, r, density=0.6, seed=seed)
    for noise, tol in ((0.0, 1e-9), (0.05, None)):
        noisy = Z + noise * rng.standard_normal(Z.shape)
        tol = tol or np.mean((noisy - Z)[mask] ** 2)  # the planted rank-r Z fits at this MSE
        cert = certified_lower_bound(observed(noisy, mask), tol)
        assert cert.q_low <= r
        if cert.rows.size:  # the certificate is honest: a fully observed block with these σ
            block = noisy[np.ix_(cert.rows, cert.cols)]
            assert mask[np.ix_(cert.rows, cert.cols)].all()
            np.testing.assert_allclose(cert.singular_values, np.linalg.svd(block, compute_uv=False))
            assert eckart_young_rank(cert.singular_values, tol * mask.sum()) == cert.q_low
        if noise == 0:
            assert cert.q_low >= 2 or r == 1  # a real block certifies more than the zero matrix


def test_zero_matrix_certificate_counts_stored_zeros():
    X = sp.csr_matrix(([0.5, 0.5], ([0, 1], [0, 1])), shape=(2, 2))  # ‖P_Ω X‖² = 0.5 on 2 entries
    assert certified_lower_bound(X, 0.3).q_low == 0 and certified_lower_bound(X, 0.2).q_low == 1
    with_zeros = sp.csr_matrix(([0.5, 0.0, 0.0, 0.5], ([0, 0, 1, 1], [0, 1, 0, 1])), shape=(2, 2))
    assert with_zeros.nnz == 4
    # 4 observed entries: budget 0.2·4 = 0.8 ≥ 0.5 → the zero matrix fits, and so on the full block
    assert certified_lower_bound(with_zeros, 0.2).q_low == 0
    assert certified_lower_bound(with_zeros, 0.01).q_low == 2  # the 2 × 2 block diag(0.5, 0.5)


def test_sweep_finds_planted_rank_and_lemma2_bound():
    Z, mask = planted(40, 30, 3, density=0.6, seed=5)
    sweep = rank_sweep(observed(Z, mask), [1, 2, 3, 4], tol=1e-6, **FAST)
    assert sweep.q_star == 3
    assert sweep.lemma2_bound == 1 + sweep.q_star_2 and sweep.q_star_2 <= 3
    full = sweep.frame.filter(sweep.frame["matrix"] == "P_Ω(R)")
    assert full["mse"][1] > 1e-4 and full["mse"][2] < 1e-6


def test_lemma2_sweep_is_reused_when_every_row_has_two_observations():
    """[P_Ω(R)]_2 = P_Ω(R) here, so its sweep must equal a separate sweep of the same matrix."""
    Z, mask = planted(40, 30, 3, density=0.6, seed=6)
    assert mask.sum(1).min() >= 2
    X = observed(Z, mask)
    sweep = rank_sweep(X, [2, 3], tol=1e-6, **FAST)
    alone = rank_sweep(X, [2, 3], tol=1e-6, lemma2=False, **FAST)
    two = sweep.frame.filter(sweep.frame["matrix"] == "[P_Ω(R)]_2")
    np.testing.assert_allclose(two["mse"].to_numpy(), alone.frame["mse"].to_numpy(), rtol=1e-9)
    assert sweep.q_star_2 == alone.q_star == 3


def test_lemma1_one_observation_per_row():
    rng = np.random.default_rng(6)
    m, n = 50, 20
    X = sp.csr_matrix((rng.random(m), (np.arange(m), rng.integers(0, n, m))), shape=(m, n))
    sweep = rank_sweep(X, [1], tol=1e-8, **FAST)
    assert rows_with_min_obs(X, 2).shape[0] == 0
    assert sweep.lemma2_bound == 1 and sweep.q_star == 1


def test_lemma2_single_rows_cost_one_rank():
    # [X]_2 is planted rank 2; rows with one observation hold values no rank-2 model explains
    Z, mask = planted(30, 20, 2, density=0.7, seed=7)
    mask[mask.sum(1) < 2] = True
    rng = np.random.default_rng(7)
    singles = np.zeros((40, 20))
    singles[np.arange(40), rng.integers(0, 20, 40)] = 1.0 + rng.random(40)
    X = sp.vstack([observed(Z, mask), sp.csr_matrix(singles)]).tocsr()
    sweep = rank_sweep(X, [1, 2, 3, 4], tol=1e-8, solver="als", **FAST)
    assert sweep.q_star_2 == 2 and sweep.lemma2_bound == 3
    assert sweep.q_star is not None and sweep.q_star <= 3


def test_bracket_brackets_the_planted_rank():
    Z, _ = planted(30, 25, 3, density=1.0, seed=8)
    bracket = rank_bracket(sp.csr_matrix(Z), 1e-8, ranks=[1, 2, 3, 4, 8], **FAST)
    assert bracket.q_low == 3 and bracket.q_high == 3 and bracket.rows.size >= 3 and bracket.cols.size >= 3
    assert bracket.text == "3 ≤ rank needed for MSE ≤ 1e-08 ≤ 3"
    assert bracket.sweep.frame.filter(bracket.sweep.frame["matrix"] == "P_Ω(R)")["rank"].max() == 3  # stopped at fit


def test_bad_rank_lists():
    assert check_ranks([4, 1, 2, 2]) == [1, 2, 4]
    for bad in ([], [0, 1], [1.5], ["a"]):
        with pytest.raises(UserError, match="ranks"):
            check_ranks(bad)


# ---- CLI ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def omega_dir(tmp_path_factory):
    from rankkit.omega import build_omega
    from rankkit.synthetic import generate_corpus
    from rankkit.tokenization import load_tokenizer

    frame = generate_corpus(300)
    omega = build_omega(frame["text"].to_list(), frame.select(["toxicity", "sentiment"]).to_numpy(),
                        load_tokenizer("synthetic"), responses=("toxicity", "sentiment"))
    return omega.save(tmp_path_factory.mktemp("omega") / "om")


def test_cli_softimpute_writes_factors_that_reproduce_the_reported_mse(cli, omega_dir, tmp_path):
    from rankkit.omega import Omega

    code, out, err = cli("softimpute", omega_dir, "--rank", 6, "--response", "sentiment", "--min-obs", 2,
                         "--iters", 10, "--warm-iters", 10, "--out", tmp_path / "fit")
    assert code == 0, err
    report = json.loads((tmp_path / "fit" / "report.json").read_text())
    fit = Completion.load(tmp_path / "fit" / "completion.safetensors")
    X = Omega.load(omega_dir).submatrix(2).matrix("sentiment").tocoo()
    assert report["shape"] == list(X.shape) and report["n_observed"] == X.nnz and report["response"] == "sentiment"
    assert np.mean((fit.predict(X.row, X.col) - X.data) ** 2) == pytest.approx(report["mse"], rel=1e-9)
    assert report["iterations"] == fit.trace.height and "observed MSE" in out


def test_cli_softimpute_defaults_to_last_built_omega_and_reads_mtx(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("RANKKIT_CACHE", str(tmp_path / "cache"))
    code, _, err = cli("softimpute", "--rank", 4, "--out", tmp_path / "none")
    assert code == 2 and "no Ω built yet" in err
    code, _, err = cli("build-omega", "synthetic", "--limit", 200, "--out", tmp_path / "om")
    assert code == 0, err
    code, out, err = cli("softimpute", "--rank", 4, "--iters", 5, "--warm-iters", 5, "--solver", "als", "--out", tmp_path / "fit")
    assert code == 0, err
    assert json.loads((tmp_path / "fit" / "report.json").read_text())["input"] == str((tmp_path / "om").resolve())
    code, _, err = cli("export", tmp_path / "om", "--format", "mtx", "--out", tmp_path / "om.mtx")
    assert code == 0, err
    code, _, err = cli("softimpute", tmp_path / "om.mtx", "--rank", 4, "--iters", 5, "--warm-iters", 5, "--out", tmp_path / "fit2")
    assert code == 0, err
    assert json.loads((tmp_path / "fit2" / "report.json").read_text())["n_observed"] == \
        json.loads((tmp_path / "fit" / "report.json").read_text())["n_observed"]


def test_cli_rank_sweep_reports_bracket(cli, omega_dir, tmp_path):
    code, out, err = cli("rank-sweep", omega_dir, "--ranks", "1,2,4,8", "--tol", "1e-3", "--iters", 10,
                         "--warm-iters", 20, "--out", tmp_path / "sweep")
    assert code == 0, err
    report = json.loads((tmp_path / "sweep" / "report.json").read_text())
    assert (tmp_path / "sweep" / "sweep.png").stat().st_size > 1000
    bracket = report["bracket"]
    assert bracket["q_low"] >= 1 and (bracket["q_high"] is None or bracket["q_low"] <= bracket["q_high"])
    assert report["lemma2_bound"] == 1 + report["q_star_2"]
    assert "rank needed for MSE ≤ 0.001" in out


@pytest.mark.parametrize("args,message", [
    (("--ranks", "1,x"), "--ranks"),
    (("--ranks", "0,2"), "--ranks"),
    (("--ranks", ","), "--ranks"),
    (("--response", "nope"), "--response nope"),
    (("--min-obs", "0"), "--min-obs"),
])
def test_cli_rank_sweep_errors(cli, omega_dir, tmp_path, args, message):
    code, _, err = cli("rank-sweep", omega_dir, *args, "--out", tmp_path / "s")
    assert code == 2 and message in err and "Traceback" not in err


def test_cli_softimpute_errors(cli, omega_dir, tmp_path):
    code, _, err = cli("softimpute", tmp_path / "missing", "--out", tmp_path / "f")
    assert code == 2 and "missing" in err
    code, _, err = cli("softimpute", omega_dir, "--solver", "svd", "--out", tmp_path / "f")
    assert code == 2 and "solver" in err
    code, _, err = cli("softimpute", omega_dir, "--min-obs", 10000, "--out", tmp_path / "f")
    assert code == 2 and "empty" in err
    code, out, err = cli("softimpute", omega_dir, "--rank", 100000, "--iters", 2, "--warm-iters", 0, "--out", tmp_path / "f")
    assert code == 0 and "clipped" in (out + err)


@pytest.mark.realdata
def test_sst2_slice_with_gpt2(cli, shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("RANKKIT_CACHE", str(tmp_path / "cache"))
    code, _, err = cli("build-omega", "sst2", "--path", shared_data / "sst2" / "train.tsv", "--limit", 1000,
                       "--tokenizer", shared_data / "gpt2_tokenizer", "--out", tmp_path / "om")
    assert code == 0, err
    code, out, err = cli("softimpute", "--rank", 32, "--min-obs", 2, "--iters", 10, "--warm-iters", 10,
                         "--out", tmp_path / "fit")
    assert code == 0, err
    report = json.loads((tmp_path / "fit" / "report.json").read_text())
    assert report["shape"][1] == 50257 and report["mse"] < report["mean_only_mse"]
    code, out, err = cli("rank-sweep", tmp_path / "om", "--ranks", "1,4", "--tol", "1e-3", "--iters", 10,
                         "--warm-iters", 20, "--out", tmp_path / "sweep")
    assert code == 0, err
    bracket = json.loads((tmp_path / "sweep" / "report.json").read_text())["bracket"]
    assert bracket["q_high"] is None or bracket["q_low"] <= bracket["q_high"]
