"""Seaborn figures drawn from result frames; no computation happens here.

Every function takes a polars frame (or plain arrays) and a path, and writes a PNG atomically.
"""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from .io import atomic_path  # noqa: E402

sns.set_theme(context="paper", style="whitegrid")


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Write ``fig`` as a PNG at ``path`` (atomically) and close it."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_rank_curves(frame, path: str | os.PathLike, *, d: int | None = None, vocab_size: int | None = None) -> Path:
    """Numerical rank against the number of sampled rows of R̂ (Figures 1, 7): one line per model.

    ``frame`` has columns ``rows`` and ``rank``, plus ``model`` when it holds several curves. The
    model dimension ``d`` is drawn as a dashed horizontal line; |V| goes in the title (it is the
    largest possible rank, usually far above the curves).
    """
    data = frame.to_pandas()
    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    sns.lineplot(data=data, x="rows", y="rank", hue="model" if "model" in data else None, marker="o", ax=ax)
    if d is not None:
        ax.axhline(d, color="0.3", linestyle="--", linewidth=1, label=f"d = {d}")
        ax.legend()
    ax.set_xlabel("rows of R̂ (sampled prefixes)")
    ax.set_ylabel("numerical rank")
    ax.set_title("Rank of R̂" + (f" (|V| = {vocab_size:,})" if vocab_size is not None else ""))
    ax.set_ylim(bottom=0)
    return save_figure(fig, path)


def plot_tradeoff(frame, path: str | os.PathLike, *, x: str = "perplexity", y: str = "avg_max",
                  xlabel: str | None = None, ylabel: str | None = None) -> Path:
    """Attribute against fluency across the guidance weight β (Figures 3–4): one line per reward model.

    ``frame`` has one row per (model, β) with columns ``reward``, ``beta``, ``x`` and ``y`` (e.g.
    ``rankkit evaluate`` results); every point is labelled with its β. Axis labels default to the
    column names.
    """
    data = frame.sort(["reward", "beta"]).to_pandas()
    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    sns.lineplot(data=data, x=x, y=y, hue="reward", marker="o", sort=False, ax=ax)
    for beta, px, py in zip(data["beta"], data[x], data[y]):
        ax.annotate(f"β={beta:g}", (px, py), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel(xlabel or x.replace("_", " "))
    ax.set_ylabel(ylabel or y.replace("_", " "))
    ax.set_title("Attribute/fluency trade-off across β")
    return save_figure(fig, path)


def plot_time_per_token(frame, path: str | os.PathLike) -> Path:
    """Time per generated token against the number of candidates k (Figure 6): one line per mode.

    ``frame`` has columns ``mode`` (base / arm / rad), ``top_k`` and ``seconds_per_token``.
    """
    data = frame.to_pandas()
    data["ms_per_token"] = 1000 * data["seconds_per_token"]
    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    sns.lineplot(data=data, x="top_k", y="ms_per_token", hue="mode", marker="o", ax=ax)
    ax.set_xlabel("top-k candidates")
    ax.set_ylabel("ms per generated token")
    ax.set_title("Decoding time per token")
    ax.set_ylim(bottom=0)
    return save_figure(fig, path)


def plot_rank_sweep(frame, path: str | os.PathLike, *, tol: float, q_star: int | None = None) -> Path:
    """Observed MSE against rank (App. B.2, ``rankkit rank-sweep``): one line per matrix.

    ``frame`` has columns ``matrix`` (P_Ω(R) / [P_Ω(R)]_2), ``rank`` and ``mse``
    (:class:`rankkit.minrank.RankSweep`); the tolerance τ is a dashed line and q* is marked.
    """
    data = frame.to_pandas()
    floor = max(float(data["mse"][data["mse"] > 0].min()) if (data["mse"] > 0).any() else tol, 1e-300)
    data["mse"] = data["mse"].clip(lower=floor)  # exact fits stay visible on the log axis
    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    sns.lineplot(data=data, x="rank", y="mse", hue="matrix", marker="o", ax=ax)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.axhline(tol, color="grey", linestyle="--", linewidth=1, label=f"τ = {tol:g}")
    if q_star is not None:
        ax.axvline(q_star, color="tab:red", linestyle=":", linewidth=1, label=f"q* = {q_star}")
    ax.set_xlabel("rank q")
    ax.set_ylabel("MSE over observed entries")
    ax.set_title("Minimal rank of P_Ω(R): MSE against rank")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_capacity(frame, path: str | os.PathLike) -> Path:
    """Identity capacity test (App. C.1–C.2): MSE on R_I = I(n) against n per model, with ARM's bound.

    ``frame`` has columns ``n``, ``model``, ``mse`` and ``bound`` ((n − d)/n², zero while n ≤ d,
    where it is not drawn).
    """
    data = frame.to_pandas()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    sns.lineplot(data=data, x="n", y="mse", hue="model", marker="o", ax=ax)
    bound = data.drop_duplicates("n").sort_values("n")
    bound = bound[bound["bound"] > 0]  # (n − d)/n² binds only once n > d
    ax.plot(bound["n"], bound["bound"], "k--x", label="ARM bound (n − d)/n², n > d")
    ax.set_yscale("log")
    ax.set_xlabel("block size n (contexts × tokens)")
    ax.set_ylabel("MSE on the identity block")
    ax.set_title(f"Identity capacity test (d = {int(data['d'].iloc[0])})" if "d" in data else "Identity capacity test")
    ax.legend()
    return save_figure(fig, path)
