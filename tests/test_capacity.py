"""The identity capacity test (App. C.1–C.2): ARM cannot fit I(n) below (n − d)/n², RAD can."""
from __future__ import annotations

import json

import numpy as np
import pytest

from rankkit.models.capacity import arm_bound, capacity_model, fit_identity, identity_block

N, D = 32, 16  # n = 2d, as n = 1024 > d = 768 in the paper


def test_bound_is_the_error_of_the_best_rank_d_approximation():
    assert arm_bound(1024, 768) == pytest.approx(0.00024, abs=5e-6)  # the paper's figure
    for n, d in [(10, 3), (32, 16), (50, 49)]:
        U, s, Vt = np.linalg.svd(np.eye(n))
        best = (U[:, :d] * s[:d]) @ Vt[:d]  # Eckart–Young: truncated SVD
        assert np.mean((best - np.eye(n)) ** 2) == pytest.approx(arm_bound(n, d), abs=1e-12)
    assert arm_bound(8, 16) == 0.0


def test_identity_block_uses_2n_distinct_tokens_and_never_bos():
    block = identity_block(50, 101, exclude=(100,), random_state=3)
    ids = np.concatenate([block.contexts, block.candidates])
    assert len(np.unique(ids)) == 100 and 100 not in ids
    np.testing.assert_array_equal(block.target, np.eye(50))
    with pytest.raises(ValueError, match="--n 51"):
        identity_block(51, 101, exclude=(100,))


@pytest.fixture(scope="module")
def results():
    out = {}
    for kind in ("arm", "rad"):
        model = capacity_model(kind, n=N, d=D, seed=1)
        block = identity_block(N, model.vocab_size, exclude=(model.bos_token_id,), random_state=1)
        out[kind] = fit_identity(model, block, steps=1000, lr=3e-3, random_state=1)
    return out


def test_arm_never_goes_below_the_bound_but_reaches_it(results):
    arm = results["arm"]
    assert (arm.n, arm.d) == (N, D)
    assert arm.mse >= arm.bound * (1 - 1e-5)  # a theorem: rank(R̂_ARM) ≤ d; only float slack
    assert arm.rank <= D
    assert arm.mse <= 1.2 * arm.bound  # and training gets close to it (best constant: 2x the bound)
    assert arm.losses[-1] < arm.losses[0]


def test_rad_goes_well_below_the_bound_with_a_full_rank_block(results):
    rad = results["rad"]
    assert rad.mse < rad.bound / 4
    assert rad.rank > D


def test_capacity_cli_writes_the_report(cli, tmp_path):
    code, stdout, stderr = cli("capacity-test", "--n", 12, "--d", 4, "--steps", 3, "--model", "both",
                               "--device", "cpu", "--out", tmp_path)
    assert code == 0, stderr
    report = json.loads((tmp_path / "capacity.json").read_text())
    assert (report["n"], report["d"]) == (12, 4)
    assert report["bound"] == pytest.approx(8 / 144)
    for kind in ("arm", "rad"):
        assert set(report[kind]) >= {"mse", "rank"} and 0 <= report[kind]["rank"] <= 12
    assert report["arm"]["mse"] >= report["bound"] * (1 - 1e-5) and report["arm"]["rank"] <= 4
    assert "ARM bound" in stdout


@pytest.mark.parametrize("args, message", [(("--model", "lstm"), "--model lstm"), (("--d", "6"), "--d 6"),
                                           (("--n", "1"), "--n 1")])
def test_capacity_cli_bad_options(cli, tmp_path, args, message):
    code, _, stderr = cli("capacity-test", "--n", 8, "--steps", 1, *args, "--device", "cpu", "--out", tmp_path)
    assert code == 2 and message in stderr
