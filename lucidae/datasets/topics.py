"""A planted-topic corpus: documents mixed from known topics, so topic recovery can be tested."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lucidae.datasets.base import Dataset
from lucidae.errors import ConfigError


@dataclass
class TopicDataset(Dataset):
    """A :class:`Dataset` of word counts that also knows which words each planted topic owns.

    Examples
    --------
    >>> ds = make_topics(20, n_topics=2, vocab_size=30, random_state=0)
    >>> len(ds.topic_words), ds.feature_names[ds.topic_words[1][0]]
    (2, 't1w0')
    """

    topic_words: list[list[int]] = field(default_factory=list)
    """Per planted topic, the column indices of its own words, most frequent first."""
    documents: list[str] = field(default_factory=list)
    """Each document as text (its words separated by spaces), for text pipelines."""


def make_topics(
    n_docs: int = 2000,
    n_topics: int = 10,
    vocab_size: int = 500,
    *,
    background_fraction: float = 0.2,
    background_rate: float = 0.3,
    doc_length: int = 80,
    concentration: float = 0.1,
    random_state: int | np.random.Generator | None = None,
) -> TopicDataset:
    """Generate documents from planted topics (an LDA-style generative model).

    ``background_fraction`` of the vocabulary (words ``bg0, bg1, ...``) is shared by all
    documents; the rest is split evenly between the topics, topic ``k`` owning words
    ``tk w0, tk w1, ...`` (written ``t{k}w{j}``) with Zipf-like frequencies. A document
    draws topic proportions from a symmetric Dirichlet(``concentration``) (small values:
    one or two topics per document), a Poisson(``doc_length``) number of words, and each
    word from the background with probability ``background_rate``, else from a topic
    drawn from its proportions.

    Parameters
    ----------
    n_docs, n_topics, vocab_size : int
        Corpus size, number of planted topics, vocabulary size.
    background_fraction : float, default=0.2
        Share of the vocabulary that belongs to no topic.
    background_rate : float, default=0.3
        Probability that a word is drawn from the background.
    doc_length : int, default=80
        Mean number of words per document.
    concentration : float, default=0.1
        Dirichlet parameter of the topic proportions.
    random_state : int or Generator, optional

    Returns
    -------
    TopicDataset
        ``X`` float32 word counts (n_docs, vocab_size); ``feature_names`` the words; ``y``
        each document's main topic; ``factors`` its topic proportions; ``topic_words`` the
        planted assignment; ``documents`` the texts.

    Examples
    --------
    >>> ds = make_topics(100, n_topics=4, vocab_size=60, random_state=0)
    >>> ds.X.shape, ds.factors.shape, len(ds.topic_words[0])
    ((100, 60), (100, 4), 12)
    >>> ds.documents[0].split()[0] in ds.feature_names
    True
    """
    for name, value, low in (("n_docs", n_docs, 1), ("n_topics", n_topics, 1), ("doc_length", doc_length, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ConfigError(f"{name}={value!r} is invalid: expected an integer >= {low}.")
    n_background = int(round(background_fraction * vocab_size))
    per_topic = (vocab_size - n_background) // n_topics
    if per_topic < 2:
        raise ConfigError(
            f"vocab_size={vocab_size} leaves {per_topic} word(s) per topic for {n_topics} topics; "
            "give each topic at least 2 words (raise vocab_size or lower n_topics or background_fraction)."
        )
    for name, value in (("background_rate", background_rate), ("background_fraction", background_fraction)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{name}={value!r} is invalid: expected a number in [0, 1).")
    if not concentration > 0:
        raise ConfigError(f"concentration={concentration!r} is invalid: expected a number > 0.")
    rng = random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)
    n_background = vocab_size - per_topic * n_topics  # any remainder joins the background
    names = [f"t{k}w{j}" for k in range(n_topics) for j in range(per_topic)] + [f"bg{j}" for j in range(n_background)]
    topic_words = [list(range(k * per_topic, (k + 1) * per_topic)) for k in range(n_topics)]
    zipf = 1.0 / np.arange(1, per_topic + 1)
    zipf /= zipf.sum()
    bg_ids = np.arange(per_topic * n_topics, vocab_size)
    bg_p = 1.0 / np.arange(1, n_background + 1) if n_background else np.zeros(0)
    bg_p = bg_p / bg_p.sum() if n_background else bg_p
    theta = rng.dirichlet(np.full(n_topics, concentration), size=n_docs)  # (docs, topics)
    X = np.zeros((n_docs, vocab_size), dtype=np.float32)
    documents = []
    for d in range(n_docs):
        n_words = max(1, int(rng.poisson(doc_length)))
        from_bg = rng.random(n_words) < background_rate if n_background else np.zeros(n_words, bool)
        topics = rng.choice(n_topics, size=n_words, p=theta[d])
        ids = topics * per_topic + rng.choice(per_topic, size=n_words, p=zipf)
        if from_bg.any():
            ids[from_bg] = rng.choice(bg_ids, size=int(from_bg.sum()), p=bg_p)
        np.add.at(X[d], ids, 1.0)
        documents.append(" ".join(names[i] for i in ids))
    return TopicDataset(
        X=X,
        y=theta.argmax(axis=1).astype(np.int64),
        feature_names=names,
        name="topics",
        description=(
            f"{n_docs} generated documents over {vocab_size} words from {n_topics} planted topics "
            f"(Dirichlet {concentration}, {background_rate:.0%} background words)."
        ),
        factors=theta.astype(np.float32),
        factor_names=[f"topic{k}" for k in range(n_topics)],
        topic_words=topic_words,
        documents=documents,
    )
