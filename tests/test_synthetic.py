"""The synthetic world: exact rewards by Bayes' rule checked against Monte Carlo and brute force."""
import json

import numpy as np
import pytest

from rankkit.synthetic import N_SPECIAL, SyntheticWorld, build_tokenizer, generate_corpus
from rankkit.tokenization import SYNTHETIC_TOKENIZER_DIR


@pytest.fixture(scope="module")
def world():
    return SyntheticWorld.default()


def test_shipped_tokenizer_is_the_default_worlds(world, synthetic_tokenizer):
    shipped = json.loads((SYNTHETIC_TOKENIZER_DIR / "tokenizer.json").read_text())["model"]["vocab"]
    rebuilt = build_tokenizer(world).get_vocab()
    assert shipped == rebuilt
    assert len(synthetic_tokenizer) == world.vocab_size
    assert synthetic_tokenizer.bos_token_id == 2


def test_corpus_is_seeded_and_roundtrips_through_tokenizer(world, synthetic_tokenizer):
    a, b = generate_corpus(50, random_state=3), generate_corpus(50, random_state=3)
    assert a.equals(b)
    assert not a.equals(generate_corpus(50, random_state=4))
    for text in a["text"]:
        ids = synthetic_tokenizer(text, add_special_tokens=False)["input_ids"]
        assert min(ids) >= N_SPECIAL and world.min_len <= len(ids) <= world.max_len
        assert synthetic_tokenizer.decode(ids) == text


def test_posterior_is_bayes_rule_by_brute_force(world):
    ids = [N_SPECIAL + 5, N_SPECIAL + 17, N_SPECIAL + 3]
    trans = np.exp(world.log_trans)
    joint = world.prior.copy()
    prev = len(world.words)
    for t in ids:
        joint = joint * trans[:, prev, t - N_SPECIAL]
        prev = t - N_SPECIAL
    np.testing.assert_allclose(np.exp(world.topic_log_posterior(ids)), joint / joint.sum(), rtol=1e-10)


def test_reward_row_equals_reward_of_each_extended_prefix(world):
    context = [N_SPECIAL + 11, N_SPECIAL + 40]
    row = world.reward_row(context, "sentiment")
    for v in (N_SPECIAL, N_SPECIAL + 1, N_SPECIAL + 99, world.vocab_size - 1):
        assert row[v] == pytest.approx(world.reward(context + [v], "sentiment"), abs=1e-12)
    assert row[0] == pytest.approx(world.reward(context, "sentiment"))


def test_reward_is_the_expected_response_monte_carlo(world):
    """E[y | first token] estimated from 40k sampled utterances matches r*([v]) for common v."""
    utterances, topics = world.sample(40_000, random_state=1)
    first = np.array([u[0] for u in utterances])
    y = world.attributes["toxicity"][topics]
    for w in np.argsort(-np.bincount(first))[:3]:
        sel = first == w
        se = y[sel].std() / np.sqrt(sel.sum())
        assert abs(y[sel].mean() - world.reward([N_SPECIAL + w])) < 5 * se + 1e-3


def test_log_prob_chain_rule_and_normalisation(world):
    """log p(a b | ctx) = log p(a | ctx) + log p(b | ctx a), and p(· | ctx) sums to one over words."""
    ctx, a, b = [N_SPECIAL + 7], N_SPECIAL + 30, N_SPECIAL + 31
    joint = world.log_prob([a, b], context_ids=ctx)
    chained = world.log_prob([a], context_ids=ctx) + world.log_prob([b], context_ids=ctx + [a])
    assert joint == pytest.approx(chained, rel=1e-10)
    total = np.logaddexp.reduce([world.log_prob([v], context_ids=ctx) for v in range(N_SPECIAL, world.vocab_size)])
    assert total == pytest.approx(0.0, abs=1e-9)
    assert world.log_prob([0]) == float("-inf")
