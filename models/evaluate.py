"""Evaluation of guided samples (§5.2–§5.3, App. E): attribute, fluency and diversity metrics.

For a prompt set with n samples per prompt and attribute scores s_ij ∈ [0, 1] of sample j of prompt i:

- average maximum attribute  (1/P) Σ_i max_j s_ij   (toxicity: "average max toxicity");
- toxic rate                 (1/P) Σ_i 1[max_j s_ij > 0.5]   (P[any of the n samples > 0.5]);
- positive rate              (1/(P n)) Σ_ij 1[s_ij > 0.5]   (sentiment);
- perplexity                 (1/N) Σ exp(−(1/|c|) Σ_t log p_LM(c_t | prompt, c_<t)) per continuation c
  under a (larger) LM, averaged over the continuations;
- dist-n                     per prompt, the distinct n-grams of its samples divided by their number
  of words (whitespace tokens), averaged over prompts (Li et al. 2018, as computed by DExperts);
- MAUVE                      (optional ``mauve-text``) between the guided and the unguided (β = 0)
  continuations, featurised by the LM's last hidden state, with c = 5, n/10 clusters, 500 k-means
  iterations (App. E).

Scorers are pluggable: any callable ``scorer(texts) -> ndarray`` of probabilities. Provided are an
HF sequence classifier by name or folder, the exact reward of the synthetic world, and an optional
Perspective API client.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from rankkit.errors import UserError

THRESHOLD = 0.5
GROUP_KEYS = ("reward", "beta", "top_k", "top_p", "steer")


# ---- attribute metrics -------------------------------------------------------------------
def average_max(scores_by_prompt: Sequence[Sequence[float]]) -> float:
    """(1/P) Σ_i max_j s_ij: the maximum score over a prompt's samples, averaged over prompts (§5.2)."""
    return float(np.mean([np.max(s) for s in scores_by_prompt]))


def toxic_rate(scores_by_prompt: Sequence[Sequence[float]], *, threshold: float = THRESHOLD) -> float:
    """(1/P) Σ_i 1[max_j s_ij > threshold]: the share of prompts with at least one sample above it (§5.2)."""
    return float(np.mean([np.max(s) > threshold for s in scores_by_prompt]))


def positive_rate(scores_by_prompt: Sequence[Sequence[float]], *, threshold: float = THRESHOLD) -> float:
    """The share of all samples scored above ``threshold`` (§5.3, "positive rate")."""
    return float(np.mean(np.concatenate([np.asarray(s, dtype=float) for s in scores_by_prompt]) > threshold))


def distinct_n(samples_by_prompt: Sequence[Sequence[str]], n: int) -> float:
    """dist-n: per prompt, |distinct n-grams of its samples| / |words of its samples|, averaged over prompts.

    Words are whitespace tokens and n-grams do not cross samples (Li et al. 2018, as in DExperts).
    Prompts whose samples are all empty are left out.
    """
    values = []
    for samples in samples_by_prompt:
        grams, words = set(), 0
        for text in samples:
            tokens = text.split()
            words += len(tokens)
            grams.update(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
        if words:
            values.append(len(grams) / words)
    return float(np.mean(values)) if values else float("nan")


# ---- fluency -----------------------------------------------------------------------------
def _lm_inputs(prompts, continuations, tokenizer):
    """Token ids of prompt + continuation, and the index of the first continuation token."""
    rows, starts = [], []
    for prompt, continuation in zip(prompts, continuations):
        start = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        ids = tokenizer(prompt + continuation, add_special_tokens=False)["input_ids"]
        if start == 0:  # condition on BOS when the prompt has no tokens of its own
            bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
            if bos is None:
                raise UserError(f"prompt {prompt!r} has no tokens and the LM's tokenizer has no BOS to condition on")
            ids, start = [bos] + ids, 1
        rows.append(ids)
        starts.append(start)
    return rows, starts


def _right_pad(rows: list[list[int]], device):
    """Right-pad token-id lists with 0 into (ids, attention mask), LongTensors of shape (B, max length)."""
    import torch

    width = max(map(len, rows))
    ids = torch.tensor([r + [0] * (width - len(r)) for r in rows], device=device)
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=device)
    return ids, mask


def perplexities(prompts: Sequence[str], continuations: Sequence[str], model, tokenizer, *, batch_size: int = 16,
                 progress: bool = False) -> np.ndarray:
    """exp of the mean negative log-likelihood of each continuation given its prompt under ``model``.

    Parameters
    ----------
    prompts, continuations : sequences of str of equal length N; the text scored is prompt + continuation.
    model : HF causal LM; tokenizer : its tokenizer.

    Returns
    -------
    ndarray of shape (N,), float64; NaN for a continuation without tokens.
    """
    import torch

    from rankkit.progress import track

    rows, starts = _lm_inputs(prompts, continuations, tokenizer)
    device = next(model.parameters()).device
    out = np.full(len(rows), np.nan)
    batches = range(0, len(rows), batch_size)
    for first in track(batches, total=len(batches), description="perplexity", enabled=progress):
        ids, mask = _right_pad(rows[first:first + batch_size], device)
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
        logp = logits[:, :-1].log_softmax(-1).gather(-1, ids[:, 1:, None])[..., 0]
        start = torch.tensor(starts[first:first + batch_size], device=device)[:, None]
        column = torch.arange(logp.shape[1], device=device)[None, :]
        scored = (column >= start - 1) & mask[:, 1:].bool()  # the continuation's tokens, each given its prefix
        count = scored.sum(1)
        nll = -(logp * scored).sum(1) / count.clamp(min=1)
        out[first:first + len(count)] = np.where(count.cpu().numpy() > 0, torch.exp(nll).cpu().numpy(), np.nan)
    return out


def text_features(texts: Sequence[str], model, tokenizer, *, batch_size: int = 16) -> np.ndarray:
    """The LM's last-layer hidden state at the last token of each text (MAUVE's featurisation), (N, d)."""
    import torch

    device = next(model.parameters()).device
    features = []
    for first in range(0, len(texts), batch_size):
        encoded = [tokenizer(t, add_special_tokens=False)["input_ids"] or [tokenizer.eos_token_id or 0]
                   for t in texts[first:first + batch_size]]
        ids, mask = _right_pad(encoded, device)
        with torch.no_grad():
            hidden = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[-1]
        last = torch.tensor([len(e) - 1 for e in encoded], device=device)
        features.append(hidden[torch.arange(len(encoded), device=device), last].float().cpu().numpy())
    return np.concatenate(features)


def mauve_score(reference: np.ndarray, features: np.ndarray, *, seed: int = 25) -> float:
    """MAUVE (Pillutla et al. 2021) between two feature sets with App. E's settings; needs ``mauve-text``."""
    try:
        import mauve
    except ImportError:
        raise UserError("--mauve needs the optional package mauve-text (pip install mauve-text)") from None
    n = min(len(reference), len(features))
    result = mauve.compute_mauve(p_features=reference, q_features=features, num_buckets=max(2, n // 10),
                                 kmeans_max_iter=500, mauve_scaling_factor=5, seed=seed, verbose=False)
    return float(result.mauve)


# ---- scorers -----------------------------------------------------------------------------
class ClassifierScorer:
    """P(label | text) from an HF sequence classifier (a hub name or a local folder).

    One output or a multi-label classifier: sigmoid of the label's logit; otherwise the softmax
    probability of the label. ``label`` is a name from ``config.id2label`` or an index; default
    the only output, or index 1 of a two-class model (the "toxic" / "positive" class).
    """

    def __init__(self, name_or_dir: str, *, label: str | int | None = None, device: str = "cpu",
                 batch_size: int = 32):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name_or_dir)
            self.model = AutoModelForSequenceClassification.from_pretrained(name_or_dir).to(device).eval()
        except Exception as exc:  # noqa: BLE001 - any loader failure is a user-facing error
            raise UserError(f"--scorer {name_or_dir}: cannot load a sequence classifier from it "
                            f"({exc.__class__.__name__})") from exc
        config = self.model.config
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if config.pad_token_id is None:
            config.pad_token_id = self.tokenizer.pad_token_id
        self.index = self._label_index(config, label, name_or_dir)
        self.sigmoid = config.num_labels == 1 or config.problem_type == "multi_label_classification"
        self.batch_size = batch_size

    @staticmethod
    def _label_index(config, label, name) -> int:
        names = {str(v): int(k) for k, v in config.id2label.items()}
        if label is None:
            if config.num_labels > 2:
                raise UserError(f"--scorer {name} has {config.num_labels} labels ({', '.join(names)}): name one with --label")
            return config.num_labels - 1
        if str(label) in names:
            return names[str(label)]
        if str(label).isdigit() and int(label) < config.num_labels:
            return int(label)
        raise UserError(f"--label {label}: not a label of --scorer {name} ({', '.join(names)})")

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        out = []
        for first in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(list(texts[first:first + self.batch_size]), padding=True, truncation=True,
                                   max_length=512, return_tensors="pt").to(self.model.device)
            with torch.no_grad():
                logits = self.model(**batch).logits.float()
            probs = logits.sigmoid() if self.sigmoid else logits.softmax(-1)
            out.append(probs[:, self.index].cpu().numpy())
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


class SyntheticScorer:
    """The exact expected response r*(x) = Σ_c a_c P(c | x) of the synthetic world (``rankkit.synthetic``)."""

    def __init__(self, response: str = "toxicity"):
        from rankkit.synthetic import SyntheticWorld
        from rankkit.tokenization import load_tokenizer

        self.world = SyntheticWorld.default()
        if response not in self.world.responses:
            raise UserError(f"--scorer synthetic:{response}: the synthetic world has {', '.join(self.world.responses)}")
        self.response = response
        self.tokenizer = load_tokenizer("synthetic")

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        ids = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return np.array([self.world.reward(i, self.response) for i in ids], dtype=np.float64)


class PerspectiveScorer:
    """Google's Perspective API (``attribute`` summary score), at most ``qps`` requests a second.

    The key comes from ``PERSPECTIVE_API_KEY``. ``post(url, payload) -> dict`` and ``sleep`` /
    ``clock`` can be replaced (tests, proxies).
    """

    URL = "https://commentanalyzer.googleapis.com/v1alpha1/comments:analyze"

    def __init__(self, *, attribute: str = "TOXICITY", qps: float = 1.0, post: Callable | None = None,
                 sleep: Callable = time.sleep, clock: Callable = time.monotonic):
        self.key = os.environ.get("PERSPECTIVE_API_KEY")
        if not self.key:
            raise UserError("--scorer perspective needs an API key in the environment variable PERSPECTIVE_API_KEY")
        if qps <= 0:
            raise UserError(f"--qps {qps}: must be positive")
        self.attribute, self.interval = attribute.upper(), 1.0 / qps
        self.post, self.sleep, self.clock = post or _post_json, sleep, clock
        self._last = None

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for text in texts:
            if self._last is not None:
                self.sleep(max(0.0, self._last + self.interval - self.clock()))
            self._last = self.clock()
            payload = {"comment": {"text": text}, "languages": ["en"], "requestedAttributes": {self.attribute: {}}}
            answer = self.post(f"{self.URL}?key={self.key}", payload)
            try:
                out.append(float(answer["attributeScores"][self.attribute]["summaryScore"]["value"]))
            except (KeyError, TypeError):
                raise UserError(f"Perspective API: unexpected answer {str(answer)[:200]}") from None
        return np.array(out, dtype=np.float64)


def _post_json(url: str, payload: dict) -> dict:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())
    except urllib.error.URLError as exc:
        raise UserError(f"Perspective API: request failed ({exc})") from None


def load_scorer(spec: str, *, label: str | None = None, device: str = "cpu"):
    """``synthetic[:response]``, ``perspective[:ATTRIBUTE]``, or an HF sequence classifier name/folder."""
    kind, _, option = spec.partition(":")
    if kind == "synthetic":
        return SyntheticScorer(option or "toxicity")
    if kind == "perspective":
        return PerspectiveScorer(attribute=option or "TOXICITY")
    return ClassifierScorer(spec, label=label, device=device)


# ---- generation files --------------------------------------------------------------------
def read_generations(path: str | os.PathLike) -> list[dict]:
    """The records of a ``rankkit generate`` JSONL file (one per prompt and β)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    records = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}, line {n}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("continuations"), list) or "prompt" not in record:
            raise UserError(f"{path}, line {n}: expected a record with 'prompt' and 'continuations' (rankkit generate)")
        records.append(record)
    if not records:
        raise UserError(f"{path}: no generations (the file is empty)")
    return records


def evaluate_generations(records: Sequence[dict], *, scorer: Callable, lm=None, lm_tokenizer=None,
                         mauve: bool = False, progress: bool = False):
    """The §5 metrics of every (reward model, β, top-k, top-p, steer) group of ``records``.

    Parameters
    ----------
    records : dicts with ``prompt`` (str), ``continuations`` (list of str) and the group keys.
    scorer : callable(list of str) -> ndarray of probabilities, applied to the continuations.
    lm, lm_tokenizer : causal LM for perplexity and MAUVE features, or None to skip both.
    mauve : bool, MAUVE of each group against the β = 0 (unguided) continuations.

    Returns
    -------
    polars.DataFrame, one row per group: the group keys, ``n_prompts``, ``n_samples``, ``avg_max``,
    ``toxic_rate``, ``positive_rate``, ``mean_score``, ``dist_1``–``dist_3``, and ``perplexity`` /
    ``mauve`` when asked for.
    """
    import polars as pl

    from rankkit.progress import track

    if mauve and lm is None:
        raise UserError("--mauve needs --ppl-model (its hidden states are the MAUVE features)")
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        groups.setdefault(tuple(record.get(key) for key in GROUP_KEYS), []).append(record)
    reference = None
    if mauve:
        unguided = [r for r in records if r.get("beta") == 0]
        if not unguided:
            raise UserError("--mauve needs unguided samples (β = 0) in the same file as the reference")
        reference = text_features(_full_texts(unguided), lm, lm_tokenizer)
    rows = []
    for key, members in track(groups.items(), total=len(groups), description="evaluating", enabled=progress):
        samples = [r["continuations"] for r in members]
        flat = [c for s in samples for c in s]
        scores = np.asarray(scorer(flat), dtype=np.float64)
        by_prompt = np.split(scores, np.cumsum([len(s) for s in samples])[:-1])
        row = dict(zip(GROUP_KEYS, key), n_prompts=len(members), n_samples=len(flat),
                   avg_max=average_max(by_prompt), toxic_rate=toxic_rate(by_prompt),
                   positive_rate=positive_rate(by_prompt), mean_score=float(scores.mean()),
                   **{f"dist_{n}": distinct_n(samples, n) for n in (1, 2, 3)})
        if lm is not None:
            prompts = [r["prompt"] for r in members for _ in r["continuations"]]
            row["perplexity"] = float(np.nanmean(perplexities(prompts, flat, lm, lm_tokenizer)))
        if mauve:
            row["mauve"] = mauve_score(reference, text_features(_full_texts(members), lm, lm_tokenizer))
        rows.append(row)
    return pl.DataFrame(rows).sort(["reward", "beta"], nulls_last=True)


def _full_texts(records) -> list[str]:
    return [r["prompt"] + c for r in records for c in r["continuations"]]
