"""Shared fixtures: the real-data folder, the CLI runner, and tiny tokenizers."""
from __future__ import annotations

import os
from pathlib import Path

# Tiny models are latency-bound: one thread per process avoids oversubscribing a 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

SHARED_DATA = Path(os.environ.get("RANKKIT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def pytest_collection_modifyitems(config, items):
    """`realdata` tests skip cleanly where ../shared/data is absent, except in CI where they must run."""
    if SHARED_DATA.is_dir():
        return
    if os.environ.get("RANKKIT_REQUIRE_REALDATA") or os.environ.get("CI"):
        raise pytest.UsageError(f"realdata tests must run in CI but {SHARED_DATA} is missing")
    skip = pytest.mark.skip(reason=f"real data not found at {SHARED_DATA}")
    for item in items:
        if "realdata" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tiny models and small matrices gain nothing from threads; on a shared 2-core machine one
    BLAS/torch thread per process is many times faster than two (OpenMP spinning)."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return SHARED_DATA


@pytest.fixture(scope="session")
def gpt2_tokenizer():
    from rankkit.tokenization import load_tokenizer

    return load_tokenizer(SHARED_DATA / "gpt2_tokenizer")


@pytest.fixture(scope="session")
def synthetic_tokenizer():
    from rankkit.tokenization import load_tokenizer

    return load_tokenizer("synthetic")


@pytest.fixture(scope="session")
def random_heads():
    """``random_heads(model, seed)``: give a reward model's heads visible spread (a fresh ARM has
    W = 0, a constant reward over candidates) and put it in eval mode; the backbone is untouched."""
    import torch

    def randomise(model, seed, scale=0.3):
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if not name.startswith("causal_lm"):
                    parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)
        return model.eval()

    return randomise


@pytest.fixture
def cli(capsys):
    """Run ``rankkit ARGS…`` in-process; returns (exit_code, stdout, stderr)."""
    from rankkit.cli import main

    def run(*args):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
