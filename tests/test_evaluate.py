"""§5 metrics against hand computations on small fixed inputs."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from rankkit.errors import UserError
from rankkit.models import build_tiny_backbone
from rankkit.models.evaluate import (
    ClassifierScorer,
    PerspectiveScorer,
    SyntheticScorer,
    average_max,
    distinct_n,
    evaluate_generations,
    perplexities,
    positive_rate,
    read_generations,
    toxic_rate,
)

SCORES = [[0.1, 0.7, 0.2], [0.3, 0.4, 0.45]]
SAMPLES = [["a b a b", "a c"], ["x x x", ""]]


def test_attribute_metrics_by_hand():
    assert average_max(SCORES) == pytest.approx((0.7 + 0.45) / 2)
    assert toxic_rate(SCORES) == pytest.approx(0.5)
    assert positive_rate(SCORES) == pytest.approx(1 / 6)
    assert toxic_rate([[0.5, 0.5]]) == 0.0  # strictly above the threshold


def test_distinct_n_by_hand():
    # prompt 1: 6 words, unigrams {a,b,c}, bigrams {ab, ba, ac}, trigrams {aba, bab}; prompt 2: 3 words, one each
    assert distinct_n(SAMPLES, 1) == pytest.approx((3 / 6 + 1 / 3) / 2)
    assert distinct_n(SAMPLES, 2) == pytest.approx((3 / 6 + 1 / 3) / 2)
    assert distinct_n(SAMPLES, 3) == pytest.approx((2 / 6 + 1 / 3) / 2)
    assert math.isnan(distinct_n([[""]], 1))


@pytest.fixture(scope="module")
def lm(synthetic_tokenizer):
    return build_tiny_backbone(len(synthetic_tokenizer), n_layer=2, n_embd=32, n_head=2, seed=4).eval()


def test_perplexity_equals_token_by_token_likelihood(lm, synthetic_tokenizer):
    tok = synthetic_tokenizer
    prompts, continuations = ["ba", "ka ba ka", "ba"], [" ka ba", " ba", ""]
    got = perplexities(prompts, continuations, lm, tok, batch_size=2)
    for prompt, continuation, value in zip(prompts, continuations, got):
        context = tok(prompt, add_special_tokens=False)["input_ids"]
        target = tok(continuation, add_special_tokens=False)["input_ids"]
        if not target:
            assert math.isnan(value)
            continue
        nll = []
        for token in target:  # one separate forward per continuation token
            with torch.no_grad():
                logits = lm(input_ids=torch.tensor([context])).logits[0, -1].double()
            nll.append(-(logits.log_softmax(-1)[token]).item())
            context = context + [token]
        assert value == pytest.approx(math.exp(np.mean(nll)), rel=1e-5)


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory, synthetic_tokenizer):
    from transformers import GPT2Config, GPT2ForSequenceClassification

    config = GPT2Config(vocab_size=len(synthetic_tokenizer), n_layer=1, n_embd=16, n_head=2, num_labels=2,
                        id2label={0: "clean", 1: "toxic"}, label2id={"clean": 0, "toxic": 1},
                        pad_token_id=synthetic_tokenizer.pad_token_id)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("classifier")
    GPT2ForSequenceClassification(config).save_pretrained(path)
    synthetic_tokenizer.save_pretrained(path)
    return path


def test_classifier_scorer_equals_unbatched_softmax(classifier_dir, synthetic_tokenizer):
    from transformers import AutoModelForSequenceClassification

    texts = ["ba ka ba", "ka", "ba ba ba ba ka"]
    scorer = ClassifierScorer(str(classifier_dir), batch_size=2)
    model = AutoModelForSequenceClassification.from_pretrained(classifier_dir).eval()
    want = []
    for text in texts:
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([synthetic_tokenizer(text)["input_ids"]])).logits[0]
        want.append(float(logits.softmax(-1)[1]))
    np.testing.assert_allclose(scorer(texts), want, rtol=1e-5)
    np.testing.assert_allclose(ClassifierScorer(str(classifier_dir), label="clean")(texts), 1 - np.array(want), rtol=1e-5)
    with pytest.raises(UserError, match="--label insult"):
        ClassifierScorer(str(classifier_dir), label="insult")


def test_unloadable_scorer_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="cannot load a sequence classifier"):
        ClassifierScorer(str(tmp_path))


def test_synthetic_scorer_is_the_exact_world_reward(synthetic_tokenizer):
    from rankkit.synthetic import SyntheticWorld

    world = SyntheticWorld.default()
    texts = [world.decode([3, 8, 1]), world.decode([5])]
    ids = [synthetic_tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    np.testing.assert_allclose(SyntheticScorer("sentiment")(texts), [world.reward(i, "sentiment") for i in ids])


def test_perspective_client_reads_the_key_and_keeps_the_rate(monkeypatch):
    monkeypatch.delenv("PERSPECTIVE_API_KEY", raising=False)
    with pytest.raises(UserError, match="PERSPECTIVE_API_KEY"):
        PerspectiveScorer()
    monkeypatch.setenv("PERSPECTIVE_API_KEY", "k")
    now, slept, posted = [0.0], [], []

    def post(url, payload):
        posted.append((url, payload["comment"]["text"]))
        now[0] += 0.1  # each request takes 0.1 s
        return {"attributeScores": {"TOXICITY": {"summaryScore": {"value": len(posted) / 10}}}}

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    scorer = PerspectiveScorer(qps=2.0, post=post, sleep=sleep, clock=lambda: now[0])
    np.testing.assert_allclose(scorer(["a", "b", "c"]), [0.1, 0.2, 0.3])
    assert slept == pytest.approx([0.4, 0.4])  # 0.5 s between request starts
    assert posted[0] == (f"{PerspectiveScorer.URL}?key=k", "a")


def test_evaluate_generations_groups_and_metrics(lm, synthetic_tokenizer):
    records = [
        {"prompt": "ba", "reward": "arm", "beta": 10.0, "top_k": 5, "continuations": [" ka", " ka ka"]},
        {"prompt": "ka", "reward": "arm", "beta": 10.0, "top_k": 5, "continuations": [" ba", " ba ka ba"]},
        {"prompt": "ba", "reward": "arm", "beta": 0.0, "top_k": 5, "continuations": [" ba", " ba"]},
    ]

    def scorer(texts):  # words / 4
        return np.array([len(t.split()) / 4 for t in texts])

    frame = evaluate_generations(records, scorer=scorer, lm=lm, lm_tokenizer=synthetic_tokenizer)
    assert frame["beta"].to_list() == [0.0, 10.0]
    guided = frame.row(1, named=True)
    assert guided["n_prompts"] == 2 and guided["n_samples"] == 4
    assert guided["avg_max"] == pytest.approx((2 / 4 + 3 / 4) / 2)
    assert guided["toxic_rate"] == pytest.approx(0.5)
    assert guided["positive_rate"] == pytest.approx(1 / 4)
    assert guided["dist_1"] == pytest.approx((1 / 3 + 2 / 4) / 2)
    ppl = perplexities(["ba", "ba", "ka", "ka"], [" ka", " ka ka", " ba", " ba ka ba"], lm, synthetic_tokenizer)
    assert guided["perplexity"] == pytest.approx(ppl.mean())
    assert "mauve" not in frame.columns


def test_mauve_needs_its_package_and_a_reference(lm, synthetic_tokenizer, monkeypatch):
    import sys

    records = [{"prompt": "ba", "beta": 5.0, "continuations": [" ka"]}]
    with pytest.raises(UserError, match="--ppl-model"):
        evaluate_generations(records, scorer=lambda t: np.zeros(len(t)), mauve=True)
    with pytest.raises(UserError, match="unguided samples"):
        evaluate_generations(records, scorer=lambda t: np.zeros(len(t)), lm=lm, lm_tokenizer=synthetic_tokenizer,
                             mauve=True)
    monkeypatch.setitem(sys.modules, "mauve", None)  # as if not installed
    records.append({"prompt": "ka", "beta": 0.0, "continuations": [" ba"]})
    with pytest.raises(UserError, match="pip install mauve-text"):
        evaluate_generations(records, scorer=lambda t: np.zeros(len(t)), lm=lm, lm_tokenizer=synthetic_tokenizer,
                             mauve=True)


def test_read_generations_names_the_bad_line(tmp_path):
    path = tmp_path / "gen.jsonl"
    path.write_text(json.dumps({"prompt": "a", "continuations": ["b"]}) + "\n{oops\n")
    with pytest.raises(UserError, match=r"gen.jsonl, line 2: not valid JSON"):
        read_generations(path)
    path.write_text(json.dumps({"prompt": "a"}) + "\n")
    with pytest.raises(UserError, match="line 1: expected a record"):
        read_generations(path)
    path.write_text("")
    with pytest.raises(UserError, match="no generations"):
        read_generations(path)
