"""BM25 over chunk texts (bm25s), with one tokenizer shared by indexing and querying."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

_TOKEN = re.compile(r"\w+", re.UNICODE)

# Function words and question words: they carry no evidence of where an answer is.
STOP_WORDS = frozenset(
    """a an the of in on at to for from by with and or but if is are was were be been being am as that this
    these those it its which who whom whose what when where why how did do does doing done has have having had
    not no nor than then there their theirs they them he she his her hers him we our ours you your yours i me my
    mine also into about over after before during under between through up out so such can could would should
    may might will shall must very just any all each some other own same too only both few more most""".split()
)


class Tokenizer:
    """Lowercase word tokens, English stop words removed, Snowball-stemmed."""

    def __init__(self) -> None:
        import Stemmer

        self._stem = Stemmer.Stemmer("english").stemWords
        self._stop = STOP_WORDS

    def __call__(self, text: str) -> list[str]:
        words = [w for w in _TOKEN.findall(text.lower()) if w not in self._stop]
        return self._stem(words)


class LexicalIndex:
    """BM25 (Lucene variant: its IDF is positive even for a term in every passage, so a
    one-document corpus still ranks)."""

    def __init__(self, retriever, size: int, tokenizer: Tokenizer) -> None:
        self._retriever = retriever
        self.size = size
        self.tokenize = tokenizer

    @classmethod
    def build(cls, texts: list[str], tokenizer: Tokenizer | None = None) -> "LexicalIndex":
        import bm25s

        tokenizer = tokenizer or Tokenizer()
        retriever = None
        if texts:
            retriever = bm25s.BM25(method="lucene")
            # An empty token list would make an empty row; "" keeps every passage present.
            retriever.index([tokenizer(t) or [""] for t in texts], show_progress=False)
        return cls(retriever, len(texts), tokenizer)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if self._retriever is not None:
            self._retriever.save(str(directory), show_progress=False)

    @classmethod
    def load(cls, directory: Path, size: int) -> "LexicalIndex":
        import bm25s

        retriever = None
        if size:
            retriever = bm25s.BM25.load(str(directory), allow_pickle=False, load_corpus=False)
            if retriever.scores["num_docs"] != size:
                raise ValueError(f"BM25 index holds {retriever.scores['num_docs']} passages, expected {size}")
        return cls(retriever, size, Tokenizer())

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every passage, in row order (zeros when no query word is known)."""
        if self._retriever is None:
            return np.zeros(0, dtype=np.float32)
        ids = self._retriever.get_tokens_ids(self.tokenize(query))
        if not ids:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._retriever.get_scores_from_ids(ids), dtype=np.float32)

    def idf(self, tokens: list[str]) -> dict[str, float]:
        """Lucene IDF of each known token (unknown tokens are left out: no passage holds them)."""
        if self._retriever is None:
            return {}
        indptr = self._retriever.scores["indptr"]
        vocab = self._retriever.vocab_dict
        n = self.size
        out = {}
        for token in tokens:
            column = vocab.get(token)
            if column is not None and column + 1 < len(indptr):
                df = int(indptr[column + 1] - indptr[column])
                out[token] = float(np.log(1 + (n - df + 0.5) / (df + 0.5)))
        return out
