"""rankkit generate / evaluate / bench-decode / tradeoff end to end on tiny models, and prompt files."""
from __future__ import annotations

import json

import polars as pl
import pytest
import torch

from rankkit.errors import UserError
from rankkit.models import ARM, RAD, build_tiny_backbone
from rankkit.models.decoding import build_tiny_base, sample_continuations
from rankkit.models.prompts import read_prompts

RTP_LINE = '{"filename": "x.txt", "prompt": {"text": "%s", "toxicity": 0.1}, "continuation": {"text": " y"}}'


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, synthetic_tokenizer, random_heads):
    """Saved tiny ARM, RAD and base LM over the synthetic tokenizer, and a prompt file."""
    from rankkit.synthetic import generate_corpus

    root = tmp_path_factory.mktemp("decode")
    for cls, seed in ((ARM, 1), (RAD, 2)):
        model = cls.from_backbone("tiny", tokenizer=synthetic_tokenizer, responses=("toxicity", "sentiment"))
        random_heads(model, seed).save_pretrained(root / cls.kind)
    build_tiny_base(len(synthetic_tokenizer), n_layer=2, n_embd=64, seed=3).save_pretrained(root / "base")
    synthetic_tokenizer.save_pretrained(root / "base")
    texts = generate_corpus(10, random_state=7)["text"].to_list()
    (root / "prompts.jsonl").write_text("".join(RTP_LINE % " ".join(t.split()[:3]) + "\n" for t in texts[:4]))
    return root


def _generate(cli, run_dir, out, *extra, reward="arm", beta="0,10"):
    return cli("generate", "--base", run_dir / "base", "--reward", run_dir / reward, "--prompts",
               run_dir / "prompts.jsonl", "--beta", beta, "--top-k", 5, "--samples", 2, "--max-new-tokens", 4,
               "--batch-size", 3, "--out", out, *extra)


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---- prompt files ------------------------------------------------------------------------------
def test_read_prompts_formats(tmp_path):
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text(RTP_LINE % "Hello there" + "\n\n" + '{"prompt": "plain string"}\n')
    assert read_prompts(jsonl) == ["Hello there", "plain string"]
    text = tmp_path / "p.txt"
    text.write_text("first prompt\n\nsecond one\nthird\n")
    assert read_prompts(text) == ["first prompt", "second one", "third"]
    assert read_prompts(text, limit=2) == ["first prompt", "second one"]


def test_read_prompts_errors_name_file_and_line(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n")
    with pytest.raises(UserError, match="empty.jsonl: no prompts"):
        read_prompts(empty)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(RTP_LINE % "fine" + "\n" + '{"prompt": {"text": "cut\n')
    with pytest.raises(UserError, match=r"bad.jsonl, line 2: not valid JSON"):
        read_prompts(bad)
    bad.write_text(RTP_LINE % "fine" + "\n" + '{"continuation": {"text": "x"}}\n')
    with pytest.raises(UserError, match=r"bad.jsonl, line 2: expected"):
        read_prompts(bad)
    bad.write_text(RTP_LINE % "" + "\n")
    with pytest.raises(UserError, match=r"line 1: the prompt is empty"):
        read_prompts(bad)


@pytest.mark.realdata
def test_read_the_shared_prompt_sets(shared_data):
    rtp = read_prompts(shared_data / "realtoxicityprompts" / "rtp_dexperts_nontoxic_random2000.jsonl")
    assert len(rtp) == 2000 and rtp[0] == "First you have the fact that Terry McAuliffe"
    assert read_prompts(shared_data / "dexperts_prompts" / "sentiment_neutral_prompts.jsonl", limit=1) == ["God never intended to"]


# ---- generate ----------------------------------------------------------------------------------
def test_generate_writes_every_prompt_and_beta_and_resumes(cli, run_dir, tmp_path):
    out = tmp_path / "gen.jsonl"
    code, stdout, stderr = _generate(cli, run_dir, out)
    assert code == 0, stderr
    records = _lines(out)
    assert sorted((r["prompt_index"], r["beta"]) for r in records) == [(i, b) for i in range(4) for b in (0.0, 10.0)]
    assert all(len(r["continuations"]) == 2 and r["reward"] == "arm" and r["top_k"] == 5 for r in records)
    assert records[0]["prompt"] == read_prompts(run_dir / "prompts.jsonl")[records[0]["prompt_index"]]
    lines = out.read_bytes().splitlines(keepends=True)
    kept = b"".join(lines[:-1])
    # resume: a torn last line (crash mid-write) is cut and its pair generated again; a new β is added
    out.write_bytes(kept + lines[-1][:25])
    code, stdout, _ = _generate(cli, run_dir, out, beta="0,10,30")
    assert code == 0 and "5 to generate (7 already" in stdout
    assert out.read_bytes().startswith(kept)
    pairs = sorted((r["prompt_index"], r["beta"]) for r in _lines(out))
    assert pairs == [(i, b) for i in range(4) for b in (0.0, 10.0, 30.0)]
    code, _, stderr = _generate(cli, run_dir, out, "--seed", 1)
    assert code == 2 and "other settings (seed=0)" in stderr


def test_unguided_beta_zero_is_the_same_for_arm_and_rad(cli, run_dir, tmp_path):
    for reward in ("arm", "rad"):
        assert _generate(cli, run_dir, tmp_path / f"{reward}.jsonl", reward=reward, beta="0,20")[0] == 0
    arm, rad = (_lines(tmp_path / f"{r}.jsonl") for r in ("arm", "rad"))
    zero = [(a["continuations"], b["continuations"]) for a, b in zip(arm, rad) if a["beta"] == 0]
    assert zero and all(a == b for a, b in zero)
    assert [a["continuations"] for a in arm if a["beta"] == 20] != [b["continuations"] for b in rad if b["beta"] == 20]


@pytest.mark.parametrize("args, message", [
    (("--beta", "-1"), "--beta -1: give one or more weights ≥ 0"),
    (("--top-k", "500"), "--top-k 500: must be between 1 and the vocabulary size 204"),
    (("--steer", "up"), "--steer 'up'"),
    (("--samples", "0"), "--samples 0: must be at least 1"),
])
def test_generate_bad_options(cli, run_dir, tmp_path, args, message):
    code, _, stderr = cli("generate", "--base", run_dir / "base", "--reward", run_dir / "arm", "--prompts",
                          run_dir / "prompts.jsonl", "--out", tmp_path / "x.jsonl", *args)
    assert code == 2 and message in stderr and "Traceback" not in stderr


def test_generate_refuses_an_empty_prompt_file(cli, run_dir, tmp_path):
    empty = tmp_path / "none.txt"
    empty.write_text("")
    code, _, stderr = cli("generate", "--reward", run_dir / "arm", "--prompts", empty, "--out", tmp_path / "x.jsonl")
    assert code == 2 and "none.txt: no prompts" in stderr


def test_generate_refuses_a_base_with_another_tokenizer(cli, run_dir, tmp_path, gpt2_tokenizer):
    other = tmp_path / "gpt2base"
    build_tiny_backbone(len(gpt2_tokenizer), n_layer=1, n_embd=8, n_head=2).save_pretrained(other)
    gpt2_tokenizer.save_pretrained(other)
    code, _, stderr = cli("generate", "--base", other, "--reward", run_dir / "arm", "--prompts",
                          run_dir / "prompts.jsonl", "--out", tmp_path / "x.jsonl")
    assert code == 2 and "is not the reward model's" in stderr


# ---- evaluate, tradeoff, bench-decode ----------------------------------------------------------
def test_evaluate_and_tradeoff(cli, run_dir, tmp_path):
    results = []
    for reward in ("arm", "rad"):
        gen = tmp_path / f"{reward}.jsonl"
        assert _generate(cli, run_dir, gen, reward=reward, beta="0,20")[0] == 0
        results.append(tmp_path / f"{reward}.json")
        code, stdout, stderr = cli("evaluate", gen, "--scorer", "synthetic", "--ppl-model", run_dir / "base",
                                   "--out", results[-1], "--device", "cpu")
        assert code == 0, stderr
        assert "avg max" in stdout and "ppl" in stdout
        rows = json.loads(results[-1].read_text())
        assert [r["beta"] for r in rows] == [0.0, 20.0] and all(r["reward"] == reward for r in rows)
        assert all(0 <= r["avg_max"] <= 1 and r["perplexity"] > 1 and r["n_samples"] == 8 for r in rows)
    code, _, stderr = cli("tradeoff", *results, "--out", tmp_path / "tradeoff.png")
    assert code == 0, stderr
    assert (tmp_path / "tradeoff.png").read_bytes()[:4] == b"\x89PNG"
    code, _, stderr = cli("tradeoff", *results, "--x", "mauve", "--out", tmp_path / "t2.png")
    assert code == 2 and "mauve" in stderr


def test_evaluate_bad_scorer_is_one_line(cli, run_dir, tmp_path):
    gen = tmp_path / "gen.jsonl"
    gen.write_text(json.dumps({"prompt": "ba", "beta": 0, "continuations": [" ka"]}) + "\n")
    code, _, stderr = cli("evaluate", gen, "--scorer", tmp_path / "missing")
    assert code == 2 and "cannot load a sequence classifier" in stderr


def test_bench_decode_writes_the_table(cli, run_dir, tmp_path):
    code, stdout, stderr = cli("bench-decode", "--base", run_dir / "base", "--arm", run_dir / "arm", "--rad",
                               run_dir / "rad", "--top-k", "2,4", "--samples", 2, "--max-new-tokens", 3,
                               "--prompt-tokens", 5, "--repeats", 1, "--out", tmp_path / "bench", "--device", "cpu")
    assert code == 0, stderr
    frame = pl.read_csv(tmp_path / "bench" / "bench_decode.csv")
    assert frame.columns == ["mode", "top_k", "seconds_per_token"]
    assert sorted(zip(frame["mode"], frame["top_k"])) == [(m, k) for m in ("arm", "base", "rad") for k in (2, 4)]
    assert (frame["seconds_per_token"] > 0).all()
    code, _, stderr = cli("bench-decode", "--arm", run_dir / "rad", "--rad", run_dir / "rad")
    assert code == 2 and "expected an ARM and a RAD" in stderr


# ---- real data ---------------------------------------------------------------------------------
@pytest.mark.realdata
def test_guided_generation_for_realtoxicityprompts_with_the_gpt2_tokenizer(shared_data, gpt2_tokenizer, cli, tmp_path, random_heads):
    """A few RTP prompts, the real GPT-2 tokenizer (50257 tokens) and tiny models with n_embd 32."""
    from rankkit.models.guidance import select_candidates

    bos = gpt2_tokenizer.eos_token_id
    arm = random_heads(ARM(build_tiny_backbone(len(gpt2_tokenizer), n_embd=32, n_head=2, seed=1),
                            responses=("toxicity",), bos_token_id=bos, tokenizer=gpt2_tokenizer), 1)
    base = build_tiny_base(len(gpt2_tokenizer), n_layer=2, n_embd=32, n_head=2, seed=2).eval()
    prompt_file = shared_data / "realtoxicityprompts" / "rtp_decodingtrust_toxic.jsonl"
    prompts = read_prompts(prompt_file, limit=3)
    result = sample_continuations(base, gpt2_tokenizer, prompts, reward=arm, beta=50.0, top_k=10, n_samples=2,
                                  max_new_tokens=5, seed=0)
    assert len(result.continuations) == 3 and all(len(c) == 2 for c in result.continuations)
    # every continuation re-tokenises to tokens that were top-10 candidates of the base model
    for prompt, continuations in zip(prompts, result.continuations):
        for text in continuations:
            ids = gpt2_tokenizer(prompt + text, add_special_tokens=False)["input_ids"]
            assert gpt2_tokenizer.decode(ids).startswith(prompt)
    # the first guided step on the left-padded real prompts equals eq. 1 with per-prompt rewards
    encoded = [gpt2_tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    width = max(map(len, encoded))
    ids = torch.tensor([[bos] * (width - len(e)) + e for e in encoded])
    mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in encoded])
    from rankkit.models.guidance import ARMGuidance

    with torch.no_grad():
        scores = base(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp(min=0)).logits[:, -1]
        got = ARMGuidance(arm, beta=50.0, top_k=10, attention_mask=mask)(ids, scores)
        candidates, _ = select_candidates(scores, top_k=10)
        for b, e in enumerate(encoded):
            r = arm.rewards(torch.tensor([e]), candidates[b:b + 1])[0]
            torch.testing.assert_close(got[b, candidates[b]], scores[b, candidates[b]] + 50.0 * (1 - r),
                                       rtol=1e-4, atol=1e-3)
    assert torch.isinf(got).sum() == got.numel() - 3 * 10
