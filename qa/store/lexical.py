"""BM25 over chunk texts (bm25s), with one tokenizer shared by indexing and querying."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_TOKEN = re.compile(r"\w+", re.UNICODE)
COUNTS = ("counts.indptr.npy", "counts.columns.npy", "counts.values.npy")  # term counts per passage (CSR)

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

    def __init__(self, retriever, size: int, tokenizer: Tokenizer, counts: tuple | None = None) -> None:
        self._retriever = retriever
        self.size = size
        self.tokenize = tokenizer
        self._counts = counts  # (indptr, columns, values) when built here, saved alongside

    @classmethod
    def build(cls, texts: list[str], tokenizer: Tokenizer | None = None) -> "LexicalIndex":
        counts = TermCounts(tokenizer)
        counts.add_texts(texts)
        return counts.build()

    @classmethod
    def from_counts(cls, terms: list[str], indptr: np.ndarray, columns: np.ndarray, values: np.ndarray, tokenizer: Tokenizer) -> "LexicalIndex":
        """BM25 scores of every (passage, term), computed exactly as bm25s's `index` does, but
        vectorized and from counts, so unchanged passages need not be tokenized again."""
        import bm25s
        import scipy.sparse as sp

        retriever = bm25s.BM25(method="lucene")
        size = len(indptr) - 1
        lengths = np.add.reduceat(values, indptr[:-1], dtype=np.int64)  # tokens per passage
        average = lengths.mean()  # bm25s: np.array([len(doc) for doc in corpus]).mean()
        frequencies = np.bincount(columns, minlength=len(terms))
        idf = np.array([math.log(1 + (size - df + 0.5) / (df + 0.5)) for df in frequencies.tolist()], dtype=np.float32)
        k1, b = retriever.k1, retriever.b
        norm = np.repeat(k1 * ((1 - b) + b * lengths / average), np.diff(indptr))  # per passage, as bm25s
        tf = values.astype(np.float64)
        scores = (idf[columns] * (tf / (norm + tf))).astype(np.float32)
        matrix = sp.csr_matrix((scores, columns, indptr), shape=(size, len(terms))).tocsc()
        retriever.scores = {"data": matrix.data, "indices": matrix.indices.astype(np.int32, copy=False), "indptr": matrix.indptr.astype(np.int64, copy=False), "num_docs": size}
        retriever.vocab_dict = {term: i for i, term in enumerate(terms)}
        retriever.unique_token_ids_set = set(range(len(terms)))
        retriever.nonoccurrence_array = None  # only the BM25L and BM25+ variants use it
        return cls(retriever, size, tokenizer, (indptr, columns, values))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if self._retriever is not None:
            self._retriever.save(str(directory), show_progress=False)
        if self._counts is not None and self.size:
            for name, array in zip(COUNTS, self._counts):
                np.save(directory / name, array, allow_pickle=False)

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


class TermCounts:
    """How often each term occurs in each passage, appended passage by passage in row order.

    BM25 is computed from these counts (`build`), and they are saved with the index, so an
    update tokenizes only the passages it adds: unchanged passages are copied as counts.
    """

    def __init__(self, tokenizer: Tokenizer | None = None) -> None:
        self.tokenize = tokenizer or Tokenizer()
        self._ids: dict[str, int] = {}  # term -> id in this builder
        self._terms: list[str] = []
        self._lengths: list[np.ndarray] = []  # distinct terms per passage
        self._columns: list[np.ndarray] = []
        self._counts: list[np.ndarray] = []
        self._remaps: dict[int, tuple[StoredCounts, np.ndarray]] = {}

    def add_texts(self, texts: list[str]) -> None:
        lengths, columns, counts = [], [], []
        for text in texts:
            # An empty token list would make an empty row; "" keeps every passage present.
            counted = Counter(self.tokenize(text) or [""])
            lengths.append(len(counted))
            columns.extend(self._id(term) for term in counted)
            counts.extend(counted.values())
        self._append(np.array(lengths, np.int64), np.array(columns, np.int32), np.array(counts, np.int32))

    def add_stored(self, stored: "StoredCounts", first: int, last: int) -> None:
        """Copy the counts of rows [first, last) of a saved index."""
        if id(stored) not in self._remaps:
            self._remaps[id(stored)] = (stored, np.array([self._id(t) for t in stored.terms], dtype=np.int32))
        remap = self._remaps[id(stored)][1]
        begin, end = int(stored.indptr[first]), int(stored.indptr[last])
        self._append(np.diff(stored.indptr[first : last + 1]), remap[stored.columns[begin:end]], np.asarray(stored.counts[begin:end]))

    def build(self) -> "LexicalIndex":
        """The BM25 index of every passage added, the same whatever order the terms were met in."""
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, np.int64)
        if not len(lengths):
            return LexicalIndex(None, 0, self.tokenize)
        import scipy.sparse as sp

        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        columns, counts = np.concatenate(self._columns), np.concatenate(self._counts)
        frequencies = np.bincount(columns, minlength=len(self._terms))
        terms = sorted(t for t, i in self._ids.items() if frequencies[i])  # canonical: sorted, only terms in use
        order = np.full(len(self._terms), -1, dtype=np.int32)
        order[[self._ids[t] for t in terms]] = np.arange(len(terms), dtype=np.int32)
        tf = sp.csr_matrix((counts, order[columns], indptr), shape=(len(lengths), len(terms)), copy=False)
        tf.sort_indices()
        as_type = lambda a, t: a.astype(t, copy=False)  # noqa: E731
        return LexicalIndex.from_counts(terms, as_type(tf.indptr, np.int64), as_type(tf.indices, np.int32), as_type(tf.data, np.int32), self.tokenize)

    def _id(self, term: str) -> int:
        found = self._ids.get(term)
        if found is None:
            found = self._ids[term] = len(self._terms)
            self._terms.append(term)
        return found

    def _append(self, lengths: np.ndarray, columns: np.ndarray, counts: np.ndarray) -> None:
        self._lengths.append(lengths)
        self._columns.append(columns)
        self._counts.append(counts)


@dataclass
class StoredCounts:
    """The term counts saved with an index version (rows in passage order, memory-mapped)."""

    terms: list[str]
    indptr: np.ndarray
    columns: np.ndarray
    counts: np.ndarray

    @classmethod
    def open(cls, directory: Path) -> "StoredCounts | None":
        """None for an index saved before counts were kept (its passages are re-tokenized)."""
        if not (directory / COUNTS[0]).is_file():
            return None
        vocab = json.loads((directory / "vocab.index.json").read_text(encoding="utf-8"))
        terms = sorted(vocab, key=vocab.__getitem__)
        indptr, columns, counts = (np.load(directory / name, allow_pickle=False, mmap_mode="r") for name in COUNTS)
        return cls(terms, np.asarray(indptr), columns, counts)
