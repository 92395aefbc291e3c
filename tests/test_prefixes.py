"""Prefix weights λ(t, l) (eq. 3), context sampling over D_f, and the token cache."""
from __future__ import annotations

from collections import Counter
from fractions import Fraction

import numpy as np
import pytest

from rankkit.prefixes import encode_cached, positions, prefix_weights, sample_contexts
from rankkit.tokenization import TokenizedCorpus, encode_texts


def corpus_of(utterances):
    lengths = [len(u) for u in utterances]
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = np.array([t for u in utterances for t in u], dtype=np.int32)
    return TokenizedCorpus(ids, offsets)


def test_weights_match_eq3_exactly_on_small_lengths():
    lengths = [3, 0, 1, 4]
    expected = [Fraction(t, sum(range(1, l + 1))) for l in lengths for t in range(1, l + 1)]
    np.testing.assert_allclose(prefix_weights(lengths), [float(f) for f in expected], rtol=1e-15)
    assert positions(lengths).tolist() == [1, 2, 3, 1, 1, 2, 3, 4]


def test_weights_of_each_utterance_sum_to_one():
    lengths = np.random.default_rng(0).integers(1, 300, size=500)
    weights = prefix_weights(lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    np.testing.assert_allclose(np.add.reduceat(weights, starts), 1.0, rtol=1e-12)
    assert (np.diff(weights)[np.diff(positions(lengths)) == 1] > 0).all()  # later prefixes weigh more


def test_sampled_contexts_are_uniform_over_prefix_positions():
    a, b, c, d = 5, 6, 7, 8
    corpus = corpus_of([[a], [b, c, d]])  # positions: (), (), (b,), (b, c): probabilities 1/2, 1/4, 1/4
    draws = sample_contexts(corpus, 20_000, random_state=1)
    freq = Counter(tuple(x.tolist()) for x in draws)
    assert set(freq) == {(), (b,), (b, c)}
    for context, p in {(): 0.5, (b,): 0.25, (b, c): 0.25}.items():
        assert abs(freq[context] / 20_000 - p) < 4 * np.sqrt(p * (1 - p) / 20_000)
    assert all(x.dtype == np.int32 for x in draws)
    again = sample_contexts(corpus, 50, random_state=np.random.default_rng(1))
    assert [x.tolist() for x in again] == [x.tolist() for x in draws[:50]]


def test_sampled_contexts_are_prefixes_of_their_utterances():
    rng = np.random.default_rng(2)
    utterances = [rng.integers(0, 50, size=rng.integers(1, 12)).tolist() for _ in range(40)]
    corpus = corpus_of(utterances)
    prefixes = {tuple(u[:t]) for u in utterances for t in range(len(u))}
    assert all(tuple(x.tolist()) in prefixes for x in sample_contexts(corpus, 500, random_state=3))


class CountingTokenizer:
    """Wraps a tokenizer (hiding its Rust backend) and counts how many texts it tokenised."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def __call__(self, batch, **kwargs):
        self.calls += len(batch)
        return self.inner(batch, **kwargs)

    def __len__(self):
        return len(self.inner)


def test_cache_returns_the_same_ids_without_tokenising_again(tmp_path, synthetic_tokenizer):
    from rankkit.datasets import load_dataset

    texts = load_dataset("synthetic", limit=200).texts
    tokenizer = CountingTokenizer(synthetic_tokenizer)
    first, hit = encode_cached(texts, tokenizer, cache=tmp_path)
    assert not hit and tokenizer.calls == 200
    second, hit = encode_cached(texts, tokenizer, cache=tmp_path)
    assert hit and tokenizer.calls == 200
    reference = encode_texts(texts, synthetic_tokenizer)
    np.testing.assert_array_equal(second.ids, reference.ids)
    np.testing.assert_array_equal(second.offsets, reference.offsets)
    _, hit = encode_cached(texts[:-1] + [texts[-1] + " ba"], tokenizer, cache=tmp_path)
    assert not hit and tokenizer.calls == 400  # other texts: a new entry


def test_build_omega_with_another_max_tokens_reuses_the_cache(tmp_path, synthetic_tokenizer):
    from rankkit.datasets import load_dataset
    from rankkit.omega import build_omega

    data = load_dataset("synthetic", limit=100)
    tokenizer = CountingTokenizer(synthetic_tokenizer)
    full = build_omega(data.texts, data.labels(), tokenizer, max_tokens=None, cache=tmp_path)
    short = build_omega(data.texts, data.labels()[:, 1], tokenizer, max_tokens=5, cache=tmp_path)
    assert tokenizer.calls == 100
    assert short.info["n_tokens"] == int(np.minimum(encode_texts(data.texts, synthetic_tokenizer).lengths, 5).sum())
    assert short.n_observed < full.n_observed


@pytest.mark.realdata
def test_gpt2_ids_of_a_known_sentence(gpt2_tokenizer):
    corpus = encode_texts(["hello world, it's fine", "hello"], gpt2_tokenizer)
    assert corpus.utterance(0).tolist() == [31373, 995, 11, 340, 338, 3734]
    assert corpus.utterance(1).tolist() == [31373]
    assert len(gpt2_tokenizer) == 50257


def test_direct_backend_encoding_gives_the_ids_of_the_tokenizer_call(synthetic_tokenizer):
    texts = ["ba bakezo  balu", "be", "unknownword ba", " "]
    corpus = encode_texts(texts, synthetic_tokenizer, batch_size=3)
    expected = synthetic_tokenizer(texts, add_special_tokens=False)["input_ids"]
    assert [corpus.utterance(i).tolist() for i in range(len(texts))] == expected
    assert corpus.utterance(3).tolist() == [] and corpus.ids.dtype == np.int32
