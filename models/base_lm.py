"""A small base language model fitted to a corpus: the model that guided decoding steers.

Maximum likelihood next-token training of a GPT-2 (the tiny architecture of
:func:`~rankkit.models.build_tiny_backbone`, all weights trainable) on utterances followed by
[EOS], so that sampling from it continues plain-text prompts the way the corpus does.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from rankkit.tokenization import TokenizedCorpus


def train_base_lm(corpus: TokenizedCorpus, tokenizer, *, n_layer: int = 4, n_embd: int = 128, n_head: int = 4,
                  steps: int = 300, batch_size: int = 64, lr: float = 3e-3, seed: int = 0, out: str | os.PathLike | None = None):
    """Fit a GPT-2 LM to ``corpus`` by Adam on the mean next-token cross-entropy; returns (model, losses).

    ``out`` saves the model with its tokenizer (``AutoModelForCausalLM.from_pretrained`` reloads it).
    """
    from .backbone import build_tiny_backbone

    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    pad = eos if tokenizer.pad_token_id is None else tokenizer.pad_token_id  # GPT-2 has no pad token
    model = build_tiny_backbone(len(tokenizer), n_layer=n_layer, n_embd=n_embd, n_head=n_head, seed=seed)
    for p in model.parameters():
        p.requires_grad_(True)
    model.config.update({"bos_token_id": bos, "eos_token_id": eos, "pad_token_id": pad})
    model.train()
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 20) * max(0.05, 1 - s / steps))
    width = int(corpus.lengths.max()) + 1
    losses = []
    for _ in range(steps):
        rows = rng.integers(0, len(corpus), size=batch_size)
        ids = torch.full((batch_size, width), pad, dtype=torch.long)
        labels = torch.full((batch_size, width), -100, dtype=torch.long)
        for b, i in enumerate(rows):
            seq = [*corpus.utterance(int(i)).tolist(), eos]
            ids[b, :len(seq)] = torch.tensor(seq)
            labels[b, 1:len(seq)] = torch.tensor(seq[1:])
        loss = model(input_ids=ids, attention_mask=(labels != -100) | (torch.arange(width) == 0), labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    model.eval()
    if out is not None:
        from rankkit.io import atomic_path

        with atomic_path(out) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
    return model, losses
