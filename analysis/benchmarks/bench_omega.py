"""Benchmark: building P_Ω(R) (eq. 5) — tokenisation and the build phase timed separately.

Prints, from one run:
1. SST-2 train (real, ../shared/data) with the GPT-2 tokenizer: tokenisation rate, token-cache hit
   versus miss, the build phase against two pure-Python dict builds on the same token ids
   (tuple keys, the straightforward one, and (parent, token) trie keys, a smarter one), and
   end-to-end throughput (load + tokenise + build + save) with peak RSS.
2. A synthetic 2M-utterance corpus (~60 tokens each, Zipf-distributed GPT-2 ids drawn with numpy):
   the build phase time and peak RSS (targets ≤ 60 s and ≤ 8 GiB), its growth with corpus size,
   the dict baselines on a subsample, and tokenisation extrapolated from a decoded subsample.

Each measurement runs in its own process so that its peak RSS is its own.
``--small`` runs everything at reduced size (SST-2 dev, 100k synthetic utterances).

    .venv/bin/python analysis/benchmarks/bench_omega.py [--small]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("RANKKIT_SHARED_DATA", ROOT.parent / "shared" / "data"))
GPT2_VOCAB = 50257
GIB = 2 ** 30
REPEAT = 3  # build phase, dict baselines and the tokenisation sample: best of 3 runs each


def peak_rss() -> int:
    """Peak resident set size of this process so far, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# ---- the baselines: straightforward pure-Python builds on the same token ids ------------------
def dict_build_tuple_keys(ids: np.ndarray, offsets: np.ndarray, labels: np.ndarray) -> dict:
    """{(context tuple, v): [Σλy, Σλ, count]}, one dict update per prefix."""
    entries: dict = {}
    for i in range(len(offsets) - 1):
        u = ids[offsets[i]:offsets[i + 1]].tolist()
        total, y = len(u) * (len(u) + 1) / 2, float(labels[i])
        for t in range(1, len(u) + 1):
            lam = t / total
            entry = entries.get((tuple(u[:t - 1]), u[t - 1]))
            if entry is None:
                entries[(tuple(u[:t - 1]), u[t - 1])] = [lam * y, lam, 1]
            else:
                entry[0] += lam * y
                entry[1] += lam
                entry[2] += 1
    return entries


def dict_build_trie_keys(ids: np.ndarray, offsets: np.ndarray, labels: np.ndarray) -> dict:
    """The same sums keyed by (parent node id, v): O(1) per prefix instead of O(t)."""
    nodes: dict = {}
    sums: list = []
    for i in range(len(offsets) - 1):
        u = ids[offsets[i]:offsets[i + 1]].tolist()
        total, y = len(u) * (len(u) + 1) / 2, float(labels[i])
        parent = 0
        for t, v in enumerate(u, start=1):
            lam = t / total
            node = nodes.get((parent, v))
            if node is None:
                node = nodes[(parent, v)] = len(sums) + 1
                sums.append([0.0, 0.0, 0])
            entry = sums[node - 1]
            entry[0] += lam * y
            entry[1] += lam
            entry[2] += 1
            parent = node
    return nodes


def timed(fn, *args, repeat: int = 1):
    """(result, best wall time over ``repeat`` runs)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - start)
    return result, best


# ---- phases, each run in a child process --------------------------------------------------------
def phase_sst2(split: str) -> dict:
    """End-to-end on SST-2 with GPT-2, then the cache and the dict baselines on the same ids."""
    from rankkit.datasets import load_dataset
    from rankkit.omega import omega_from_corpus
    from rankkit.prefixes import encode_cached
    from rankkit.tokenization import load_tokenizer

    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        data = load_dataset("sst2", path=SHARED / "sst2" / f"{split}.tsv")
        out["load_s"] = time.perf_counter() - start
        tokenizer, out["tokenizer_load_s"] = timed(load_tokenizer, SHARED / "gpt2_tokenizer")
        (full, _), out["tokenise_s"] = timed(lambda: encode_cached(data.texts, tokenizer, cache=Path(tmp) / "c"))
        corpus = full.truncate(128)
        labels = data.labels()
        omega, out["build_s"] = timed(lambda: omega_from_corpus(corpus, labels, vocab_size=len(tokenizer),
                                                                responses=data.responses), repeat=REPEAT)
        _, out["save_s"] = timed(omega.save, Path(tmp) / "omega")
        out["e2e_s"] = time.perf_counter() - start
        out["e2e_peak_rss"] = peak_rss()
        (_, hit), out["cache_hit_s"] = timed(lambda: encode_cached(data.texts, tokenizer, cache=Path(tmp) / "c"))
        assert hit
    out.update(n_texts=len(data), n_tokens=int(corpus.offsets[-1]), n_rows=omega.n_rows, n_observed=omega.n_observed)
    reference, out["dict_tuple_s"] = timed(dict_build_tuple_keys, corpus.ids, corpus.offsets, labels[:, 0],
                                           repeat=REPEAT)
    assert len(reference) == omega.n_observed
    del reference
    reference, out["dict_trie_s"] = timed(dict_build_trie_keys, corpus.ids, corpus.offsets, labels[:, 0],
                                          repeat=REPEAT)
    assert len(reference) == omega.n_observed
    return out


def zipf_corpus(n: int, *, mean_len: int = 60, seed: int = 0):
    """n utterances of 20..(2·mean_len − 20) GPT-2 ids drawn from a Zipf(1.1) law; labels U(0, 1)."""
    from rankkit.tokenization import TokenizedCorpus

    rng = np.random.default_rng(seed)
    lengths = rng.integers(20, 2 * mean_len - 19, size=n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    p = 1.0 / np.arange(1, GPT2_VOCAB + 1) ** 1.1
    ids = rng.choice(GPT2_VOCAB, size=int(offsets[-1]), p=p / p.sum()).astype(np.int32)
    order = rng.permutation(GPT2_VOCAB).astype(np.int32)  # frequent ids spread over the vocabulary
    return TokenizedCorpus(order[ids], offsets, 0, 128), rng.random(n)


def phase_synthetic(n: int, baseline_n: int) -> dict:
    """Build phase on n Zipf utterances; then baselines on a subsample; then tokenisation estimate."""
    from rankkit.omega import omega_from_corpus
    from rankkit.tokenization import encode_texts, load_tokenizer

    (corpus, labels), generate_s = timed(zipf_corpus, n)
    omega, build_s = timed(lambda: omega_from_corpus(corpus, labels, vocab_size=GPT2_VOCAB))
    out = {"n": n, "n_tokens": int(corpus.offsets[-1]), "n_rows": omega.n_rows, "n_observed": omega.n_observed,
           "generate_s": generate_s, "build_s": build_s, "peak_rss": peak_rss()}
    del omega
    if baseline_n:
        sub = corpus.select(np.arange(baseline_n))
        small, out["sub_build_s"] = timed(lambda: omega_from_corpus(sub, labels[:baseline_n], vocab_size=GPT2_VOCAB),
                                          repeat=REPEAT)
        reference, out["sub_dict_trie_s"] = timed(dict_build_trie_keys, sub.ids, sub.offsets, labels[:baseline_n],
                                                  repeat=REPEAT)
        assert len(reference) == small.n_observed
        del reference
        reference, out["sub_dict_tuple_s"] = timed(dict_build_tuple_keys, sub.ids, sub.offsets, labels[:baseline_n],
                                                   repeat=REPEAT)
        assert len(reference) == small.n_observed
        out["sub_tokens"] = int(sub.offsets[-1])
        # Tokenisation: decode a subsample to text, re-tokenise it, extrapolate to the whole corpus.
        tokenizer = load_tokenizer(SHARED / "gpt2_tokenizer")
        texts = tokenizer.batch_decode([sub.utterance(i).tolist() for i in range(min(len(sub), 10_000))])
        encoded, out["tok_sample_s"] = timed(encode_texts, texts, tokenizer, repeat=REPEAT)
        out["tok_sample_tokens"] = int(encoded.offsets[-1])
    return out


def run_phase(*args: str) -> dict:
    """Run one phase in a fresh interpreter and return its JSON result."""
    result = subprocess.run([sys.executable, __file__, "--phase", *args], check=True, capture_output=True, text=True,
                            cwd=ROOT)
    return json.loads(result.stdout.strip().splitlines()[-1])


def report(small: bool) -> None:
    split, n = ("dev", 100_000) if small else ("train", 2_000_000)
    baseline_n = 5_000 if small else 10_000
    print(f"bench_omega: building P_Ω(R); {os.cpu_count()} CPUs; numpy {np.__version__}; "
          f"build phase, dict baselines and tokenisation sample: best of {REPEAT} runs, other steps one run"
          + (" (--small)" if small else ""))
    s = run_phase("sst2", split)
    print(f"\n[1] SST-2 {split} with GPT-2 (real data): {s['n_texts']:,} texts, {s['n_tokens']:,} prefix tokens, "
          f"{s['n_rows']:,} contexts, {s['n_observed']:,} observed entries"
          + (" (issue 2 quotes 765k tokens, 443k contexts, 490k entries)" if split == "train" else ""))
    print(f"  tokenise           {s['tokenise_s']:8.2f} s   {s['n_tokens'] / s['tokenise_s'] / 1e6:7.3f} M tokens/s")
    print(f"  token cache hit    {s['cache_hit_s']:8.2f} s   ({s['tokenise_s'] / s['cache_hit_s']:.1f}x faster than tokenising)")
    print(f"  build phase        {s['build_s']:8.3f} s   {s['n_tokens'] / s['build_s'] / 1e6:7.2f} M tokens/s")
    print(f"  dict, tuple keys   {s['dict_tuple_s']:8.2f} s   {s['n_tokens'] / s['dict_tuple_s'] / 1e6:7.3f} M tokens/s"
          f"   build phase is {s['dict_tuple_s'] / s['build_s']:.1f}x faster (target >= 30x)")
    print(f"  dict, trie keys    {s['dict_trie_s']:8.2f} s   {s['n_tokens'] / s['dict_trie_s'] / 1e6:7.3f} M tokens/s"
          f"   build phase is {s['dict_trie_s'] / s['build_s']:.1f}x faster")
    print(f"  end to end         {s['e2e_s']:8.2f} s   {s['n_tokens'] / s['e2e_s'] / 1e6:7.3f} M tokens/s   "
          f"(data {s['load_s']:.2f} + tokenizer {s['tokenizer_load_s']:.2f} + tokenise + build + save {s['save_s']:.2f}), peak RSS {s['e2e_peak_rss'] / GIB:.2f} GiB")

    scale = [run_phase("synthetic", str(n // 4), "0"), run_phase("synthetic", str(n // 2), "0")]
    z = run_phase("synthetic", str(n), str(baseline_n))
    print(f"\n[2] synthetic corpus, {z['n']:,} utterances of 20–100 Zipf GPT-2 ids (mean 60): "
          f"{z['n_tokens']:,} prefix tokens, {z['n_rows']:,} contexts, {z['n_observed']:,} observed entries")
    print(f"  build phase        {z['build_s']:8.2f} s   {z['n_tokens'] / z['build_s'] / 1e6:7.2f} M tokens/s"
          f"   (target <= 60 s: {'met' if z['build_s'] <= 60 else 'MISSED'})")
    print(f"  peak RSS           {z['peak_rss'] / GIB:8.2f} GiB (ids generation + build; target <= 8 GiB: "
          f"{'met' if z['peak_rss'] <= 8 * GIB else 'MISSED'})")
    print("  growth with size:")
    for r in (*scale, z):
        print(f"    {r['n']:>10,} utterances {r['n_tokens']:>12,} tokens  build {r['build_s']:7.2f} s  "
              f"{r['n_tokens'] / r['build_s'] / 1e6:6.2f} M tokens/s  peak RSS {r['peak_rss'] / GIB:5.2f} GiB")
    sub = z["sub_tokens"]
    print(f"  on the first {baseline_n:,} utterances ({sub:,} tokens): build phase {z['sub_build_s']:.3f} s; "
          f"dict tuple keys {z['sub_dict_tuple_s']:.2f} s ({z['sub_dict_tuple_s'] / z['sub_build_s']:.0f}x slower), "
          f"dict trie keys {z['sub_dict_trie_s']:.2f} s ({z['sub_dict_trie_s'] / z['sub_build_s']:.0f}x slower)")
    rate = z["tok_sample_tokens"] / z["tok_sample_s"]
    tokenise_s = z["n_tokens"] / rate
    print(f"  tokenisation: measured on 10,000 utterances decoded to text ({z['tok_sample_tokens']:,} tokens) at "
          f"{rate / 1e6:.3f} M tokens/s, extrapolated to the whole corpus: {tokenise_s:.0f} s")
    print(f"  whole pipeline estimate (tokenise, extrapolated + build, measured): {(tokenise_s + z['build_s']) / 60:.1f} min "
          f"(target <= 10 min: {'met' if tokenise_s + z['build_s'] <= 600 else 'MISSED'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="fast run: SST-2 dev and 100k synthetic utterances")
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        name, *rest = args.phase
        result = phase_sst2(*rest) if name == "sst2" else phase_synthetic(int(rest[0]), int(rest[1]))
        print(json.dumps(result))
    else:
        report(args.small)


if __name__ == "__main__":
    main()
