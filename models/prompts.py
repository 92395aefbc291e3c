"""Prompt files for guided decoding: RealToxicityPrompts / DExperts JSONL or plain text lines.

A JSONL file holds one object per line with the prompt under ``{"prompt": {"text": …}}`` (the
RealToxicityPrompts and DExperts format, §5.2–§5.3) or ``{"prompt": "…"}``; any other file is read
as one prompt per line. Blank lines are skipped in both.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from rankkit.errors import UserError


def read_prompts(path: str | os.PathLike, *, limit: int | None = None) -> list[str]:
    """Read the prompts of ``path`` in file order (the first ``limit`` when given).

    The format is JSONL when the suffix is ``.jsonl``/``.json`` or the first non-blank line starts
    with ``{``, else plain text (one prompt per line, trailing newline removed).

    Raises
    ------
    UserError
        Naming the file (and line) when the file has no prompts, a JSONL line is not a JSON object
        with a prompt text, or a prompt is empty.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--prompts {path}: no such file")
    if limit is not None and limit < 1:
        raise UserError(f"--limit {limit}: must be at least 1")
    lines = path.read_text(encoding="utf-8").splitlines()
    numbered = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    if not numbered:
        raise UserError(f"{path}: no prompts (the file is empty)")
    as_jsonl = path.suffix in (".jsonl", ".json") or numbered[0][1].lstrip().startswith("{")
    prompts = []
    for n, line in numbered[:limit]:
        text = _jsonl_prompt(line, path, n) if as_jsonl else line
        if not text.strip():
            raise UserError(f"{path}, line {n}: the prompt is empty")
        prompts.append(text)
    return prompts


def _jsonl_prompt(line: str, path: Path, n: int) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}, line {n}: not valid JSON ({exc.msg})") from None
    prompt = record.get("prompt") if isinstance(record, dict) else None
    if isinstance(prompt, dict):
        prompt = prompt.get("text")
    if not isinstance(prompt, str):
        raise UserError(f'{path}, line {n}: expected {{"prompt": {{"text": …}}}} or {{"prompt": "…"}}')
    return prompt
