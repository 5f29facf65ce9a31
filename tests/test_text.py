import numpy as np
import pytest

from lucidae.applications.text import TextTopics, load_stdlib_docstrings
from lucidae.datasets.topics import make_topics
from lucidae.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def corpus():
    return make_topics(1500, n_topics=8, vocab_size=400, random_state=0)


@pytest.fixture(scope="module")
def fitted(corpus):
    return TextTopics(n_latents=24, k=3, random_state=0).fit(corpus.documents)


def test_make_topics_follows_its_generative_model(corpus):
    ds = corpus
    assert ds.X.shape == (1500, 400) and ds.factors.shape == (1500, 8)
    np.testing.assert_allclose(ds.factors.sum(axis=1), 1.0, rtol=1e-5)
    # the counts are the documents' words
    for d in (0, 7, 1499):
        words = ds.documents[d].split()
        assert ds.X[d].sum() == len(words)
        assert ds.X[d, ds.feature_names.index(words[0])] == words.count(words[0])
    # each topic owns disjoint words named after it, and its own words dominate its documents
    owned = [set(w) for w in ds.topic_words]
    assert all(not (a & b) for i, a in enumerate(owned) for b in owned[i + 1 :])
    for k, words in enumerate(ds.topic_words):
        assert all(ds.feature_names[w].startswith(f"t{k}w") for w in words)
        main = ds.X[ds.factors[:, k] > 0.9]
        other = [w for j, ws in enumerate(ds.topic_words) if j != k for w in ws]
        assert main[:, words].sum() > 10 * main[:, other].sum()
    # about 30% background words
    bg = [i for i, n in enumerate(ds.feature_names) if n.startswith("bg")]
    assert ds.X[:, bg].sum() / ds.X.sum() == pytest.approx(0.3, abs=0.02)


def test_every_planted_topic_is_captured_by_a_latent(fitted, corpus):
    found = []
    for words in corpus.topic_words:
        names = {corpus.feature_names[w] for w in words}
        best = max(sum(w in names for w, _ in t.words) for t in fitted.topics(top=10))
        found.append(best)
    assert min(found) >= 6, found  # each topic: some latent whose top 10 words are mostly its own


def test_top_documents_are_about_the_latents_topic(fitted, corpus):
    for t in fitted.topics(top=10)[:8]:
        topic = int(t.words[0][0][1 : t.words[0][0].index("w")])
        docs = [d for d, _ in t.documents]
        assert len(docs) == 5
        assert np.mean(corpus.factors[docs, topic]) > 0.5
        acts = [a for _, a in t.documents]
        assert acts == sorted(acts, reverse=True)


def test_transform_new_documents(fitted, corpus):
    topic = corpus.topic_words[2]
    doc = " ".join(corpus.feature_names[w] for w in topic[:6])
    z = fitted.transform([doc])
    assert z.shape == (1, 24) and (z != 0).sum() <= 3
    best = int(np.argmax(z[0]))
    top = [w for w, _ in next(t for t in fitted.topics() if t.latent == best).words]
    assert sum(w.startswith("t2w") for w in top) >= 6


def test_any_estimator_inside(corpus):
    from lucidae import AutoEncoder

    ae = AutoEncoder(latent_dim=8, hidden_dims=(), epochs=5, verbose=0, random_state=0)
    tt = TextTopics(estimator=ae).fit(corpus.documents[:300])
    assert tt.components_.shape == (8, len(tt.vocabulary_))
    assert all(len(t.words) == 10 for t in tt.topics())


def test_bad_input():
    with pytest.raises(ConfigError, match="k=40"):
        TextTopics(n_latents=8, k=40).fit(["a b", "c d"])
    with pytest.raises(ConfigError, match="vectorizer='bert'"):
        TextTopics(vectorizer="bert").fit(["a b", "c d"])
    with pytest.raises(DataError, match="list of strings"):
        TextTopics().fit([1, 2, 3])
    with pytest.raises(DataError, match="No words are left"):
        TextTopics(min_df=5).fit(["alpha beta", "gamma delta"])
    with pytest.raises(ConfigError, match="random_state=1.5"):
        TextTopics(random_state=1.5).fit(["a b", "c d"])
    # numpy integers, as a parameter grid gives them, are integers
    TextTopics(n_latents=np.int64(8), k=np.int32(2), min_df=np.int64(1), random_state=np.int64(0))._check_params()


def test_stdlib_docstrings_are_a_real_offline_corpus():
    docs, names = load_stdlib_docstrings(max_modules=40)
    assert len(docs) == 40 and len(set(names)) == 40
    assert all(len(d) >= 200 for d in docs)
    assert not any(n.split(".")[-1].startswith("test") for n in names)


def test_params_mirror_the_config_that_makes_the_cli_options():
    import inspect

    from lucidae.applications.text import TopicsConfig
    from lucidae.config import defaults, field_docs

    params = {
        name: p.default
        for name, p in inspect.signature(TextTopics).parameters.items()
        if name not in ("estimator", "verbose")
    }
    assert params == defaults(TopicsConfig)
    assert set(field_docs(TopicsConfig)) == set(params)  # every field documented


@pytest.mark.parametrize("vectorizer", ["tfidf", "count"])
def test_save_load_round_trip_is_exact(tmp_path, corpus, vectorizer):
    from lucidae.applications import load_topics

    docs = corpus.documents[:400]
    tt = TextTopics(n_latents=8, k=2, vectorizer=vectorizer, random_state=0).fit(docs)
    again = load_topics(tt.save(tmp_path / "topics"))
    new_docs = corpus.documents[1000:1050]
    np.testing.assert_array_equal(again.transform(new_docs), tt.transform(new_docs))
    np.testing.assert_array_equal(again.codes_, tt.codes_)
    assert [str(t) for t in again.topics()] == [str(t) for t in tt.topics()]
    assert again.get_params() == tt.get_params()


def test_a_saved_topic_model_is_not_mistaken_for_an_estimator_or_mismatched(tmp_path, corpus):
    from lucidae import AutoEncoder, load
    from lucidae.applications import load_topics
    from lucidae.errors import CorruptFileError
    from lucidae.estimators import NotAnEstimatorError
    from lucidae.estimators import load as load_estimator

    tt = TextTopics(n_latents=6, k=2, random_state=0).fit(corpus.documents[:300])
    path = tt.save(tmp_path / "topics")
    with pytest.raises(NotAnEstimatorError, match="load_topics"):
        load_estimator(path)  # the estimators' own loader says where to go
    assert type(load(path)) is TextTopics  # lucidae.load loads any saved lucidae object
    # another model in place of the inner one is refused by its checksum
    other = AutoEncoder(latent_dim=2, epochs=1, verbose=0, random_state=0).fit(np.random.default_rng(0).random((50, 5)))
    other.save(path / "estimator")
    with pytest.raises(CorruptFileError, match="checksums differ"):
        load_topics(path)


def test_read_documents_from_a_file_and_a_folder(tmp_path):
    from lucidae.applications.text import read_documents

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "b.md").write_text("second doc")
    (tmp_path / "docs" / "sub").mkdir()
    (tmp_path / "docs" / "sub" / "a.txt").write_text("nested doc")
    (tmp_path / "docs" / "skip.bin").write_bytes(b"\x00\x01")
    assert read_documents(tmp_path / "docs") == (["second doc", "nested doc"], ["b.md", "sub/a.txt"])
    (tmp_path / "lines.txt").write_text("one\n  \ntwo\n")
    assert read_documents(tmp_path / "lines.txt") == (["one", "two"], ["line 1", "line 3"])
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        read_documents(tmp_path / "latin1.txt")
    with pytest.raises(DataError, match="neither 'stdlib' nor"):
        read_documents(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no"):
        read_documents(tmp_path / "empty")


def test_cli_topics_prints_saves_and_writes_json(tmp_path, corpus):
    import json

    from typer.testing import CliRunner

    from lucidae.applications import load_topics
    from lucidae.cli import app

    folder = tmp_path / "corpus"
    folder.mkdir()
    for i, doc in enumerate(corpus.documents[:600]):
        (folder / f"doc{i:04d}.txt").write_text(doc)
    args = ["topics", "--data", str(folder), "--n-latents", "12", "--k", "2", "--random-state", "0"]
    args += ["--top", "6", "--save", str(tmp_path / "model"), "--out", str(tmp_path / "topics.json")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    topics = json.loads((tmp_path / "topics.json").read_text())
    assert topics and all(len(t["words"]) == 6 for t in topics)
    assert all(d["name"].startswith("doc") for t in topics for d in t["documents"])
    first = topics[0]
    assert f"latent {first['latent']} (" in result.output
    assert ", ".join(w["word"] for w in first["words"]) in result.output
    saved = load_topics(tmp_path / "model")
    assert [t.latent for t in saved.topics()] == [t["latent"] for t in topics]
    info = CliRunner().invoke(app, ["info", str(tmp_path / "model"), "--json"])
    assert info.exit_code == 0, info.output
    described = json.loads(info.output)
    assert described["estimator"] == "TextTopics" and described["n_documents"] == 600
    assert [t["latent"] for t in described["topics"]] == [t["latent"] for t in topics]
    bad = CliRunner().invoke(app, ["topics", "--data", str(folder), "--k", "64"])
    assert bad.exit_code == 2 and "k=64 is larger than n_latents=32" in bad.output
