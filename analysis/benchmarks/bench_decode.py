"""Benchmark: time per generated token of unguided, ARM- and RAD-guided decoding (§5.6, Table 1, Figure 6).

Tiny random models on CPU, measured in one run: a base LM (4 layers × 256) several times larger
than the reward models (2 layers × 64), as GPT-2-Large is to GPT-2-Small. One prompt of 20 tokens,
25 samples, 20 new tokens, top-k ∈ {10, 20, 40}. A token is one decoding step of the 25 samples;
every setting keeps the fastest of ``--repeats`` runs after a warm-up run.

Targets (issue 6):
  1. ARM-guided decoding costs at most 1.5× unguided decoding per token (every k);
  2. RAD's reward-model time per token grows with k and is at least k/4 × ARM's at k = 40;
  3. the cached RAD path is at least 5× faster (reward-model time) than re-encoding the whole
     prefix for each candidate, at 20 generated tokens after a 20-token prompt (every k).

Run:  .venv/bin/python analysis/benchmarks/bench_decode.py [--small] [--threads N]
Exit status 1 when a target is missed.
"""
from __future__ import annotations

import argparse
import sys

import torch

from rankkit.models import ARM, RAD
from rankkit.models.decoding import benchmark_prompts, build_tiny_base, decoding_speed
from rankkit.tokenization import load_tokenizer


def _reward_models(tokenizer):
    """Fresh tiny ARM and RAD with random heads (speed does not depend on training)."""
    models = []
    for cls, seed in ((ARM, 1), (RAD, 2)):
        model = cls.from_backbone("tiny", tokenizer=tokenizer, responses=("toxicity",), seed=seed)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if not name.startswith("causal_lm"):
                    parameter.copy_(0.3 * torch.randn(parameter.shape, generator=generator))
        models.append(model.eval())
    return models


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="k ∈ {10, 40} and 1 repeat (about half the time)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is steadiest on a shared machine)")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    samples = 25
    top_ks, repeats = ([10, 40], 1) if args.small else ([10, 20, 40], 3)
    repeats = args.repeats or repeats
    prompt_tokens = new_tokens = 20

    tokenizer = load_tokenizer("synthetic")
    arm, rad = _reward_models(tokenizer)
    base = build_tiny_base(len(tokenizer)).eval()
    count = lambda m: sum(p.numel() for p in m.parameters() if p.dim() > 1) - m.get_input_embeddings().weight.numel()
    print(f"base: {count(base):,} non-embedding weights; reward backbone: {count(arm.causal_lm):,} "
          f"({count(base) / count(arm.causal_lm):.0f}× smaller)")
    print(f"1 prompt × {samples} samples, {prompt_tokens}-token prompt, {new_tokens} new tokens, "
          f"fastest of {repeats} runs, {args.threads} thread(s)\n")
    prompts = benchmark_prompts(tokenizer, n_prompts=1, n_tokens=prompt_tokens)
    frame = decoding_speed(base, tokenizer, prompts, top_ks=top_ks, n_samples=samples, max_new_tokens=new_tokens,
                           repeats=repeats, guides={"arm": (arm, True), "rad": (rad, True), "rad_reencode": (rad, False)})
    t = {(r["mode"], r["top_k"]): r for r in frame.iter_rows(named=True)}

    print(f"{'mode':>13} {'k':>4} {'ms/token':>9} {'reward ms/token':>16} {'reward share':>13} {'× unguided':>11}")
    for (mode, k), r in t.items():
        total, reward = r["seconds_per_token"], r["reward_seconds_per_token"]
        print(f"{mode:>13} {k:>4} {1000 * total:9.2f} {1000 * reward:16.2f} {reward / total:13.0%} "
              f"{total / t['base', k]['seconds_per_token']:11.2f}")

    checks = []
    for k in top_ks:
        ratio = t["arm", k]["seconds_per_token"] / t["base", k]["seconds_per_token"]
        checks.append((f"ARM-guided / unguided per token at k={k}: {ratio:.2f}× (target ≤ 1.5×)", ratio <= 1.5))
    rad_reward = [t["rad", k]["reward_seconds_per_token"] for k in top_ks]
    grows = all(a < b for a, b in zip(rad_reward, rad_reward[1:]))
    checks.append(("RAD reward ms/token by k: " + ", ".join(f"{1000 * v:.2f}" for v in rad_reward)
                   + " (target: grows with k)", grows))
    k = max(top_ks)
    ratio = t["rad", k]["reward_seconds_per_token"] / t["arm", k]["reward_seconds_per_token"]
    checks.append((f"RAD / ARM reward time per token at k={k}: {ratio:.1f}× (target ≥ k/4 = {k / 4:g}×)", ratio >= k / 4))
    for k in top_ks:
        ratio = t["rad_reencode", k]["reward_seconds_per_token"] / t["rad", k]["reward_seconds_per_token"]
        checks.append((f"RAD re-encoding / cached reward time at k={k}: {ratio:.1f}× (target ≥ 5×)", ratio >= 5))
    print()
    for text, ok in checks:
        print(f"[{'ok' if ok else 'MISSED'}] {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
