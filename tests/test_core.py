"""CLI assembly, one-line errors, atomic outputs, device choice."""

import pytest

from rankkit.device import resolve_device
from rankkit.errors import UserError
from rankkit.io import atomic_path, read_json, write_json


def test_help_lists_commands(cli):
    code, out, _ = cli("--help")
    assert code == 0 and "Usage" in out


def test_unknown_command_is_a_usage_error(cli):
    code, _, err = cli("no-such-command")
    assert code == 2 and "No such command" in err


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert read_json(target) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_atomic_path_replaces_a_folder(tmp_path):
    folder = tmp_path / "dir"
    for value in ("one", "two"):
        with atomic_path(folder) as tmp:
            tmp.mkdir()
            (tmp / "f.txt").write_text(value)
    assert (folder / "f.txt").read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir"]


def test_resolve_device():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda")
    with pytest.raises(UserError, match="--device"):
        resolve_device("tpu")
