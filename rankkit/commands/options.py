"""Option aliases shared by several commands, so every command spells them the same way."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

DeviceOpt = Annotated[str, typer.Option("--device", help="auto (CUDA when present), cpu or cuda.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (all randomness flows from it).")]
OutDirOpt = Annotated[Path, typer.Option("--out", "-o", help="Output folder (written atomically).")]
TokenizerOpt = Annotated[str, typer.Option("--tokenizer", help="HF tokenizer: 'synthetic', a hub name such as gpt2, or a local folder.")]
MaxTokensOpt = Annotated[int, typer.Option("--max-tokens", help="Truncate each text to this many tokens.")]
PathOpt = Annotated[Optional[Path], typer.Option("--path", help="Local data file (CSV, TSV, JSONL or parquet).")]
TextColumnOpt = Annotated[Optional[str], typer.Option("--text-column", help="Column holding the text.")]
LabelColumnOpt = Annotated[Optional[list[str]], typer.Option("--label-column", help="Response column; repeat for several responses.")]
SkipBadRowsOpt = Annotated[bool, typer.Option("--skip-bad-rows", help="Skip (and count) rows with empty text or bad labels instead of failing.")]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", help="Use only the first N rows of the data set.")]
