"""Benchmark: training tokens per second of ARM vs RAD on the same backbone, and the regulariser's cost.

Both models score every prefix of an utterance in one teacher-forced pass (§2.2, §3.3); ARM adds
its head (one d×d product per position and response, gathers of e(v)), RAD reads one more input
position (BOS + u instead of BOS + u_{1:l-1}). The regulariser (eq. 11) adds one gathered e(v')
per position. Measured in one run on the synthetic corpus (2 responses), randomly initialised
GPT-2 backbones of two sizes, batch 100, the real training loop (``train_reward_model``, one
epoch; tokens/s counts real, unpadded tokens per second of process CPU time, single-threaded by
default, so that other jobs on a shared machine do not distort the ratios). Runs are interleaved
and each setting keeps its best of ``--repeats``.

Targets (issue 4):
  1. ARM (with its default regulariser) and RAD within 15% of each other in tokens/s;
  2. the regulariser costs ARM at most 10% of its tokens/s.

Run:  .venv/bin/python analysis/benchmarks/bench_train.py [--small] [--threads N]
Exit status 1 when a target is missed.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from rankkit.datasets import load_dataset
from rankkit.models import ARM, RAD, build_tiny_backbone
from rankkit.models.train import split_rows, train_reward_model
from rankkit.tokenization import encode_texts, load_tokenizer

VAL_FRACTION = 0.01  # validation is not training; keep it out of the measurement as far as possible
SETTINGS = (("ARM, reg 0.1", ARM, 0.1), ("ARM, no reg", ARM, 0.0), ("RAD", RAD, None))


def tokens_per_second(cls, reg_weight, corpus, labels, tokenizer, *, d: int, n_layer: int) -> float:
    """Training tokens per CPU second of one epoch (CPU time: steady when other jobs share the cores)."""
    backbone = build_tiny_backbone(len(tokenizer), n_layer=n_layer, n_embd=d, n_head=4)
    model = cls(backbone, responses=("toxicity", "sentiment"), bos_token_id=tokenizer.bos_token_id)
    started = time.process_time()
    result = train_reward_model(model, corpus, labels, epochs=1, lr=1e-3, batch_size=100, reg_weight=reg_weight,
                                val_fraction=VAL_FRACTION, device="cpu")
    seconds = time.process_time() - started
    train_rows, _ = split_rows(len(corpus), val_fraction=VAL_FRACTION, seed=0)
    assert result.n_train == len(train_rows)
    return float(corpus.lengths[train_rows].sum()) / seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="the 2 × 64 backbone only, 600 utterances")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is steadiest on a shared machine)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    tokenizer = load_tokenizer("synthetic")
    data = load_dataset("synthetic", limit=600 if args.small else 1500)
    corpus, labels = encode_texts(data.texts, tokenizer), data.labels()
    sizes = [(64, 2)] if args.small else [(64, 2), (256, 4)]
    print(f"training throughput: synthetic, {len(corpus)} utterances ({int(corpus.lengths.sum()):,} tokens), "
          f"batch 100, 2 responses, {args.threads} threads, best of {args.repeats}")
    failed = False
    for d, n_layer in sizes:
        best = {name: 0.0 for name, _, _ in SETTINGS}
        for _ in range(args.repeats):
            for name, cls, reg in SETTINGS:
                best[name] = max(best[name], tokens_per_second(cls, reg, corpus, labels, tokenizer, d=d, n_layer=n_layer))
        arm, plain, rad = (best[name] for name, _, _ in SETTINGS)
        gap = abs(arm - rad) / max(arm, rad)
        overhead = plain / arm - 1
        print(f"\nbackbone GPT-2 {n_layer} layers × d = {d}")
        for name, value in best.items():
            print(f"  {name:<13} {value:>10,.0f} tokens per CPU second")
        ok_gap, ok_reg = gap <= 0.15, overhead <= 0.10
        print(f"  ARM vs RAD: ARM/RAD = {arm / rad:.3f} (gap {gap:.1%}, target ≤ 15%) {'ok' if ok_gap else 'MISSED'}")
        print(f"  regulariser overhead: {overhead:+.1%} of ARM's time per token (target ≤ 10%) {'ok' if ok_reg else 'MISSED'}")
        failed |= not (ok_gap and ok_reg)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
