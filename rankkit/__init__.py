"""rankkit: rank analysis of reward models for controlled text generation.

Data flows one way: datasets → prefixes → omega (P_Ω(R), eq. 5) → solvers (softImpute-ALS)
→ rank (numerical rank, App. C.4). :mod:`rankkit.models` (ARM and RAD) produces the R̂ rows that
:mod:`rankkit.rank` studies; ``rankkit`` itself never imports ``rankkit.models``.

Heavy modules load on first use, so ``import rankkit`` stays fast.
"""
from __future__ import annotations

from .lazy import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "UserError": "errors",
    "load_tokenizer": "tokenization",
    "encode_texts": "tokenization",
    "TokenizedCorpus": "tokenization",
    "SyntheticWorld": "synthetic",
    "generate_corpus": "synthetic",
    "resolve_device": "device",
    "plot_tradeoff": "plots",
    "plot_time_per_token": "plots",
    "load_dataset": "datasets",
    "TextDataset": "datasets",
    "prefix_weights": "prefixes",
    "sample_contexts": "prefixes",
    "build_omega": "omega",
    "Omega": "omega",
    "omega_stats": "omega",
    "export_mtx": "omega",
    "last_built_omega": "omega",
    "soft_impute": "solvers",
    "Completion": "solvers",
    "rank_sweep": "minrank",
    "rank_bracket": "minrank",
    "numerical_rank": "rank",
    "rank_curve": "rank",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
