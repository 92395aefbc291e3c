"""The self-describing checkpoint folder of a reward model, and :func:`load_reward_model`.

A folder holds ``reward_config.json`` (model kind, backbone config, responses, decode response,
loss type, head options, BOS id), ``model.safetensors`` (tied weights stored once) and the
tokenizer's files. It is written atomically.
"""
from __future__ import annotations

import os
from pathlib import Path

from rankkit.device import resolve_device
from rankkit.errors import UserError
from rankkit.io import atomic_path, read_json, write_json

CONFIG_NAME = "reward_config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "rankkit-reward-model"
FORMAT_VERSION = 1


def reward_config(model) -> dict:
    """The JSON-able description of ``model`` that :func:`load_reward_model` rebuilds it from."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": model.kind,
        "responses": list(model.responses),
        "decode_response": model.decode_response,
        "loss_type": model.loss_type,
        "bos_token_id": model.bos_token_id,
        **model.head_config(),
        "backbone_config": model.causal_lm.config.to_dict(),
    }


def check_output_folder(directory: str | os.PathLike) -> None:
    """Refuse to replace anything but a missing or empty folder, or a reward-model folder.

    Saving replaces the whole folder atomically, so ``--out .`` must not wipe unrelated files.
    """
    path = Path(directory)
    if path.exists() and (not path.is_dir() or (any(path.iterdir()) and not (path / CONFIG_NAME).is_file())):
        raise UserError(f"--out {path}: exists and is not a reward-model folder; refusing to replace it (choose a new folder)")


def save_reward_model(model, directory: str | os.PathLike) -> None:
    """Write ``model`` to ``directory`` (replaced atomically; see :func:`check_output_folder`)."""
    check_output_folder(directory)
    with atomic_path(directory) as tmp:
        tmp.mkdir()
        write_reward_model(model, tmp)


def write_reward_model(model, folder: Path) -> None:
    """Write the config, weights and tokenizer files of ``model`` into the existing ``folder``."""
    from safetensors.torch import save_model

    write_json(folder / CONFIG_NAME, reward_config(model))
    save_model(model, str(folder / WEIGHTS_NAME))
    if model.tokenizer is not None:
        model.tokenizer.save_pretrained(folder)


def load_weights(model, path: str | os.PathLike) -> None:
    """Load ``model.safetensors`` of the folder ``path`` into ``model`` (tied copies may be absent)."""
    from safetensors.torch import load_model

    path = Path(path)
    try:
        missing, unexpected = load_model(model, str(path / WEIGHTS_NAME), strict=False)
    except RuntimeError as exc:  # shape mismatch
        raise UserError(f"{path / WEIGHTS_NAME}: weights do not fit this model ({str(exc).splitlines()[0]})") from exc
    if unexpected or [key for key in missing if not _is_tied_copy(model, key)]:
        raise UserError(f"{path / WEIGHTS_NAME}: weights do not match {CONFIG_NAME} "
                        f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")


def _model_classes() -> dict:
    from .arm import ARM
    from .rad import RAD

    return {"arm": ARM, "rad": RAD}


def load_reward_model(path: str | os.PathLike, *, device: str | None = None):
    """Load an ARM or RAD from a folder written by ``save_pretrained``; returns the right class.

    The model comes back in eval mode on ``device`` (``auto``, ``cpu``, ``cuda``; default CPU). A folder that is not a
    rankkit reward model raises :class:`UserError` naming it.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path}: no such reward-model folder")
    config_file = path / CONFIG_NAME
    if not config_file.is_file() or not (path / WEIGHTS_NAME).is_file():
        raise UserError(f"{path}: not a rankkit reward-model folder (expected {CONFIG_NAME} and {WEIGHTS_NAME})")
    try:
        config = read_json(config_file)
    except ValueError as exc:
        raise UserError(f"{config_file}: not valid JSON ({exc})") from exc
    classes = _model_classes()
    if config.get("format") != FORMAT or config.get("kind") not in classes:
        raise UserError(f"{config_file}: not a rankkit reward-model config (format/kind missing or unknown)")
    backbone_config = dict(config["backbone_config"])
    backbone_config.pop("transformers_version", None)
    causal_lm = AutoModelForCausalLM.from_config(AutoConfig.for_model(backbone_config.pop("model_type"), **backbone_config))
    tokenizer = _load_saved_tokenizer(path)
    options = {key: config[key] for key in ("head", "baseline", "mlp_size") if key in config}
    model = classes[config["kind"]](causal_lm, responses=config["responses"], decode_response=config["decode_response"],
                                    loss_type=config["loss_type"], bos_token_id=config["bos_token_id"],
                                    tokenizer=tokenizer, **options)
    load_weights(model, path)
    return model.to(resolve_device(device or "cpu")).eval()


def _is_tied_copy(model, key: str) -> bool:
    """True when parameter ``key`` shares its storage with another saved parameter (tied weights)."""
    state = model.state_dict()
    pointer = state[key].data_ptr()
    return any(other != key and tensor.data_ptr() == pointer for other, tensor in state.items())


def _load_saved_tokenizer(path: Path):
    if not any((path / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json")):
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)
