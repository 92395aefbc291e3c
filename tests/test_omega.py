"""P_Ω(R) (eq. 5) against answers computed independently: by hand, and by a pure-Python dict build."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
import scipy.io

from rankkit.errors import UserError
from rankkit.omega import MTX_ZERO, Omega, build_omega, export_mtx, last_built_omega, omega_from_corpus, omega_stats
from rankkit.synthetic import N_SPECIAL, SyntheticWorld
from rankkit.tokenization import TokenizedCorpus


def dict_omega(utterances, labels):
    """The brute-force reference: {(context tuple, v): [Σλy per response..., Σλ, count]}."""
    labels = np.asarray(labels, dtype=float).reshape(len(utterances), -1)
    entries = defaultdict(lambda: np.zeros(labels.shape[1] + 2))
    for u, y in zip(utterances, labels):
        total = len(u) * (len(u) + 1) / 2
        for t in range(1, len(u) + 1):
            entry = entries[(tuple(u[:t - 1]), u[t - 1])]
            entry[:-2] += t / total * y
            entry[-2] += t / total
            entry[-1] += 1
    return entries


def as_dict(omega, matrix):
    coo = matrix.tocoo()
    return {(omega.context(r), int(c)): v for r, c, v in zip(coo.row, coo.col, coo.data)}


def corpus_of(utterances):
    offsets = np.zeros(len(utterances) + 1, dtype=np.int64)
    np.cumsum([len(u) for u in utterances], out=offsets[1:])
    return TokenizedCorpus(np.array([t for u in utterances for t in u], dtype=np.int32), offsets)


def random_utterances(n, vocab, seed):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, vocab, size=rng.integers(0, 10)).tolist() for _ in range(n)]


def test_three_sentences_by_hand(synthetic_tokenizer):
    a, b, c, d = SyntheticWorld.default().words[:4]
    texts = [f"{a} {b} {c}", f"{a} {b}", f"{a} {d}"]
    ia, ib, ic, id_ = (N_SPECIAL + k for k in range(4))
    # λ: "a b c" → 1/6, 2/6, 3/6 (y = 1); "a b" → 1/3, 2/3 (y = 0); "a d" → 1/3, 2/3 (y = 1/2).
    omega = build_omega(texts, [1.0, 0.0, 0.5], synthetic_tokenizer, responses=["y"])
    expected = {  # (context, v): (R, Σλ, count)
        ((), ia): ((1 / 6 + 1 / 6) / (5 / 6), 5 / 6, 3),     # 2/5
        ((ia,), ib): ((2 / 6) / 1.0, 1.0, 2),                # conflicting labels 1 and 0: 1/3
        ((ia,), id_): (0.5, 2 / 3, 1),
        ((ia, ib), ic): (1.0, 0.5, 1),
    }
    values, weights, counts = as_dict(omega, omega.matrix()), as_dict(omega, omega.weights()), as_dict(omega, omega.counts())
    assert set(values) == set(expected)
    for key, (r, w, n) in expected.items():
        assert values[key] == pytest.approx(r, abs=1e-15)
        assert weights[key] == pytest.approx(w, abs=1e-15)
        assert counts[key] == n
    assert omega.n_rows == 3 and omega.n_observed == 4 and omega.shape == (3, len(synthetic_tokenizer))
    assert sorted(omega.context(i) for i in range(3)) == [(), (ia,), (ia, ib)]
    two = omega.submatrix(2)
    assert two.n_rows == 1 and two.context(0) == (ia,)
    assert as_dict(two, two.matrix()) == {((ia,), ib): pytest.approx(1 / 3), ((ia,), id_): pytest.approx(0.5)}


@pytest.mark.parametrize("vocab,seed", [(3, 0), (7, 1), (1000, 2)])
def test_matches_a_dict_build_on_random_utterances(vocab, seed):
    utterances = random_utterances(400, vocab, seed)
    labels = np.random.default_rng(seed).random((400, 2))
    labels[:60] = [0.0, 1.0]
    omega = omega_from_corpus(corpus_of(utterances), labels, vocab_size=vocab, responses=["p", "q"])
    reference = dict_omega(utterances, labels)
    assert omega.n_observed == len(reference)
    assert omega.n_rows == len({context for context, _ in reference})
    for k, response in enumerate(["p", "q"]):
        got = as_dict(omega, omega.matrix(response))
        assert set(got) == set(reference)
        np.testing.assert_allclose([got[key] for key in reference], [e[k] / e[-2] for e in reference.values()],
                                   rtol=0, atol=1e-13)
    weights, counts = as_dict(omega, omega.weights()), as_dict(omega, omega.counts())
    np.testing.assert_allclose([weights[key] for key in reference], [e[-2] for e in reference.values()], rtol=1e-13)
    assert [counts[key] for key in reference] == [int(e[-1]) for e in reference.values()]
    matrix = omega.matrix()
    assert matrix.has_canonical_format and matrix.nnz == omega.n_observed


def test_dense_recomputation_of_the_full_matrix():
    vocab, utterances = 5, random_utterances(300, 5, 7)
    labels = np.random.default_rng(7).random(300)
    omega = omega_from_corpus(corpus_of(utterances), labels, vocab_size=vocab)
    row_of = {omega.context(i): i for i in range(omega.n_rows)}
    num, den = np.zeros(omega.shape), np.zeros(omega.shape)
    for u, y in zip(utterances, labels):
        for t in range(1, len(u) + 1):
            lam = t / (len(u) * (len(u) + 1) / 2)
            num[row_of[tuple(u[:t - 1])], u[t - 1]] += lam * y
            den[row_of[tuple(u[:t - 1])], u[t - 1]] += lam
    observed = den > 0
    np.testing.assert_array_equal(omega.matrix().toarray() != 0, observed & (num != 0))
    np.testing.assert_allclose(omega.matrix().toarray()[observed], (num / np.where(observed, den, 1))[observed],
                               atol=1e-13)
    np.testing.assert_allclose(omega.weights().toarray(), den, atol=1e-13)


def test_weights_of_each_utterance_sum_to_one_and_counts_to_its_length():
    utterances = random_utterances(200, 4, 3)
    omega = omega_from_corpus(corpus_of(utterances), np.zeros(200), vocab_size=4)
    assert omega.weights().sum() == pytest.approx(sum(1 for u in utterances if u))
    assert omega.counts().sum() == sum(len(u) for u in utterances)
    assert omega.info["n_empty"] == sum(1 for u in utterances if not u)


def test_lemma1_rows_with_one_observation_have_an_exact_rank1_completion():
    utterances = random_utterances(300, 6, 4)
    omega = omega_from_corpus(corpus_of(utterances), np.random.default_rng(4).random(300), vocab_size=6)
    single = omega.row_counts() == 1
    assert single.any() and (~single).any()
    matrix = omega.matrix().tocsr()[np.flatnonzero(single)]
    completion = np.outer(matrix.sum(axis=1).A1, np.ones(6))  # each row filled with its one value
    assert np.linalg.matrix_rank(completion) == 1
    observed = matrix.tocoo()
    np.testing.assert_array_equal(completion[observed.row, observed.col], observed.data)
    stats = omega_stats(omega)
    assert stats["lemma1_rows"] == int(single.sum())
    assert stats["lemma1_rows"] + stats["submatrix_2"][0] == omega.n_rows  # the rows Lemma 2 splits
    assert dict(stats["rows_by_observations"])["1"] == int(single.sum())


def test_submatrix_keeps_exactly_the_rows_with_k_observations():
    utterances = random_utterances(300, 4, 5)
    omega = omega_from_corpus(corpus_of(utterances), np.random.default_rng(5).random(300), vocab_size=4)
    full = as_dict(omega, omega.matrix())
    for k in (1, 2, 3):
        sub = omega.submatrix(k)
        per_context = defaultdict(int)
        for context, _ in full:
            per_context[context] += 1
        keep = {c for c, n in per_context.items() if n >= k}
        assert as_dict(sub, sub.matrix()) == {key: v for key, v in full.items() if key[0] in keep}
        assert sub.info["min_obs"] == k
    assert omega.submatrix(2).submatrix(1).info["min_obs"] == 2
    with pytest.raises(UserError):
        omega.submatrix(0)


def test_zeros_are_observed_everywhere(tmp_path):
    utterances = random_utterances(100, 5, 6)
    omega = omega_from_corpus(corpus_of(utterances), np.zeros(100), vocab_size=5)
    matrix = omega.matrix()
    assert matrix.nnz == omega.n_observed == len(dict_omega(utterances, np.zeros(100)))
    assert (matrix.data == 0).all() and omega_stats(omega)["values"]["y"]["zeros"] == 1.0
    loaded = Omega.load(omega.save(tmp_path / "om"))
    assert loaded.matrix().nnz == omega.n_observed
    export_mtx(loaded, tmp_path / "om.mtx")
    back = scipy.io.mmread(tmp_path / "om.mtx")
    assert back.nnz == omega.n_observed and np.all(back.data == MTX_ZERO)
    assert "observed zeros are written as" in (tmp_path / "om.mtx").read_text()[:400]


def test_save_load_round_trip(tmp_path):
    utterances = random_utterances(200, 9, 8)
    omega = omega_from_corpus(corpus_of(utterances), np.random.default_rng(8).random((200, 2)), vocab_size=9,
                              responses=["a", "b"], tokenizer_name="toy|9")
    for original in (omega, omega.submatrix(2)):
        path = original.save(tmp_path / "om")  # the second save replaces the first
        loaded = Omega.load(path)
        assert loaded.responses == ("a", "b") and loaded.tokenizer_name == "toy|9" and loaded.info == original.info
        for name in ("a", "b"):
            assert (loaded.matrix(name) != original.matrix(name)).nnz == 0
            np.testing.assert_array_equal(loaded.matrix(name).data, original.matrix(name).data)
        np.testing.assert_array_equal(loaded.weights().data, original.weights().data)
        np.testing.assert_array_equal(loaded.counts().data, original.counts().data)
        assert [loaded.context(i) for i in range(loaded.n_rows)] == [original.context(i) for i in range(original.n_rows)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["om"]


def test_mtx_export_matches_the_matrix(tmp_path):
    utterances = random_utterances(100, 6, 9)
    labels = np.random.default_rng(9).random((100, 2))
    omega = omega_from_corpus(corpus_of(utterances), labels, vocab_size=6, responses=["a", "b"])
    export_mtx(omega, tmp_path / "b.mtx", response="b")
    back = scipy.io.mmread(tmp_path / "b.mtx").tocsr()
    np.testing.assert_allclose(back.toarray(), omega.matrix("b").toarray(), rtol=1e-15, atol=MTX_ZERO)
    with pytest.raises(UserError, match="--response c"):
        export_mtx(omega, tmp_path / "c.mtx", response="c")


def test_bad_inputs_to_the_library():
    corpus = corpus_of([[0, 1], [2]])
    with pytest.raises(ValueError, match="shape"):
        omega_from_corpus(corpus, [0.5], vocab_size=3)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        omega_from_corpus(corpus, [0.5, 1.5], vocab_size=3)
    with pytest.raises(ValueError, match="token ids"):
        omega_from_corpus(corpus, [0.5, 0.5], vocab_size=2)
    with pytest.raises(UserError, match="not an Ω folder"):
        Omega.load("/nonexistent-omega")


def test_cli_build_stats_export_and_last_built(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("RANKKIT_CACHE", str(tmp_path / "cache"))
    assert last_built_omega() is None
    code, out, err = cli("build-omega", "synthetic", "--limit", "300", "--max-tokens", "6", "--out", tmp_path / "om")
    assert code == 0, err
    omega = Omega.load(tmp_path / "om")
    truncated = omega.info["n_truncated"]
    assert truncated > 0 and f"{truncated:,} texts truncated at 6 tokens" in out
    assert f"observed entries {omega.n_observed:,}" in out and omega.responses == ("toxicity", "sentiment")
    assert last_built_omega() == (tmp_path / "om").resolve()
    code, out, _ = cli("build-omega", "synthetic", "--limit", "300", "--response", "sentiment", "--out", tmp_path / "o2")
    assert code == 0 and "token ids from cache" in out
    assert Omega.load(tmp_path / "o2").responses == ("sentiment",)
    code, out, _ = cli("omega-stats", tmp_path / "om")
    assert code == 0 and f"{omega.n_observed:,}" in out and "Lemma 1" in out and "toxicity" in out
    code, out, _ = cli("export", tmp_path / "om", "--response", "sentiment", "--out", tmp_path / "om.mtx")
    assert code == 0 and scipy.io.mmread(tmp_path / "om.mtx").nnz == omega.n_observed


@pytest.mark.parametrize("args,message", [
    (["omega-stats", "{tmp}"], "not an Ω folder"),
    (["export", "{tmp}/om", "--format", "csv", "--out", "{tmp}/x"], "--format csv"),
    (["export", "{tmp}/om", "--response", "nope", "--out", "{tmp}/x"], "--response nope"),
    (["build-omega", "synthetic", "--response", "nope", "--out", "{tmp}/x"], "--response nope"),
    (["build-omega", "synthetic", "--max-tokens", "0", "--out", "{tmp}/x"], "--max-tokens 0"),
    (["build-omega", "sst2", "--path", "{tmp}/none.tsv", "--out", "{tmp}/x"], "none.tsv: no such file"),
    (["build-omega", "synthetic", "--out", "{tmp}"], "holds something other than an Ω"),
])
def test_cli_mistakes_give_one_line_errors(cli, tmp_path, monkeypatch, args, message):
    monkeypatch.setenv("RANKKIT_CACHE", str(tmp_path / "cache"))
    omega_from_corpus(corpus_of([[0, 1]]), [0.0], vocab_size=2).save(tmp_path / "om")
    code, _, err = cli(*[a.format(tmp=tmp_path) for a in args])
    assert code == 2 and err.startswith("Error:") and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.realdata
def test_sst2_dev_with_gpt2_against_per_sentence_dict_build(shared_data, gpt2_tokenizer):
    from rankkit.datasets import load_dataset

    data = load_dataset("sst2", path=shared_data / "sst2" / "dev.tsv")
    omega = build_omega(data.texts, data.labels(), gpt2_tokenizer, responses=data.responses)
    utterances = [gpt2_tokenizer.encode(text, add_special_tokens=False)[:128] for text in data.texts]
    reference = dict_omega(utterances, data.labels())
    assert omega.vocab_size == 50257 and omega.info["n_tokens"] == sum(map(len, utterances))
    assert omega.n_observed == len(reference)
    assert omega.n_rows == len({context for context, _ in reference})
    counts = as_dict(omega, omega.counts())
    assert counts == {key: int(e[-1]) for key, e in reference.items()}
    values = as_dict(omega, omega.matrix("sentiment"))
    np.testing.assert_allclose([values[key] for key in reference], [e[0] / e[1] for e in reference.values()], atol=1e-12)
    per_context = defaultdict(int)
    for context, _ in reference:
        per_context[context] += 1
    assert omega.submatrix(2).n_rows == sum(1 for n in per_context.values() if n >= 2)


def test_well_observed_synthetic_entries_approach_the_exact_reward(synthetic_tokenizer):
    """R[x', v] is a λ-weighted mean of y over utterances starting with [x', v]; as the count grows it
    tends to the exact E[y | x] = r*([x', v]) of the synthetic world (its module docstring)."""
    from rankkit.datasets import load_dataset

    world, data = SyntheticWorld.default(), load_dataset("synthetic")
    omega = build_omega(data.texts, data.labels(), synthetic_tokenizer, responses=data.responses)
    values, counts = omega.matrix("toxicity").tocoo(), omega.counts().tocoo()
    chosen = np.flatnonzero(counts.data >= 100)
    assert len(chosen) >= 10
    errors = np.array([values.data[j] - world.reward([*omega.context(values.row[j]), values.col[j]]) for j in chosen])
    assert np.abs(errors).max() < 0.1 and np.abs(errors).mean() < 0.05


def test_save_never_replaces_a_folder_that_is_not_an_omega(tmp_path):
    omega = omega_from_corpus(corpus_of([[0, 1]]), [0.5], vocab_size=2)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="holds something other than an Ω"):
        omega.save(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    with pytest.raises(UserError, match="not a folder"):
        omega.save(tmp_path / "mine" / "notes.txt")
    (tmp_path / "empty").mkdir()
    assert Omega.load(omega.save(tmp_path / "empty")).n_observed == 2
