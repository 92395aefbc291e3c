"""Benchmark: full rows of R̂_RAD (cached, batched candidates vs naive re-encoding) and numerical_rank.

RAD rows: a tiny random RAD (2 layers, d = 64) over the real 50,257-token GPT-2 vocabulary, contexts
of 20–40 tokens. Three ways to score the same |V| candidates of the same contexts, in one run:
  cached   ``reward_rows`` → ``RAD.rewards``: one prefix pass, candidates batched over its cached
           key/values (target: ≥ 8x the naive batched way on CPU);
  naive    every candidate re-encodes [BOS] + x' + v, in batches of the same size (no cache);
  per-call one candidate per forward call, as a per-candidate reward API would (on a slice of V).
numerical_rank: a 2000 × 50,257 float32 matrix of planted rank against numpy.linalg.matrix_rank.

    python analysis/benchmarks/bench_rank.py            # full size (a few minutes on 2 CPU cores)
    python analysis/benchmarks/bench_rank.py --small    # smoke run
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from rankkit import numerical_rank
from rankkit.models import RAD, build_tiny_backbone
from rankkit.models.rows import reference_rad_rows, reward_rows

GPT2_VOCAB = 50_257


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def bench_rad_rows(n_rows: int, chunk_rows: int, per_call_candidates: int, seed: int) -> None:
    model = RAD(build_tiny_backbone(GPT2_VOCAB, n_layer=2, n_embd=64, n_head=4, seed=seed), responses=("toxicity",),
                bos_token_id=GPT2_VOCAB - 1, seed=seed).eval()
    rng = np.random.default_rng(seed)
    contexts = [rng.integers(0, GPT2_VOCAB - 1, size=rng.integers(20, 41)) for _ in range(n_rows)]
    lengths = ", ".join(str(len(c)) for c in contexts)
    print(f"RAD rows: tiny GPT-2 (2 layers, d = 64), |V| = {GPT2_VOCAB:,}, {n_rows} context(s) of {lengths} tokens, "
          f"{chunk_rows} candidates per forward call, torch threads = {torch.get_num_threads()}")
    reward_rows(model, contexts[:1], chunk_rows=chunk_rows, batch_size=1)  # warm-up
    cached, t_cached = timed(lambda: reward_rows(model, contexts, chunk_rows=chunk_rows, batch_size=1))
    naive, t_naive = timed(lambda: reference_rad_rows(model, contexts, batch_size=chunk_rows))
    n_candidates = n_rows * GPT2_VOCAB
    print(f"  cached, batched   {t_cached:8.2f} s  {n_candidates / t_cached:12,.0f} candidates/s")
    print(f"  naive, batched    {t_naive:8.2f} s  {n_candidates / t_naive:12,.0f} candidates/s"
          f"   -> cached is {t_naive / t_cached:.1f}x faster (target ≥ 8x)")
    print(f"  max |cached - naive| = {np.abs(cached - naive).max():.2e} (rows span {np.ptp(naive):.2e})")

    # one candidate per call, on the first `per_call_candidates` tokens of the first context
    with torch.inference_mode():
        prefix = torch.tensor([model.bos_token_id, *contexts[0].tolist()])
        start = time.perf_counter()
        one = [model.prefix_scores(model.encode(torch.cat([prefix, torch.tensor([v])])[None])[0][0, -1]).item()
               for v in range(per_call_candidates)]
        t_one = time.perf_counter() - start
    rate_one = per_call_candidates / t_one
    print(f"  one per call      {t_one:8.2f} s  {rate_one:12,.0f} candidates/s  (on {per_call_candidates:,} candidates)"
          f"   -> cached is {n_candidates / t_cached / rate_one:.0f}x faster")
    print(f"  max |cached - one per call| = {np.abs(cached[0, :per_call_candidates] - np.array(one)).max():.2e}")


def bench_numerical_rank(m: int, rank: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    M = (rng.standard_normal((m, rank), dtype=np.float32) @ rng.standard_normal((rank, GPT2_VOCAB), dtype=np.float32))
    print(f"numerical_rank: {m} x {GPT2_VOCAB:,} float32, planted rank {rank}")
    ours, t_ours = timed(lambda: numerical_rank(M, device="cpu"))
    theirs, t_numpy = timed(lambda: np.linalg.matrix_rank(M))
    print(f"  rankkit.numerical_rank   {t_ours:7.2f} s  rank {ours.rank}")
    print(f"  numpy.linalg.matrix_rank {t_numpy:7.2f} s  rank {theirs}   -> {t_numpy / t_ours:.1f}x faster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="smoke run: 1 row, 300-row rank matrix")
    parser.add_argument("--rows", type=int, default=2, help="RAD rows (full |V| each)")
    parser.add_argument("--chunk-rows", type=int, default=2048, help="candidates per forward call (both batched ways)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 keeps timings stable on a shared machine)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    n_rows, m, per_call = (1, 300, 300) if args.small else (args.rows, 2000, 2000)
    print("GPU: not measured (no GPU on this machine); run `rankkit model-rank --device cuda` where one is present.")
    bench_rad_rows(n_rows, args.chunk_rows, per_call, args.seed)
    bench_numerical_rank(m, 64, args.seed)


if __name__ == "__main__":
    main()
