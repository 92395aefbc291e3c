"""Guided decoding (eq. 1–2): processed logits against an independent, uncached, one-prompt-at-a-time r̂."""
from __future__ import annotations

import pytest
import torch

from rankkit.errors import UserError
from rankkit.models import ARM, RAD
from rankkit.models.decoding import build_tiny_base, make_guidance, same_tokenizer, sample_continuations
from rankkit.models.guidance import ARMGuidance, RADGuidance, select_candidates

PROMPTS = ([40, 41, 42, 43, 44], [50, 51], [60, 61, 62])  # ragged: left padding differs per row


@pytest.fixture(scope="module")
def arm(synthetic_tokenizer, random_heads):
    return random_heads(ARM.from_backbone("tiny", tokenizer=synthetic_tokenizer, responses=("toxicity", "sentiment")), 1)


@pytest.fixture(scope="module")
def rad(synthetic_tokenizer, random_heads):
    return random_heads(RAD.from_backbone("tiny", tokenizer=synthetic_tokenizer, responses=("toxicity", "sentiment")), 2)


@pytest.fixture(scope="module")
def base(synthetic_tokenizer):
    return build_tiny_base(len(synthetic_tokenizer), n_layer=2, n_embd=64, seed=3).eval()


@pytest.fixture(params=["arm", "rad"])
def reward(request, arm, rad):
    return {"arm": arm, "rad": rad}[request.param]


def _left_padded(prompts, pad=0):
    width = max(map(len, prompts))
    ids = torch.tensor([[pad] * (width - len(p)) + list(p) for p in prompts])
    return ids, (ids != pad).long() if pad == 0 else None


def _expected(model, contexts, scores, candidates, *, beta, steer, response=None):
    """z_LM + β·r on the candidates V', −∞ elsewhere, with r̂ from model.rewards on one unpadded context."""
    out = torch.full_like(scores, float("-inf"))
    for b, context in enumerate(contexts):
        raw = model.rewards(torch.tensor([context]), candidates[b][None], response=response)[0]
        r = raw.sigmoid() if model.loss_type == "bce" else raw
        r = 1 - r if steer == "away" else r
        out[b, candidates[b]] = scores[b, candidates[b]] + beta * r
    return out


def _drive(model, processor, steps, *, vocab, seed=0, off_candidate_step=None):
    """Feed the processor random base logits for several steps, extending each row by a sampled
    candidate (or, at ``off_candidate_step``, by a token outside V' as a finished row gets), and
    compare every step with the independent per-prompt computation."""
    generator = torch.Generator().manual_seed(seed)
    ids, _ = _left_padded(PROMPTS)
    contexts = [list(p) for p in PROMPTS]
    for step in range(steps):
        scores = torch.randn(len(PROMPTS), vocab, generator=generator) * 3
        got = processor(ids, scores)
        candidates, keep = select_candidates(scores, top_k=processor.top_k, top_p=processor.top_p)
        assert keep.any(dim=1).all()
        want = _expected(model, contexts, scores, [c[m] for c, m in zip(candidates, keep)], beta=processor.beta, steer=processor.steer,
                         response=processor.response)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
        pick = (torch.rand(len(PROMPTS), generator=generator) * keep.sum(dim=1)).long()  # a member of V'
        nxt = candidates[torch.arange(len(PROMPTS)), pick]
        if step == off_candidate_step:
            nxt[1] = int(scores[1].argmin())  # not among the top-k
        ids = torch.cat([ids, nxt[:, None]], dim=1)
        for context, token in zip(contexts, nxt.tolist()):
            context.append(token)


@pytest.mark.parametrize("use_cache", [True, False])
@pytest.mark.parametrize("steer", ["away", "towards"])
def test_processed_logits_are_eq1_with_independent_rewards(reward, use_cache, steer):
    processor = make_guidance(reward, beta=7.0, top_k=6, steer=steer, attention_mask=_left_padded(PROMPTS)[1],
                              use_cache=use_cache)
    _drive(reward, processor, steps=5, vocab=reward.vocab_size, off_candidate_step=2)


def test_bce_models_are_guided_by_the_sigmoid(reward, monkeypatch):
    monkeypatch.setattr(reward, "loss_type", "bce")
    processor = make_guidance(reward, beta=4.0, top_k=5, attention_mask=_left_padded(PROMPTS)[1])
    _drive(reward, processor, steps=3, vocab=reward.vocab_size)


def test_nucleus_candidates_and_other_response(reward):
    processor = make_guidance(reward, beta=3.0, top_k=None, top_p=0.3, attention_mask=_left_padded(PROMPTS)[1])
    processor.response = "sentiment"
    _drive(reward, processor, steps=3, vocab=reward.vocab_size, seed=5)


def test_padding_inferred_from_the_pad_token_equals_the_explicit_mask(reward):
    ids, mask = _left_padded(PROMPTS)
    scores = torch.randn(len(PROMPTS), reward.vocab_size, generator=torch.Generator().manual_seed(0))
    explicit = make_guidance(reward, beta=5.0, top_k=8, attention_mask=mask)(ids, scores)
    inferred = make_guidance(reward, beta=5.0, top_k=8)(ids, scores)  # pad id 0 from the synthetic tokenizer
    torch.testing.assert_close(inferred, explicit)


def test_reward_model_reads_one_token_per_sequence_for_arm_and_k_for_rad(reward, monkeypatch):
    """Table 1: after the prompt, ARM encodes B new tokens per step, RAD B·k (the sampled
    candidate's key/values are reused, never recomputed)."""
    calls = []
    encode = reward.encode
    monkeypatch.setattr(reward, "encode", lambda ids, **kw: (calls.append(tuple(ids.shape)), encode(ids, **kw))[1])
    k = 4
    processor = make_guidance(reward, beta=1.0, top_k=k, attention_mask=_left_padded(PROMPTS)[1])
    _drive(reward, processor, steps=4, vocab=reward.vocab_size)
    n = len(PROMPTS)
    # the reference computation of _drive calls model.rewards, which goes through encode too:
    guided = [shape for shape in calls if shape[0] in (n, n * k)]
    width = max(map(len, PROMPTS)) + 1
    if isinstance(reward, ARM):
        assert guided == [(n, width)] + [(n, 1)] * 3
    else:
        assert guided == [(n, width), (n * k, 1)] + [(n * k, 1)] * 3


def test_beta_zero_samples_exactly_as_plain_top_k(reward, base):
    ids, mask = _left_padded(PROMPTS)
    common = dict(input_ids=ids, attention_mask=mask, do_sample=True, max_new_tokens=6, num_return_sequences=2,
                  pad_token_id=0)
    torch.manual_seed(11)
    plain = base.generate(**common, top_k=7)
    torch.manual_seed(11)
    guided = base.generate(**common, top_k=0,
                           logits_processor=[make_guidance(reward, beta=0.0, top_k=7, attention_mask=mask)])
    assert torch.equal(plain, guided)


def test_generate_with_num_return_sequences_matches_its_own_uncached_run(reward, base):
    ids, mask = _left_padded(PROMPTS)
    outs = []
    for use_cache in (True, False):
        torch.manual_seed(5)
        processor = make_guidance(reward, beta=20.0, top_k=5, attention_mask=mask, use_cache=use_cache)
        outs.append(base.generate(input_ids=ids, attention_mask=mask, do_sample=True, top_k=0, max_new_tokens=8,
                                  num_return_sequences=3, pad_token_id=0, logits_processor=[processor]))
    assert torch.equal(*outs)


@torch.no_grad()
def test_strong_guidance_moves_the_reward(arm, base, synthetic_tokenizer):
    """Steering away lowers ARM's own reward of the samples, steering towards raises it."""
    prompts = ["ba", "ka"]
    means = {}
    for steer in ("away", "towards"):
        result = sample_continuations(base, synthetic_tokenizer, prompts, reward=arm, beta=30.0, top_k=10,
                                      steer=steer, n_samples=4, max_new_tokens=6, seed=0)
        texts = [p + " " + c for p, cs in zip(prompts, result.continuations) for c in cs]
        ids = [synthetic_tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        means[steer] = sum(float(arm.rewards(torch.tensor([i[:-1]]), torch.tensor([[i[-1]]]))) for i in ids) / len(ids)
    assert means["away"] < means["towards"]


def test_select_candidates_matches_transformers_top_k_then_top_p():
    from transformers import TopKLogitsWarper, TopPLogitsWarper

    scores = torch.randn(6, 50, generator=torch.Generator().manual_seed(0)) * 2
    for top_k, top_p in ((10, None), (None, 0.5), (12, 0.7), (50, 0.95)):
        candidates, keep = select_candidates(scores, top_k=top_k, top_p=top_p)
        ours = torch.zeros_like(scores, dtype=torch.bool)
        for b in range(len(scores)):
            ours[b, candidates[b][keep[b]]] = True
        warped = scores.clone()
        if top_k is not None:
            warped = TopKLogitsWarper(top_k)(None, warped)
        if top_p is not None:
            warped = TopPLogitsWarper(top_p)(None, warped)
        assert torch.equal(ours, torch.isfinite(warped)), (top_k, top_p)


def test_bad_options_give_clear_errors(arm):
    with pytest.raises(UserError, match="--beta -1"):
        ARMGuidance(arm, beta=-1, top_k=5)
    with pytest.raises(UserError, match="--top-k 205.*vocabulary size 204"):
        ARMGuidance(arm, beta=1, top_k=arm.vocab_size + 1)
    with pytest.raises(UserError, match="--top-k or --top-p"):
        ARMGuidance(arm, beta=1)
    with pytest.raises(UserError, match="--steer"):
        ARMGuidance(arm, beta=1, top_k=5, steer="sideways")
    with pytest.raises(UserError, match="response 'fluency'"):
        ARMGuidance(arm, beta=1, top_k=5, response="fluency")


def test_base_with_another_vocabulary_is_refused(rad):
    processor = RADGuidance(rad, beta=1, top_k=5)
    with pytest.raises(UserError, match="must share a tokenizer"):
        processor(torch.tensor([[5, 6]]), torch.zeros(1, rad.vocab_size + 10))


def test_tokenizer_comparison(synthetic_tokenizer, gpt2_tokenizer):
    assert same_tokenizer(synthetic_tokenizer, synthetic_tokenizer)
    assert not same_tokenizer(synthetic_tokenizer, gpt2_tokenizer)


def test_one_processor_per_generate_call(arm, base):
    ids, mask = _left_padded(PROMPTS)
    processor = ARMGuidance(arm, beta=1, top_k=5, attention_mask=mask)
    base.generate(input_ids=ids, attention_mask=mask, do_sample=True, top_k=0, max_new_tokens=3, pad_token_id=0,
                  logits_processor=[processor])
    with pytest.raises(RuntimeError, match="one generate call"):
        base.generate(input_ids=ids, attention_mask=mask, do_sample=True, top_k=0, max_new_tokens=3, pad_token_id=0,
                      logits_processor=[processor])
