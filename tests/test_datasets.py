"""Data sets: loaders against files written here, every bad-input case, and the real files."""
from __future__ import annotations

import csv
import json

import numpy as np
import polars as pl
import pytest

from rankkit.datasets import load_dataset
from rankkit.errors import UserError


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def test_csv_with_two_responses_keeps_every_row_and_value(tmp_path):
    path = write(tmp_path, "d.csv", 'id,body,a,b\n1,"hello, world",0,1\n2,"two\nlines",0.25,0\n3,x,1,0.5\n')
    data = load_dataset(path, text_column="body", label_columns=["a", "b"])
    assert data.texts == ["hello, world", "two\nlines", "x"]
    assert data.responses == ("a", "b")
    np.testing.assert_array_equal(data.labels(), [[0, 1], [0.25, 0], [1, 0.5]])
    np.testing.assert_array_equal(data.labels(["b"]), [[1], [0], [0.5]])
    assert data.frame.columns == ["text", "a", "b"] and data.frame["a"].dtype == pl.Float64
    assert data.n_skipped == 0 and data.tokenizer_hint is None


def test_tsv_jsonl_and_parquet_give_the_same_data(tmp_path):
    rows = [("it 's \"good\" ", 1), ("bad", 0)]
    tsv = write(tmp_path, "d.tsv", "sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows))
    jsonl = write(tmp_path, "d.jsonl", "".join(json.dumps({"sentence": t, "label": y}) + "\n" for t, y in rows))
    parquet = tmp_path / "d.parquet"
    pl.DataFrame({"sentence": [t for t, _ in rows], "label": [y for _, y in rows]}).write_parquet(parquet)
    for path in (tsv, jsonl, parquet):
        data = load_dataset(path, text_column="sentence", label_columns=["label"])
        assert data.texts == [t for t, _ in rows], path
        np.testing.assert_array_equal(data.labels()[:, 0], [1.0, 0.0])
    sst2 = load_dataset("sst2", path=tsv)
    assert sst2.responses == ("sentiment",) and sst2.texts[0] == rows[0][0].strip()


def test_named_sets_map_their_columns(tmp_path):
    bias = write(tmp_path, "bias.csv", "id,comment_text,target,severe_toxicity,obscene,identity_attack,insult,threat,"
                                      "sexual_explicit\n1,hi,0.2,0,0,0,0.1,0,0\n")
    data = load_dataset("jigsaw", path=bias)
    assert data.responses == ("toxicity", "severe_toxicity", "obscene", "identity_attack", "insult", "threat",
                              "sexual_explicit")
    np.testing.assert_array_equal(data.labels(["toxicity", "insult"]), [[0.2, 0.1]])
    amazon = write(tmp_path, "amazon.csv", "label,title,content\n1,Great,Loved it\n0,Bad,Broke\n")
    data = load_dataset("amazon_polarity", path=amazon)
    assert data.texts == ["Loved it", "Broke"] and data.labels()[:, 0].tolist() == [1.0, 0.0]


def test_limit_takes_the_first_rows(tmp_path):
    path = write(tmp_path, "d.csv", "t,y\n" + "".join(f"row{i},{i % 2}\n" for i in range(10)))
    assert load_dataset(path, text_column="t", label_columns=["y"], limit=3).texts == ["row0", "row1", "row2"]
    with pytest.raises(UserError, match="--limit 0"):
        load_dataset(path, text_column="t", label_columns=["y"], limit=0)


def test_synthetic_is_seeded_and_hints_its_tokenizer():
    data = load_dataset("synthetic", limit=30, random_state=3)
    again = load_dataset("synthetic", limit=30, random_state=3)
    assert data.frame.equals(again.frame) and len(data) == 30
    assert data.responses == ("toxicity", "sentiment") and data.tokenizer_hint == "synthetic"
    assert not load_dataset("synthetic", limit=30, random_state=4).frame.equals(data.frame)
    assert load_dataset("synthetic", label_columns=["sentiment"], limit=5).responses == ("sentiment",)


BAD_CASES = [
    # (file content, expected row, expected column, expected reason)
    ("t,y\nok,0\nfine,abc\n", 2, "y", "not a number"),
    ("t,y\nok,0\nfine,1\nlate,1.5\n", 3, "y", r"outside \[0, 1\]"),
    ("t,y\nok,-0.1\nfine,1\n", 1, "y", r"outside \[0, 1\]"),
    ("t,y\nok,0\n,1\n", 2, "t", "empty or missing text"),
    ("t,y\nok,0\n   ,1\n", 2, "t", "empty or missing text"),
    ("t,y\nok,\nfine,1\n", 1, "y", "missing label"),
    (b"t,y\nok,0\nbad \xff\xfe bytes,1\n", 2, "t", "not valid UTF-8"),
]


@pytest.mark.parametrize("content,row,column,reason", BAD_CASES)
def test_each_bad_row_is_named_or_counted(tmp_path, content, row, column, reason):
    path = write(tmp_path, "bad.csv", content)
    with pytest.raises(UserError, match=rf"bad\.csv: row {row}, column '{column}': .*{reason}"):
        load_dataset(path, text_column="t", label_columns=["y"])
    data = load_dataset(path, text_column="t", label_columns=["y"], skip_bad_rows=True)
    assert data.n_skipped == 1
    n_rows = (content if isinstance(content, str) else content.decode("latin-1")).count("\n") - 1
    assert len(data) == n_rows - 1


def test_skip_counts_every_bad_row_and_keeps_the_good_ones_in_order(tmp_path):
    path = write(tmp_path, "d.jsonl", "\n".join(json.dumps(r) for r in [
        {"t": "a", "y": 0}, {"t": None, "y": 1}, {"t": "b", "y": 2}, {"t": "c", "y": None},
        {"t": "d", "y": "x"}, {"t": "e", "y": 1}]) + "\n")
    with pytest.raises(UserError, match=r"row 2, .*; 3 more bad rows"):
        load_dataset(path, text_column="t", label_columns=["y"])
    data = load_dataset(path, text_column="t", label_columns=["y"], skip_bad_rows=True)
    assert data.texts == ["a", "e"] and data.n_skipped == 4


@pytest.mark.parametrize("kwargs,message", [
    (dict(name="{tmp}/absent.csv", text_column="t", label_columns=["y"]), "absent.csv: no such file"),
    (dict(name="{tmp}/d.csv", text_column="body", label_columns=["y"]), "missing column 'body'"),
    (dict(name="{tmp}/d.csv", text_column="t", label_columns=["z"]), "missing column 'z'"),
    (dict(name="{tmp}/d.csv"), "needs --text-column"),
    (dict(name="{tmp}/d.xlsx", text_column="t", label_columns=["y"]), "no such file"),
    (dict(name="sst2", path="{tmp}/none.tsv"), "none.tsv: no such file"),
    (dict(name="{tmp}/absent.csv"), "absent.csv: no such file, and not a data set name"),
])
def test_file_and_column_mistakes(tmp_path, kwargs, message):
    write(tmp_path, "d.csv", "t,y\na,1\n")
    kwargs = {k: (v.format(tmp=tmp_path) if isinstance(v, str) else v) for k, v in kwargs.items()}
    with pytest.raises(UserError, match=message):
        load_dataset(kwargs.pop("name"), **kwargs)


def test_unknown_suffix_and_response(tmp_path):
    path = write(tmp_path, "d.xlsx", "whatever")
    with pytest.raises(UserError, match="unknown file type"):
        load_dataset(path, text_column="t", label_columns=["y"])
    data = load_dataset(write(tmp_path, "d.csv", "t,y\na,1\n"), text_column="t", label_columns=["y"])
    with pytest.raises(UserError, match="--response q"):
        data.labels(["q"])


def test_cli_reports_a_bad_row_in_one_line(cli, tmp_path):
    path = write(tmp_path, "bad.csv", "t,y\nok,0\nfine,2\n")
    code, out, err = cli("build-omega", path, "--text-column", "t", "--label-column", "y",
                         "--tokenizer", "synthetic", "--out", tmp_path / "o")
    assert code == 2
    assert err.strip().startswith("Error:") and "row 2, column 'y'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.realdata
def test_jigsaw_2018_with_embedded_newlines_matches_the_csv_module(shared_data):
    path = shared_data / "jigsaw_toxic_2018" / "jigsaw_toxic_2018_train_sample5000.csv"
    data = load_dataset("jigsaw", path=path)
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert data.responses == ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")
    assert data.texts == [r["comment_text"] for r in rows]
    assert any("\n" in t for t in data.texts)
    expected = np.array([[float(r[c]) for c in data.responses] for r in rows])
    np.testing.assert_array_equal(data.labels(), expected)
    assert data.labels().sum(axis=0).tolist() == [465, 45, 260, 8, 251, 45]  # SOURCES.md


@pytest.mark.realdata
def test_sst2_dev_and_train(shared_data):
    dev = load_dataset("sst2", path=shared_data / "sst2" / "dev.tsv")
    assert len(dev) == 872 and dev.labels().sum() == 444
    assert dev.texts[0] == "it 's a charming and often affecting journey ."  # GLUE's trailing space stripped
    train = load_dataset("sst2", path=shared_data / "sst2" / "train.tsv")
    assert len(train) == 67349 and train.labels().sum() == 37569
    assert train.texts[0] == "hide new secretions from the parental units"


class FakeHub:
    """Stands in for the optional `datasets` package: records the request, serves an arrow table."""

    def __init__(self, table=None, error=None):
        self.table, self.error, self.requests = table, error, []

    def load_dataset(self, name, split):
        self.requests.append((name, split))
        if self.error:
            raise self.error
        return self

    def with_format(self, kind):
        assert kind == "arrow"
        return self

    def __getitem__(self, item):
        return self.table


def test_named_set_without_path_reads_the_hub_through_datasets(monkeypatch):
    import sys

    import pyarrow as pa

    hub = FakeHub(pa.table({"idx": [0, 1], "sentence": ["good ", "bad"], "label": [1, 0]}))
    monkeypatch.setitem(sys.modules, "datasets", hub)
    data = load_dataset("sst2", limit=2)
    assert hub.requests == [("stanfordnlp/sst2", "train[:2]")]
    assert data.texts == ["good", "bad"] and data.labels()[:, 0].tolist() == [1.0, 0.0]
    monkeypatch.setitem(sys.modules, "datasets", FakeHub(error=ConnectionError("offline")))
    with pytest.raises(UserError, match="cannot read google/civil_comments from the HF hub"):
        load_dataset("jigsaw")


def test_a_byte_order_mark_is_ignored_and_a_broken_layout_is_one_error(tmp_path):
    path = write(tmp_path, "bom.csv", b"\xef\xbb\xbft,y\nhi,1\n")
    assert load_dataset(path, text_column="t", label_columns=["y"]).texts == ["hi"]
    ragged = write(tmp_path, "ragged.csv", "t,y\nhi,1\nthere,0,extra,fields\n")
    with pytest.raises(UserError, match="ragged.csv: cannot parse as csv"):
        load_dataset(ragged, text_column="t", label_columns=["y"])
