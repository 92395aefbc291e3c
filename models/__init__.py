"""rankkit.models: ARM and RAD reward models on HF causal-LM backbones, their training and guided decoding.

Heavy modules (torch, transformers) load on first use.
"""
from __future__ import annotations

from rankkit.lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
