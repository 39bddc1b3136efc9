"""The dense index of chunk vectors, chosen by size: exact inner-product search (IndexFlatIP) while
exact search is fast, an inverted file of 8-bit scalar codes (IVF, SQ8) above `APPROX_FROM` rows.

Both kinds answer with chunk rows: the inverted file stores each vector under its row number, so
rows can be removed, renumbered and added without retraining (`update`). Files are written with
faiss.write_index, which stores no code. `python -m qa.store.dense` prints the benchmark that chose
the constants below.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import time
from pathlib import Path

import faiss
import numpy as np

APPROX_FROM = 30_000  # rows; exact single-query search takes 2-9 ms here on 2 cores, growing linearly after
PROBE_SHARE = 40  # an approximate search scans 1/40 of the lists (102 of 4096 at 1M rows: recall@10 0.97)
TRAIN_PER_LIST = 40  # k-means training sample per list (faiss warns below 39)
TRAIN_ITERATIONS = 10
SQ_MARGIN = 0.1  # 8-bit code range widened by 10% each side, so rows added later are rarely clipped


def nlist_for(rows: int) -> int:
    """Lists for an inverted file of `rows` vectors: the power of two nearest 4 * sqrt(rows)
    (4096 at 1M), and never fewer than TRAIN_PER_LIST rows to train each list."""
    return max(1, min(2 ** round(math.log2(4 * math.sqrt(max(rows, 1)))), rows // TRAIN_PER_LIST))


def nprobe_for(nlist: int) -> int:
    return min(nlist, max(8, nlist // PROBE_SHARE))


def is_approximate(index: faiss.Index) -> bool:
    return isinstance(index, faiss.IndexIVF)


def build(vectors: np.ndarray, *, approx_from: int | None = None, seed: int = 0) -> faiss.Index:
    """An index over `vectors` (normalized float32 rows) whose row i is id i: exact below
    `approx_from` rows (default APPROX_FROM), a trained IVF-SQ8 index from there on. The
    approximate index reads a memory-mapped array in batches, so memory holds its codes, not a
    copy of the vectors."""
    if vectors.ndim != 2 or vectors.dtype != np.float32:
        raise ValueError(f"vectors must be float32 rows (got {vectors.dtype} of shape {vectors.shape})")
    rows, dimension = vectors.shape
    if rows < (APPROX_FROM if approx_from is None else approx_from):
        index = faiss.IndexFlatIP(dimension)
        if rows:
            index.add(np.ascontiguousarray(vectors))
        return index
    nlist = nlist_for(rows)
    index = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(dimension), dimension, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    index.sq.rangestat_arg = SQ_MARGIN
    index.cp.niter = TRAIN_ITERATIONS
    index.cp.seed = seed
    sample = np.random.default_rng(seed).choice(rows, min(rows, TRAIN_PER_LIST * nlist), replace=False)
    index.train(vectors[np.sort(sample)])
    index.nprobe = nprobe_for(nlist)
    _add(index, vectors, np.arange(rows, dtype=np.int64))
    return index


def update(index: faiss.Index, new_row: np.ndarray, vectors: np.ndarray, added: np.ndarray) -> faiss.Index:
    """Move a trained approximate index to a new row layout without retraining, in place.

    `new_row[r]` is the new row of old row r, or -1 when it was removed; `added` are the new rows
    not taken from the old index and `vectors` their vectors, in the same order.
    """
    if not is_approximate(index):
        raise ValueError("only an approximate (IVF) index is updated in place; rebuild an exact one with build()")
    new_row = np.asarray(new_row, dtype=np.int64)
    if len(new_row) != index.ntotal:
        raise ValueError(f"new_row maps {len(new_row)} rows but the index holds {index.ntotal}")
    if len(vectors) != len(added):
        raise ValueError(f"{len(added)} added rows but {len(vectors)} vectors")
    gone = np.flatnonzero(new_row < 0).astype(np.int64)
    if len(gone):
        index.remove_ids(faiss.IDSelectorBatch(gone))
    if not np.array_equal(new_row, np.arange(len(new_row))):
        lists = index.invlists
        for number in range(index.nlist):
            size = lists.list_size(number)
            if size:  # ids are rewritten in place through a numpy view of the list's id array
                ids = faiss.rev_swig_ptr(lists.get_ids(number), size)
                ids[:] = new_row[ids]
    _add(index, np.asarray(vectors, dtype=np.float32), np.asarray(added, dtype=np.int64))
    return index


def suits(index: faiss.Index, kept: np.ndarray, added: np.ndarray, negligible: float = 0.01) -> bool:
    """Whether the trained lists fit `added` rows about as well as a sample of `kept` ones: the
    added rows' median cosine to their nearest list centre reaches the kept rows' first quartile.
    Rows on topics the training never saw fall well below it, and adding them without retraining
    costs their queries recall (0.71 against 0.97 for a fresh build in tests/test_dense.py). Fewer
    added rows than `negligible` of the index are accepted regardless: one odd document should
    not retrain a million rows."""
    if len(added) < negligible * index.ntotal or not len(kept):
        return True
    kept_fit, _ = index.quantizer.search(np.ascontiguousarray(kept, dtype=np.float32), 1)
    added_fit, _ = index.quantizer.search(np.ascontiguousarray(added, dtype=np.float32), 1)
    return float(np.median(added_fit)) >= float(np.percentile(kept_fit, 25))


def _add(index: faiss.Index, vectors: np.ndarray, rows: np.ndarray, batch: int = 100_000) -> None:
    for start in range(0, len(rows), batch):
        index.add_with_ids(np.ascontiguousarray(vectors[start : start + batch]), rows[start : start + batch])


def search(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows) of the `k` best rows for each query; rows are -1 where there are fewer."""
    queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    if is_approximate(index):
        return index.search(queries, k, params=faiss.SearchParametersIVF(nprobe=nprobe_for(index.nlist)))
    return index.search(queries, k)


def write(index: faiss.Index, path: str | Path) -> None:
    faiss.write_index(index, str(path))


def read(path: str | Path) -> faiss.Index:
    """Raises RuntimeError when the file is not a faiss index, ValueError when an approximate
    index's ids are not its rows 0..ntotal-1 (search results index the chunk list)."""
    index = faiss.read_index(str(path))
    if is_approximate(index) and not np.array_equal(_ids(index), np.arange(index.ntotal)):
        raise ValueError(f"{path} holds ids that are not its rows")
    return index


def _ids(index: faiss.IndexIVF) -> np.ndarray:
    lists = index.invlists
    parts = [faiss.rev_swig_ptr(lists.get_ids(n), lists.list_size(n)) for n in range(index.nlist) if lists.list_size(n)]
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)


# --- benchmark: python -m qa.store.dense --rows 1000000 -------------------------------------------


def corpus_like(real: np.ndarray, rows: int, queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`rows` normalized vectors shaped like a large corpus of the embeddings in `real`, and
    `queries` held-out vectors of the same corpus, perturbed. Random uniform vectors would be a
    worst case no corpus has; this keeps real embeddings' directions and neighbourhoods:

    topics are random convex combinations (Dirichlet weights) of 3 real vectors; each topic has its
    own 12 noise directions, random combinations of the centred real vectors (so noise follows the
    real covariance); a document is its topic moved along those directions, a chunk is its document
    moved again (20 chunks per document on average, lognormal sizes), plus a little isotropic
    noise, renormalized. Queries are chunks left out of the corpus with extra isotropic noise.
    Measured at 1M rows (with the live corpus's 737 vectors): cosine of a query to its nearest row
    has median 0.82 (5-95%: 0.74-0.87), to its 10th 0.73; a random pair 0.10; the live corpus's own
    nearest neighbours have median 0.74.
    """
    rng = np.random.default_rng(seed)
    real = np.asarray(real, dtype=np.float32)
    dimension = real.shape[1]
    total = rows + queries
    documents = max(total // 20, 1)
    topics = max(documents // 12, 1)
    weights = rng.dirichlet(np.ones(3), topics).astype(np.float32)
    centres = np.einsum("tm,tmd->td", weights, real[rng.integers(0, len(real), (topics, 3))])
    centres = _normalized(centres + 0.03 * rng.standard_normal(centres.shape, dtype=np.float32))
    centred = real - real.mean(0)
    directions = _normalized(rng.standard_normal((topics * 12, len(real)), dtype=np.float32) @ centred)
    directions = directions.reshape(topics, 12, dimension)

    def moved(points: np.ndarray, topic: np.ndarray, scale: float, noise: float) -> np.ndarray:
        along = np.einsum("ns,nsd->nd", rng.standard_normal((len(topic), 12), dtype=np.float32), directions[topic])
        return _normalized(points + scale * along + noise * rng.standard_normal(points.shape, dtype=np.float32))

    topic_of = rng.integers(0, topics, documents)
    document_centres = moved(centres[topic_of], topic_of, 0.25, 0.01)
    sizes = rng.lognormal(0.0, 0.8, documents)
    owner = rng.choice(documents, total, p=sizes / sizes.sum())
    out = np.empty((total, dimension), np.float32)
    for start in range(0, total, 50_000):
        mine = owner[start : start + 50_000]
        out[start : start + 50_000] = moved(document_centres[mine], topic_of[mine], 0.18, 0.01)
    held_out = np.zeros(total, bool)
    held_out[rng.choice(total, queries, replace=False)] = True
    asked = _normalized(out[held_out] + 0.02 * rng.standard_normal((queries, dimension), dtype=np.float32))
    return out[~held_out], asked


def _normalized(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _live_vectors(index_dir: Path) -> np.ndarray:
    from qa import store

    version = store.current_version(index_dir)
    if version is None:
        raise SystemExit(f"no index in {index_dir}/: build one with `python -m ingest` (its vectors seed the benchmark)")
    folder = index_dir / version
    return np.load(folder / "vectors.npy", allow_pickle=False)


def _resident_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _serialized_bytes(index: faiss.Index) -> int:
    return int(faiss.serialize_index(index).nbytes)


def _latencies(index: faiss.Index, queries: np.ndarray, k: int) -> np.ndarray:
    for query in queries[:10]:  # warm-up
        search(index, query, k)
    out = []
    for query in queries:
        began = time.perf_counter()
        search(index, query, k)
        out.append((time.perf_counter() - began) * 1000)
    return np.array(out)


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found.tolist(), truth.tolist())]))


def benchmark(rows: int, queries: int, sizes: list[int], index_dir: Path, k: int = 10, seed: int = 0) -> list[dict]:
    """One line per (size, index kind): build seconds, index bytes, RSS growth while building,
    single-query latency p50/p95 and recall@k against exact search; then an update of the
    approximate index at `rows` (1% of rows removed, 1% added) measured the same way, with
    queries near the added rows among the held-out ones."""
    real = _live_vectors(index_dir)
    lines = []

    def measure(kind: str, n: int, make, truth: np.ndarray, asked: np.ndarray) -> faiss.Index:
        before = _resident_bytes()
        began = time.perf_counter()
        index = make()
        seconds = time.perf_counter() - began
        grown = _resident_bytes() - before
        times = _latencies(index, asked, k)
        _, found = search(index, asked, k)
        lines.append(
            {"rows": n, "index": kind, "build_s": seconds, "index_mb": _serialized_bytes(index) / 1e6, "rss_growth_mb": grown / 1e6,
             "p50_ms": float(np.median(times)), "p95_ms": float(np.percentile(times, 95)), f"recall@{k}": 1.0 if truth is None else _recall(found, truth)}
        )
        print(_row(lines[-1]), flush=True)
        return index

    print(_row(None), flush=True)
    for n in sorted(set(sizes) | {rows}):
        changed = max(n // 100, 1) if n == rows and n >= APPROX_FROM else 0
        vectors, asked = corpus_like(real, n + changed, queries, seed)
        vectors, new_vectors = vectors[:n], vectors[n:]  # chunks of the same collection, indexed later
        exact = measure("exact IndexFlatIP", n, lambda: build(vectors, approx_from=n + 1), None, asked)
        _, truth = exact.search(asked, k)  # the ground truth of this size
        if n < rows:
            threads = faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(1)
            times = _latencies(exact, asked, k)
            faiss.omp_set_num_threads(threads)
            print(f"{'':>11}{'(same, 1 thread)':<36} {'':>8} {'':>9} {'':>8} {np.median(times):>7.2f} {np.percentile(times, 95):>7.2f}", flush=True)
        del exact
        if n < APPROX_FROM:
            continue
        approximate = measure(f"IVF{nlist_for(n)},SQ8 nprobe {nprobe_for(nlist_for(n))}", n, lambda: build(vectors), truth, asked)
        if not changed:
            continue
        # an edit as the store makes it: 1% of rows removed, as many new ones placed between the kept
        rng = np.random.default_rng(seed + 1)
        keep = np.ones(n, bool)
        keep[rng.choice(n, changed, replace=False)] = False
        added = np.sort(rng.choice(n, changed, replace=False)).astype(np.int64)
        is_new = np.zeros(n, bool)
        is_new[added] = True
        new_row = np.full(n, -1, np.int64)
        new_row[keep] = np.flatnonzero(~is_new)
        after = np.empty_like(vectors)
        after[~is_new], after[is_new] = vectors[keep], new_vectors
        del vectors
        asked = np.concatenate([asked, _normalized(new_vectors[:100] + 0.02 * rng.standard_normal((min(100, changed), after.shape[1]), dtype=np.float32))])
        flat = faiss.IndexFlatIP(after.shape[1])
        flat.add(after)
        _, truth = flat.search(asked, k)
        del flat
        other_topics, _ = corpus_like(real, changed, 0, seed + 2)
        print(f"{'':>11}suits(): same collection {suits(approximate, after[~is_new][:2000], new_vectors)}, "
              f"unseen topics {suits(approximate, after[~is_new][:2000], other_topics)} (False: the store retrains)", flush=True)
        measure(f"  update -{changed:,} +{changed:,} rows", n, lambda: update(approximate, new_row, new_vectors, added), truth, asked)
    return lines


def _row(line: dict | None) -> str:
    if line is None:
        return f"{'rows':>9}  {'index':<36} {'build s':>8} {'index MB':>9} {'RSS+ MB':>8} {'p50 ms':>7} {'p95 ms':>7} {'recall@10':>9}"
    return (f"{line['rows']:>9,}  {line['index']:<36} {line['build_s']:>8.1f} {line['index_mb']:>9.1f} {line['rss_growth_mb']:>8.0f} "
            f"{line['p50_ms']:>7.2f} {line['p95_ms']:>7.2f} {line['recall@10']:>9.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa.store.dense", description="Benchmark exact and approximate dense search on vectors shaped like the indexed corpus.")
    parser.add_argument("--rows", type=int, default=1_000_000, help="largest index (default: 1,000,000)")
    parser.add_argument("--queries", type=int, default=200, help="held-out queries (default: 200)")
    parser.add_argument("--sizes", default=f"10000,{APPROX_FROM},100000", help="smaller sizes, comma-separated")
    parser.add_argument("--index", type=Path, default=Path("index"), help="index whose vectors seed the corpus (default: index)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads; single-query latency; peak RSS so far "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:.0f} MB")
    benchmark(args.rows, args.queries, sizes, args.index)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
