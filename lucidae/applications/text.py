"""Topics in text: TF-IDF vectors into a sparse autoencoder, each latent explained by words and documents.

:class:`TextTopics` vectorises documents with scikit-learn (``TfidfVectorizer``,
sublinear term frequencies, English stop words removed), trains a sparse autoencoder on
the rows and describes every latent by the words its decoder direction writes most
(:attr:`TextTopics.components_`) and the documents that activate it most.

Why TopK by default (``TopKAutoEncoder``, 32 latents, k = 4): on the planted-topic
corpus (:func:`lucidae.datasets.topics.make_topics`, 2,000 documents, 10 topics, 500
words) every planted topic got a latent whose top 10 words were all that topic's words
(10/10 for each topic), in 4 s on a 2-core CPU. A ReLU + L1 sparse autoencoder with the
same budget and its default L1 coefficient found 2 to 7 of 10 words per topic: the L1
penalty needs tuning per corpus, TopK's k does not.

:func:`load_stdlib_docstrings` gives a real corpus that needs no network: the docstrings
of the Python standard library's modules.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted

from lucidae.config import (
    TopicsConfig,
)
from lucidae.errors import ConfigError, CorruptFileError, DataError
from lucidae.estimators import TopKAutoEncoder
from lucidae.estimators.persist import load_holder, save_holder

_GENERATORS = (np.random.RandomState, np.random.Generator)

TEXT_SUFFIXES = (".txt", ".md", ".rst")
"""Files read as documents from a folder by :func:`read_documents`."""


@dataclass
class LatentTopic:
    """What one latent stands for: its top words and the documents it fires on most.

    Examples
    --------
    >>> print(LatentTopic(3, [("path", 0.4), ("directory", 0.3)], [(12, 1.5)], 0.133))
    latent 3 (13.3% of documents): path, directory
    """

    latent: int
    """Index of the latent unit."""
    words: list[tuple[str, float]]
    """Top words with their weight in the latent's decoder direction, largest first."""
    documents: list[tuple[int, float]]
    """Top documents (index into the fitted corpus) with the latent's activation, largest first."""
    frequency: float
    """Share of the fitted documents on which the latent is active (non-zero)."""

    def __str__(self) -> str:
        words = ", ".join(w for w, _ in self.words)
        return f"latent {self.latent} ({self.frequency:.1%} of documents): {words}"


class TextTopics(TransformerMixin, BaseEstimator):
    """Learn interpretable latents (topics) from documents with a sparse autoencoder.

    A scikit-learn transformer from documents to latent activations: ``fit``,
    ``transform``, ``fit_transform``, ``get_feature_names_out`` and ``set_output``, so it
    can be cloned, grid-searched and used as the first step of a ``Pipeline``.

    Parameters
    ----------
    n_latents : int, default=32
        Number of latents of the default TopK autoencoder.
    k : int, default=4
        Active latents per document for the default TopK autoencoder.
    vectorizer : {"tfidf", "count"}, default="tfidf"
        TF-IDF (sublinear tf, L2-normalised rows) or raw counts scaled to unit row sums.
    max_features : int, default=5000
        Vocabulary size: the most frequent words are kept.
    min_df : int, default=2
        Words in fewer documents than this are dropped.
    max_df : float, default=0.5
        Words in a larger share of documents than this are dropped (near-stop words).
    stop_words : {"english", "none"}, default="english"
        Drop scikit-learn's English stop words, or keep every word (``None`` also keeps them).
    estimator : lucidae estimator, optional
        Any unfitted lucidae autoencoder to use instead of the default TopK one.
    random_state : int, numpy RandomState or Generator, or None, default=0
        Seed of the autoencoder; the default 0 gives the same topics on every run (on CPU).
        None draws a new seed each fit.
    verbose : int, bool or "auto", default=0
        Training progress; see :class:`lucidae.config.TrainConfig`.

    Attributes
    ----------
    vectorizer_ : sklearn vectoriser
    estimator_ : fitted lucidae estimator
    vocabulary_ : ndarray of str
        The words, one per input column.
    components_ : ndarray of shape (n_latents, n_words)
        Each latent's direction in word space (decoder column, or the change in the
        reconstruction when that latent alone is switched on for non-dictionary models).
    codes_ : ndarray of shape (n_documents, n_latents)
        The fitted documents' latent activations.

    Examples
    --------
    >>> from lucidae.datasets.topics import make_topics
    >>> ds = make_topics(300, n_topics=3, vocab_size=60, random_state=0)
    >>> tt = TextTopics(n_latents=6, k=2, random_state=0).fit(ds.documents)
    >>> [len(t.words) for t in tt.topics(top=5)][:2]
    [5, 5]
    """

    def __init__(
        self,
        *,
        n_latents: int = 32,
        k: int = 4,
        vectorizer: str = "tfidf",
        max_features: int = 5000,
        min_df: int = 2,
        max_df: float = 0.5,
        stop_words: str | None = "english",
        estimator: Any = None,
        random_state: int | np.random.RandomState | np.random.Generator | None = 0,
        verbose: int | bool | str = 0,
    ):
        self.n_latents = n_latents
        self.k = k
        self.vectorizer = vectorizer
        self.max_features = max_features
        self.min_df = min_df
        self.max_df = max_df
        self.stop_words = stop_words
        self.estimator = estimator
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self) -> None:
        def plain(value: Any) -> Any:  # numpy integers (from a parameter grid) count as integers
            return int(value) if isinstance(value, np.integer) else value

        stop_words = "none" if self.stop_words is None else self.stop_words
        cfg = TopicsConfig(
            n_latents=plain(self.n_latents),
            k=plain(self.k) if self.estimator is None else 1,  # k and n_latents only size the default model
            vectorizer=self.vectorizer,
            max_features=plain(self.max_features),
            min_df=plain(self.min_df),
            max_df=self.max_df,
            stop_words=stop_words,
            # a RandomState or Generator is checked, and drawn from, by the autoencoder
            random_state=None if isinstance(self.random_state, _GENERATORS) else plain(self.random_state),
        )
        cfg.validate()

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags

    def _make_vectorizer(self) -> Any:
        from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

        kwargs = dict(
            max_features=int(self.max_features),
            min_df=int(self.min_df),
            max_df=float(self.max_df),
            stop_words=None if self.stop_words in (None, "none") else self.stop_words,
            token_pattern=r"(?u)\b[a-zA-Z_][a-zA-Z0-9_]+\b",  # words, identifiers; no bare numbers
        )
        if self.vectorizer == "tfidf":
            return TfidfVectorizer(sublinear_tf=True, **kwargs)
        return CountVectorizer(**kwargs)

    def _vectorise(self, documents: Any, *, fit: bool) -> np.ndarray:
        if isinstance(documents, str) or not all(isinstance(d, str) for d in documents):
            raise DataError("documents must be a list of strings (one per document).")
        M = self.vectorizer_.fit_transform(documents) if fit else self.vectorizer_.transform(documents)
        X = np.asarray(M.toarray(), dtype=np.float32)  # (docs, words); dense: lucidae trains on arrays
        if self.vectorizer == "count":
            sums = X.sum(axis=1, keepdims=True)
            X = X / np.where(sums > 0, sums, 1.0)
        return X

    def fit(self, documents: Any, y: Any = None) -> TextTopics:
        """Vectorise ``documents`` and train the sparse autoencoder on them.

        Parameters
        ----------
        documents : list of str
        y : ignored

        Returns
        -------
        self

        Examples
        --------
        >>> docs = ["cats purr and cats nap", "dogs bark and dogs run", "cats nap", "dogs run"] * 10
        >>> TextTopics(n_latents=4, k=1, random_state=0).fit(docs).vocabulary_.tolist()
        ['bark', 'cats', 'dogs', 'nap', 'purr', 'run']
        """
        self._check_params()
        start = time.perf_counter()
        documents = list(documents)
        if len(documents) < 2:
            raise DataError(f"Got {len(documents)} document(s); at least 2 are needed to learn topics.")
        self.vectorizer_ = self._make_vectorizer()
        try:
            X = self._vectorise(documents, fit=True)
        except ValueError as err:  # scikit-learn: empty vocabulary after pruning
            raise DataError(
                f"No words are left to learn from ({err}). Lower min_df, raise max_df, or pass longer documents."
            ) from err
        self.vocabulary_ = np.asarray(self.vectorizer_.get_feature_names_out(), dtype=object)
        if self.estimator is None:
            self.estimator_ = TopKAutoEncoder(
                latent_dim=int(self.n_latents), k=int(self.k), random_state=self.random_state, verbose=self.verbose
            )
        else:
            self.estimator_ = clone(self.estimator)
        self.estimator_.fit(X, feature_names=[str(w) for w in self.vocabulary_])
        self.codes_ = np.asarray(self.estimator_.transform(X))  # (docs, latents)
        self.components_ = self._directions()
        self.n_documents_ = len(documents)
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _directions(self) -> np.ndarray:
        """Each latent's direction in word space, (latents, words)."""
        if hasattr(self.estimator_, "components_"):
            return np.asarray(self.estimator_.components_, dtype=np.float32)
        # Any other autoencoder: switch each latent on alone, at its typical active value.
        n_latents = self.codes_.shape[1]
        level = np.where(np.abs(self.codes_).max(axis=0) > 0, np.abs(self.codes_).max(axis=0), 1.0)
        base = self.estimator_.inverse_transform(np.zeros((1, n_latents), np.float32))  # (1, words)
        onehot = np.diag(level).astype(np.float32)  # (latents, latents)
        return (self.estimator_.inverse_transform(onehot) - base).astype(np.float32)

    def fit_transform(self, documents: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        """Fit on ``documents`` and return their latent activations, ``(n_documents, n_latents)``.

        The same as ``fit(documents).transform(documents)``, without vectorising twice.

        Examples
        --------
        >>> from lucidae.datasets.topics import make_topics
        >>> ds = make_topics(200, n_topics=2, vocab_size=40, random_state=0)
        >>> TextTopics(n_latents=4, k=1).fit_transform(ds.documents).shape
        (200, 4)
        """
        return self.fit(documents, y, **fit_params).codes_.copy()

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the output columns: ``latent0``, ``latent1``, ... (the ``latent`` of :meth:`topics`).

        Examples
        --------
        >>> from lucidae.datasets.topics import make_topics
        >>> ds = make_topics(200, n_topics=2, vocab_size=40, random_state=0)
        >>> TextTopics(n_latents=3, k=1).fit(ds.documents).get_feature_names_out().tolist()
        ['latent0', 'latent1', 'latent2']
        """
        check_is_fitted(self, "estimator_")
        return np.asarray([f"latent{i}" for i in range(self.codes_.shape[1])], dtype=object)

    def transform(self, documents: Any) -> np.ndarray:
        """Latent activations of new documents, ``(n_documents, n_latents)``.

        Examples
        --------
        >>> from lucidae.datasets.topics import make_topics
        >>> ds = make_topics(200, n_topics=2, vocab_size=40, random_state=0)
        >>> TextTopics(n_latents=4, k=1, random_state=0).fit(ds.documents).transform(["t0w0 t0w1 t0w2"]).shape
        (1, 4)
        """
        check_is_fitted(self, "estimator_")
        return np.asarray(self.estimator_.transform(self._vectorise(list(documents), fit=False)))

    def topics(self, top: int = 10, n_documents: int = 5) -> list[LatentTopic]:
        """Describe every latent by its top words and top documents, most used latents first.

        Latents that never fire on the fitted documents are left out.

        Parameters
        ----------
        top : int, default=10
            Words per latent.
        n_documents : int, default=5
            Documents per latent.

        Returns
        -------
        list of LatentTopic

        Examples
        --------
        >>> from lucidae.datasets.topics import make_topics
        >>> ds = make_topics(300, n_topics=3, vocab_size=60, random_state=0)
        >>> t = TextTopics(n_latents=6, k=2, random_state=0).fit(ds.documents).topics(top=3)[0]
        >>> len(t.words), 0 < t.frequency <= 1
        (3, True)
        """
        check_is_fitted(self, "estimator_")
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise ConfigError(f"top={top!r} is invalid: expected an integer >= 1.")
        active = self.codes_ != 0  # (docs, latents)
        freq = active.mean(axis=0)
        out = []
        for j in np.argsort(-freq, kind="stable"):
            if freq[j] == 0:
                continue
            words = np.argsort(-self.components_[j], kind="stable")[:top]
            docs = np.argsort(-self.codes_[:, j], kind="stable")[:n_documents]
            out.append(
                LatentTopic(
                    latent=int(j),
                    words=[(str(self.vocabulary_[w]), float(self.components_[j, w])) for w in words],
                    documents=[(int(d), float(self.codes_[d, j])) for d in docs if self.codes_[d, j] != 0],
                    frequency=float(freq[j]),
                )
            )
        return out

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted model to directory ``path``; no pickle.

        The vocabulary and vectoriser settings go to ``config.json``, the inverse document
        frequencies, fitted codes and word directions to ``model.safetensors``; the
        autoencoder inside is saved in its own format in ``path/estimator`` and its
        checksum is recorded, so that a mismatched pair is refused on load.

        Examples
        --------
        >>> import tempfile
        >>> from lucidae.datasets.topics import make_topics
        >>> from lucidae.estimators import TopKAutoEncoder
        >>> ds = make_topics(200, n_topics=2, vocab_size=40, random_state=0)
        >>> sae = TopKAutoEncoder(latent_dim=4, k=1, epochs=20, verbose=0, random_state=0)
        >>> tt = TextTopics(estimator=sae).fit(ds.documents)
        >>> again = load_topics(tt.save(tempfile.mkdtemp() + "/topics"))
        >>> bool((again.transform(ds.documents[:5]) == tt.transform(ds.documents[:5])).all())
        True
        """
        check_is_fitted(self, "estimator_")
        tensors = {
            "codes": torch.from_numpy(np.ascontiguousarray(self.codes_, dtype=np.float32)),
            "components": torch.from_numpy(np.ascontiguousarray(self.components_, dtype=np.float32)),
        }
        if self.vectorizer == "tfidf":
            tensors["idf"] = torch.from_numpy(np.asarray(self.vectorizer_.idf_, dtype=np.float64))
        config = {
            "vocabulary": [str(w) for w in self.vocabulary_],
            "n_documents": int(self.n_documents_),
            "fit_seconds": float(self.fit_seconds_),
        }
        return save_holder(self, path, tensors, config)


def load_topics(path: str | os.PathLike) -> TextTopics:
    """Load a topic model written by :meth:`TextTopics.save` (or ``lucidae topics --save``).

    Raises
    ------
    CorruptFileError
        When a file is missing or damaged, or the inner model is not the one saved with it.

    Examples
    --------
    >>> import tempfile
    >>> from lucidae.estimators import TopKAutoEncoder
    >>> docs = ["cats purr and cats nap", "dogs bark and dogs run", "cats nap", "dogs run"] * 10
    >>> sae = TopKAutoEncoder(latent_dim=4, k=1, epochs=20, verbose=0, random_state=0)
    >>> tt = TextTopics(estimator=sae).fit(docs)
    >>> load_topics(tt.save(tempfile.mkdtemp() + "/t")).vocabulary_.tolist()
    ['bark', 'cats', 'dogs', 'nap', 'purr', 'run']
    """
    root = Path(path)
    config, tensors, inner = load_holder(root, "TextTopics", "a TextTopics model")
    try:
        tt = TextTopics(**dict(config["params"]))
        tt._check_params()
        vocabulary = [str(w) for w in config["vocabulary"]]
        tt.vectorizer_ = tt._make_vectorizer()
        tt.vectorizer_.vocabulary_ = {w: i for i, w in enumerate(vocabulary)}
        if tt.vectorizer == "tfidf":
            tt.vectorizer_.idf_ = tensors["idf"].numpy()
        tt.vocabulary_ = np.asarray(vocabulary, dtype=object)
        tt.estimator_ = inner
        tt.codes_ = tensors["codes"].numpy()
        tt.components_ = tensors["components"].numpy()
        tt.n_documents_ = int(config["n_documents"])
        tt.fit_seconds_ = float(config.get("fit_seconds", 0.0))
    except (KeyError, TypeError, ValueError) as err:
        raise CorruptFileError(f"{root / 'config.json'} is not a valid TextTopics config: {err!r}") from err
    n_words, n_latents = len(tt.vocabulary_), tt.components_.shape[0]
    shapes_ok = (
        tt.estimator_.n_features_in_ == n_words
        and tt.components_.shape == (n_latents, n_words)
        and tt.codes_.shape == (tt.n_documents_, n_latents)
        and (tt.vectorizer != "tfidf" or tt.vectorizer_.idf_.shape == (n_words,))
    )
    if not shapes_ok:
        raise CorruptFileError(f"The arrays stored in {root} do not match its vocabulary of {n_words} words.")
    return tt


def read_documents(spec: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Documents and their names from ``"stdlib"``, a text file or a folder.

    Parameters
    ----------
    spec : str or path-like
        ``"stdlib"``: the standard library's docstrings (:func:`load_stdlib_docstrings`).
        A file: one document per non-empty line, named ``line N``. A folder: every
        ``.txt``, ``.md`` and ``.rst`` file below it is one document, named by its path
        relative to the folder.

    Returns
    -------
    documents : list of str
    names : list of str

    Raises
    ------
    DataError
        For a path that does not exist, a folder without text files, or text that is not UTF-8.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "docs.txt"
    >>> _ = p.write_text("first document\\n\\nsecond one\\n")
    >>> read_documents(p)
    (['first document', 'second one'], ['line 1', 'line 3'])
    """
    if str(spec) == "stdlib":
        return load_stdlib_docstrings()
    path = Path(spec).expanduser()
    try:
        if path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()
            pairs = [(line.strip(), f"line {i}") for i, line in enumerate(lines, 1) if line.strip()]
        elif path.is_dir():
            files = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in TEXT_SUFFIXES)
            if not files:
                raise DataError(f"{path} holds no {', '.join(TEXT_SUFFIXES)} files; put one document per file there.")
            pairs = [(f.read_text(encoding="utf-8"), str(f.relative_to(path))) for f in files]
        else:
            raise DataError(
                f"--data {str(spec)!r} is neither 'stdlib' nor an existing file or folder. Give a text file "
                "(one document per line) or a folder of .txt/.md/.rst files (one document per file)."
            )
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start}); convert it first.") from err
    return [d for d, _ in pairs], [n for _, n in pairs]


def load_stdlib_docstrings(*, min_length: int = 200, max_modules: int | None = None) -> tuple[list[str], list[str]]:
    """Docstrings of the Python standard library's modules: a real text corpus, offline.

    Each document is one module's docstring joined with the docstrings of its public
    classes and functions. Modules are read from the source files of the running Python
    (``ast``, never imported, so nothing is executed); test packages and private
    modules are skipped.

    Parameters
    ----------
    min_length : int, default=200
        Modules with less text than this (characters) are left out.
    max_modules : int, optional
        Stop after this many modules (sorted by name).

    Returns
    -------
    documents : list of str
    names : list of str
        The module name of each document.

    Examples
    --------
    >>> docs, names = load_stdlib_docstrings(max_modules=20)
    >>> len(docs) == len(names) and all(isinstance(d, str) for d in docs)
    True
    """
    import ast
    import os
    import sysconfig
    from pathlib import Path

    root = Path(sysconfig.get_paths()["stdlib"])
    skip_dirs = {"site-packages", "dist-packages", "test", "tests", "idle_test", "idlelib", "lib2to3", "turtledemo"}
    files = []
    for folder, dirs, names_here in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in skip_dirs and not d.startswith(("_", ".")))
        for fname in sorted(names_here):
            if not fname.endswith(".py") or (fname.startswith(("_", "test")) and fname != "__init__.py"):
                continue
            rel = (Path(folder) / fname).relative_to(root)
            files.append((".".join(rel.with_suffix("").parts).removesuffix(".__init__"), root / rel))
    files.sort()
    documents, names = [], []
    for name, path in files:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        texts = [ast.get_docstring(tree) or ""]
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith(
                "_"
            ):
                texts.append(ast.get_docstring(node) or "")
        text = "\n".join(t for t in texts if t)
        if len(text) >= min_length:
            documents.append(text)
            names.append(name)
        if max_modules is not None and len(documents) >= max_modules:
            break
    return documents, names
