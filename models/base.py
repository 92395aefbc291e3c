"""What ARM and RAD share: the backbone pass, the BOS convention, responses, save and load.

Both models see a context x' as ``[BOS] + x'`` (the empty context is BOS alone), so the prefix
u_{1:t} sits at position t of ``[BOS] + u`` (§2.2, eq. 3). Contexts come left-padded with an
attention mask; BOS takes the first real slot after the padding with position 0, and the position
ids count only real tokens, which is the same computation as the unpadded context.
"""
from __future__ import annotations

import os

import torch
from torch import nn

from rankkit.errors import UserError

from .backbone import cache_keyword, check_vocabulary, freeze_embeddings, load_backbone

LOSS_TYPES = ("mse", "bce")


def bos_id_of(tokenizer) -> int:
    """The tokenizer's BOS id (GPT-2's ``<|endoftext|>``), else its EOS id."""
    for token_id in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return int(token_id)
    raise UserError("--tokenizer has neither a BOS nor an EOS token; the reward model needs one for the empty context")


class RewardModel(nn.Module):
    """Base class of :class:`~rankkit.models.ARM` and :class:`~rankkit.models.RAD`.

    Parameters
    ----------
    causal_lm : transformers causal LM (``AutoModelForCausalLM``); its embeddings get frozen.
    responses : sequence of str, one head per response (e.g. the 7 Jigsaw columns).
    decode_response : str, the response used when none is named (default: the first).
    loss_type : ``"mse"`` (eq. 9) or ``"bce"`` (eq. 13; rewards are logits, σ at decoding).
    bos_token_id : int, the token that stands for the empty context.
    tokenizer : HF tokenizer or None, saved with the model.
    """

    kind = ""

    def __init__(self, causal_lm, *, responses, decode_response: str | None = None, loss_type: str = "mse",
                 bos_token_id: int, tokenizer=None):
        super().__init__()
        responses = tuple(str(r) for r in responses)
        if not responses or len(set(responses)) != len(responses):
            raise UserError(f"responses {responses!r}: need at least one, without repeats")
        decode_response = responses[0] if decode_response is None else decode_response
        if decode_response not in responses:
            raise UserError(f"--decode-response {decode_response}: not one of the responses {', '.join(responses)}")
        if loss_type not in LOSS_TYPES:
            raise UserError(f"--loss {loss_type}: expected one of {', '.join(LOSS_TYPES)}")
        if not 0 <= bos_token_id < causal_lm.config.vocab_size:
            raise UserError(f"BOS id {bos_token_id} is outside the backbone's vocabulary of {causal_lm.config.vocab_size}")
        self.causal_lm = causal_lm
        freeze_embeddings(causal_lm)
        self.responses = responses
        self.decode_response = decode_response
        self.loss_type = loss_type
        self.bos_token_id = int(bos_token_id)
        self.tokenizer = tokenizer
        self._cache_keyword = cache_keyword(self.backbone)

    # ---- construction ------------------------------------------------------------------
    @classmethod
    def from_backbone(cls, backbone: str, *, tokenizer, responses, seed: int = 0, **options):
        """A fresh model on ``backbone`` (hub name, folder or ``"tiny"``) for ``tokenizer``.

        ``options`` are the class's keyword options (``decode_response``, ``loss_type``, heads).
        """
        causal_lm = load_backbone(backbone, vocab_size=len(tokenizer), seed=seed)
        check_vocabulary(tokenizer, causal_lm.config.vocab_size, backbone=f"--backbone {backbone}")
        return cls(causal_lm, responses=responses, bos_token_id=bos_id_of(tokenizer), tokenizer=tokenizer,
                   seed=seed, **options)

    # ---- shapes and parts --------------------------------------------------------------
    @property
    def backbone(self):
        """The base transformer of the causal LM (e.g. ``GPT2Model``), without the LM head."""
        return self.causal_lm.base_model

    @property
    def hidden_size(self) -> int:
        return int(self.causal_lm.config.hidden_size)

    @property
    def vocab_size(self) -> int:
        return int(self.causal_lm.config.vocab_size)

    @property
    def output_embeddings(self) -> torch.Tensor:
        """E, the frozen output embeddings: tensor of shape (|V|, d), row v is e(v)."""
        return self.causal_lm.get_output_embeddings().weight

    @property
    def device(self) -> torch.device:
        return self.output_embeddings.device

    def response_index(self, response: str | None = None) -> int:
        """Head index of ``response`` (``None``: the decode response)."""
        response = self.decode_response if response is None else response
        try:
            return self.responses.index(response)
        except ValueError:
            raise UserError(f"response {response!r}: the model has {', '.join(self.responses)}") from None

    def head_config(self) -> dict:
        """The class's own options, stored in the checkpoint's config (overridden by ARM)."""
        return {}

    # ---- backbone pass -----------------------------------------------------------------
    def encode(self, input_ids, attention_mask=None, past_key_values=None, position_ids=None, use_cache=False):
        """Last-layer hidden states of the backbone on ``input_ids`` exactly as given (no BOS added).

        Returns
        -------
        hidden : FloatTensor of shape (B, T, d)
        cache : transformers ``Cache`` (DynamicCache) when ``use_cache``, else None
        """
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                            use_cache=use_cache, **{self._cache_keyword: past_key_values})
        cache = (out["cache"] if "cache" in out else out["past_key_values"]) if use_cache else None
        return out.last_hidden_state, cache

    def with_bos(self, context_ids, attention_mask=None):
        """``[BOS] + x'`` for left-padded contexts: (input ids, attention mask, position ids), each (B, T+1).

        BOS takes the first real slot (just after the padding), so the last column is always the
        context's last token (BOS itself for the empty context).
        """
        context_ids = torch.as_tensor(context_ids, dtype=torch.long, device=self.device)
        if context_ids.dim() != 2:
            raise ValueError(f"context_ids must have shape (B, T), got {tuple(context_ids.shape)}")
        if attention_mask is None:
            attention_mask = torch.ones_like(context_ids)
        attention_mask = torch.as_tensor(attention_mask, device=self.device).long()
        if attention_mask.shape != context_ids.shape or bool((attention_mask.diff(dim=1) < 0).any()):
            raise ValueError("attention_mask must have the shape of context_ids and be left padded (0s, then 1s)")
        width = context_ids.shape[1]
        column = torch.arange(width + 1, device=self.device)
        start = (width - attention_mask.sum(1, keepdim=True))        # where BOS goes: first real slot
        ids = context_ids[:, (column - 1).clamp_min(0)] if width else context_ids.new_zeros((len(context_ids), 1))
        ids = torch.where(column == start, self.bos_token_id, ids)
        mask = (column >= start).long()
        positions = (mask.cumsum(1) - 1).clamp_min(0)
        return ids, mask, positions

    # ---- scoring (subclasses) ----------------------------------------------------------
    def rewards(self, context_ids, candidates=None, response=None, attention_mask=None):  # pragma: no cover
        raise NotImplementedError

    def prefix_rewards(self, utterances, *, sampled=None):  # pragma: no cover
        raise NotImplementedError

    # ---- save / load -------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write the self-describing folder: ``reward_config.json``, ``model.safetensors``, tokenizer files."""
        from .io import save_reward_model

        save_reward_model(self, directory)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, *, device: str | None = None):
        """Load a folder written by :meth:`save_pretrained`; it must hold a model of this class."""
        from .io import load_reward_model

        model = load_reward_model(directory, device=device)
        if cls is not RewardModel and not isinstance(model, cls):
            raise UserError(f"{directory}: holds a {model.kind.upper()} reward model, not a {cls.kind.upper()}")
        return model
