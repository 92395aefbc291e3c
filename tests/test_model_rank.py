"""Full rows of R̂ from ARM and RAD (§3.1.2, App. C.4) and `rankkit model-rank` end to end."""
from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch

from rankkit import numerical_rank
from rankkit.models import ARM, RAD, build_tiny_backbone
from rankkit.models.rows import reference_rad_rows, reward_rows


V, D = 150, 16


def random_contexts(n: int, *, seed: int, max_len: int = 9) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, V - 1, size=rng.integers(0, max_len + 1)) for _ in range(n)]


def tiny(kind, *, seed: int = 0):
    causal_lm = build_tiny_backbone(V, n_layer=2, n_embd=D, n_head=2, seed=seed)
    model = (ARM if kind == "arm" else RAD)(causal_lm, responses=("toxicity", "sentiment"), bos_token_id=V - 1, seed=seed)
    if kind == "arm":  # W starts at 0 (a fresh ARM abstains); give it a random head so its rows use all of d
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            model.W.copy_(torch.randn(model.W.shape, generator=generator))
    return model.eval()


def test_arm_rows_have_rank_at_most_d_plus_one_while_rad_rows_exceed_it():
    contexts = random_contexts(4 * D, seed=1)
    arm_rows = reward_rows(tiny("arm"), contexts, batch_size=8)
    assert arm_rows.shape == (4 * D, V) and arm_rows.dtype == np.float32
    arm_rank = numerical_rank(arm_rows, device="cpu").rank
    assert D - 2 <= arm_rank <= D + 1  # R̂_ARM = H(w1ᵀ + WE): rank ≤ d (eq. 8), and a random head uses it
    rad_rank = numerical_rank(reward_rows(tiny("rad"), contexts, batch_size=8), device="cpu").rank
    assert rad_rank > D + 1  # the candidate is an input: same d, no such bound


def test_arm_rows_match_the_product_h_times_a():
    model = tiny("arm", seed=2)
    contexts = random_contexts(6, seed=2)
    rows = reward_rows(model, contexts, response="sentiment", batch_size=4)
    for row, context in zip(rows, contexts):  # one unpadded context at a time, spelled out
        ids = torch.tensor([[V - 1, *context.tolist()]])
        with torch.no_grad():
            h = model.encode(ids)[0][0, -1]
            expected = h @ model.w[1] + (h @ model.W[1]) @ model.output_embeddings.T
        np.testing.assert_allclose(row, expected.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch_size, chunk_rows", [(1, 64), (3, 50), (5, 4096)])
def test_rad_cached_batched_rows_equal_naive_per_candidate_forward(batch_size, chunk_rows):
    model = tiny("rad", seed=3)
    contexts = random_contexts(5, seed=3)
    contexts[0] = np.array([], dtype=np.int64)  # the empty context (t = 1): BOS alone
    fast = reward_rows(model, contexts, batch_size=batch_size, chunk_rows=chunk_rows)
    slow = reference_rad_rows(model, contexts, batch_size=1 if batch_size == 1 else 37)
    np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-5)
    assert np.ptp(slow, axis=1).min() > 1e-4  # rows actually depend on the candidate


@pytest.fixture(scope="module")
def rad_checkpoint(tmp_path_factory, synthetic_tokenizer):
    path = tmp_path_factory.mktemp("ckpt") / "rad"
    model = RAD.from_backbone("tiny", tokenizer=synthetic_tokenizer, responses=("toxicity", "sentiment"), seed=0)
    model.save_pretrained(path)
    return path


def test_model_rank_cli_end_to_end(cli, tmp_path, rad_checkpoint):
    from rankkit.datasets import load_dataset
    from rankkit.models import load_reward_model
    from rankkit.prefixes import sample_contexts
    from rankkit.tokenization import encode_texts

    out = tmp_path / "rank"
    code, stdout, stderr = cli("model-rank", rad_checkpoint, "--rows", 40, "--grid", "10,20", "--limit", 200,
                               "--device", "cpu", "--save-rows", "--seed", 7, "--out", out)
    assert code == 0, stderr
    curve = pl.read_csv(out / "rank_curve.csv")
    assert curve.columns == ["rows", "rank"] and curve["rows"].to_list() == [10, 20, 40]
    summary = json.loads((out / "model_rank.json").read_text())
    assert {"model", "d", "vocab_size", "rows", "rank", "cutoff"} <= set(summary)
    assert (summary["model"], summary["d"], summary["vocab_size"], summary["rows"]) == ("rad", 64, 204, 40)
    rows = np.load(out / "rows.npy")
    assert rows.shape == (40, 204)
    assert curve["rank"].to_list() == [np.linalg.matrix_rank(rows[:r]) for r in (10, 20, 40)]
    assert summary["rank"] == curve["rank"][-1] and summary["cutoff"] > 0
    assert (out / "rank_curve.png").stat().st_size > 0
    assert "numerical rank" in stdout
    # the rows are those of i.i.d. prefixes of the synthetic data under the checkpoint's tokenizer
    model = load_reward_model(rad_checkpoint)
    corpus = encode_texts(load_dataset("synthetic", limit=200, random_state=7).texts, model.tokenizer, max_tokens=128)
    contexts = sample_contexts(corpus, 40, random_state=7)
    np.testing.assert_allclose(rows[:3], reference_rad_rows(model, contexts[:3]), rtol=1e-4, atol=1e-5)


def test_model_rank_from_an_omega_folder(cli, tmp_path, rad_checkpoint, synthetic_tokenizer):
    from rankkit.datasets import load_dataset
    from rankkit.omega import build_omega

    data = load_dataset("synthetic", limit=100)
    build_omega(data.texts, data.labels(), synthetic_tokenizer).save(tmp_path / "omega")
    code, stdout, stderr = cli("model-rank", rad_checkpoint, "--omega", tmp_path / "omega", "--rows", 25,
                               "--device", "cpu", "--out", tmp_path / "rank")
    assert code == 0, stderr
    assert pl.read_csv(tmp_path / "rank" / "rank_curve.csv")["rows"].to_list()[-1] == 25


@pytest.mark.parametrize("args, message", [
    (("--grid", "10,x"), "--grid 10,x"),
    (("--grid", "10,50"), "--grid 10,50: row counts must lie in 1..40"),
    (("--rows", "0"), "--rows 0"),
    (("--response", "nope"), "response 'nope'"),
])
def test_model_rank_bad_options_are_one_line_errors(cli, tmp_path, rad_checkpoint, args, message):
    code, _, stderr = cli("model-rank", rad_checkpoint, "--rows", 40, *args, "--device", "cpu", "--out", tmp_path / "o")
    assert code == 2 and message in stderr and "Traceback" not in stderr
    assert not (tmp_path / "o").exists()


def test_model_rank_on_a_folder_that_is_not_a_checkpoint(cli, tmp_path):
    code, _, stderr = cli("model-rank", tmp_path, "--out", tmp_path / "o", "--device", "cpu")
    assert code == 2 and "not a rankkit reward-model folder" in stderr
