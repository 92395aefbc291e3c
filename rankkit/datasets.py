"""Labelled text data sets D = {(u, y)} (paper §2.2), loaded into polars and validated once.

Every loader returns a :class:`TextDataset`: a frame with a ``text`` column and one Float64
column per response y ∈ [0, 1]. Validation happens here, at the boundary: a missing file or
column, a non-numeric or out-of-range label, an empty or null text, or bytes that are not UTF-8
raise :class:`~rankkit.errors.UserError` naming the file, the row (1-based, header excluded) and
the column; with ``skip_bad_rows=True`` such rows are dropped and counted in ``n_skipped``.
Nothing is dropped silently.
"""
from __future__ import annotations

import codecs
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import polars as pl

from .errors import UserError

DATASETS = ("synthetic", "jigsaw", "sst2", "amazon_polarity")
FILE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}

#: Jigsaw Unintended Bias / Civil Comments: response name -> accepted column names, in order.
JIGSAW_RESPONSES = {
    "toxicity": ("toxicity", "target"),
    "severe_toxicity": ("severe_toxicity",),
    "obscene": ("obscene",),
    "identity_attack": ("identity_attack",),
    "insult": ("insult",),
    "threat": ("threat",),
    "sexual_explicit": ("sexual_explicit",),
}
#: Jigsaw Toxic Comment Classification 2018 (binary labels), kept under their own names.
JIGSAW_2018_RESPONSES = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")
#: Hub copies used when no ``path`` is given and the optional ``datasets`` package can go online.
HUB_NAMES = {"jigsaw": "google/civil_comments", "sst2": "stanfordnlp/sst2", "amazon_polarity": "fancyzhx/amazon_polarity"}

_BAD_BYTES = "\U0010fffd"  # stands in for undecodable bytes while parsing (a private-use code point)


@dataclass(frozen=True)
class TextDataset:
    """A validated labelled text data set.

    Attributes
    ----------
    frame : polars.DataFrame
        Column ``text`` (Utf8, never null or blank) and one Float64 column per response, in [0, 1].
    responses : tuple of str
        The response column names, in order.
    name : str
        ``synthetic``, ``jigsaw``, ``sst2``, ``amazon_polarity`` or the file path.
    n_skipped : int
        Rows dropped by ``skip_bad_rows=True``.
    tokenizer_hint : str or None
        The tokenizer the data set is made for (``"synthetic"``), else None.
    """

    frame: pl.DataFrame
    responses: tuple[str, ...]
    name: str
    n_skipped: int = 0
    tokenizer_hint: str | None = None

    def __len__(self) -> int:
        return self.frame.height

    @property
    def texts(self) -> list[str]:
        return self.frame["text"].to_list()

    def labels(self, responses: Sequence[str] | None = None) -> np.ndarray:
        """The responses y as a float64 array of shape (n, n_responses)."""
        names = self.responses if responses is None else tuple(responses)
        unknown = [r for r in names if r not in self.responses]
        if unknown:
            raise UserError(f"--response {unknown[0]}: not a response of {self.name} (have: {', '.join(self.responses)})")
        return self.frame.select(names).to_numpy().astype(np.float64, copy=False).reshape(self.frame.height, len(names))


def load_dataset(name: str | os.PathLike, *, path: str | os.PathLike | None = None, text_column: str | None = None,
                 label_columns: Sequence[str] | None = None, skip_bad_rows: bool = False, limit: int | None = None,
                 random_state: int = 0) -> TextDataset:
    """Load a labelled data set D = {(u, y)} (paper §2.2) and validate every row.

    Parameters
    ----------
    name : str or path
        ``synthetic`` (the embedded default, :func:`rankkit.synthetic.generate_corpus`), ``jigsaw``
        (Civil Comments / Unintended Bias with 7 responses, or the 2018 Toxic Comment files with
        binary labels), ``sst2`` (TSV ``sentence<TAB>label``, padding spaces stripped), ``amazon_polarity`` (``label``,
        ``title``, ``content``), or a path to a CSV/TSV/JSONL/parquet file.
    path : path, optional
        Local file for a named data set. Without it, the named data set is read from the HF hub
        through the optional ``datasets`` package (``pip install rankkit[hub]``), when online.
    text_column, label_columns : str, sequence of str, optional
        Which columns hold the text and the responses. Required for a plain file; for a named data
        set they override the defaults (``label_columns`` also selects a subset of responses).
    skip_bad_rows : bool, default False
        Drop and count bad rows instead of raising on the first one.
    limit : int, optional
        Use only the first ``limit`` rows (for ``synthetic``: draw ``limit`` utterances, default 4000).
    random_state : int, default 0
        Seed of the synthetic generator.

    Returns
    -------
    TextDataset

    Examples
    --------
    >>> data = load_dataset("synthetic", limit=10)
    >>> data.labels().shape
    (10, 2)
    """
    if limit is not None and limit < 1:
        raise UserError(f"--limit {limit}: must be at least 1")
    label_columns = tuple(label_columns) if label_columns else None
    key = str(name)
    if key == "synthetic":
        return _load_synthetic(limit=limit, random_state=random_state, label_columns=label_columns)
    if key in DATASETS:
        if path is None:
            raw = _load_from_hub(key, limit=limit)
            source = f"{HUB_NAMES[key]} (HF hub)"
        else:
            raw, source = _read_file(Path(path), limit=limit), str(path)
        text, labels, renames = _named_columns(key, raw, source, text_column, label_columns)
        if key == "sst2" and raw.schema.get(text) == pl.String:
            # GLUE ends every sentence with a space, which would become a final " " token in each.
            raw = raw.with_columns(pl.col(text).str.strip_chars())
    else:
        if path is not None:
            raise UserError(f"--path {path}: give either a data set name with --path, or a file as DATASET, not both")
        if not Path(key).is_file():
            raise UserError(f"{key}: no such file, and not a data set name ({', '.join(DATASETS)})")
        if text_column is None or not label_columns:
            raise UserError(f"{key}: a data file needs --text-column and at least one --label-column")
        raw, source = _read_file(Path(key), limit=limit), key
        text, labels, renames = text_column, label_columns, {c: c for c in label_columns}
    return _validate(raw, source=source, name=key if key in DATASETS else source, text_column=text,
                     label_columns=labels, renames=renames, skip_bad_rows=skip_bad_rows)


def _load_synthetic(*, limit, random_state, label_columns) -> TextDataset:
    from .synthetic import RESPONSES, generate_corpus

    responses = label_columns or RESPONSES
    unknown = [r for r in responses if r not in RESPONSES]
    if unknown:
        raise UserError(f"--label-column {unknown[0]}: the synthetic data set has responses {', '.join(RESPONSES)}")
    frame = generate_corpus(n_utterances=limit or 4000, random_state=random_state)
    return TextDataset(frame.select("text", *responses), tuple(responses), "synthetic", 0, "synthetic")


def _read_file(path: Path, *, limit: int | None) -> pl.DataFrame:
    """Read a CSV/TSV/JSONL/parquet file with every text field kept as a string.

    Undecodable bytes become ``_BAD_BYTES`` so that :func:`_validate` can report their row.
    """
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if not path.is_file():
        raise UserError(f"{path}: not a file")
    fmt = FILE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"{path}: unknown file type {path.suffix!r} (expected .csv, .tsv, .jsonl or .parquet)")
    try:
        if fmt == "parquet":
            return pl.read_parquet(path, n_rows=limit)
        try:  # fast path: polars reads the file itself
            return _parse_text(path, fmt, limit)
        except pl.exceptions.PolarsError:  # bad bytes (or bad layout): parse again to find the row
            data = path.read_bytes().removeprefix(codecs.BOM_UTF8)
            return _parse_text(io.BytesIO(_decode_utf8(data).encode("utf-8")), fmt, limit)
    except (pl.exceptions.PolarsError, OSError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise UserError(f"{path}: cannot parse as {fmt}: {detail}") from exc


def _parse_text(source, fmt: str, limit: int | None) -> pl.DataFrame:
    if fmt == "jsonl":
        return pl.read_ndjson(source, n_rows=limit, infer_schema_length=None)
    # TSVs (GLUE's sst2 among them) use no quoting at all: a quote is an ordinary character there.
    return pl.read_csv(source, separator="\t" if fmt == "tsv" else ",", quote_char=None if fmt == "tsv" else '"',
                       infer_schema=False, n_rows=limit, truncate_ragged_lines=False)


def _decode_utf8(data: bytes) -> str:
    """Decode UTF-8, replacing each undecodable byte run with ``_BAD_BYTES``."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        parts, start = [], 0
        while True:
            try:
                parts.append(data[start:].decode("utf-8"))
                return "".join(parts)
            except UnicodeDecodeError as exc:
                parts.append(data[start:start + exc.start].decode("utf-8"))
                parts.append(_BAD_BYTES)
                start += exc.end


def _load_from_hub(name: str, *, limit: int | None) -> pl.DataFrame:
    try:
        import datasets
    except ImportError:
        raise UserError(f"{name}: no --path given, and reading it from the HF hub needs the optional package "
                        "`datasets` (pip install 'rankkit[hub]'); or pass --path FILE") from None
    split = "train" if limit is None else f"train[:{limit}]"
    try:
        hub = datasets.load_dataset(HUB_NAMES[name], split=split)
    except Exception as exc:  # noqa: BLE001 - offline, unknown, or changed on the hub: all user-facing
        raise UserError(f"{name}: cannot read {HUB_NAMES[name]} from the HF hub ({exc.__class__.__name__}); "
                        "pass --path FILE") from exc
    return pl.from_arrow(hub.with_format("arrow")[:])


def _named_columns(name: str, frame: pl.DataFrame, source: str, text_column, label_columns):
    """(text column, label columns, label column -> response name) for a named data set."""
    columns = frame.columns
    if name == "sst2":
        text = text_column or "sentence"
        labels = label_columns or ("label",)
        renames = {c: ("sentiment" if c == "label" and not label_columns else c) for c in labels}
    elif name == "amazon_polarity":
        text = text_column or "content"
        labels = label_columns or ("label",)
        renames = {c: ("sentiment" if c == "label" and not label_columns else c) for c in labels}
    else:  # jigsaw: Unintended Bias / Civil Comments, or the 2018 binary files
        text = text_column or next((c for c in ("comment_text", "text") if c in columns), "comment_text")
        if label_columns:
            labels = label_columns
            renames = {c: c for c in labels}
        elif any(c in columns for c in JIGSAW_RESPONSES["toxicity"]):
            renames = {}
            for response, candidates in JIGSAW_RESPONSES.items():
                column = next((c for c in candidates if c in columns), None)
                if column is None:
                    raise UserError(f"{source}: missing column {candidates[0]!r} (a Jigsaw response)")
                renames[column] = response
            labels = tuple(renames)
        elif "toxic" in columns:
            labels = JIGSAW_2018_RESPONSES
            renames = {c: c for c in labels}
        else:
            raise UserError(f"{source}: no Jigsaw response columns (expected 'toxicity'/'target' "
                            f"or the 2018 'toxic' columns; have: {', '.join(columns)})")
    return text, tuple(labels), renames


def _validate(frame: pl.DataFrame, *, source: str, name: str, text_column: str, label_columns: Sequence[str],
              renames: dict[str, str], skip_bad_rows: bool) -> TextDataset:
    """Check every row; raise on the first bad one, or drop and count bad rows."""
    for column in (text_column, *label_columns):
        if column not in frame.columns:
            raise UserError(f"{source}: missing column {column!r} (have: {', '.join(frame.columns)})")
    if len(set(renames.values())) != len(renames) or "text" in renames.values():
        raise UserError(f"{source}: response names must be distinct and not 'text' (got {', '.join(renames.values())})")
    text = frame[text_column]
    if text.dtype != pl.String:
        raise UserError(f"{source}: column {text_column!r} holds {text.dtype}, not text")
    checks: list[tuple[str, pl.Series]] = [
        (f"column {text_column!r}: bytes are not valid UTF-8", text.str.contains(_BAD_BYTES, literal=True)),
        (f"column {text_column!r}: empty or missing text", text.is_null() | (text.str.strip_chars() == "")),
    ]
    out = {"text": text.str.replace_all(_BAD_BYTES, "\ufffd", literal=True)}
    for column in label_columns:
        raw = frame[column]
        values = _as_float(raw, source, column)
        text_form = raw if raw.dtype == pl.String else None
        if text_form is not None:
            checks.append((f"column {column!r}: bytes are not valid UTF-8",
                           text_form.str.contains(_BAD_BYTES, literal=True)))
        missing = raw.is_null() | ((text_form.str.strip_chars() == "") if text_form is not None else False)
        checks.append((f"column {column!r}: missing label", missing))
        checks.append((f"column {column!r}: label is not a number", values.is_null() & ~missing))
        checks.append((f"column {column!r}: label outside [0, 1] (use responses scaled to [0, 1])",
                       ~values.is_between(0.0, 1.0) & values.is_not_null()))
        out[renames[column]] = values
    bad = np.zeros(frame.height, dtype=bool)
    first: tuple[int, str] | None = None
    for reason, mask in checks:
        mask_np = mask.fill_null(False).to_numpy()
        if mask_np.any():
            row = int(np.argmax(mask_np))
            if first is None or row < first[0]:
                first = (row, reason)
            bad |= mask_np
    n_bad = int(bad.sum())
    if n_bad and not skip_bad_rows:
        row, reason = first
        more = f"; {n_bad - 1} more bad rows" if n_bad > 1 else ""
        raise UserError(f"{source}: row {row + 1}, {reason}{more} (--skip-bad-rows skips and counts them)")
    result = pl.DataFrame(out).filter(pl.Series(~bad)) if n_bad else pl.DataFrame(out)
    if result.height == 0:
        raise UserError(f"{source}: no usable rows" + (f" ({n_bad} bad rows skipped)" if n_bad else ""))
    return TextDataset(result, tuple(renames[c] for c in label_columns), name, n_bad, None)


def _as_float(column: pl.Series, source: str, name: str) -> pl.Series:
    """Labels as Float64; unparsable strings become null (reported by the caller)."""
    if column.dtype == pl.String:
        return column.str.strip_chars().cast(pl.Float64, strict=False).fill_nan(None)
    if column.dtype.is_numeric() or column.dtype == pl.Boolean:
        return column.cast(pl.Float64).fill_nan(None)
    if column.dtype == pl.Null:
        return column.cast(pl.Float64)
    raise UserError(f"{source}: column {name!r} holds {column.dtype}, not numbers")
