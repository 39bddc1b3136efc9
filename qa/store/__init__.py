"""The on-disk index format. This module alone reads and writes it.

    index/
      CURRENT              name of the live version folder, then of the one before it (replaced atomically)
      .lock                held by the one writer
      skipped.json         files that could not be indexed, by content hash, so an unchanged one is
                           not read again (a cache outside the versions: losing it costs a re-read)
      v000007-3fa9c1/      a complete version, never modified after it is published
        manifest.json      format version, model, splitter settings, documents, counts, file sizes and
                           checksums: CRC-32 per file, and for the row files below one [length, crc32]
                           per document, so an unchanged document's rows are copied, never re-hashed
        manifest.sha256    SHA-256 of manifest.json, so an edited or damaged manifest is refused
        chunks.jsonl       one chunk record per line, in vector row order
        vectors.npy        float32 [chunks, dimension], L2-normalized (kept so a changed document
                           can be replaced without re-embedding the others)
        dense.faiss        inner-product FAISS index over the same rows: exact while small, IVF with
                           8-bit codes and row numbers as ids from qa.store.dense.APPROX_FROM rows
        bm25/              bm25s index over the chunk texts (numpy arrays and JSON, no pickle), and the
                           term counts per chunk it is computed from (counts.*.npy), so an update
                           tokenizes only the chunks it adds

Formats 1 and 2 also kept sentence offsets and vectors (sentences.npy, sentence_vectors.npy) and,
in 2, word pieces (sentence_tokens.npy, pieces/). They still load: those files are checked like
every other listed file but never read, and the next writer copies their chunk rows and vectors
into a format-3 version without re-embedding anything.

A writer builds a new version in a hidden staging folder, publishes it by renaming, then swaps
CURRENT. A crash at any point leaves the previous version live; the next writer removes leftovers.
Nothing is stored in a format that can run code on load.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
import zlib
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from qa.documents.chunking import ChunkSettings
from qa.embedder import ModelSpec
from qa.errors import IndexBusy, IndexInvalid, IndexNotFound
from qa.types import Chunk

FORMAT_VERSION = 3  # 3: chunks only (2 added word pieces, 1 had sentence rows)
OLDEST_FORMAT = 1  # 1 and 2 are read for their chunks and vectors
_VERSION = re.compile(r"v\d{6}-[0-9a-f]{6}")
CURRENT = "CURRENT"
LOCK = ".lock"
SKIPPED = "skipped.json"
STAGING_PREFIX = ".staging-"
REBUILD = "python -m ingest --rebuild"
ROW_FILES = ("chunks.jsonl", "vectors.npy")
OLD_ROW_FILES = ("sentences.npy", "sentence_vectors.npy", "sentence_tokens.npy")  # formats 1 and 2: checked, not read
OLD_RECORD_FIELDS = ("sentences", "tokens", "pieces")  # what formats 1 and 2 also recorded per document
MANIFEST = "manifest.json"
MANIFEST_CHECKSUM = "manifest.sha256"


@dataclass(frozen=True)
class DocumentRecord:
    id: str
    source: str
    title: str
    kind: str
    sha256: str
    size: int
    chunks: int
    indexed_at: float
    # This document's bytes in each row file, [length, crc32], so an unchanged document is
    # copied into the next version byte for byte and never hashed again. Empty before format 1.1.
    rows: dict = field(default_factory=dict, compare=False)


@dataclass
class DocumentBlock:
    """One document's rows: its chunks and their vectors."""

    record: DocumentRecord
    chunks: list[Chunk]
    vectors: np.ndarray


@dataclass
class IndexData:
    """A loaded, validated index version. Treated as read-only once loaded."""

    directory: Path
    version: str
    model: ModelSpec
    settings: ChunkSettings
    documents: dict[str, DocumentRecord]
    chunks: list[Chunk]
    vectors: np.ndarray
    dense: object  # faiss.Index
    lexical: object  # qa.store.lexical.LexicalIndex
    created_at: float
    chunk_ranges: dict[str, tuple[int, int]] = field(default_factory=dict)  # doc id -> chunk rows

    def __post_init__(self) -> None:
        row = 0
        for doc_id in sorted(self.documents):
            self.chunk_ranges[doc_id] = (row, row + self.documents[doc_id].chunks)
            row += self.documents[doc_id].chunks

    def block(self, doc_id: str) -> DocumentBlock:
        first, last = self.chunk_ranges[doc_id]
        return DocumentBlock(record=self.documents[doc_id], chunks=self.chunks[first:last], vectors=np.asarray(self.vectors[first:last]))


def outdated(manifest: dict) -> bool:
    """Whether a version was written in an older format, so the next ingest writes it again
    (its chunk rows and vectors copied as they are)."""
    return manifest["format_version"] < FORMAT_VERSION


def _record_from_json(data: dict, format_version: int) -> DocumentRecord:
    """A manifest's document entry; the fields only older formats had are dropped, and a format-3
    entry with any field it should not have is refused (TypeError)."""
    if not isinstance(data, dict):
        raise TypeError(f"a document entry is {type(data).__name__}, not an object")
    if format_version < 3:
        data = {k: v for k, v in data.items() if k not in OLD_RECORD_FIELDS}
    return DocumentRecord(**data)


# --- reading ----------------------------------------------------------------------------------


def current_version(index_dir: Path) -> str | None:
    return _pointer(index_dir)[0]


def _pointer(index_dir: Path) -> tuple[str | None, str | None]:
    """(live version, previous version) named by CURRENT."""
    try:
        lines = (index_dir / CURRENT).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError):
        raise IndexInvalid(f"{index_dir}/{CURRENT} cannot be read; rebuild the index with `{REBUILD}`.") from None
    name = lines[0].strip() if lines else ""
    if not _VERSION.fullmatch(name) or not (index_dir / name).is_dir():
        raise IndexInvalid(f"{index_dir}/{CURRENT} points to a missing version ({name!r}); rebuild the index with `{REBUILD}`.")
    previous = lines[1].strip() if len(lines) > 1 else ""
    return name, previous if _VERSION.fullmatch(previous) else None


def read_manifest(index_dir: Path) -> tuple[str, dict] | None:
    """The live version's name and manifest, or None when there is no index yet. Cheap: no arrays."""
    version = current_version(index_dir)
    if version is None:
        return None
    path = index_dir / version / MANIFEST
    try:
        data = path.read_bytes()
        manifest = json.loads(data.decode("utf-8"))
    except (OSError, ValueError):
        raise IndexInvalid(f"{path} is missing or not valid JSON; rebuild the index with `{REBUILD}`.") from None
    _check_manifest(manifest, path)
    _check_manifest_checksum(data, path)
    return version, manifest


def read_skipped(index_dir: Path) -> dict[str, dict]:
    """What the last writer could not index, by document id: {"sha256", "source", "reason"} and
    "loaders", the version of the loaders that skipped it.
    Empty when there is none or it cannot be read: then those files are simply read again."""
    try:
        entries = json.loads((index_dir / SKIPPED).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(entries, dict):
        return {}
    return {
        doc_id: entry
        for doc_id, entry in entries.items()
        if isinstance(entry, dict) and all(isinstance(entry.get(k), str) for k in ("sha256", "source", "reason"))
    }


def write_skipped(index_dir: Path, entries: dict[str, dict]) -> None:
    """Replace the record of unindexable files (atomically; the caller holds `writer_lock`)."""
    path = index_dir / SKIPPED
    if not entries:
        path.unlink(missing_ok=True)
        return
    scratch = index_dir / f"{SKIPPED}.tmp"
    scratch.write_text(json.dumps(entries, ensure_ascii=False, sort_keys=True, indent=1), encoding="utf-8")
    os.replace(scratch, path)


def _check_manifest_checksum(data: bytes, path: Path) -> None:
    """The manifest holds every other file's checksum, so its own is kept beside it. Versions
    written before the checksum existed have none and are trusted as they are."""
    try:
        recorded = (path.parent / MANIFEST_CHECKSUM).read_text(encoding="ascii").rstrip("\n")
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        recorded = ""
    if recorded != hashlib.sha256(data).hexdigest():
        raise IndexInvalid(f"{path} was edited or damaged (it does not match {MANIFEST_CHECKSUM}); rebuild the index with `{REBUILD}`.")


def _check_manifest(manifest: object, path: Path) -> None:
    if not isinstance(manifest, dict) or not isinstance(manifest.get("format_version"), int):
        raise IndexInvalid(f"{path} is not an index manifest; rebuild the index with `{REBUILD}`.")
    if manifest["format_version"] > FORMAT_VERSION:
        raise IndexInvalid(
            f"{path.parent.parent} was written by a newer version of this program (format {manifest['format_version']}, "
            f"this one reads {FORMAT_VERSION}); upgrade, or rebuild the index with `{REBUILD}`."
        )
    if manifest["format_version"] < OLDEST_FORMAT:
        raise IndexInvalid(f"{path.parent.parent} uses an old index format; rebuild it with `{REBUILD}`.")
    required = {"model": dict, "splitter": dict, "documents": dict, "counts": dict, "files": dict, "created_at": (int, float)}
    for key, kind in required.items():
        if not isinstance(manifest.get(key), kind):
            raise IndexInvalid(f"{path} lacks a valid '{key}' entry; rebuild the index with `{REBUILD}`.")


def load_index(index_dir: str | Path) -> IndexData:
    """Load and validate the live version. Raises IndexNotFound or IndexInvalid with the fix."""
    from qa.store import dense as dense_index
    from qa.store.lexical import LexicalIndex

    index_dir = Path(index_dir)
    found = read_manifest(index_dir)
    if found is None:
        raise IndexNotFound(f"There is no index in {index_dir}/ yet: build one with `python -m ingest`.")
    version, manifest = found
    folder = index_dir / version

    def broken(why: str) -> IndexInvalid:
        return IndexInvalid(f"The index in {index_dir}/ is damaged ({why}); rebuild it with `{REBUILD}`.")

    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir()} - {MANIFEST, MANIFEST_CHECKSUM}
    unlisted = sorted(on_disk - set(manifest["files"]))
    if unlisted:
        raise broken(f"{unlisted[0]} is not listed in its manifest")
    for name, expected in manifest["files"].items():
        path = folder / name
        if name not in on_disk or not path.is_file() or path.is_symlink():  # a name like ../x is never opened
            raise broken(f"{name} is missing")
        if not isinstance(expected, dict) or path.stat().st_size != expected.get("size") or not _checksum_matches(path, expected, name):
            raise broken(f"{name} does not match its recorded size and checksum")
    try:
        model = ModelSpec.from_json(manifest["model"])
        settings = ChunkSettings(manifest["splitter"]["chunk_size"], manifest["splitter"]["chunk_overlap"])
        documents = {d["id"]: _record_from_json(d, manifest["format_version"]) for d in manifest["documents"].values()}
        chunks = [_chunk_from_json(json.loads(line)) for line in (folder / "chunks.jsonl").read_text(encoding="utf-8").splitlines()]
    except (KeyError, TypeError, ValueError) as exc:
        raise broken(f"unreadable records: {exc}") from None
    damaged = _damaged_rows(folder, documents, manifest["files"])
    if damaged:
        raise broken(f"{damaged} does not match its recorded checksums")
    try:
        vectors = np.load(folder / "vectors.npy", allow_pickle=False, mmap_mode="r")
    except ValueError:  # numpy's message would suggest loading it unsafely
        raise broken("vectors.npy is not a plain array of numbers") from None
    if vectors.dtype != np.float32 or vectors.ndim != 2:
        raise broken(f"vectors.npy holds {vectors.dtype} of shape {vectors.shape}, not float32 rows")
    if len(chunks) != vectors.shape[0] or len(chunks) != manifest["counts"].get("chunks"):
        raise broken(f"{len(chunks)} chunk records, {vectors.shape[0]} vectors and {manifest['counts'].get('chunks')} in the manifest")
    if vectors.shape[1] != model.dimension:
        raise broken(f"vectors have {vectors.shape[1]} dimensions, the model {model.dimension}")
    expected_ids = [doc_id for doc_id in sorted(documents) for _ in range(documents[doc_id].chunks)]
    if [c.doc_id for c in chunks] != expected_ids:
        raise broken("chunk records do not match the documents in the manifest")
    try:
        dense = dense_index.read(folder / "dense.faiss")
    except (RuntimeError, ValueError):
        raise broken("dense.faiss cannot be read") from None
    if dense.ntotal != len(chunks) or dense.d != model.dimension:
        raise broken(f"dense.faiss holds {dense.ntotal} vectors of {dense.d} dimensions")
    try:
        lexical = LexicalIndex.load(folder / "bm25", len(chunks))
    except (OSError, ValueError, KeyError) as exc:
        raise broken(f"bm25: {exc}") from None
    return IndexData(
        directory=index_dir,
        version=version,
        model=model,
        settings=settings,
        documents=documents,
        chunks=chunks,
        vectors=vectors,
        dense=dense,
        lexical=lexical,
        created_at=float(manifest["created_at"]),
    )


def _chunk_from_json(data: dict) -> Chunk:
    chunk = Chunk(
        id=str(data["id"]),
        doc_id=str(data["doc_id"]),
        start=int(data["start"]),
        end=int(data["end"]),
        text=str(data["text"]),
        page=None if data.get("page") is None else int(data["page"]),
        section=None if data.get("section") is None else str(data["section"]),
    )
    if chunk.end - chunk.start != len(chunk.text) or chunk.start < 0:
        raise ValueError(f"chunk {chunk.id} has offsets that do not fit its text")
    return chunk


def _checksum_matches(path: Path, expected: dict, name: str) -> bool:
    """Row files are checked document by document (`_damaged_rows`); other files carry a CRC-32
    (damage detection, as in Lucene's file footers), or a SHA-256 when written before format 1.1."""
    if "crc32" in expected:
        return _file_crc32(path) == expected["crc32"]
    if "sha256" in expected:
        return file_sha256(path) == expected["sha256"]
    return name in ROW_FILES or name in OLD_ROW_FILES


def _damaged_rows(folder: Path, documents: dict[str, DocumentRecord], files: dict) -> str | None:
    """The first row file whose per-document checksums or lengths do not match, else None. The
    sentence row files of formats 1 and 2 are checked too, where their manifest lists them."""
    for name in [*ROW_FILES, *(n for n in OLD_ROW_FILES if n in files)]:
        if "crc32" in files.get(name, {}) or "sha256" in files.get(name, {}):
            continue  # checked as a whole
        try:
            with (folder / name).open("rb") as handle:
                offset = _data_offset(handle, name)
                if offset < 0:
                    return name
                handle.seek(offset)
                for doc_id in sorted(documents):
                    length, crc = documents[doc_id].rows.get(name, (None, None))
                    if not isinstance(length, int) or _crc32(handle.read(length)) != crc:
                        return name
                if handle.read(1):
                    return name
        except OSError:
            return name
    return None


def _data_offset(handle, name: str) -> int:
    """Where the rows start: after the header of an .npy file."""
    if not name.endswith(".npy"):
        return 0
    try:
        version = np.lib.format.read_magic(handle)
        (np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0)(handle)
    except ValueError:
        return -1
    return handle.tell()


def _crc32(data: bytes) -> str:
    return f"{zlib.crc32(data):08x}"


def _file_crc32(path: Path) -> str:
    crc = 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            crc = zlib.crc32(block, crc)
    return f"{crc:08x}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- writing ----------------------------------------------------------------------------------


@contextmanager
def writer_lock(index_dir: Path) -> Iterator[None]:
    """One writer at a time. The OS drops the lock if the writer dies, even by SIGKILL."""
    from filelock import FileLock, Timeout

    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(index_dir / LOCK), timeout=0)
        lock.acquire()
    except Timeout:
        raise IndexBusy(
            f"Another ingest is already updating {index_dir}/; wait for it to finish, then run this again."
        ) from None
    except OSError as exc:
        raise IndexBusy(f"Cannot write to {index_dir}/ ({exc.strerror}); choose a writable folder with --index DIR.") from None
    try:
        yield
    finally:
        lock.release()


class IndexWriter:
    """Writes a new version into a staging folder, one document at a time in id order, then
    makes it live atomically (`publish`). The caller holds `writer_lock`.

    Memory holds one document's rows at a time, the BM25 term counts, and the dense index while
    publishing. An unchanged document (`keep`) is copied from the live version byte for byte,
    with its recorded checksums: it is neither re-encoded nor hashed again.
    """

    def __init__(self, index_dir: Path, *, model: ModelSpec, settings: ChunkSettings) -> None:
        from qa.store.lexical import TermCounts

        self.index_dir, self.model, self.settings = index_dir, model, settings
        index_dir.mkdir(parents=True, exist_ok=True)
        clean_leftovers(index_dir)
        self.staging = index_dir / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
        self.staging.mkdir()
        widths = {"chunks.jsonl": None, "vectors.npy": (np.float32, model.dimension)}
        self._files = {name: _RowFile(self.staging / name, widths[name]) for name in ROW_FILES}
        self._counts = TermCounts()
        self._records: dict[str, DocumentRecord] = {}
        self._kept: list[tuple[PreviousVersion, str]] = []  # not copied yet, so neighbours copy in one run
        self._last: str | None = None

    def add(self, block: DocumentBlock) -> None:
        """A document's freshly embedded rows."""
        record = block.record
        if len(block.chunks) != record.chunks or len(block.vectors) != len(block.chunks):
            raise ValueError(f"rows of {record.id} do not match its record")
        if block.vectors.shape[1:] != (self.model.dimension,):
            raise ValueError(f"vectors of {record.id} have shape {block.vectors.shape}, not (chunks, {self.model.dimension})")
        self._next(record.id)
        self._copy_kept()
        lines = "".join(json.dumps(asdict(c), ensure_ascii=False) + "\n" for c in block.chunks).encode("utf-8")
        rows = {
            "chunks.jsonl": self._files["chunks.jsonl"].write(lines),
            "vectors.npy": self._files["vectors.npy"].write(block.vectors),
        }
        self._counts.add_texts([c.text for c in block.chunks])
        self._records[record.id] = replace(record, rows=rows)

    def keep(self, previous: "PreviousVersion", doc_id: str) -> None:
        """An unchanged document of the live version."""
        if doc_id not in previous.offsets:  # written before per-document checksums: re-serialize it once
            self.add(previous.legacy().block(doc_id))
            return
        self._next(doc_id)
        self._kept.append((previous, doc_id))

    def publish(self, created_at: float | None = None) -> str:
        """Finish the files, write the dense and BM25 indexes and the manifest, and swap the
        version in. A crash before the swap leaves the previous version live."""
        from qa.store import dense as dense_index

        self._copy_kept()
        for row_file in self._files.values():
            row_file.close()
        staging = self.staging
        vectors = np.load(staging / "vectors.npy", allow_pickle=False, mmap_mode="r")
        dense_index.write(self._dense(vectors), staging / "dense.faiss")
        del vectors
        self._counts.build().save(staging / "bm25")

        files = {}
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            name = path.relative_to(staging).as_posix()
            _fsync(path)
            files[name] = {"size": path.stat().st_size} if name in ROW_FILES else {"size": path.stat().st_size, "crc32": _file_crc32(path)}
        records = [self._records[doc_id] for doc_id in sorted(self._records)]
        now = time.time()
        manifest = {
            "format_version": FORMAT_VERSION,
            "model": self.model.to_json(),
            "splitter": self.settings.to_json(),
            "documents": {r.id: vars(r) for r in records},  # asdict would deep-copy every record
            "counts": {"documents": len(records), "chunks": sum(r.chunks for r in records)},
            "files": files,
            "created_at": created_at if created_at is not None else now,
            "updated_at": now,
        }
        data = json.dumps(manifest, ensure_ascii=False).encode("utf-8")  # no indent: json's fast encoder
        (staging / MANIFEST).write_bytes(data)
        (staging / MANIFEST_CHECKSUM).write_text(hashlib.sha256(data).hexdigest() + "\n", encoding="ascii")
        _fsync(staging / MANIFEST)
        _fsync(staging / MANIFEST_CHECKSUM)
        for folder in {p.parent for p in staging.rglob("*")} | {staging}:
            _fsync(folder)

        index_dir = self.index_dir
        try:
            previous = current_version(index_dir)
        except IndexInvalid:  # a rebuild over a damaged index
            previous = None
        version = f"v{_next_number(index_dir):06d}-{uuid.uuid4().hex[:6]}"
        os.rename(staging, index_dir / version)
        _fsync(index_dir)
        pointer = index_dir / f"{CURRENT}.tmp"
        pointer.write_text(f"{version}\n{previous or ''}\n", encoding="utf-8")
        _fsync(pointer)
        os.replace(pointer, index_dir / CURRENT)
        _fsync(index_dir)
        clean_leftovers(index_dir)
        return version

    def _dense(self, vectors: np.ndarray):
        """The dense index of the new rows (qa.store.dense picks exact or approximate by their
        count). A trained approximate index of the live version is moved to the new layout instead
        of trained again (unchanged documents' rows renumbered, the others removed and added)
        while its lists suit the new rows."""
        from qa.store import dense

        records = [self._records[doc_id] for doc_id in sorted(self._records)]
        moved = _dense_moves(self.index_dir, self.model, records) if len(vectors) >= dense.APPROX_FROM else None
        if moved is None:
            return dense.build(vectors)
        index, new_row, added = moved
        kept = new_row[new_row >= 0]
        fresh = np.asarray(vectors[added])
        if not dense.suits(index, vectors[np.sort(kept[:: max(1, len(kept) // 2000)])], fresh):
            return dense.build(vectors)
        return dense.update(index, new_row, fresh, added)

    def close(self) -> None:
        """Release the staging files (after an error; the next writer removes the folder)."""
        for row_file in self._files.values():
            row_file.handle.close()

    def discard(self) -> None:
        """Drop what was staged: there is nothing to publish."""
        self.close()
        shutil.rmtree(self.staging, ignore_errors=True)

    def _next(self, doc_id: str) -> None:
        if self._last is not None and doc_id <= self._last:
            raise ValueError(f"documents must be written in id order: {doc_id!r} after {self._last!r}")
        self._last = doc_id

    def _copy_kept(self) -> None:
        """Copy the kept documents' rows, neighbours in the live version in one run per file."""
        kept, self._kept = self._kept, []
        run: list[str] = []
        for number, (previous, doc_id) in enumerate(kept):
            run.append(doc_id)
            following = kept[number + 1] if number + 1 < len(kept) else None
            if following is None or following[0] is not previous or not previous.adjacent(doc_id, following[1]):
                self._copy_run(previous, run)
                run = []

    def _copy_run(self, previous: "PreviousVersion", doc_ids: list[str]) -> None:
        first, last = previous.records[doc_ids[0]], previous.records[doc_ids[-1]]
        for name, row_file in self._files.items():
            start = previous.offsets[first.id][name]
            end = previous.offsets[last.id][name] + last.rows[name][0]
            row_file.copy(previous.folder / name, start, end - start)
        chunk_rows = previous.offsets[first.id]["chunk_row"], previous.offsets[last.id]["chunk_row"] + last.chunks
        if previous.counts is not None:
            self._counts.add_stored(previous.counts, *chunk_rows)
        else:  # saved before term counts were kept: tokenize these passages once
            self._counts.add_texts([c.text for doc_id in doc_ids for c in previous.legacy().block(doc_id).chunks])
        for doc_id in doc_ids:
            self._records[doc_id] = previous.records[doc_id]


def _dense_moves(index_dir: Path, model: ModelSpec, records: list[DocumentRecord]):
    """(the live version's approximate index, the new row of each of its rows or -1, the new rows
    it lacks), or None when a fresh build is due: no usable approximate index for this model,
    a list count that no longer suits the row count, or more than half the rows new. A document
    keeps its rows when its record, with its rows' lengths and CRC-32s, is unchanged."""
    from qa.store import dense

    rows = sum(r.chunks for r in records)
    try:
        found = read_manifest(index_dir)
        if found is None or ModelSpec.from_json(found[1]["model"]) != model:
            return None
        version, manifest = found
        path, expected = index_dir / version / "dense.faiss", manifest["files"].get("dense.faiss")
        if not isinstance(expected, dict) or path.stat().st_size != expected.get("size") or not _checksum_matches(path, expected, "dense.faiss"):
            return None
        index = dense.read(path)
    except (IndexInvalid, OSError, RuntimeError, KeyError, TypeError, ValueError):
        return None
    if not dense.is_approximate(index) or index.nlist != dense.nlist_for(rows) or index.d != model.dimension:
        return None
    before, old_row, first = manifest["documents"], {}, 0
    for doc_id in sorted(before):
        old_row[doc_id] = first
        first += int(before[doc_id]["chunks"])
    if first != index.ntotal:
        return None
    new_row, added, row = np.full(index.ntotal, -1, np.int64), [], 0
    for record in records:
        if _same_rows(before.get(record.id), record, manifest["format_version"]):
            new_row[old_row[record.id] : old_row[record.id] + record.chunks] = np.arange(row, row + record.chunks)
        else:
            added.append(np.arange(row, row + record.chunks, dtype=np.int64))
        row += record.chunks
    added = np.concatenate(added) if added else np.zeros(0, np.int64)
    return None if 2 * len(added) > rows else (index, new_row, added)


def _same_rows(before: dict | None, record: DocumentRecord, format_version: int) -> bool:
    """Whether a document's rows are unchanged: the same record, and the same length and CRC-32
    of its rows in each row file (an older format's sentence rows left out)."""
    try:
        old = None if before is None else _record_from_json(before, format_version)
    except TypeError:
        return False
    return old is not None and {**vars(old), "rows": _chunk_rows(old)} == {**vars(record), "rows": _chunk_rows(record)}


def _chunk_rows(record: DocumentRecord) -> dict:
    """A record's [length, crc32] in this format's row files."""
    return {name: record.rows[name] for name in ROW_FILES if name in record.rows}


class PreviousVersion:
    """The live version, opened to copy unchanged documents' rows into the next one."""

    def __init__(self, index_dir: Path, found: tuple[str, dict] | None = None) -> None:
        """`found`: the live version's name and manifest, when the caller has read them."""
        from qa.store.lexical import StoredCounts

        found = found or read_manifest(index_dir)
        if found is None:
            raise IndexNotFound(f"There is no index in {index_dir}/ yet: build one with `python -m ingest`.")
        version, manifest = found
        self.index_dir, self.folder = index_dir, index_dir / version
        try:
            # Records as this format writes them: an older format's sentence rows are not carried over.
            records = (_record_from_json(d, manifest["format_version"]) for d in manifest["documents"].values())
            self.records = {r.id: replace(r, rows=_chunk_rows(r)) for r in records}
            self.counts = StoredCounts.open(self.folder / "bm25")
        except (OSError, KeyError, TypeError, ValueError) as exc:
            raise IndexInvalid(f"The index in {index_dir}/ is damaged ({exc}); rebuild it with `{REBUILD}`.") from None
        self.offsets: dict[str, dict[str, int]] = {}
        self._order = sorted(self.records)
        self._position = {doc_id: i for i, doc_id in enumerate(self._order)}
        if all(set(ROW_FILES) <= set(r.rows) for r in self.records.values()):
            position = {}
            for name in ROW_FILES:
                with (self.folder / name).open("rb") as handle:
                    position[name] = _data_offset(handle, name)
            position["chunk_row"] = 0
            for doc_id in self._order:
                record = self.records[doc_id]
                self.offsets[doc_id] = dict(position)
                for name in ROW_FILES:
                    position[name] += record.rows[name][0]
                position["chunk_row"] += record.chunks
        self._legacy: IndexData | None = None

    def adjacent(self, doc_id: str, following: str) -> bool:
        return self._position[following] == self._position[doc_id] + 1

    def legacy(self) -> IndexData:
        """The whole version loaded, for documents written without per-document checksums."""
        if self._legacy is None:
            self._legacy = load_index(self.index_dir)
        return self._legacy


class _RowFile:
    """A row file written front to back: JSON lines, or an .npy array whose header is rewritten
    with the final row count on close (numpy pads headers so the count can grow in place)."""

    def __init__(self, path: Path, shape: tuple | None) -> None:
        self.path, self.shape = path, shape
        self.handle = path.open("wb")
        self.rows = 0
        if shape is not None:
            self._header(0)

    def write(self, data) -> list:
        """Append rows (bytes, or an array of this file's dtype and width); returns [length, crc32]."""
        if self.shape is not None:
            data = np.ascontiguousarray(data, dtype=self.shape[0])
            if data.ndim != 2 or data.shape[1] != self.shape[1]:
                raise ValueError(f"{self.path.name} takes rows of {self.shape[1]}, not {data.shape}")
            self.rows += len(data)
            data = data.tobytes()
        self.handle.write(data)
        return [len(data), _crc32(data)]

    def copy(self, source: Path, offset: int, length: int) -> None:
        """Append `length` bytes of `source` from `offset`, inside the kernel where it can."""
        self.handle.flush()
        if self.shape is not None:
            self.rows += length // (np.dtype(self.shape[0]).itemsize * self.shape[1])
        with source.open("rb") as src:
            while length > 0:
                try:
                    copied = os.copy_file_range(src.fileno(), self.handle.fileno(), length, offset)
                except OSError:  # e.g. across file systems on an old kernel
                    src.seek(offset)
                    copied = self.handle.write(src.read(min(length, 1 << 24)))
                    self.handle.flush()
                if copied == 0:
                    raise IndexInvalid(f"{source} is shorter than its manifest says; rebuild the index with `{REBUILD}`.")
                offset += copied
                length -= copied
        self.handle.seek(0, os.SEEK_END)

    def close(self) -> None:
        if self.shape is not None:
            self.handle.seek(0)
            self._header(self.rows)
        self.handle.close()

    def _header(self, rows: int) -> None:
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(self.shape[0])), "fortran_order": False, "shape": (rows, self.shape[1])}
        np.lib.format.write_array_header_1_0(self.handle, header)


def clean_leftovers(index_dir: Path) -> None:
    """Remove what interrupted writers left (staging folders, versions never made live) and
    versions older than the one before the live one, which is kept for readers still loading it."""
    try:
        keep = set(_pointer(index_dir))
    except IndexInvalid:
        return  # leave a damaged index as it is for the user to inspect; --rebuild replaces it
    for path in index_dir.glob(f"{STAGING_PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)
    (index_dir / f"{CURRENT}.tmp").unlink(missing_ok=True)
    (index_dir / f"{SKIPPED}.tmp").unlink(missing_ok=True)
    for path in index_dir.glob("v[0-9]*"):
        if path.is_dir() and _VERSION.fullmatch(path.name) and path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


def _next_number(index_dir: Path) -> int:
    numbers = [int(p.name[1:7]) for p in index_dir.glob("v[0-9]*") if p.name[1:7].isdigit()]
    return max(numbers, default=0) + 1


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
