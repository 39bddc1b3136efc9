"""Hybrid retrieval on hand-set scores: the fusion keeps how far apart the scores are, not only their order."""

from types import SimpleNamespace

import faiss
import numpy as np

from qa.retrieval import Retriever


class Scores:
    """A stand-in for the BM25 side: the same scores whatever the question."""

    def __init__(self, scores: list[float]) -> None:
        self._scores = np.asarray(scores, dtype=np.float32)

    def scores(self, question: str) -> np.ndarray:
        return self._scores


def index_of(cosines: list[float], bm25: list[float]) -> tuple[SimpleNamespace, np.ndarray]:
    """Rows whose cosine to the returned query vector and BM25 score are those given."""
    size = len(cosines)
    query = np.zeros(size + 1, dtype=np.float32)
    query[0] = 1.0
    vectors = np.zeros((size, size + 1), dtype=np.float32)
    for row, cosine in enumerate(cosines):
        vectors[row, 0] = cosine
        vectors[row, row + 1] = np.sqrt(1 - cosine**2)
    flat = faiss.IndexFlatIP(size + 1)
    flat.add(vectors)
    return SimpleNamespace(chunks=[None] * size, vectors=vectors, dense=flat, lexical=Scores(bm25)), query


def test_a_passage_far_closer_in_meaning_than_the_rest_comes_first():
    # Row 0 is much closer to the question than any other (0.9 against 0.5 and below) and
    # middling on words (13th of 20); every other row is a little better on words than the next.
    # Fusing ranks would put five rows that are merely good on both sides above it.
    cosines = [0.9] + [0.50 - 0.01 * i for i in range(19)]
    bm25 = [2.0 - 0.05 * 11.5] + [2.0 - 0.05 * i for i in range(19)]
    index, query = index_of(cosines, bm25)
    hits = Retriever(index).search("question", query, k=5)
    assert hits[0].row == 0
    assert (hits[0].dense_rank, hits[0].lexical_rank) == (1, 13)


def test_a_passage_far_ahead_on_words_comes_first():
    # The same with the sides swapped: row 0 holds the question's rare words, its meaning is middling.
    cosines = [0.50 - 0.01 * 11.5] + [0.50 - 0.01 * i for i in range(19)]
    bm25 = [9.0] + [2.0 - 0.05 * i for i in range(19)]
    index, query = index_of(cosines, bm25)
    assert Retriever(index).search("question", query, k=5)[0].row == 0


def test_without_a_known_word_the_order_is_the_dense_order():
    cosines = [0.2, 0.7, 0.4, 0.9, 0.1]
    index, query = index_of(cosines, [0.0] * 5)
    hits = Retriever(index).search("question", query, k=10)
    assert [h.row for h in hits] == [3, 1, 2, 0, 4]
    assert all(h.lexical_rank is None for h in hits)


def test_every_row_is_returned_once_when_k_exceeds_the_index():
    index, query = index_of([0.3, 0.6, 0.5], [1.0, 0.0, 2.0])
    hits = Retriever(index).search("question", query, k=10)
    assert sorted(h.row for h in hits) == [0, 1, 2]
    assert hits[0].score >= hits[1].score >= hits[2].score


def test_the_order_does_not_depend_on_how_many_rows_are_asked_for():
    rng = np.random.default_rng(7)
    index, query = index_of(rng.uniform(0.1, 0.9, 80).tolist(), rng.uniform(0.0, 5.0, 80).tolist())
    retriever = Retriever(index, depth=10)
    few, many = retriever.search("question", query, k=3), retriever.search("question", query, k=20)
    assert [(h.row, h.score) for h in few] == [(h.row, h.score) for h in many[:3]]
