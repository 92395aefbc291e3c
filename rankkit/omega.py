"""The incomplete reward matrix P_Ω(R) (paper eq. 5), built without a Python loop per token.

Rows are the distinct contexts x' of the prefix-expanded data set D_f (eq. 3), columns the
vocabulary, and the observed entry (x', v) holds the weighted mean R[x', v] = Σλy / Σλ over all
occurrences of the prefix x = [x', v], plus Σλ and the occurrence count.

How it is built (exact, no hashing): every distinct prefix is a node of the prefix trie of the
corpus, and the observed entries are exactly the trie's non-root nodes (the entry (x', v) *is*
the node of [x', v], its row the node of x'). Nodes get ids depth by depth: at depth t the keys
(parent node, u_t) of the utterances still sharing a node with another are sorted, and equal
keys share one new id, so ids taken in order are sorted by (row, column). An utterance alone on
its node stays alone, so it leaves the loop and all its remaining prefixes are written in one
vectorised pass at the end (each is a row with one entry, count 1). Working memory is
O(number of utterances) per depth; the output is O(number of entries). No step loops in Python
over tokens: the loop runs over depths (≤ ``max_tokens``) and over chunks of utterances.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from .errors import UserError
from .io import atomic_path, read_json, write_json
from .prefixes import cache_dir, encode_cached
from .tokenization import TokenizedCorpus, tokenizer_name as describe_tokenizer

FORMAT_VERSION = 1
LAST_OMEGA_FILE = "last_omega"


@dataclass(frozen=True, eq=False)
class Omega:
    """P_Ω(R) (eq. 5): the observed entries of the reward matrix, with Σλ and counts per entry.

    The matrices returned by :meth:`matrix`, :meth:`weights` and :meth:`counts` share memory with
    the Ω: copy one before changing it in place.

    Entries are stored in CSR order (row-major, columns sorted within a row); every stored
    value, including an exact 0, is an observed entry. Row i's context is the trie node
    ``row_node[i]``; ``trie_parent[k]`` and ``trie_token[k]`` describe node ``k + 1`` (node 0 is
    the empty context), so :meth:`context` rebuilds the token ids of any row.
    """

    indptr: np.ndarray                # (m + 1,) int32 (int64 from 2^31 entries on)
    indices: np.ndarray               # (nnz,) int32: next token v
    values: tuple[np.ndarray, ...]    # one (nnz,) float64 array per response: Σλy / Σλ
    weight_sums: np.ndarray           # (nnz,) float64: Σλ
    occurrences: np.ndarray           # (nnz,) int32: number of occurrences
    row_node: np.ndarray              # (m,) trie node of each row's context
    trie_parent: np.ndarray           # (n_nodes - 1,) parent node of node k + 1
    trie_token: np.ndarray            # (n_nodes - 1,) int32: last token of node k + 1
    vocab_size: int
    responses: tuple[str, ...]
    tokenizer_name: str = ""
    info: dict = field(default_factory=dict)  # n_utterances, n_tokens, n_truncated, max_tokens, min_obs, …

    # ---- shape -------------------------------------------------------------------------
    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    @property
    def n_observed(self) -> int:
        return int(self.indptr[-1])

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_rows, self.vocab_size

    def row_counts(self) -> np.ndarray:
        """Observed entries per row, shape (m,), int64."""
        return np.diff(self.indptr).astype(np.int64, copy=False)

    # ---- matrices ----------------------------------------------------------------------
    def _csr(self, data: np.ndarray) -> sp.csr_matrix:
        matrix = sp.csr_matrix((data, self.indices, self.indptr), shape=self.shape, copy=False)
        matrix.has_sorted_indices = True
        return matrix

    def matrix(self, response: str | None = None) -> sp.csr_matrix:
        """R on Ω as a (m, |V|) CSR matrix of weighted means (eq. 5); stored zeros are observed."""
        return self._csr(self.values[self._response_index(response)])

    def weights(self) -> sp.csr_matrix:
        """Σλ per observed entry, same pattern as :meth:`matrix`."""
        return self._csr(self.weight_sums)

    def counts(self) -> sp.csr_matrix:
        """Occurrences per observed entry, same pattern as :meth:`matrix`."""
        return self._csr(self.occurrences)

    def _response_index(self, response: str | None) -> int:
        if response is None:
            return 0
        if response not in self.responses:
            raise UserError(f"--response {response}: not in this Ω (have: {', '.join(self.responses)})")
        return self.responses.index(response)

    # ---- rows --------------------------------------------------------------------------
    def context(self, i: int) -> tuple[int, ...]:
        """The token ids of row ``i``'s context x' (``()`` for the empty context)."""
        if not -self.n_rows <= i < self.n_rows:
            raise IndexError(f"row {i} out of range for {self.n_rows} rows")
        node, tokens = int(self.row_node[i]), []
        while node:
            tokens.append(int(self.trie_token[node - 1]))
            node = int(self.trie_parent[node - 1])
        return tuple(reversed(tokens))

    def submatrix(self, min_obs: int = 2) -> "Omega":
        """[P_Ω(R)]_k: the rows with at least ``min_obs`` observed entries (k = 2: App. B.2, Lemma 2)."""
        if min_obs < 1:
            raise UserError(f"min_obs {min_obs}: must be at least 1")
        per_row = self.row_counts()
        keep = per_row >= min_obs
        entries = np.repeat(keep, per_row)
        indptr = np.zeros(int(keep.sum()) + 1, dtype=self.indptr.dtype)
        np.cumsum(per_row[keep], out=indptr[1:])
        info = {**self.info, "min_obs": max(min_obs, int(self.info.get("min_obs", 1)))}
        return replace(self, indptr=indptr, indices=self.indices[entries],
                       values=tuple(v[entries] for v in self.values), weight_sums=self.weight_sums[entries],
                       occurrences=self.occurrences[entries], row_node=self.row_node[keep], info=info)

    # ---- storage -----------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write a reloadable folder (``.npy`` arrays + ``meta.json``), atomically."""
        path = check_save_target(path)
        arrays = {"indptr": self.indptr, "indices": self.indices, "weight_sums": self.weight_sums,
                  "occurrences": self.occurrences, "row_node": self.row_node, "trie_parent": self.trie_parent}
        shared_tokens = self.trie_token is self.indices
        if not shared_tokens:
            arrays["trie_token"] = self.trie_token
        arrays.update({f"value_{k}": v for k, v in enumerate(self.values)})
        with atomic_path(path) as tmp:
            tmp.mkdir()
            for name, array in arrays.items():
                np.save(tmp / f"{name}.npy", np.asarray(array))
            write_json(tmp / "meta.json", {
                "format": "rankkit-omega", "version": FORMAT_VERSION, "responses": list(self.responses),
                "vocab_size": self.vocab_size, "tokenizer": self.tokenizer_name, "n_rows": self.n_rows,
                "n_observed": self.n_observed, "trie_token_is_indices": shared_tokens, "info": self.info,
            })
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Omega":
        """Read a folder written by :meth:`save`.

        Arrays are memory-mapped copy-on-write: pages load on first use, and in-place changes stay
        in memory, never reaching the files.
        """
        path = Path(path)
        if not (path / "meta.json").is_file():
            raise UserError(f"{path}: not an Ω folder (no meta.json; build one with `rankkit build-omega`)")
        meta = read_json(path / "meta.json")
        if meta.get("format") != "rankkit-omega" or meta.get("version") != FORMAT_VERSION:
            raise UserError(f"{path}: meta.json is not a rankkit Ω folder of version {FORMAT_VERSION}")

        def array(name: str) -> np.ndarray:
            file = path / f"{name}.npy"
            if not file.is_file():
                raise UserError(f"{path}: {file.name} is missing (folder incomplete)")
            return np.load(file, mmap_mode="c")

        indices = array("indices")
        return cls(
            indptr=array("indptr"), indices=indices,
            values=tuple(array(f"value_{k}") for k in range(len(meta["responses"]))),
            weight_sums=array("weight_sums"), occurrences=array("occurrences"), row_node=array("row_node"),
            trie_parent=array("trie_parent"),
            trie_token=indices if meta["trie_token_is_indices"] else array("trie_token"),
            vocab_size=int(meta["vocab_size"]), responses=tuple(meta["responses"]),
            tokenizer_name=meta["tokenizer"], info=meta["info"],
        )


def check_save_target(path: str | os.PathLike) -> Path:
    """Refuse an ``--out`` that :meth:`Omega.save` must not replace: a file, or a folder holding
    anything but an Ω. Call it before long work, so that a bad ``--out`` fails at once."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"--out {path}: exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not (path / "meta.json").is_file():
        raise UserError(f"--out {path}: a folder that holds something other than an Ω; "
                        "choose a new or empty folder (an Ω folder is replaced)")
    return path


def build_omega(texts: Sequence[str], labels, tokenizer, *, max_tokens: int | None = 128,
                responses: Sequence[str] | None = None, cache: str | os.PathLike | None = None,
                progress: bool = False) -> Omega:
    """Tokenise a labelled corpus and build P_Ω(R) (eq. 3 and 5).

    For every utterance u of length l (after truncation to ``max_tokens``) and t = 1..l, the
    prefix x = [x', v] with x' = u_{1:t-1}, v = u_t adds λ(t, l) = t / Σ_{t'≤l} t' to Σλ and
    λ·y to Σλy of entry (x', v); R[x', v] = Σλy / Σλ.

    Parameters
    ----------
    texts : sequence of str, length n
    labels : array-like of shape (n,) or (n, n_responses)
        Responses y in [0, 1].
    tokenizer : HF tokenizer
        Special tokens are not added; the empty context stands for the BOS position.
    max_tokens : int or None, default 128
        Truncate every utterance to its first ``max_tokens`` tokens (None: no truncation).
    responses : sequence of str, optional
        Names of the label columns (default ``y`` or ``y0, y1, …``).
    cache : path, optional
        Folder for the token cache (:func:`rankkit.prefixes.encode_cached`); None disables it.
    progress : bool, default False
        Show progress bars.

    Returns
    -------
    Omega

    Examples
    --------
    >>> from rankkit import load_dataset, load_tokenizer
    >>> data = load_dataset("synthetic", limit=50)
    >>> omega = build_omega(data.texts, data.labels(), load_tokenizer("synthetic"), responses=data.responses)
    >>> omega.matrix("toxicity").shape[1] == omega.vocab_size
    True
    """
    labels, responses = _check_labels(labels, len(texts), responses)  # fail before tokenising
    corpus, hit = encode_cached(texts, tokenizer, cache=cache, progress=progress)
    omega = omega_from_corpus(corpus.truncate(max_tokens), labels, vocab_size=len(tokenizer), responses=responses,
                              tokenizer_name=describe_tokenizer(tokenizer), progress=progress)
    omega.info["token_cache_hit"] = hit
    return omega


def omega_from_corpus(corpus: TokenizedCorpus, labels, *, vocab_size: int, responses: Sequence[str] | None = None,
                      tokenizer_name: str = "", progress: bool = False) -> Omega:
    """The build phase alone: token ids → P_Ω(R) (eq. 5), by depth-wise trie ids (module docstring).

    Parameters
    ----------
    corpus : TokenizedCorpus
        Token ids, already truncated.
    labels : array-like of shape (n,) or (n, n_responses)
    vocab_size : int
        |V|, the number of columns; every id must be below it.
    responses, tokenizer_name, progress
        As in :func:`build_omega`.

    Returns
    -------
    Omega

    Notes
    -----
    Cost: one near-linear stable sort per depth t over the utterances still sharing a node (keys
    arrive sorted by parent node, so timsort only orders tokens within a parent), then linear
    passes for the prefixes of utterances gone alone; the number of numpy calls grows with the
    longest utterance, never with the token count.
    Memory: the output, 28 bytes per observed entry for one response plus 8 per further response
    (at most one entry per token) and 8 per row, plus O(number of utterances) per depth.
    """
    labels, responses = _check_labels(labels, len(corpus), responses)
    ids = np.asarray(corpus.ids)
    if len(ids) and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"token ids must lie in [0, {vocab_size}), got {ids.min()}..{ids.max()}")
    lengths = corpus.lengths
    n_tokens = int(corpus.offsets[-1])
    if (n_tokens + 1) * vocab_size >= 2 ** 63:
        raise ValueError(f"{n_tokens} tokens × vocabulary {vocab_size} overflow the int64 (node, token) keys")
    node_dtype = np.int32 if n_tokens < np.iinfo(np.int32).max else np.int64
    parent_out = np.empty(n_tokens, dtype=node_dtype)
    token_out = np.empty(n_tokens, dtype=np.int32)
    weight_out = np.empty(n_tokens, dtype=np.float64)
    count_out = np.empty(n_tokens, dtype=np.int32)
    value_out = [np.empty(n_tokens, dtype=np.float64) for _ in responses]
    out = (parent_out, token_out, weight_out, count_out, value_out)

    starts = corpus.offsets[:-1]
    # λ(t, l) = t · 2 / (l(l+1)) (eq. 3); t is common to a depth, so it cancels from Σλy / Σλ.
    inv_total = 2.0 / np.maximum(lengths * (lengths + 1), 1)
    scaled_labels = [np.ascontiguousarray(labels[:, r] * inv_total) for r in range(labels.shape[1])]  # y·λ/t
    utt = np.flatnonzero(lengths > 0)            # utterances still shared and running, sorted by node id
    node = np.zeros(len(utt), dtype=np.int64)    # their current trie node (the context x')
    alone: list[tuple[np.ndarray, int, np.ndarray]] = []  # (utterances, depth, node) gone alone
    filled = 0
    max_len = int(lengths.max()) if len(lengths) else 0
    with _LevelBar(max_len + 1, enabled=progress) as bar:
        for t in range(1, max_len + 1):
            if len(utt) == 0:
                break
            token = ids[starts[utt] + (t - 1)]
            key = node * vocab_size + token
            # Equal keys share a node, so any sort will do: SIMD quicksort for the random first depth,
            # then timsort, near-linear on keys that arrive sorted by parent node.
            order = np.argsort(key, kind="quicksort" if t == 1 else "stable")
            key, utt = key[order], utt[order]
            first = np.empty(len(key) + 1, dtype=bool)       # first[i]: utterance i opens a node
            first[0] = first[-1] = True
            np.not_equal(key[1:], key[:-1], out=first[1:-1])
            bounds = np.flatnonzero(first)
            group, size = bounds[:-1], np.diff(bounds)
            k = len(group)
            weight = np.add.reduceat(inv_total[utt], group)   # Σλ / t
            level = slice(filled, filled + k)
            opener = order[group]
            parent_out[level] = node[opener]
            token_out[level] = token[opener]
            np.multiply(weight, t, out=weight_out[level])
            count_out[level] = size
            for scaled, values in zip(scaled_labels, value_out):
                np.divide(np.add.reduceat(scaled[utt], group), weight, out=values[level])
            node = np.cumsum(first[:-1]) + filled               # new node ids, in key order
            filled += k
            # An utterance alone on its node stays alone: its remaining prefixes go to the tail pass.
            single = first[:-1] & first[1:]
            done = lengths[utt] == t
            leaving = single & ~done
            if leaving.any():
                alone.append((utt[leaving], t, node[leaving]))
            stay = ~(single | done)
            utt, node = utt[stay], node[stay]
            bar.advance(f"{filled:,} entries")
        filled = _write_tails(out, filled, alone, ids=ids, starts=starts, lengths=lengths, labels=labels,
                              inv_total=inv_total)
        bar.finish(f"{filled:,} entries")
    for array in (parent_out, token_out, weight_out, count_out, *value_out):
        array.resize(filled, refcheck=False)

    indptr = _row_starts(parent_out)
    info = {"n_utterances": len(corpus), "n_empty": int((lengths == 0).sum()), "n_tokens": n_tokens,
            "n_truncated": int(corpus.n_truncated), "max_tokens": corpus.max_tokens, "min_obs": 1}
    return Omega(indptr=indptr, indices=token_out, values=tuple(value_out), weight_sums=weight_out,
                 occurrences=count_out, row_node=parent_out[indptr[:-1]], trie_parent=parent_out,
                 trie_token=token_out, vocab_size=int(vocab_size), responses=responses,
                 tokenizer_name=tokenizer_name, info=info)


def _write_tails(out, filled: int, alone, *, ids, starts, lengths, labels, inv_total, chunk: int = 1 << 16) -> int:
    """Append the prefixes of utterances that went alone on a trie node (eq. 3 and 5, count 1).

    Utterance i, alone on node N at depth d, adds one entry per t = d+1..l: node ``filled + 1``
    onwards, each the single child of the previous one (the first of N), with Σλ = λ(t, l),
    value y_i and count 1. Each is a row of its own, so no sort is needed.
    """
    parent_out, token_out, weight_out, count_out, value_out = out
    if not alone:
        return filled
    utt = np.concatenate([a[0] for a in alone])
    depth = np.concatenate([np.full(len(a[0]), a[1], dtype=np.int64) for a in alone])
    node = np.concatenate([a[2] for a in alone])
    for lo in range(0, len(utt), chunk):  # bounded temporaries: ≤ chunk · max_tokens entries
        u, d, n = utt[lo:lo + chunk], depth[lo:lo + chunk], node[lo:lo + chunk]
        per_utt = lengths[u] - d
        m = int(per_utt.sum())
        first = np.zeros(len(u), dtype=np.int64)
        np.cumsum(per_utt[:-1], out=first[1:])
        which = np.repeat(np.arange(len(u)), per_utt)
        t = np.arange(m) - first[which] + d[which] + 1   # the depth t of each entry
        row = u[which]
        span = slice(filled, filled + m)
        np.take(ids, starts[row] + (t - 1), out=token_out[span])
        parent_out[span] = np.arange(filled, filled + m)  # node of the previous entry …
        parent_out[filled + first] = n                    # … except the first: the shared node
        np.multiply(t, inv_total[row], out=weight_out[span])
        count_out[span] = 1
        for r, values in enumerate(value_out):
            np.take(labels[:, r], row, out=values[span])
        filled += m
    return filled


def _row_starts(parent: np.ndarray, *, chunk: int = 1 << 24) -> np.ndarray:
    """CSR ``indptr`` of entries sorted by row: where ``parent`` changes, plus the end (chunked)."""
    n = len(parent)
    changes = np.empty(n, dtype=bool)
    changes[:1] = True
    np.not_equal(parent[1:], parent[:-1], out=changes[1:])
    indptr = np.empty(int(np.count_nonzero(changes)) + 1, dtype=parent.dtype)  # int32 below 2^31 entries
    filled = 0
    for lo in range(0, n, chunk):
        starts = np.flatnonzero(changes[lo:lo + chunk])
        indptr[filled:filled + len(starts)] = starts + lo
        filled += len(starts)
    indptr[-1] = n
    return indptr


def _check_labels(labels, n: int, responses) -> tuple[np.ndarray, tuple[str, ...]]:
    labels = np.asarray(labels, dtype=np.float64)
    if labels.ndim == 1:
        labels = labels[:, None]
    if labels.ndim != 2 or labels.shape[0] != n:
        raise ValueError(f"labels must have shape ({n},) or ({n}, n_responses), got {labels.shape}")
    if not np.isfinite(labels).all() or labels.min(initial=0.0) < 0 or labels.max(initial=0.0) > 1:
        raise ValueError("labels must be finite and lie in [0, 1]")
    if responses is None:
        responses = ("y",) if labels.shape[1] == 1 else tuple(f"y{r}" for r in range(labels.shape[1]))
    responses = tuple(responses)
    if len(responses) != labels.shape[1] or len(set(responses)) != len(responses):
        raise ValueError(f"responses {responses} must be {labels.shape[1]} distinct names")
    return labels, responses


class _LevelBar:
    """A bar over trie depths t = 1..max_len, shown only when enabled."""

    def __init__(self, total: int, *, enabled: bool):
        self.total, self.enabled, self.bar = total, enabled, None

    def __enter__(self):
        if self.enabled:
            from .progress import make_progress

            self.bar = make_progress().__enter__()
            self.task = self.bar.add_task("building Ω (depth)", total=self.total, info="")
        return self

    def advance(self, info: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, advance=1, info=info)

    def finish(self, info: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=self.total, info=info)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False


# ---- interop and the last build -------------------------------------------------------
#: Observed zeros are written to MatrixMarket as this value (see :func:`export_mtx`).
MTX_ZERO = float(np.finfo(np.float64).tiny)


def export_mtx(omega: Omega, path: str | os.PathLike, *, response: str | None = None) -> Path:
    """Write P_Ω(R) for one response as a MatrixMarket coordinate file (rows × |V|), atomically.

    R's softImpute (and ``Matrix::readMM`` + ``drop0``) treats a stored 0 as missing, but an
    observed R[x', v] = 0 is data (SPEC §5). So observed zeros are written as ``MTX_ZERO`` (the
    smallest normal float64, 2.2e-308): every observed entry stays stored and the fit changes by
    at most 2.2e-308 per entry. The file's header comment says so.
    """
    from scipy.io import mmwrite

    index = omega._response_index(response)
    matrix = omega.matrix(omega.responses[index]).tocoo()
    data = np.where(matrix.data == 0.0, MTX_ZERO, matrix.data)
    out = sp.coo_matrix((data, (matrix.row, matrix.col)), shape=matrix.shape)
    comment = (f"rankkit P_Omega(R), response {omega.responses[index]}: rows = contexts, columns = token ids.\n"
               f"Every stored entry is observed; observed zeros are written as {MTX_ZERO!r} so that "
               "softImpute keeps them (it treats stored 0 as missing).")
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            mmwrite(handle, out, comment=comment, field="real", symmetry="general")
    return path


def remember_omega(path: str | os.PathLike) -> None:
    """Record ``path`` as the most recently built Ω (read back by :func:`last_built_omega`)."""
    target = cache_dir() / LAST_OMEGA_FILE
    with atomic_path(target) as tmp:
        tmp.write_text(str(Path(path).resolve()) + "\n")


def last_built_omega() -> Path | None:
    """The folder of the most recently built Ω (by ``rankkit build-omega``), or None if there is none."""
    record = cache_dir() / LAST_OMEGA_FILE
    if not record.is_file():
        return None
    path = Path(record.read_text().strip())
    return path if (path / "meta.json").is_file() else None


def omega_stats(omega: Omega) -> dict:
    """Summary of P_Ω(R): size, rows per observation count, [P_Ω(R)]_2 size, value statistics.

    Returns
    -------
    dict
        ``n_rows``, ``n_observed``, ``vocab_size``, ``density``, ``rows_by_observations`` (list of
        (label, rows) with exact counts 1..9 then decades), ``submatrix_2`` ((rows, entries) of
        [P_Ω(R)]_2, App. B.2), ``lemma1_rows`` (rows with one observation, Lemma 1), and
        ``values``: per response the count, mean, Σλ-weighted mean, std, min, quartiles, max and
        the share of observed values equal to 0 and to 1.
    """
    per_row = omega.row_counts()
    bins = [(str(k), per_row == k) for k in range(1, 10)]
    low = 10
    while per_row.size and low <= per_row.max():
        bins.append((f"{low}–{10 * low - 1}", (per_row >= low) & (per_row < 10 * low)))
        low *= 10
    two = per_row >= 2
    weights = np.asarray(omega.weight_sums)
    values = {}
    for name, v in zip(omega.responses, omega.values):
        v = np.asarray(v)
        if v.size == 0:
            values[name] = {}
            continue
        q = np.quantile(v, [0.0, 0.25, 0.5, 0.75, 1.0])
        values[name] = {"count": int(v.size), "mean": float(v.mean()),
                        "weighted_mean": float(np.average(v, weights=weights)), "std": float(v.std()),
                        "min": float(q[0]), "q25": float(q[1]), "median": float(q[2]), "q75": float(q[3]),
                        "max": float(q[4]), "zeros": float((v == 0).mean()), "ones": float((v == 1).mean())}
    return {
        "n_rows": omega.n_rows, "n_observed": omega.n_observed, "vocab_size": omega.vocab_size,
        "density": omega.n_observed / max(1, omega.n_rows * omega.vocab_size),
        "rows_by_observations": [(label, int(mask.sum())) for label, mask in bins if mask.any()],
        "submatrix_2": (int(two.sum()), int(per_row[two].sum())), "lemma1_rows": int((per_row == 1).sum()),
        "values": values, "info": dict(omega.info), "responses": list(omega.responses),
        "tokenizer": omega.tokenizer_name,
    }
