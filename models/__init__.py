"""rankkit.models: ARM and RAD reward models on HF causal-LM backbones, their training and guided decoding.

Heavy modules (torch, transformers) load on first use.
"""
from __future__ import annotations

import importlib

# public name -> module that defines it
_EXPORTS = {
    "ARM": "arm",
    "RAD": "rad",
    "RewardModel": "base",
    "load_reward_model": "io",
    "build_tiny_backbone": "backbone",
    "load_backbone": "backbone",
    "train_reward_model": "train",
    "evaluate": "train",
    "default_lr": "train",
    "TrainingResult": "train",
    "read_training_log": "train",
    "weighted_squared_loss": "losses",
    "weighted_bce_loss": "losses",
    "token_regulariser": "losses",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'rankkit.models' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
