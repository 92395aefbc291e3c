"""ARM and RAD on a tiny backbone against hand computations and naive uncached passes."""
from __future__ import annotations

import pytest
import torch

from rankkit.errors import UserError
from rankkit.models import ARM, RAD, build_tiny_backbone, load_reward_model

VOCAB = 40
BOS = 2
RESPONSES = ("toxicity", "sentiment")


def make(cls, *, seed=0, **options):
    """A tiny model in eval mode whose heads are random (ARM's W starts at 0 otherwise)."""
    model = cls(build_tiny_backbone(VOCAB, n_layer=2, n_embd=16, n_head=2, seed=seed), responses=RESPONSES,
                bos_token_id=BOS, seed=seed, **options).eval()
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if not name.startswith("causal_lm."):
                parameter.copy_(0.3 * torch.randn(parameter.shape, generator=generator))
    return model


def hidden_last(model, ids):
    """h of the last token of ``ids`` (a plain list), by a separate uncached pass."""
    with torch.no_grad():
        hidden, _ = model.encode(torch.tensor([ids]))
    return hidden[0, -1]


CONTEXTS = [[5, 6, 7, 8], [9], [], [10, 11]]
CANDIDATES = torch.tensor([[3, 4, 5], [6, 7, 39], [0, 8, 9], [12, 13, 14]])


def left_padded(contexts, pad=0):
    width = max(len(c) for c in contexts)
    ids = torch.tensor([[pad] * (width - len(c)) + c for c in contexts])
    mask = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in contexts])
    return ids, mask


def test_arm_score_is_baseline_plus_bilinear_term_by_hand():
    model = make(ARM)
    E = model.output_embeddings.detach()
    ids, mask = left_padded(CONTEXTS)
    with torch.no_grad():
        got = model.rewards(ids, CANDIDATES, response="sentiment", attention_mask=mask)
        rows = model.rewards(ids, attention_mask=mask, response="sentiment")
    H = torch.stack([hidden_last(model, [BOS] + c) for c in CONTEXTS])
    w, W = model.w[1].detach(), model.W[1].detach()
    for b in range(len(CONTEXTS)):
        for j, v in enumerate(CANDIDATES[b].tolist()):
            expected = H[b] @ w + H[b] @ (W @ E[v])
            assert got[b, j].item() == pytest.approx(expected.item(), abs=1e-5)
    A = w[:, None] + W @ E.T                      # eq. 8: A = w1ᵀ + WE, shape (d, |V|)
    torch.testing.assert_close(rows, H @ A, atol=1e-5, rtol=1e-5)
    assert rows.shape == (len(CONTEXTS), VOCAB)


def test_arm_without_baseline_and_mlp_head_follow_their_formulas():
    plain = make(ARM, baseline=False)
    h = torch.randn(3, 16)
    E = plain.output_embeddings.detach()
    with torch.no_grad():
        torch.testing.assert_close(plain.token_scores(h), h @ plain.W[0] @ E.T)
    mlp = make(ARM, head="mlp", mlp_size=8)
    with torch.no_grad():
        g = torch.nn.functional.gelu(h @ mlp.W2[0].T) @ mlp.W1[0].T   # W₁ σ(W₂ h)
        expected = h @ mlp.w[0][:, None] + g @ E.T
        torch.testing.assert_close(mlp.token_scores(h), expected, atol=1e-5, rtol=1e-5)
        cand = torch.tensor([[1, 2], [3, 4], [5, 39]])
        torch.testing.assert_close(mlp.token_scores(h, cand), expected.gather(1, cand))


def test_arm_teacher_forced_scores_equal_the_scoring_interface():
    model = make(ARM)
    u = torch.tensor([[5, 6, 7, 8, 9]])
    sampled = torch.tensor([[11, 12, 13, 14, 15]])
    with torch.no_grad():
        scores, delta = model.prefix_rewards(u, sampled=sampled)
        for t in range(u.shape[1]):
            context = u[:, :t]
            for r, name in enumerate(RESPONSES):
                got = model.rewards(context, u[:, t:t + 1], response=name)
                assert scores[0, t, r].item() == pytest.approx(got.item(), abs=1e-5)
            h = hidden_last(model, [BOS] + context[0].tolist())
            assert delta[0, t, 0].item() == pytest.approx((h @ model.W[0] @ model.output_embeddings[sampled[0, t]]).item(), abs=1e-5)


def test_rad_teacher_forcing_equals_separate_passes_on_each_prefix():
    model = make(RAD)
    u = torch.tensor([[5, 6, 7, 8, 9], [10, 11, 12, 0, 0]])
    with torch.no_grad():
        scores, _ = model.prefix_rewards(u)
    for b, length in enumerate([5, 3]):
        for t in range(1, length + 1):
            h = hidden_last(model, [BOS] + u[b, :t].tolist())      # causality: only u_{1:t} is seen
            expected = h @ model.score.weight.detach().T + model.score.bias.detach()
            torch.testing.assert_close(scores[b, t - 1], expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("chunk_rows", [256, 5])
def test_rad_cached_candidates_equal_naive_passes_with_left_padding(chunk_rows):
    model = make(RAD)
    ids, mask = left_padded(CONTEXTS)
    with torch.no_grad():
        got = model.rewards(ids, CANDIDATES, attention_mask=mask, response="sentiment", chunk_rows=chunk_rows)
        rows = model.rewards(ids, attention_mask=mask, chunk_rows=chunk_rows)
    for b, context in enumerate(CONTEXTS):
        naive = torch.stack([model.prefix_scores(hidden_last(model, [BOS] + context + [v]), "sentiment")
                             for v in CANDIDATES[b].tolist()])
        torch.testing.assert_close(got[b], naive, atol=1e-5, rtol=1e-5)
        naive_row = torch.stack([model.prefix_scores(hidden_last(model, [BOS] + context + [v])) for v in range(VOCAB)])
        torch.testing.assert_close(rows[b], naive_row, atol=1e-5, rtol=1e-5)


def test_arm_left_padded_batch_equals_unpadded_contexts():
    model = make(ARM)
    ids, mask = left_padded(CONTEXTS)
    with torch.no_grad():
        batched = model.rewards(ids, CANDIDATES, attention_mask=mask)
        for b, context in enumerate(CONTEXTS):
            single = model.rewards(torch.tensor([context], dtype=torch.long).view(1, -1), CANDIDATES[b:b + 1])
            torch.testing.assert_close(batched[b], single[0], atol=1e-5, rtol=1e-5)


def test_embeddings_are_frozen_and_tied_everything_else_trains():
    model = make(ARM)
    lm = model.causal_lm
    assert lm.get_input_embeddings().weight is lm.get_output_embeddings().weight
    assert not lm.get_input_embeddings().weight.requires_grad
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {"w", "W"} <= trainable
    assert any(n.startswith("causal_lm.transformer.h.0.") for n in trainable)
    assert not any("wte" in n for n in trainable)


@pytest.mark.parametrize("cls,options", [(ARM, {}), (ARM, {"head": "mlp", "baseline": False}), (RAD, {})])
def test_save_then_load_gives_identical_outputs(tmp_path, synthetic_tokenizer, cls, options):
    model = make(cls, **options)
    model.tokenizer = synthetic_tokenizer
    model.decode_response = "sentiment"
    model.save_pretrained(tmp_path / "m")
    loaded = load_reward_model(tmp_path / "m")
    assert type(loaded) is cls and loaded.responses == RESPONSES and loaded.decode_response == "sentiment"
    assert loaded.bos_token_id == BOS and len(loaded.tokenizer) == len(synthetic_tokenizer)
    lm = loaded.causal_lm
    assert lm.get_input_embeddings().weight is lm.get_output_embeddings().weight
    ids, mask = left_padded(CONTEXTS)
    with torch.no_grad():
        torch.testing.assert_close(loaded.rewards(ids, attention_mask=mask), model.rewards(ids, attention_mask=mask),
                                   atol=0, rtol=0)
    other = RAD if cls is ARM else ARM
    with pytest.raises(UserError, match="holds a"):
        other.from_pretrained(tmp_path / "m")


def test_bad_inputs_give_user_errors(tmp_path, synthetic_tokenizer):
    with pytest.raises(UserError, match="no-such-model"):
        ARM.from_backbone(str(tmp_path / "no-such-model"), tokenizer=synthetic_tokenizer, responses=["toxicity"])
    build_tiny_backbone(300, n_embd=16, n_head=2).save_pretrained(tmp_path / "lm300")
    with pytest.raises(UserError, match="204 tokens .* vocabulary of 300"):
        RAD.from_backbone(str(tmp_path / "lm300"), tokenizer=synthetic_tokenizer, responses=["toxicity"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="empty: not a rankkit reward-model folder"):
        load_reward_model(tmp_path / "empty")
    with pytest.raises(UserError, match="lm300: not a rankkit reward-model folder"):
        load_reward_model(tmp_path / "lm300")
    model = make(ARM)
    with pytest.raises(UserError, match="'topic'"):
        model.rewards(torch.tensor([[5]]), response="topic")
    with pytest.raises(UserError, match="--decode-response x"):
        ARM(build_tiny_backbone(VOCAB, n_embd=16, n_head=2), responses=RESPONSES, bos_token_id=BOS, decode_response="x")


def test_arm_training_pass_never_forms_the_vocabulary_wide_product():
    """Teacher forcing gathers e(v) for observed and sampled tokens; only full rows are |V| wide."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    vocab = 997  # prime, so no other dimension matches it by accident

    class WidestOutputs(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.vocab_wide = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            self.vocab_wide += sum(isinstance(t, torch.Tensor) and t.dim() >= 1 and t.shape[-1] == vocab
                                   for t in tree_leaves(out))
            return out

    model = ARM(build_tiny_backbone(vocab, n_layer=1, n_embd=16, n_head=2), responses=RESPONSES, bos_token_id=BOS)
    u = torch.randint(4, vocab, (3, 7), generator=torch.Generator().manual_seed(0))
    with WidestOutputs() as training:
        scores, delta = model.prefix_rewards(u, sampled=u.flip(1))
        (scores.sum() + delta.square().sum()).backward()
    assert training.vocab_wide == 0
    with WidestOutputs() as scoring, torch.no_grad():
        model.rewards(u[:, :3])
    assert scoring.vocab_wide > 0          # the check does see a |V|-wide product when there is one
