"""Guided decoding with ARM and RAD as ``transformers`` logits processors (eq. 1–2, §2.1, §5.6).

At every decoding step the processor keeps only the likely tokens V' of the base model (its top-k
logits, or the nucleus of mass ``top_p``, or the nucleus inside the top-k) and adds the reward bonus

    z(v|x) = z_LM(v|x) + β·r(v|x)   for v ∈ V',     z(v|x) = −∞ otherwise,          (eq. 1)

so that sampling from softmax(z) (eq. 2) follows the reward. r is the reward model's score r̂ for
its decoding response, passed through a sigmoid when the model was trained with BCE (eq. 13), and
turned into 1 − r when steering away from the attribute (toxicity) instead of towards it (sentiment).

The reward model keeps its own key/value cache across the steps of one ``generate`` call: the
prompt is encoded once, then only the newly sampled token (Table 1). ARM scores all k candidates
from one hidden state (one reward-model token per sequence and step); RAD feeds the k candidates of
every sequence as one batch over the cached prefix, and keeps the chosen candidate's cache for the
next step. A processor therefore serves exactly one ``generate`` call.

Example
-------
Pass ``top_k=0`` to ``generate`` so that its default top-50 warper cannot cut V' further, and the
prompts' attention mask when the batch is left padded (the processor never sees ``generate``'s):

>>> batch = tokenizer(prompts, return_tensors="pt", padding=True)                 # doctest: +SKIP
>>> guide = ARMGuidance(arm, beta=50, top_k=20, attention_mask=batch["attention_mask"])
>>> out = base.generate(**batch, do_sample=True, top_k=0, max_new_tokens=20, num_return_sequences=25,
...                     logits_processor=[guide])
"""
from __future__ import annotations

import time

import torch
from transformers import LogitsProcessor

from rankkit.errors import UserError

STEER = ("away", "towards")


def select_candidates(scores: torch.Tensor, *, top_k: int | None = None, top_p: float | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """The likely tokens V' of eq. (1): the top-k logits, the nucleus, or the nucleus inside the top-k.

    The nucleus of mass p is the smallest set of most likely tokens whose probability (under the
    softmax of ``scores``, renormalised over the top-k when ``top_k`` is given) reaches p.

    Parameters
    ----------
    scores : FloatTensor of shape (B, |V|), the base logits z_LM.
    top_k : int or None
    top_p : float in (0, 1] or None

    Returns
    -------
    candidates : LongTensor of shape (B, k), token ids by decreasing logit.
    keep : BoolTensor of shape (B, k), True for the members of V' (all True without ``top_p``;
        k is then the largest nucleus of the batch).
    """
    k = top_k or scores.shape[-1]
    values, candidates = scores.topk(k, dim=-1)
    keep = torch.ones_like(candidates, dtype=torch.bool)
    if top_p is not None:
        probs = values.softmax(dim=-1)
        keep = probs.cumsum(dim=-1) - probs < top_p  # mass before the token is below p: the first is always kept
        width = int(keep.sum(dim=-1).max())
        candidates, keep = candidates[:, :width], keep[:, :width]
    return candidates, keep


def clock(device: torch.device) -> float:
    """``time.perf_counter()`` once the queued work of a CUDA ``device`` is done (timing is honest)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


class _RewardGuidance(LogitsProcessor):
    """z = z_LM + β·r on V', −∞ elsewhere (eq. 1); subclasses compute r̂ for the candidates.

    Parameters
    ----------
    model : ARM or RAD (``rankkit.models``)
    beta : float ≥ 0, the guidance weight β; 0 leaves the base distribution (restricted to V') as is.
    top_k : int or None, the size of V' (at most the vocabulary); required unless ``top_p`` is given.
    top_p : float in (0, 1] or None, nucleus sampling instead of (or inside) the top-k.
    steer : ``"away"`` (bonus 1 − r, e.g. toxicity) or ``"towards"`` (bonus r, e.g. sentiment).
    response : the response to steer; default the model's ``decode_response``.
    attention_mask : LongTensor of shape (B, T_prompt) or (B / n, T_prompt), optional
        The prompts' mask as given to ``generate`` (rows repeated for ``num_return_sequences``);
        without it, a leading run of ``pad_token_id`` marks the left padding.
    pad_token_id : int or None, default the reward tokenizer's pad token.
    use_cache : bool, default True. False re-encodes every prefix at every step (the slow
        reference that the cached path must equal).

    Attributes
    ----------
    reward_seconds : float, wall time spent in reward-model calls so far.
    """

    def __init__(self, model, *, beta: float, top_k: int | None = None, top_p: float | None = None,
                 steer: str = "away", response: str | None = None, attention_mask: torch.Tensor | None = None,
                 pad_token_id: int | None = None, use_cache: bool = True):
        if beta < 0:
            raise UserError(f"--beta {beta}: must be ≥ 0 (use --steer away|towards for the direction)")
        if top_k is None and top_p is None:
            raise UserError("guidance needs --top-k or --top-p to choose the candidate tokens V'")
        if top_k is not None and not 1 <= top_k <= model.vocab_size:
            raise UserError(f"--top-k {top_k}: must be between 1 and the vocabulary size {model.vocab_size}")
        if top_p is not None and not 0 < top_p <= 1:
            raise UserError(f"--top-p {top_p}: must be in (0, 1]")
        if steer not in STEER:
            raise UserError(f"--steer {steer!r}: expected one of {', '.join(STEER)}")
        response = response or model.decode_response
        if response not in model.responses:
            raise UserError(f"response {response!r}: the reward model predicts {', '.join(model.responses)}")
        if pad_token_id is None and getattr(model, "tokenizer", None) is not None:
            pad_token_id = model.tokenizer.pad_token_id
        self.model, self.beta, self.top_k, self.top_p = model, float(beta), top_k, top_p
        self.steer, self.response, self.use_cache = steer, response, use_cache
        self.pad_token_id, self.prompt_mask = pad_token_id, attention_mask
        self.reward_seconds = 0.0
        self._mask = None        # (B, T) reward-model mask of [BOS] + x for the tokens encoded so far
        self._n_seen = None      # columns of the base input_ids already handed to the reward model
        self._cache = None       # the reward model's key/value cache (use_cache=True)
        self._ids = None         # (B, T) [BOS] + x, kept only for the uncached reference path

    @torch.no_grad()
    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if scores.shape[-1] != self.model.vocab_size:
            raise UserError(f"the base model scores {scores.shape[-1]} tokens but the reward model has a vocabulary "
                            f"of {self.model.vocab_size}: base and reward model must share a tokenizer")
        candidates, keep = select_candidates(scores, top_k=self.top_k, top_p=self.top_p)
        start = clock(scores.device)
        raw = self._advance_and_score(input_ids, candidates, keep)
        self.reward_seconds += clock(scores.device) - start
        reward = raw.float().sigmoid() if self.model.loss_type == "bce" else raw.float()
        if self.steer == "away":
            reward = 1.0 - reward
        guided = scores.gather(-1, candidates) + self.beta * reward.to(scores.dtype)
        guided = guided.masked_fill(~keep, float("-inf"))
        return torch.full_like(scores, float("-inf")).scatter(-1, candidates, guided)

    # ---- reward-model input bookkeeping --------------------------------------------------
    def _advance_and_score(self, input_ids, candidates, keep) -> torch.Tensor:
        """Extend the reward model's view of the prefixes by the tokens it has not seen, then score."""
        first = self._n_seen is None
        if first:
            self._mask = self._first_mask(input_ids)
            new_ids = self._with_bos(input_ids)
        elif input_ids.shape[0] != self._mask.shape[0] or input_ids.shape[1] != self._n_seen + 1:
            raise RuntimeError("a guidance processor serves one generate call: create a new one for each call")
        else:
            self._mask = torch.cat([self._mask, self._mask.new_ones(self._mask.shape[0], 1)], dim=1)
            new_ids = input_ids[:, -1:]
        self._n_seen = input_ids.shape[1]
        if not self.use_cache:
            self._ids = new_ids if first else torch.cat([self._ids, new_ids], dim=1)
        return self._score(new_ids, candidates, keep, first=first)

    def _first_mask(self, input_ids):
        """(B, 1 + T) mask of [BOS] + prompt for the left-padded prompts."""
        if self.prompt_mask is not None:
            mask = self.prompt_mask.to(input_ids.device).long()
            if mask.shape[0] != input_ids.shape[0]:
                mask = mask.repeat_interleave(input_ids.shape[0] // mask.shape[0], dim=0)
            if mask.shape != input_ids.shape:
                raise ValueError(f"attention_mask of shape {tuple(self.prompt_mask.shape)} does not fit the prompts "
                                 f"of shape {tuple(input_ids.shape)}")
        elif self.pad_token_id is None:
            mask = torch.ones_like(input_ids)
        else:
            mask = (input_ids != self.pad_token_id).long().cummax(dim=1).values  # zero only on the leading run
        return torch.cat([torch.zeros_like(mask[:, :1]), mask], dim=1).scatter(
            1, (mask == 0).sum(dim=1, keepdim=True), 1)

    def _with_bos(self, input_ids):
        """[pad … pad, BOS, x]: the prompt left padded with BOS right before its first token."""
        ids = torch.cat([torch.zeros_like(input_ids[:, :1]), input_ids], dim=1)
        first = (self._mask == 0).sum(dim=1, keepdim=True)
        return ids.scatter(1, first, self.model.bos_token_id).masked_fill(self._mask == 0, 0)

    def _positions(self, mask):
        return (mask.cumsum(dim=1) - 1).clamp(min=0)


class ARMGuidance(_RewardGuidance):
    """Guided decoding with ARM (eq. 1–2, 7): one reward-model token per sequence and step.

    r̂(v|x) = ⟨h(x), w⟩ + ⟨h(x), W e(v)⟩ for the k candidates from the hidden state h(x) of the
    last token of [BOS] + x; the prefix is encoded once and extended by the sampled token at every
    step over the cached key/values. See :class:`_RewardGuidance` for the parameters.
    """

    def _score(self, new_ids, candidates, keep, *, first):
        model = self.model
        if self.use_cache:
            positions = self._positions(self._mask)[:, -new_ids.shape[1]:]
            hidden, self._cache = model.encode(new_ids, attention_mask=self._mask, past_key_values=self._cache,
                                               position_ids=positions, use_cache=True)
        else:
            hidden, _ = model.encode(self._ids, attention_mask=self._mask, position_ids=self._positions(self._mask))
        return model.token_scores(hidden[:, -1], candidates=candidates, response=self.response)


class RADGuidance(_RewardGuidance):
    """Guided decoding with RAD (eq. 1–2, §2.1): r̂([x, v]) for the k candidates as reward-model inputs.

    The cached prefix [BOS] + x is repeated k times and the k candidates of every sequence run as
    one batch of B·k one-token inputs over it (Table 1: k tokens per step). At the next step the
    sampled token's row of that batch already holds its key/values and becomes the new prefix
    cache; only when the sampled token was not a candidate (a finished sequence padded by
    ``generate``) is the prefix cropped and the token encoded afresh. See :class:`_RewardGuidance`.
    """

    def _score(self, new_ids, candidates, keep, *, first):
        model = self.model
        b, k = candidates.shape
        if not self.use_cache:
            ids = torch.cat([self._ids.repeat_interleave(k, dim=0), candidates.reshape(-1, 1)], dim=1)
            mask = self._extend(self._mask, k)
            hidden, _ = model.encode(ids, attention_mask=mask, position_ids=self._positions(mask))
            return model.prefix_scores(hidden[:, -1], response=self.response).view(b, k)
        if first:
            _, self._cache = model.encode(new_ids, attention_mask=self._mask,
                                          position_ids=self._positions(self._mask), use_cache=True)
        else:
            self._keep_sampled(new_ids[:, 0])
        self._cache.batch_repeat_interleave(k)
        mask = self._extend(self._mask, k)
        hidden, self._cache = model.encode(candidates.reshape(-1, 1), attention_mask=mask, past_key_values=self._cache,
                                           position_ids=self._positions(mask)[:, -1:], use_cache=True)
        self._candidates = candidates.masked_fill(~keep, -1)
        return model.prefix_scores(hidden[:, -1], response=self.response).view(b, k)

    @staticmethod
    def _extend(mask, k):
        """The prefix mask repeated k times (rows b·k … b·k + k − 1) plus the candidate's column."""
        mask = mask.repeat_interleave(k, dim=0)
        return torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)

    def _keep_sampled(self, sampled):
        """Turn last step's B·k candidate cache into the B-row cache of the extended prefix."""
        b, k = self._candidates.shape
        hit = self._candidates == sampled[:, None]
        rows = torch.arange(b, device=sampled.device) * k
        if bool(hit.any(dim=1).all()):
            self._cache.reorder_cache(rows + hit.int().argmax(dim=1))
            return
        self._cache.reorder_cache(rows)
        self._cache.crop(-1)
        positions = self._positions(self._mask)[:, -1:]
        _, self._cache = self.model.encode(sampled[:, None], attention_mask=self._mask, past_key_values=self._cache,
                                           position_ids=positions, use_cache=True)
