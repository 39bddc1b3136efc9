"""Hybrid retrieval: dense (FAISS inner product over normalized vectors) and BM25, fused by a
convex combination of their scores, each scaled to [0, 1] over its own best rows."""

from __future__ import annotations

import numpy as np

from qa.store import IndexData, dense
from qa.types import Hit

# The dense side's share of the fused score; BM25 has the rest. Equal shares: on the dev set and
# three held-out sets, 0.4 and 0.6 each do better on some and worse on others (README, "What was
# tried").
DENSE_WEIGHT = 0.5


class Retriever:
    def __init__(self, index: IndexData, depth: int = 50) -> None:
        self.index = index
        self.depth = depth

    def search(self, question: str, query_vector: np.ndarray, k: int) -> list[Hit]:
        """The best `k` chunk rows by fused score (Bruch et al., 2023). Each side's scores are
        scaled so that its `depth` best rows span [0, 1], whatever `k`, so the order does not
        depend on how many rows are asked for; unlike a fusion of ranks, a passage far closer to
        the question than the rest on one side keeps that lead."""
        size = len(self.index.chunks)
        if size == 0:
            return []
        depth = min(size, max(self.depth, 4 * k))  # candidates; the scale is set by the first self.depth
        _, found = dense.search(self.index.dense, query_vector, depth)
        dense_rows = [int(r) for r in found[0] if r >= 0]
        bm25 = self.index.lexical.scores(question)
        lexical_rows = [r for r in _top(bm25, depth) if bm25[r] > 0]
        rows = list(dict.fromkeys(dense_rows + lexical_rows))
        # Exact cosines, also for the rows only BM25 found (the dense index may be approximate).
        cosine = self.index.vectors[rows] @ query_vector
        fused = DENSE_WEIGHT * _scaled(cosine, cosine[: min(len(dense_rows), self.depth)])
        if lexical_rows:
            fused += (1 - DENSE_WEIGHT) * _scaled(bm25[rows], bm25[lexical_rows[: self.depth]])
        dense_rank = {row: rank for rank, row in enumerate(dense_rows, 1)}
        lexical_rank = {row: rank for rank, row in enumerate(lexical_rows, 1)}
        hits = [
            Hit(row, float(score), float(close), dense_rank.get(row), lexical_rank.get(row))
            for row, score, close in zip(rows, fused, cosine)
        ]
        hits.sort(key=lambda h: (-h.score, h.row))
        return hits[:k]


def _scaled(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`values` scaled so that the lowest of `reference` is 0 and its highest 1, clipped to [0, 1]."""
    low, high = float(np.min(reference)), float(np.max(reference))
    if high <= low:
        return (values >= high).astype(np.float64)
    return np.clip((values.astype(np.float64) - low) / (high - low), 0.0, 1.0)


def _top(scores: np.ndarray, n: int) -> list[int]:
    if len(scores) <= n:
        return [int(i) for i in np.argsort(-scores, kind="stable")]
    part = np.argpartition(-scores, n)[:n]
    return [int(i) for i in part[np.argsort(-scores[part], kind="stable")]]
