"""The dense index chosen by size: exact while small, IVF-SQ8 above a threshold, updated in place."""

import faiss
import numpy as np
import pytest

from ingest.sync import sync
from qa import store
from qa.store import dense
from tests.conftest import ROOT, FakeEmbedder, write

K = 10


@pytest.fixture(scope="module")
def seeds() -> np.ndarray:
    """Vectors of real text (the bundled corpus's lines, hashed bags of words): the generator's seeds."""
    lines = [line for path in sorted((ROOT / "corpus").glob("*.md")) for line in path.read_text(encoding="utf-8").splitlines() if len(line) > 40]
    return FakeEmbedder(dimension=96).encode_passages(lines)


@pytest.fixture(scope="module")
def generated(seeds) -> tuple[np.ndarray, np.ndarray]:
    return dense.corpus_like(seeds, 21_000, 100)


@pytest.fixture(scope="module")
def corpus(generated) -> tuple[np.ndarray, np.ndarray]:
    """20,000 rows and 100 held-out queries."""
    return generated[0][:20_000], generated[1]


@pytest.fixture(scope="module")
def later(generated) -> np.ndarray:
    """1,000 more rows of the same collection, added by updates."""
    return generated[0][20_000:]


@pytest.fixture(scope="module")
def approximate(corpus) -> faiss.Index:
    vectors, _ = corpus
    return dense.build(vectors, approx_from=10_000)


def exact_rows(vectors: np.ndarray, queries: np.ndarray, k: int = K) -> np.ndarray:
    return dense.search(dense.build(vectors, approx_from=len(vectors) + 1), queries, k)[1]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found.tolist(), truth.tolist())]))


def ids_of(index: faiss.Index) -> np.ndarray:
    return dense._ids(index)


def test_the_index_type_follows_the_row_count(corpus, approximate) -> None:
    vectors, _ = corpus
    assert type(dense.build(vectors[:9_999], approx_from=10_000)) is faiss.IndexFlatIP
    assert type(dense.build(vectors[:0], approx_from=10_000)) is faiss.IndexFlatIP
    assert isinstance(approximate, faiss.IndexIVFScalarQuantizer) and dense.is_approximate(approximate)
    assert approximate.ntotal == len(vectors) and approximate.nlist == dense.nlist_for(len(vectors))
    assert np.array_equal(ids_of(approximate), np.arange(len(vectors)))  # ids are rows
    assert dense.nlist_for(1_000_000) == 4096 and dense.nlist_for(100) == 2 and dense.nlist_for(3) == 1
    with pytest.raises(ValueError, match="float32 rows"):
        dense.build(vectors.astype(np.float64))


def test_approximate_recall_against_exact_search(corpus, approximate) -> None:
    vectors, queries = corpus
    scores, rows = dense.search(approximate, queries, K)
    assert recall(rows, exact_rows(vectors, queries)) >= 0.95
    assert rows.shape == (len(queries), K) and np.all(np.diff(scores, axis=1) <= 1e-6)  # best first
    assert dense.search(approximate, queries[0], K)[1].shape == (1, K)  # one query as a vector


def test_rows_removed_renumbered_and_added_without_retraining(corpus, later) -> None:
    vectors, queries = corpus
    index = dense.build(vectors, approx_from=10_000)
    centroids = index.quantizer.reconstruct_n(0, index.nlist)
    rng = np.random.default_rng(7)
    n, changed = len(vectors), 1_000
    gone = rng.choice(n, changed, replace=False)
    keep = np.ones(n, bool)
    keep[gone] = False
    new = np.zeros(n, bool)  # new rows land between kept ones, as when documents are replaced
    new[rng.choice(n, changed, replace=False)] = True
    fresh = later
    new_row = np.full(n, -1, np.int64)
    new_row[keep] = np.flatnonzero(~new)
    after = np.empty_like(vectors)
    after[~new], after[new] = vectors[keep], fresh
    added = np.flatnonzero(new)

    dense.update(index, new_row, fresh, added)

    assert index.ntotal == n and np.array_equal(ids_of(index), np.arange(n))
    assert np.array_equal(index.quantizer.reconstruct_n(0, index.nlist), centroids)  # not retrained
    asked = np.concatenate([queries, after[added[:50]]])
    _, rows = dense.search(index, asked, K)
    assert recall(rows, exact_rows(after, asked)) >= 0.95
    assert np.array_equal(rows[len(queries) :, 0], added[:50])  # an added vector finds its own row first
    _, rebuilt = dense.search(dense.build(after, approx_from=10_000), asked, K)
    assert recall(rows, rebuilt) >= 0.95  # as a fresh build would answer
    with pytest.raises(ValueError, match="maps"):
        dense.update(index, new_row[:-1], fresh, added)
    with pytest.raises(ValueError, match="approximate"):
        dense.update(dense.build(vectors[:100]), new_row[:100], fresh[:0], added[:0])


def test_suits_refuses_rows_of_topics_the_training_never_saw(corpus, later, seeds, approximate) -> None:
    vectors, _ = corpus
    unseen, _ = dense.corpus_like(seeds, 1_000, 0, seed=5)
    assert dense.suits(approximate, vectors[:2000], later)
    assert not dense.suits(approximate, vectors[:2000], unseen)
    assert dense.suits(approximate, vectors[:2000], unseen[:10])  # under 1% of the rows: not worth a retrain


def test_write_and_read_round_trip(tmp_path, corpus, approximate) -> None:
    vectors, queries = corpus
    for index in (approximate, dense.build(vectors[:500])):
        dense.write(index, tmp_path / "dense.faiss")
        again = dense.read(tmp_path / "dense.faiss")
        assert type(again) is type(index) and again.ntotal == index.ntotal
        assert np.array_equal(dense.search(again, queries, K)[1], dense.search(index, queries, K)[1])
    (tmp_path / "bad.faiss").write_bytes(b"not an index")
    with pytest.raises(RuntimeError):
        dense.read(tmp_path / "bad.faiss")
    shifted = dense.build(vectors[:1000], approx_from=100)
    dense.update(shifted, np.arange(1000) + 5, vectors[:0], np.zeros(0, np.int64))  # ids past the last row
    dense.write(shifted, tmp_path / "shifted.faiss")
    with pytest.raises(ValueError, match="not its rows"):
        dense.read(tmp_path / "shifted.faiss")


def test_the_store_moves_a_trained_index_to_the_new_rows(tmp_path, monkeypatch) -> None:
    """Above the threshold an edit reuses the live version's trained index; search still finds
    each chunk's own row, and answers match a fresh build's."""
    monkeypatch.setattr(dense, "APPROX_FROM", 20)
    docs, index_dir = tmp_path / "docs", tmp_path / "index"
    for number in range(12):
        write(docs / f"doc{number}.txt", "\n\n".join(f"Paragraph {p} of document {number} about topic {number * 7 + p} and more words." for p in range(60)))
    embedder = FakeEmbedder()
    sync([docs], index_dir, embedder=embedder)
    first = store.load_index(index_dir)
    assert dense.is_approximate(first.dense) and first.dense.ntotal == len(first.chunks) >= 50
    updates = []
    monkeypatch.setattr(dense, "update", lambda *a, _update=dense.update: updates.append(a[1]) or _update(*a))
    write(docs / "doc0.txt", "\n\n".join(f"Paragraph {p} of document 0 about topic {p + 3} and more words." for p in range(20)))
    (docs / "doc3.txt").unlink()
    write(docs / "doc35.txt", "\n\n".join(f"Paragraph {p} of document 35 about topic {p + 9} and more words." for p in range(30)))
    sync([docs], index_dir, embedder=embedder)
    second = store.load_index(index_dir)
    assert len(updates) == 1 and (updates[0] == -1).sum() == first.block("doc0.txt").vectors.shape[0] + first.block("doc3.txt").vectors.shape[0]
    assert dense.is_approximate(second.dense) and second.dense.ntotal == len(second.chunks)
    assert np.array_equal(ids_of(second.dense), np.arange(len(second.chunks)))
    vectors = np.asarray(second.vectors)
    _, rows = dense.search(second.dense, vectors, 1)
    own = rows[:, 0] == np.arange(len(vectors))
    cos = np.sum(vectors * vectors[rows[:, 0]], axis=1)
    assert own.mean() >= 0.9 and np.all(cos >= 0.95)  # else a near-duplicate chunk, within 8-bit code error
    _, rebuilt = dense.search(dense.build(vectors, approx_from=20), vectors, 5)
    assert recall(dense.search(second.dense, vectors, 5)[1], rebuilt) >= 0.95


def test_small_indexes_stay_exact(tmp_path, small_corpus, fake_embedder) -> None:
    sync([small_corpus], tmp_path / "index", embedder=fake_embedder)
    assert type(store.load_index(tmp_path / "index").dense) is faiss.IndexFlatIP
