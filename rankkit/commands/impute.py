"""Low-rank completion of P_Ω(R) and its minimal rank (App. B.2): softimpute, rank-sweep.

Examples::

    rankkit softimpute runs/omega --rank 512 --min-obs 2 --out runs/fit
    rankkit softimpute omega.mtx --rank 64 --solver als --device cuda --dtype float32 --out runs/fit
    rankkit rank-sweep runs/omega --ranks 1,2,4,8,16,32 --tol 1e-3 --out runs/sweep
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from ..errors import UserError
from .options import DeviceOpt, OutDirOpt, SeedOpt

InputArg = Annotated[Optional[Path], typer.Argument(
    help="An Ω folder (rankkit build-omega) or a MatrixMarket .mtx file (default: the most recently built Ω).")]
ResponseOpt = Annotated[Optional[str], typer.Option("--response", help="Which response of the Ω (default: its first).")]
MinObsOpt = Annotated[int, typer.Option("--min-obs", help="Keep rows with at least this many observations (2: [P_Ω(R)]_2, App. B.2).")]
SolverOpt = Annotated[str, typer.Option("--solver", help="softimpute-als (Hastie et al. 2015, Alg. 3.1) or als (exact per-row ridge; faster on sparse rows).")]
LambdaOpt = Annotated[float, typer.Option("--lambda", help="λ of the first stage (nuclear-norm penalty).")]
ItersOpt = Annotated[int, typer.Option("--iters", help="Iterations at --lambda.")]
WarmItersOpt = Annotated[int, typer.Option("--warm-iters", help="Iterations at λ = 0 warm-started from the first stage (0: none).")]
ThreshOpt = Annotated[float, typer.Option("--thresh", help="Stop a stage when the relative change of the fit is below this.")]
DtypeOpt = Annotated[Optional[str], typer.Option("--dtype", help="float32 or float64 (default: float64, or float32 for float32 input).")]


def _load_matrix(source: Path | None, response: str | None, min_obs: int):
    """(P_Ω(R) as CSR, description) from an Ω folder, an .mtx file, or the last built Ω."""
    import scipy.sparse as sp

    from ..minrank import rows_with_min_obs
    from ..omega import Omega, last_built_omega

    if min_obs < 1:
        raise UserError(f"--min-obs {min_obs}: must be at least 1")
    if source is None:
        source = last_built_omega()
        if source is None:
            raise UserError("no input given and no Ω built yet: pass OMEGA_DIR or file.mtx, or run `rankkit build-omega` first")
    if not source.exists():
        raise UserError(f"{source}: no such file or folder")
    if source.is_dir():
        omega = Omega.load(source)
        name = omega.responses[omega._response_index(response)]
        if min_obs > 1:
            omega = omega.submatrix(min_obs)
        X = omega.matrix(name)
        return X, {"input": str(source), "response": name, "min_obs": min_obs}
    if source.suffix != ".mtx":
        raise UserError(f"{source}: expected an Ω folder (rankkit build-omega) or a MatrixMarket .mtx file")
    if response is not None:
        raise UserError(f"--response {response}: an .mtx file holds one matrix; --response applies to Ω folders")
    from scipy.io import mmread

    try:
        X = sp.csr_matrix(mmread(str(source)))
    except ValueError as exc:
        raise UserError(f"{source}: not a readable MatrixMarket file ({exc})") from None
    return rows_with_min_obs(X, min_obs), {"input": str(source), "response": None, "min_obs": min_obs}


def _print_warnings(console: Console, caught) -> list[str]:
    messages = [str(w.message) for w in caught]
    for message in messages:
        console.print(f"[yellow]Warning:[/] {message}", soft_wrap=True)
    return messages


def softimpute_command(
    source: InputArg = None,
    out: OutDirOpt = ...,
    rank: Annotated[int, typer.Option("--rank", help="Maximum rank q (clipped to min(m, n) − 1, as R).")] = 512,
    min_obs: MinObsOpt = 1,
    solver: SolverOpt = "softimpute-als",
    response: ResponseOpt = None,
    lam: LambdaOpt = 0.01,
    iters: ItersOpt = 50,
    warm_iters: WarmItersOpt = 50,
    thresh: ThreshOpt = 1e-5,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = None,
    seed: SeedOpt = 0,
    fmt: Annotated[str, typer.Option("--format", help="Factor file: safetensors or npz.")] = "safetensors",
    threads: Annotated[int, typer.Option("--threads", help="BLAS threads of the numpy backend (2+ pays off on an idle machine).")] = 1,
) -> None:
    """Fit a rank-q completion of P_Ω(R) with the paper's schedule; write factors and a report."""
    from ..io import atomic_path, write_json
    from ..solvers import soft_impute

    console = Console(highlight=False, soft_wrap=True)
    if fmt not in ("safetensors", "npz"):
        raise UserError(f"--format {fmt}: expected safetensors or npz")
    if threads < 1:
        raise UserError(f"--threads {threads}: must be at least 1")
    X, described = _load_matrix(source, response, min_obs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = soft_impute(X, rank, lam=lam, iters=iters, warm_iters=warm_iters, solver=solver, device=device,
                          dtype=dtype, thresh=thresh, random_state=seed, progress=True, blas_threads=threads)
    messages = _print_warnings(console, caught)
    values = X.data
    report = {
        **described, "shape": list(X.shape), "n_observed": int(X.nnz), "solver": solver, "lambda": lam,
        "iters": iters, "warm_iters": warm_iters, "thresh": thresh, "rank": rank, "rank_used": fit.info["rank_used"],
        "mse": fit.mse, "mean_only_mse": float(np.var(values)), "objective": float(fit.trace["objective"][-1]),
        "effective_rank": fit.effective_rank, "iterations": fit.trace.height, "converged": fit.converged,
        "seconds": fit.info["seconds"], "seconds_per_iteration": float(fit.trace["seconds"].mean()),
        "backend": fit.info["backend"], "device": fit.info["device"], "dtype": fit.info["dtype"], "warnings": messages,
        "factors": f"completion.{fmt}",
    }
    with atomic_path(out) as tmp:
        tmp.mkdir()
        fit.save(tmp / f"completion.{fmt}")
        fit.trace.write_csv(tmp / "trace.csv")
        write_json(tmp / "report.json", report)
    console.print(f"{solver} on {X.shape[0]:,} × {X.shape[1]:,} ({X.nnz:,} observed), rank {fit.info['rank_used']}: "
                  f"observed MSE {fit.mse:.4g} (mean-only {report['mean_only_mse']:.4g}), effective rank "
                  f"{fit.effective_rank}, {fit.trace.height} iterations in {fit.info['seconds']:.1f} s "
                  f"({fit.info['backend']}, {fit.info['device']}, {fit.info['dtype']})")
    console.print(f"saved to {out}")


def rank_sweep_command(
    source: InputArg = None,
    out: OutDirOpt = ...,
    ranks: Annotated[str, typer.Option("--ranks", help="Comma-separated ranks to fit.")] = "1,2,4,8,16,32,64,128,256,512",
    tol: Annotated[float, typer.Option("--tol", help="τ: target MSE over the observed entries.")] = 1e-3,
    lemma2: Annotated[bool, typer.Option("--lemma2/--no-lemma2", help="Also sweep [P_Ω(R)]_2 for the Lemma 2 bound.")] = True,
    min_obs: MinObsOpt = 1,
    solver: Annotated[str, typer.Option("--solver", help="als (default; tighter q* on sparse rows) or softimpute-als.")] = "als",
    response: ResponseOpt = None,
    lam: LambdaOpt = 0.01,
    iters: ItersOpt = 50,
    warm_iters: WarmItersOpt = 50,
    thresh: ThreshOpt = 1e-5,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = None,
    seed: SeedOpt = 0,
) -> None:
    """MSE against rank, q*, the Lemma 2 bound and a certified lower bound: the rank bracket."""
    from ..io import atomic_path, write_json
    from ..minrank import rank_bracket, rank_sweep
    from ..plots import plot_rank_sweep

    console = Console(highlight=False, soft_wrap=True)
    rank_list = parse_ranks(ranks)
    X, described = _load_matrix(source, response, min_obs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sweep = rank_sweep(X, rank_list, tol=tol, lemma2=lemma2, solver=solver, lam=lam, iters=iters,
                           warm_iters=warm_iters, thresh=thresh, device=device, dtype=dtype, random_state=seed, progress=True)
    messages = _print_warnings(console, [w for w in caught if "iteration limit" not in str(w.message)])
    bracket = rank_bracket(X, tol, sweep=sweep)
    certificate = bracket.certificate
    table = Table(title=f"MSE over observed entries against rank (τ = {tol:g})")
    for column in ("matrix", "rank", "mse", "effective rank", "seconds"):
        table.add_column(column, justify="left" if column == "matrix" else "right")
    for row in sweep.frame.iter_rows(named=True):
        table.add_row(row["matrix"], str(row["rank_used"]), f"{row['mse']:.3g}", str(row["effective_rank"]), f"{row['seconds']:.1f}")
    console.print(table)
    report = {**described, "shape": list(X.shape), "n_observed": int(X.nnz), "tol": tol, "ranks": rank_list,
              "solver": solver, "q_star": sweep.q_star, "q_star_2": sweep.q_star_2, "lemma2_bound": sweep.lemma2_bound,
              "bracket": bracket.to_dict(), "warnings": messages, "table": "sweep.csv", "plot": "sweep.png"}
    with atomic_path(out) as tmp:
        tmp.mkdir()
        sweep.frame.write_csv(tmp / "sweep.csv")
        plot_rank_sweep(sweep.frame, tmp / "sweep.png", tol=tol, q_star=sweep.q_star)
        write_json(tmp / "report.json", report)
    console.print(f"q* = {sweep.q_star if sweep.q_star is not None else 'none of the swept ranks'} "
                  f"(smallest swept rank with MSE ≤ {tol:g}); Lemma 2 bound 1 + q*([P_Ω(R)]_2) = {sweep.lemma2_bound}")
    source_of_low = (f"a fully observed {certificate.rows.size} × {certificate.cols.size} block" if certificate.rows.size
                     else "‖P_Ω(R)‖² > τ·|Ω| (the zero matrix does not fit)")
    console.print(f"bracket: {bracket.text} (lower bound certified by {source_of_low})")
    console.print(f"saved to {out}")


def parse_ranks(text: str) -> list[int]:
    """'1,2,4' → [1, 2, 4]; a bad list is a UserError naming --ranks."""
    from ..minrank import check_ranks

    try:
        return check_ranks([int(p) for p in text.split(",") if p.strip()])
    except (ValueError, UserError):
        raise UserError(f"--ranks {text!r}: expected comma-separated positive integers such as 1,2,4,8") from None


def register(app: typer.Typer) -> None:
    app.command("softimpute", help=softimpute_command.__doc__)(softimpute_command)
    app.command("rank-sweep", help=rank_sweep_command.__doc__)(rank_sweep_command)
