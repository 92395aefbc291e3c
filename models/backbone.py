"""Backbones for the reward models: any HF causal LM by name or folder, or a tiny random GPT-2.

The reward models keep the whole causal LM so that the output embeddings E (the rows e(v) of
eq. 7) travel with it; the input and output embeddings are frozen (App. D, §5.1) and tied
weights stay tied because they are one ``Parameter``.
"""
from __future__ import annotations

import contextlib
import inspect
from pathlib import Path

import torch

from rankkit.errors import UserError

TINY = "tiny"
# a backbone's embedding matrix may carry a few padding rows beyond the tokenizer's vocabulary
# (e.g. Pythia 50277 -> 50304, Qwen2 151665 -> 151936); more than this share of padding means the
# tokenizer and the backbone do not belong together
MAX_PADDING_SHARE = 0.01


def build_tiny_backbone(vocab_size: int, *, n_layer: int = 2, n_embd: int = 64, n_head: int = 4,
                        n_positions: int = 512, seed: int = 0):
    """A small randomly initialised GPT-2 causal LM over a vocabulary of ``vocab_size`` tokens.

    For tests, the demo and machines without downloads. Dropout is off so that a few epochs on
    CPU learn. The initialisation draws from a private torch generator seeded with ``seed``
    (the global RNG state is restored afterwards).

    Returns
    -------
    transformers.GPT2LMHeadModel with tied input/output embeddings of shape (vocab_size, n_embd).
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    if vocab_size < 1:
        raise ValueError(f"vocab_size={vocab_size}: must be positive")
    config = GPT2Config(vocab_size=vocab_size, n_layer=n_layer, n_embd=n_embd, n_head=n_head,
                        n_positions=n_positions, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=None, eos_token_id=None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return GPT2LMHeadModel(config)


def load_backbone(name_or_dir: str, *, vocab_size: int | None = None, seed: int = 0):
    """Load ``AutoModelForCausalLM`` by hub name or local folder; ``tiny`` builds a random GPT-2.

    ``vocab_size`` (the tokenizer's) is required for ``tiny``. Errors are :class:`UserError`
    naming the backbone.
    """
    if name_or_dir == TINY:
        if vocab_size is None:
            raise UserError("--backbone tiny needs a tokenizer (--tokenizer) to size its vocabulary")
        return build_tiny_backbone(vocab_size, seed=seed)
    from transformers import AutoModelForCausalLM

    path = Path(name_or_dir)
    if path.exists() and not path.is_dir():
        raise UserError(f"--backbone {name_or_dir}: is a file, expected a model folder or a hub name")
    if not path.exists() and (path.is_absolute() or name_or_dir.startswith(".")):
        raise UserError(f"--backbone {name_or_dir}: no such folder")
    try:
        with _quiet_transformers():
            return AutoModelForCausalLM.from_pretrained(name_or_dir)
    except Exception as exc:  # noqa: BLE001 - any loader failure is a user-facing error
        where = "the folder holds no causal LM that transformers can load" if path.is_dir() else (
            "cannot load it by name (offline machine, or unknown name); pass a local folder or 'tiny'")
        raise UserError(f"--backbone {name_or_dir}: {where} ({exc.__class__.__name__})") from exc


@contextlib.contextmanager
def _quiet_transformers():
    """Hide transformers' own loading bars for the duration (library code never prints)."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def check_vocabulary(tokenizer, vocab_size: int, *, backbone: str = "the backbone") -> None:
    """Raise :class:`UserError` unless the tokenizer's vocabulary fits the backbone's embeddings.

    The backbone may have a few padding rows (under ``MAX_PADDING_SHARE`` of its vocabulary).
    """
    n = len(tokenizer)
    if n > vocab_size or vocab_size - n > MAX_PADDING_SHARE * vocab_size:
        raise UserError(f"--tokenizer has {n} tokens but {backbone} has a vocabulary of {vocab_size}: "
                        "the tokenizer and the backbone must belong together")


def freeze_embeddings(causal_lm) -> None:
    """Freeze the input and output embeddings (tied ones are the same Parameter and stay tied)."""
    for module in (causal_lm.get_input_embeddings(), causal_lm.get_output_embeddings()):
        if module is not None:
            for parameter in module.parameters():
                parameter.requires_grad_(False)


def cache_keyword(base_model) -> str:
    """The keyword a base model's ``forward`` takes its key/value cache under.

    transformers 5 renamed ``past_key_values`` to ``cache`` model by model; this reads the signature.
    """
    parameters = inspect.signature(base_model.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"
