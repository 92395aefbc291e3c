"""Training ARM and RAD: losses by hand, frozen embeddings, distillation, learning, resume, CLI errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rankkit.datasets import load_dataset
from rankkit.tokenization import encode_texts
from rankkit.models import ARM, RAD, build_tiny_backbone, load_reward_model
from rankkit.models.losses import token_regulariser, weighted_bce_loss, weighted_squared_loss
from rankkit.models.train import evaluate, read_training_log, score_prefixes, split_rows, train_reward_model

RESPONSES = ("toxicity", "sentiment")


@pytest.fixture(scope="module")
def small(synthetic_tokenizer):
    """100 synthetic utterances, tokenised, with their two responses."""
    data = load_dataset("synthetic", limit=100)
    return encode_texts(data.texts, synthetic_tokenizer), data.labels()


def tiny(cls, tokenizer, *, seed=0, **options):
    return cls(build_tiny_backbone(len(tokenizer), n_layer=1, n_embd=16, n_head=2, seed=seed), responses=RESPONSES,
               bos_token_id=tokenizer.bos_token_id, tokenizer=tokenizer, seed=seed, **options)


def test_losses_equal_hand_computation():
    scores = torch.tensor([[0.2, -1.0], [0.9, 0.5], [0.0, 2.0]])
    targets = torch.tensor([[0.0, 1.0], [1.0, 0.5], [0.25, 0.0]])
    weight = torch.tensor([1 / 6, 2 / 6, 3 / 6])               # λ(t, 3), t = 1..3
    squared = sum(weight[i] * (scores[i, r] - targets[i, r]) ** 2 for i in range(3) for r in range(2))
    assert weighted_squared_loss(scores, targets, weight).item() == pytest.approx(squared.item())
    sigmoid = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    bce = -sum(weight[i].item() * (targets[i, r].item() * math.log(sigmoid(scores[i, r].item()))
                                   + (1 - targets[i, r].item()) * math.log(1 - sigmoid(scores[i, r].item())))
               for i in range(3) for r in range(2))
    assert weighted_bce_loss(scores, targets, weight).item() == pytest.approx(bce, rel=1e-6)
    assert token_regulariser(scores, weight).item() == pytest.approx(sum(
        weight[i].item() * scores[i, r].item() ** 2 for i in range(3) for r in range(2)))


def test_one_epoch_moves_heads_and_blocks_but_not_embeddings(small, synthetic_tokenizer):
    corpus, labels = small
    for cls in (ARM, RAD):
        model = tiny(cls, synthetic_tokenizer)
        before = {name: p.detach().clone() for name, p in model.named_parameters()}
        train_reward_model(model, corpus, labels, epochs=1, lr=1e-2, batch_size=30)
        after = dict(model.named_parameters())
        embeddings = model.causal_lm.get_input_embeddings().weight
        assert torch.equal(embeddings, before["causal_lm.transformer.wte.weight"])
        assert embeddings is model.causal_lm.get_output_embeddings().weight
        heads = ["w", "W"] if cls is ARM else ["score.weight"]
        for name in heads + ["causal_lm.transformer.h.0.mlp.c_fc.weight"]:
            assert not torch.equal(after[name], before[name]), name


def test_distillation_drives_the_student_towards_a_fixed_teacher(small, synthetic_tokenizer):
    corpus, labels = small
    corpus, labels = corpus.select(np.arange(30)), labels[:30]    # a small set the student can fit
    teacher = tiny(RAD, synthetic_tokenizer, seed=7)
    with torch.no_grad():
        teacher.score.weight.mul_(5.0)                      # scores that vary across prefixes
        teacher.score.bias.copy_(torch.tensor([1.0, -1.0]))
    train_rows, _ = split_rows(len(corpus), val_fraction=0.1, seed=0)
    student = tiny(ARM, synthetic_tokenizer)
    heads = [0, 1]

    with torch.no_grad():  # independent: one teacher pass per utterance
        per_utterance = [teacher.prefix_rewards(torch.as_tensor(corpus.utterance(i), dtype=torch.long)[None])[0][0]
                         for i in range(len(corpus))]
    precomputed = score_prefixes(teacher, corpus, heads, batch_size=7, device="cpu")
    np.testing.assert_allclose(precomputed, torch.cat(per_utterance).numpy(), atol=1e-5)

    def distance():
        return evaluate(student, corpus, labels, train_rows, means=labels.mean(0),
                        teacher_scores=precomputed)["teacher_mse"]

    teacher_scores = torch.cat([per_utterance[i] for i in train_rows])
    spread = teacher_scores.var(0).mean().item()            # MSE of the best constant prediction (about)
    start = distance()
    frozen = {name: t.clone() for name, t in teacher.state_dict().items()}
    result = train_reward_model(student, corpus, labels, teacher=teacher, epochs=40, lr=1e-2, batch_size=9, warmup=5,
                                reg_weight=0.0)
    end = distance()
    assert end < 0.1 * start and end < 0.5 * spread, (start, end, spread)   # measured: 1.23 -> 0.069, spread 0.17
    assert [r["teacher_mse"] for r in result.history][-1] < result.history[0]["teacher_mse"]
    assert all(torch.equal(a, b) for a, b in zip(frozen.values(), teacher.state_dict().values()))  # untouched
    assert not any(p.requires_grad for p in teacher.parameters())


@pytest.mark.parametrize("kind", ["arm", "rad"])
def test_synthetic_default_learns_well_below_the_mean_only_baseline(cli, tmp_path, kind):
    # two epochs of the 4000 default utterances in steps of 25 (ARM 0.74, RAD 0.68 of the mean-only MSE;
    # the full default, 5 epochs in steps of 100, reaches 0.57 for ARM; the Bayes-optimal predictor 0.30)
    code, out, err = cli("train", kind, "--data", "synthetic", "--backbone", "tiny", "--epochs", "2", "--batch-size", "25",
                         "--out", tmp_path / kind)
    assert code == 0, err
    log = read_training_log(tmp_path / kind)
    last = log["history"][-1]
    assert last["val_mse"] < 0.8 * last["mean_mse"], log["history"]
    assert f"validation MSE {last['val_mse']:.4f} vs mean-only {last['mean_mse']:.4f}" in out
    assert "tokens/s" in out and str(tmp_path / kind) in out
    model = load_reward_model(tmp_path / kind)
    assert model.kind == kind and model.responses == RESPONSES


def test_resume_after_an_interruption_reproduces_the_uninterrupted_run(small, synthetic_tokenizer, tmp_path):
    corpus, labels = small
    options = dict(epochs=2, lr=3e-3, batch_size=20, seed=3)
    whole = tiny(ARM, synthetic_tokenizer)
    train_reward_model(whole, corpus, labels, out=tmp_path / "whole", **options)

    def stop_at_step_7(step, elapsed, loss):
        if step == 7:
            raise KeyboardInterrupt

    first = tiny(ARM, synthetic_tokenizer)
    with pytest.raises(KeyboardInterrupt):
        train_reward_model(first, corpus, labels, out=tmp_path / "cut", checkpoint_every=3, callback=stop_at_step_7,
                           **options)
    assert read_training_log(tmp_path / "cut")["steps"] == 6
    second = tiny(ARM, synthetic_tokenizer)
    result = train_reward_model(second, corpus, labels, out=tmp_path / "cut", resume=True, **options)
    assert result.steps == 10
    for (name, a), b in zip(whole.state_dict().items(), second.state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=name)
    assert read_training_log(tmp_path / "cut")["history"][-1]["val_mse"] == pytest.approx(
        read_training_log(tmp_path / "whole")["history"][-1]["val_mse"], rel=1e-5)


def test_arm_variants_train_and_reload_from_the_cli(cli, tmp_path):
    code, out, err = cli("train", "arm", "--data", "synthetic", "--limit", "60", "--backbone", "tiny", "--epochs", "1",
                         "--head", "mlp", "--no-baseline", "--loss", "bce", "--response", "sentiment",
                         "--out", tmp_path / "m")
    assert code == 0, err
    model = load_reward_model(tmp_path / "m")
    assert (model.head, model.baseline, model.loss_type, model.responses) == ("mlp", False, "bce", ("sentiment",))
    assert np.isfinite(read_training_log(tmp_path / "m")["history"][0]["val_mse"])


def test_cli_errors_are_one_line(cli, tmp_path, capsys):
    build_tiny_backbone(300, n_embd=16, n_head=2).save_pretrained(tmp_path / "lm300")
    capsys.readouterr()  # transformers' own save progress
    (tmp_path / "not-a-model").mkdir()
    base = ["train", "arm", "--data", "synthetic", "--limit", "20", "--out", tmp_path / "x"]
    cases = [
        (base + ["--backbone", tmp_path / "nowhere"], "nowhere: no such folder"),
        (base + ["--backbone", tmp_path / "lm300"], "vocabulary of 300"),
        (base + ["--backbone", "tiny", "--response", "politeness"], "--response politeness"),
        (base + ["--backbone", "tiny", "--distill-from", tmp_path / "not-a-model"], "not-a-model: not a rankkit reward-model folder"),
        (["train", "rad", "--data", "synthetic", "--backbone", "tiny", "--head", "mlp", "--out", tmp_path / "x"], "ARM options"),
        (base + ["--backbone", "tiny", "--reg-weight", "-1"], "--reg-weight -1"),
        (["train", "gpt", "--backbone", "tiny", "--out", tmp_path / "x"], "expected arm or rad"),
        (base[:-1] + [tmp_path, "--backbone", "tiny"], "is not a reward-model folder; refusing to replace it"),
    ]
    for args, message in cases:
        code, out, err = cli(*args)
        assert code == 2, (args, out, err)
        assert err.startswith("Error:") and message in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x").exists() and (tmp_path / "lm300" / "config.json").is_file()


@pytest.mark.realdata
def test_train_on_an_sst2_slice_with_the_gpt2_tokenizer(cli, tmp_path, shared_data):
    out = tmp_path / "sst2-arm"
    code, stdout, err = cli("train", "arm", "--data", "sst2", "--path", shared_data / "sst2" / "train.tsv",
                            "--limit", "200", "--backbone", "tiny", "--tokenizer", shared_data / "gpt2_tokenizer",
                            "--epochs", "1", "--batch-size", "50", "--out", out)
    assert code == 0, err
    model = load_reward_model(out)
    assert model.vocab_size == 50257 and len(model.tokenizer) == 50257 and model.bos_token_id == 50256
    ids = model.tokenizer(["a gorgeous , witty , seductive movie ."], add_special_tokens=False, return_tensors="pt")
    with torch.no_grad():
        rows = model.rewards(ids["input_ids"])
    assert rows.shape == (1, 50257) and torch.isfinite(rows).all()
    log = read_training_log(out)
    assert log["n_train"] + log["n_val"] == 200 and np.isfinite(log["history"][0]["val_mse"])
