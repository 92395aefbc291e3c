"""`rankkit demo --quick` end to end, the invariants its report claims, and every analysis script on tiny settings."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

ANALYSIS = Path(__file__).resolve().parents[1] / "analysis"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from rankkit.models.report import run_demo

    out = tmp_path_factory.mktemp("demo")
    results = run_demo(out, quick=True, echo=lambda *_: None)
    return out, results


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ANALYSIS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_report_folder_is_complete_and_reloadable(demo):
    out, results = demo
    for name in ("report.md", "results.json", "rank_sweep/sweep.png", "rank_curves.png", "tradeoff.png",
                 "speed/bench_decode.png", "capacity/capacity.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "results.json").read_text())["findings"] == results["findings"]
    report = (out / "report.md").read_text()
    assert all(line in report for line in results["findings"])


def test_omega_statistics_match_the_saved_matrix(demo):
    from rankkit.omega import Omega

    out, results = demo
    omega = Omega.load(out / "omega")
    per_row = np.diff(omega.matrix().indptr)
    assert results["omega"]["n_rows"] == omega.n_rows
    assert results["omega"]["lemma1_rows"] == int((per_row == 1).sum())
    assert results["omega"]["submatrix_2"][0] == int((per_row >= 2).sum())


def test_bracket_and_lemma2_are_consistent(demo):
    sweep = demo[1]["minrank"]
    bracket = sweep["bracket"]
    if sweep["q_star"] is not None:
        assert bracket["q_low"] <= sweep["q_star"]
        assert sweep["lemma2_bound"] is None or sweep["q_star"] <= sweep["lemma2_bound"] or sweep["q_star_2"] is None


def test_arm_rank_is_at_most_d_plus_one_and_curves_grow(demo):
    out, results = demo
    for name, summary in results["rank_curves"].items():
        if name.startswith("ARM"):
            assert summary["rank"] <= summary["d"] + 1
    for csv in (out / "model_rank").glob("*/rank_curve.csv"):
        ranks = pl.read_csv(csv)["rank"].to_numpy()
        assert np.all(np.diff(ranks) >= 0)


def test_capacity_arm_respects_the_bound(demo):
    cap = demo[1]["capacity"]
    assert cap["bound"] == pytest.approx((cap["n"] - cap["d"]) / cap["n"] ** 2)
    assert cap["arm"]["mse"] >= cap["bound"] * (1 - 1e-4)
    assert cap["arm"]["rank"] <= cap["d"] + 1


def test_steering_away_lowers_true_toxicity(demo):
    """The ground truth says guidance away from toxicity must lower it: compare β = 0 with the largest β."""
    table = pl.DataFrame(demo[1]["decoding"]["table"])
    for name in table["reward"].unique():
        rows = table.filter(pl.col("reward") == name).sort("beta")
        assert rows["mean_score"][-1] < rows["mean_score"][0], name


def test_speed_table_has_every_mode(demo):
    speed = pl.DataFrame(demo[1]["speed"]["table"])
    assert set(speed["mode"]) == {"base", "arm", "rad"}
    assert (speed["seconds_per_token"] > 0).all()


def test_analysis_rank_curves_capacity_and_time_per_token(demo, tmp_path):
    out, _ = demo
    models = out / "models"
    assert _script("rank_curves").main(["--checkpoint", f"ARM={models / 'arm'}", "--checkpoint", f"RAD={models / 'rad'}",
                                        "--rows", "20", "--out", str(tmp_path / "curves")]) == 0
    assert (tmp_path / "curves" / "rank_curves.png").is_file()
    assert _script("capacity").main(["--n", "8,16", "--d", "8", "--steps", "30", "--out", str(tmp_path / "cap")]) == 0
    frame = pl.read_csv(tmp_path / "cap" / "capacity.csv")
    assert (frame.filter(pl.col("model") == "ARM")["mse"] >= frame.filter(pl.col("model") == "ARM")["bound"] * (1 - 1e-4)).all()
    assert _script("time_per_token").main(["--base", str(models / "base"), "--arm", str(models / "arm"), "--rad",
                                           str(models / "rad"), "--top-k", "4", "--repeats", "1", "--samples", "2",
                                           "--new-tokens", "3", "--out", str(tmp_path / "speed")]) == 0
    assert (tmp_path / "speed" / "speed" / "bench_decode.csv").is_file()


def test_analysis_tradeoff_from_evaluations(demo, tmp_path, cli):
    out, _ = demo
    evals = []
    for jsonl in sorted((out / "generations").glob("*.jsonl")):
        target = tmp_path / f"{jsonl.stem}.json"
        code, _, err = cli("evaluate", jsonl, "--scorer", "synthetic:toxicity", "--out", target)
        assert code == 0, err
        evals += ["--eval", str(target)]
    assert _script("tradeoff").main([*evals, "--x", "dist_2", "--out", str(tmp_path / "t")]) == 0
    assert (tmp_path / "t" / "tradeoff.png").is_file()


def test_analysis_lemma2_table_on_synthetic(tmp_path):
    assert _script("real_data").main(["--sets", "synthetic", "--limit", "300", "--ranks", "1,2", "--iters", "5",
                                      "--warm-iters", "5", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["synthetic"]["texts"] == 300
    assert "| synthetic |" in (tmp_path / "summary.md").read_text()


@pytest.mark.realdata
def test_analysis_real_data_on_slices(tmp_path, shared_data):
    assert _script("real_data").main(["--data-root", str(shared_data), "--sets", "sst2,jigsaw2018", "--limit", "300",
                                      "--ranks", "1,2", "--iters", "5", "--warm-iters", "5", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["sst2"]["vocab_size"] == 50257 and summary["jigsaw2018"]["texts"] == 300


def test_base_lm_generalises_to_held_out_utterances(demo):
    """The demo's base LM is fitted to the world: held-out perplexity far below uniform over the 200 words."""
    import torch
    from transformers import AutoModelForCausalLM

    from rankkit.synthetic import SyntheticWorld, generate_corpus
    from rankkit.tokenization import load_tokenizer

    out, _ = demo
    tokenizer, world = load_tokenizer("synthetic"), SyntheticWorld.default()
    model = AutoModelForCausalLM.from_pretrained(out / "models" / "base").eval()
    nll = tokens = 0
    for text in generate_corpus(100, random_state=99)["text"]:
        ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]])
        with torch.no_grad():
            nll += float(model(ids, labels=ids).loss) * (ids.shape[1] - 1)
        tokens += ids.shape[1] - 1
    assert np.exp(nll / tokens) < 0.25 * len(world.words)
