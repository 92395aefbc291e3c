"""One distribution: ``models/`` is installed as ``rankkit.models``, never as a top-level ``models``."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_editable_install_imports_models_from_the_models_folder():
    import rankkit.models

    assert Path(rankkit.models.__file__).resolve() == ROOT / "models" / "__init__.py"


@pytest.mark.slow
def test_built_wheel_ships_rankkit_models_and_no_top_level_models(tmp_path):
    # Build from a clean copy, so that no stale build/ folder can leak files into the wheel.
    source, dist, target = tmp_path / "src", tmp_path / "dist", tmp_path / "site"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".rankkit-cache", ".pytest_cache"))
    # -x: setuptools >= 70.1 builds wheels itself, the separate `wheel` package is not needed.
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "-x", "--outdir", str(dist),
                    str(source)], check=True, capture_output=True, text=True)
    (wheel,) = dist.glob("rankkit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "rankkit/models/__init__.py" in names
    assert "rankkit/data/synthetic_tokenizer/tokenizer.json" in names
    assert not [n for n in names if n.startswith("models/")]
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, text=True)
    assert not (target / "models").exists()
    probe = "import rankkit.models, rankkit.datasets; print(rankkit.models.__file__)"
    env = {**os.environ, "PYTHONPATH": str(target)}
    found = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True, env=env,
                           cwd=tmp_path).stdout.strip()
    assert Path(found).resolve() == (target / "rankkit" / "models" / "__init__.py").resolve()
