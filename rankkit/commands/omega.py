"""Commands for the reward matrix P_Ω(R) (paper eq. 5): build-omega, omega-stats, export.

Examples::

    rankkit build-omega synthetic --out runs/omega
    rankkit build-omega sst2 --path ../shared/data/sst2/dev.tsv --tokenizer ../shared/data/gpt2_tokenizer --out runs/sst2
    rankkit build-omega reviews.csv --text-column body --label-column stars01 --out runs/reviews
    rankkit omega-stats runs/omega
    rankkit export runs/omega --format mtx --response toxicity --out omega.mtx
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..errors import UserError
from .options import (LabelColumnOpt, LimitOpt, MaxTokensOpt, OutDirOpt, PathOpt, SeedOpt, SkipBadRowsOpt,
                      TextColumnOpt)

ResponsesOpt = Annotated[Optional[list[str]], typer.Option(
    "--response", help="Keep only this response (repeatable); default: all responses of the data set.")]
DatasetArg = Annotated[str, typer.Argument(
    help="synthetic (embedded default), jigsaw, sst2, amazon_polarity, or a CSV/TSV/JSONL/parquet file.")]
OmegaDirArg = Annotated[Path, typer.Argument(help="A folder written by `rankkit build-omega`.")]


def build_omega_command(
    dataset: DatasetArg = "synthetic",
    out: OutDirOpt = ...,
    path: PathOpt = None,
    text_column: TextColumnOpt = None,
    label_column: LabelColumnOpt = None,
    response: ResponsesOpt = None,
    tokenizer: Annotated[Optional[str], typer.Option(
        "--tokenizer", help="HF tokenizer: 'synthetic', a hub name, or a local folder "
                            "(default: synthetic for the synthetic data set, else gpt2).")] = None,
    max_tokens: MaxTokensOpt = 128,
    skip_bad_rows: SkipBadRowsOpt = False,
    limit: LimitOpt = None,
    seed: SeedOpt = 0,
    cache: Annotated[bool, typer.Option(
        "--cache/--no-cache", help="Reuse token ids cached in $RANKKIT_CACHE or ./.rankkit-cache.")] = True,
) -> None:
    """Build P_Ω(R) (eq. 5) from a labelled data set and save it as a reloadable folder."""
    from ..datasets import load_dataset
    from ..omega import build_omega, check_save_target, remember_omega
    from ..prefixes import cache_dir
    from ..tokenization import load_tokenizer

    console = Console(highlight=False, soft_wrap=True)
    if max_tokens < 1:
        raise UserError(f"--max-tokens {max_tokens}: must be at least 1")
    check_save_target(out)
    data = load_dataset(dataset, path=path, text_column=text_column, label_columns=label_column,
                        skip_bad_rows=skip_bad_rows, limit=limit, random_state=seed)
    responses = tuple(response) if response else data.responses
    tok = load_tokenizer(tokenizer or data.tokenizer_hint or "gpt2")
    omega = build_omega(data.texts, data.labels(responses), tok, max_tokens=max_tokens, responses=responses,
                        cache=cache_dir() if cache else None, progress=True)
    omega.save(out)
    remember_omega(out)
    two = omega.submatrix(2)
    console.print(f"Ω from {data.name}: {len(data):,} texts ({data.n_skipped:,} bad rows skipped), "
                  f"{omega.info['n_tokens']:,} tokens" + (" (token ids from cache)" if omega.info["token_cache_hit"] else ""))
    console.print(f"{omega.info['n_truncated']:,} texts truncated at {max_tokens} tokens")
    console.print(f"rows (contexts) {omega.n_rows:,} · observed entries {omega.n_observed:,} · "
                  f"[P_Ω(R)]_2 {two.n_rows:,} rows, {two.n_observed:,} entries · responses {', '.join(responses)}")
    console.print(f"saved to {out}")


def omega_stats_command(folder: OmegaDirArg) -> None:
    """Print rows, observed entries, rows per observation count, [P_Ω(R)]_2 size and value statistics."""
    from ..omega import Omega, omega_stats

    stats = omega_stats(Omega.load(folder))
    console = Console(highlight=False, soft_wrap=True)
    info = stats["info"]
    summary = Table(title=f"P_Ω(R) in {folder}", show_header=False)
    summary.add_column(no_wrap=True)
    summary.add_column(overflow="fold")
    for key, value in [
        ("tokenizer", stats["tokenizer"]),
        ("utterances", f"{info.get('n_utterances', 0):,} "
                       f"({info.get('n_truncated', 0):,} truncated at {info.get('max_tokens')} tokens)"),
        ("prefix tokens", f"{info.get('n_tokens', 0):,}"),
        ("rows (contexts)", f"{stats['n_rows']:,}"),
        ("columns (vocabulary)", f"{stats['vocab_size']:,}"),
        ("observed entries", f"{stats['n_observed']:,} (density {stats['density']:.2e})"),
        ("rows with 1 observation (Lemma 1)", f"{stats['lemma1_rows']:,}"),
        ("[P_Ω(R)]_2", f"{stats['submatrix_2'][0]:,} rows, {stats['submatrix_2'][1]:,} entries"),
    ]:
        summary.add_row(key, value)
    console.print(summary)
    per_count = Table(title="rows per observation count")
    per_count.add_column("observed entries", justify="right")
    per_count.add_column("rows", justify="right")
    for label, rows in stats["rows_by_observations"]:
        per_count.add_row(label, f"{rows:,}")
    console.print(per_count)
    values = Table(title="values R\\[x', v]")
    values.add_column("statistic")
    for name in stats["values"]:
        values.add_column(name, justify="right")
    for column in ("count", "mean", "weighted_mean", "std", "min", "q25", "median", "q75", "max", "zeros", "ones"):
        label = {"weighted_mean": "Σλ-weighted mean", "zeros": "share = 0", "ones": "share = 1"}.get(column, column)
        values.add_row(label, *(_number(row.get(column)) for row in stats["values"].values()))
    console.print(values)


def _number(value) -> str:
    if value is None:
        return "–"
    return f"{value:,}" if isinstance(value, int) else f"{value:.4g}"


def export_command(
    folder: OmegaDirArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file (written atomically).")],
    fmt: Annotated[str, typer.Option("--format", help="mtx: MatrixMarket coordinate (R's Matrix::readMM).")] = "mtx",
    response: Annotated[Optional[str], typer.Option("--response", help="Which response (default: the first).")] = None,
) -> None:
    """Write P_Ω(R) of one response as MatrixMarket, for R's Matrix::readMM and softImpute.

    Observed zeros are written as 2.2e-308, because softImpute treats stored zeros as missing.
    """
    from ..omega import MTX_ZERO, Omega, export_mtx

    if fmt != "mtx":
        raise UserError(f"--format {fmt}: only 'mtx' is supported")
    omega = Omega.load(folder)
    export_mtx(omega, out, response=response)
    Console(highlight=False, soft_wrap=True).print(
        f"wrote {out}: {omega.n_rows:,} × {omega.vocab_size:,}, {omega.n_observed:,} entries "
        f"(response {response or omega.responses[0]}; observed zeros written as {MTX_ZERO:.3g})")


def register(app: typer.Typer) -> None:
    app.command("build-omega")(build_omega_command)
    app.command("omega-stats")(omega_stats_command)
    app.command("export")(export_command)
