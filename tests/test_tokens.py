"""Token-level alignment (qa.tokens): how word pieces are scored, stored and read back."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.sync import sync
from qa import store, tokens
from qa.engine import _score_sentences
from qa.text import words
from tests.conftest import PieceEmbedder, write


def _codes(*rows: list[float]) -> np.ndarray:
    out = np.zeros((len(rows), tokens.DIMENSION), np.int8)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def test_alignment_is_the_mean_over_question_pieces_of_their_best_match():
    question = tokens.unit(_codes([100, 0], [0, 100]))
    says_one = _codes([100, 0], [50, 50])  # meets the first piece fully, the second at cosine 0.71
    says_both = _codes([0, 100], [100, 0], [1, 1])
    first, second = tokens.alignments(question, [says_one, says_both])
    assert first == pytest.approx((1 + 2**-0.5) / 2, abs=1e-6)
    assert second == pytest.approx(1.0, abs=1e-6)


def test_projection_keeps_directions_of_the_bundled_model_states():
    from qa.embedder import bundled_model_path

    basis = tokens.basis(bundled_model_path())
    assert basis.shape == (1 + tokens.DIMENSION, 384)
    axes = basis[1:]
    assert np.allclose(axes @ axes.T, np.eye(tokens.DIMENSION), atol=1e-4)  # orthonormal, so a projection
    assert np.array_equal(basis, tokens.basis(bundled_model_path()))  # the same for every index
    codes = tokens.project(np.random.default_rng(0).standard_normal((5, 384)).astype(np.float32), basis)
    assert codes.dtype == np.int8 and np.abs(codes).max(axis=1).tolist() == [127] * 5


def test_every_sentence_keeps_its_own_word_pieces_once(tmp_path):
    """Chunks overlap, so a sentence in two chunks is seen twice; its pieces are stored once."""
    docs = tmp_path / "docs"
    text = " ".join(f"Sentence number {i} talks about topic{i} and nothing else." for i in range(60))
    write(docs / "long.txt", text)
    sync([docs], tmp_path / "index", embedder=PieceEmbedder())
    index = store.load_index(tmp_path / "index")
    assert len(index.chunks) > 2  # several overlapping chunks
    first, last = index.sentence_ranges["long.txt"]
    for row in range(first, last):
        start, end = index.sentence_spans[row]
        assert len(index.sentence_pieces(row)) == len(words(text[start:end]))


def test_word_pieces_survive_an_update_of_another_document(tmp_path):
    docs = tmp_path / "docs"
    write(docs / "a.txt", "Alpha beta gamma. Delta epsilon.")
    write(docs / "b.txt", "Zeta eta theta.")
    sync([docs], tmp_path / "index", embedder=PieceEmbedder())
    before = store.load_index(tmp_path / "index").block("a.txt")
    write(docs / "b.txt", "Zeta eta theta iota.")
    sync([docs], tmp_path / "index", embedder=PieceEmbedder())
    after = store.load_index(tmp_path / "index")
    kept = after.block("a.txt")
    assert kept.sentence_tokens.tolist() == before.sentence_tokens.tolist() == [3, 2]
    assert np.array_equal(kept.token_vectors, before.token_vectors)
    changed = after.block("b.txt")
    assert changed.sentence_tokens.tolist() == [4]


def test_a_damaged_word_piece_is_found(tmp_path):
    from qa.errors import IndexInvalid

    docs = tmp_path / "docs"
    write(docs / "a.txt", "Alpha beta gamma. Delta epsilon.")
    sync([docs], tmp_path / "index", embedder=PieceEmbedder())
    version = store.read_manifest(tmp_path / "index")[0]
    path = tmp_path / "index" / version / "token_vectors.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(IndexInvalid, match="token_vectors.npy does not match"):
        store.load_index(tmp_path / "index")


def test_alignment_is_left_out_when_a_sentence_has_no_word_pieces(tmp_path):
    """An index updated from a version that kept no pieces mixes sentences with and without them:
    then no sentence is scored on alignment, rather than those without losing."""
    docs = tmp_path / "docs"
    write(docs / "a.txt", "Alpha beta gamma. Delta epsilon.")
    sync([docs], tmp_path / "index", embedder=PieceEmbedder())
    index = store.load_index(tmp_path / "index")
    embedder = PieceEmbedder()
    vector, pieces = embedder.encode_query_tokens("alpha delta")
    from qa.engine import Passage

    chunk = index.chunks[0]
    passage = Passage(chunk.doc_id, chunk.start, chunk.end, chunk.text, 1.0, [0])
    scored = _score_sentences(index, "alpha delta", vector, [passage], pieces)
    assert all(0.5 <= s.alignment < 1 for s in scored)  # each sentence says one of the two words
    index.token_starts[1:] = index.token_starts[-1]  # the first sentence loses its pieces
    index.token_starts[0] = index.token_starts[-1]
    scored = _score_sentences(index, "alpha delta", vector, [passage], pieces)
    assert [s.alignment for s in scored] == [0.0, 0.0]


def test_an_index_written_before_word_pieces_loads_and_is_embedded_again_once(tmp_path):
    import hashlib
    import json

    docs, index_dir = tmp_path / "docs", tmp_path / "index"
    write(docs / "a.txt", "Alpha beta gamma. Delta epsilon.")
    write(docs / "b.txt", "Zeta eta theta.")
    sync([docs], index_dir, embedder=PieceEmbedder())
    version = store.read_manifest(index_dir)[0]
    folder = index_dir / version
    manifest = json.loads((folder / store.MANIFEST).read_text())
    for name in store.TOKEN_FILES:  # as the previous format wrote it
        (folder / name).unlink()
        del manifest["files"][name]
        for record in manifest["documents"].values():
            del record["rows"][name]
    for record in manifest["documents"].values():
        del record["tokens"]
    data = json.dumps(manifest).encode()
    (folder / store.MANIFEST).write_bytes(data)
    (folder / store.MANIFEST_CHECKSUM).write_text(hashlib.sha256(data).hexdigest() + "\n")

    old = store.load_index(index_dir)
    assert len(old.token_vectors) == 0 and len(old.chunks) == 2
    report = sync([docs], index_dir, embedder=PieceEmbedder())
    assert report.embedded_chunks == report.chunks == 2
    assert store.load_index(index_dir).block("a.txt").sentence_tokens.tolist() == [3, 2]
    assert sync([docs], index_dir, embedder=PieceEmbedder()).embedded_chunks == 0  # once only
