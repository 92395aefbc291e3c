"""The embedded default data set: a seeded text-like corpus whose true rewards are computable.

The world (App. "synthetic" in ``data/README.md``): a vocabulary of made-up words, K hidden
topics c with prior π_c, and per-topic bigram transitions

    p_c(w | w') ∝ B[w', w] · g_c[w],

a sparse grammar B shared by all topics, tilted by a topic-specific word preference g_c. An
utterance draws c ~ π, a length l ~ U{min_len..max_len}, then l words from p_c. Each response
(e.g. ``toxicity``) is an attribute value a_c ∈ [0, 1] of the hidden topic, so the true future
reward of any prefix x = u_{1:t} is exact by Bayes' rule,

    r*(x) = E[y | x] = Σ_c a_c P(c | x),   P(c | x) ∝ π_c Π_t p_c(u_t | u_{t-1}),

and R*[x', v] = r*([x', v]) is the fully known reward matrix that P_Ω(R) samples.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[BOS]", "[EOS]")
N_SPECIAL = len(SPECIAL_TOKENS)
RESPONSES = ("toxicity", "sentiment")


def _make_words(n_words: int, rng: np.random.Generator) -> tuple[str, ...]:
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    syllables = [c + v for c in consonants for v in vowels]
    words: set[str] = set()
    while len(words) < n_words:
        k = rng.integers(1, 4)
        words.add("".join(rng.choice(syllables, size=k)))
    return tuple(sorted(words))


@dataclass(frozen=True)
class SyntheticWorld:
    """A topic-mixture bigram language with per-topic attribute values (see module docstring).

    Token id of word j is ``N_SPECIAL + j``; ids below ``N_SPECIAL`` are the special tokens.
    """

    words: tuple[str, ...]
    prior: np.ndarray          # (K,)
    log_trans: np.ndarray      # (K, n_words + 1, n_words); row n_words is the start state
    attributes: dict = field(default_factory=dict)  # response name -> (K,) values in [0, 1]
    min_len: int = 4
    max_len: int = 16

    @property
    def n_topics(self) -> int:
        return len(self.prior)

    @property
    def vocab_size(self) -> int:
        return N_SPECIAL + len(self.words)

    @property
    def responses(self) -> tuple[str, ...]:
        return tuple(self.attributes)

    @classmethod
    def create(cls, *, n_words: int = 200, n_topics: int = 4, successors: float = 0.05,
               tilt: float = 1.0, random_state: int = 0) -> "SyntheticWorld":
        """Draw a world: B ~ Dirichlet(successors) per row (sparse grammar), log g_c ~ tilt·N(0, 1)."""
        rng = np.random.default_rng(random_state)
        words = _make_words(n_words, rng)
        grammar = rng.dirichlet(np.full(n_words, successors), size=n_words + 1) + 1e-12
        tilt_c = np.exp(tilt * rng.standard_normal((n_topics, n_words)))
        trans = grammar[None] * tilt_c[:, None, :]
        trans /= trans.sum(-1, keepdims=True)
        prior = np.full(n_topics, 1.0 / n_topics)
        attributes = {
            "toxicity": np.linspace(0.05, 0.95, n_topics),
            "sentiment": rng.permutation(np.linspace(0.1, 0.9, n_topics)),
        }
        return cls(words, prior, np.log(trans), attributes)

    @classmethod
    def default(cls) -> "SyntheticWorld":
        """The world the shipped ``synthetic`` tokenizer was built from (seed 0)."""
        return _default_world()

    # ---- generation -------------------------------------------------------------------
    def sample(self, n: int, *, random_state: int | np.random.Generator = 0):
        """Draw ``n`` utterances. Returns (list of word-index arrays, topics (n,))."""
        rng = np.random.default_rng(random_state)
        topics = rng.choice(self.n_topics, size=n, p=self.prior)
        lengths = rng.integers(self.min_len, self.max_len + 1, size=n)
        trans = np.exp(self.log_trans)
        cdf = np.cumsum(trans, axis=-1)
        start = len(self.words)
        state = np.full(n, start)
        out = np.zeros((n, self.max_len), dtype=np.int64)
        for t in range(self.max_len):  # vectorised over utterances, one step per position
            u = rng.random(n)[:, None]
            rows = cdf[topics, state]
            nxt = np.minimum((rows < u).sum(-1), len(self.words) - 1)
            out[:, t] = nxt
            state = nxt
        return [out[i, :lengths[i]] for i in range(n)], topics

    def decode(self, word_idx) -> str:
        return " ".join(self.words[j] for j in word_idx)

    # ---- exact rewards -----------------------------------------------------------------
    def topic_log_posterior(self, token_ids) -> np.ndarray:
        """log P(c | x) for a token-id prefix x (special tokens are ignored). Shape (K,)."""
        word = [int(t) - N_SPECIAL for t in token_ids if int(t) >= N_SPECIAL]
        logp = np.log(self.prior).copy()
        prev = len(self.words)
        for w in word:
            logp += self.log_trans[:, prev, w]
            prev = w
        return logp - np.logaddexp.reduce(logp)

    def log_prob(self, token_ids, *, context_ids=()) -> float:
        """log p(x | x_ctx) under the world, marginal over topics: the exact fluency of a continuation.

        log p(x | ctx) = log Σ_c P(c | ctx) Π_t p_c(x_t | x_{t-1}); special tokens or ids outside the
        vocabulary make the text impossible (−inf).
        """
        ids = [int(t) for t in token_ids]
        if any(t < N_SPECIAL or t >= self.vocab_size for t in ids):
            return float("-inf")
        logp = self.topic_log_posterior(context_ids)
        ctx_words = [int(t) - N_SPECIAL for t in context_ids if int(t) >= N_SPECIAL]
        prev = ctx_words[-1] if ctx_words else len(self.words)
        joint = logp.copy()
        for t in ids:
            joint += self.log_trans[:, prev, t - N_SPECIAL]
            prev = t - N_SPECIAL
        return float(np.logaddexp.reduce(joint))

    def reward(self, token_ids, response: str = "toxicity") -> float:
        """r*(x) = Σ_c a_c P(c | x): the exact expected response of prefix x."""
        return float(np.exp(self.topic_log_posterior(token_ids)) @ self.attributes[response])

    def reward_row(self, context_ids, response: str = "toxicity") -> np.ndarray:
        """R*[x', v] for every next token v (shape (vocab_size,)); specials get r*(x')."""
        logp = self.topic_log_posterior(context_ids)
        words = [int(t) - N_SPECIAL for t in context_ids if int(t) >= N_SPECIAL]
        prev = words[-1] if words else len(self.words)
        joint = logp[:, None] + self.log_trans[:, prev, :]          # (K, n_words)
        post = np.exp(joint - np.logaddexp.reduce(joint, axis=0))
        row = np.full(self.vocab_size, np.exp(logp) @ self.attributes[response])
        row[N_SPECIAL:] = self.attributes[response] @ post
        return row


@lru_cache(maxsize=1)
def _default_world() -> SyntheticWorld:
    return SyntheticWorld.create()


def generate_corpus(n_utterances: int = 4000, *, world: SyntheticWorld | None = None, random_state: int = 0):
    """A polars frame with columns ``text``, one column per response (a_c of the hidden topic), ``topic``."""
    import polars as pl

    world = world or SyntheticWorld.default()
    utterances, topics = world.sample(n_utterances, random_state=random_state)
    frame = {"text": [world.decode(u) for u in utterances]}
    for name, values in world.attributes.items():
        frame[name] = values[topics].astype(np.float64)
    frame["topic"] = topics.astype(np.int32)
    return pl.DataFrame(frame)


def build_tokenizer(world: SyntheticWorld | None = None):
    """The word-level HF tokenizer of a world: specials first, then the words in order."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    world = world or SyntheticWorld.default()
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    vocab.update({w: N_SPECIAL + j for j, w in enumerate(world.words)})
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.WordPiece(prefix="##")  # joins words with single spaces
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]",
                                   bos_token="[BOS]", eos_token="[EOS]")
