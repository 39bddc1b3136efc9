"""Hybrid retrieval: dense (FAISS inner product over normalized vectors) and BM25, fused by rank."""

from __future__ import annotations

import numpy as np

from qa import dense
from qa.store import IndexData
from qa.types import Hit

RRF_K = 60  # the constant of reciprocal-rank fusion (Cormack et al., 2009)


class Retriever:
    def __init__(self, index: IndexData, depth: int = 50) -> None:
        self.index = index
        self.depth = depth

    def search(self, question: str, query_vector: np.ndarray, k: int) -> list[Hit]:
        """The best `k` chunk rows, by reciprocal-rank fusion of the two rankings."""
        size = len(self.index.chunks)
        if size == 0:
            return []
        depth = min(size, max(self.depth, 4 * k))
        _, dense_rows = dense.search(self.index.dense, query_vector, depth)
        dense_rows = [int(r) for r in dense_rows[0] if r >= 0]
        bm25 = self.index.lexical.scores(question)
        lexical_rows = _top(bm25, depth)
        lexical_rows = [r for r in lexical_rows if bm25[r] > 0]
        fused: dict[int, list] = {}
        for rank, row in enumerate(dense_rows, 1):
            fused.setdefault(row, [0.0, None, None])
            fused[row][0] += 1.0 / (RRF_K + rank)
            fused[row][1] = rank
        for rank, row in enumerate(lexical_rows, 1):
            fused.setdefault(row, [0.0, None, None])
            fused[row][0] += 1.0 / (RRF_K + rank)
            fused[row][2] = rank
        hits = [Hit(row, score, dense, lexical) for row, (score, dense, lexical) in fused.items()]
        hits.sort(key=lambda h: (-h.score, h.row))
        return hits[:k]


def _top(scores: np.ndarray, n: int) -> list[int]:
    if len(scores) <= n:
        return [int(i) for i in np.argsort(-scores, kind="stable")]
    part = np.argpartition(-scores, n)[:n]
    return [int(i) for i in part[np.argsort(-scores[part], kind="stable")]]
