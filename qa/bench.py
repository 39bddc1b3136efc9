"""`python -m qa bench`: whole-pipeline figures on this machine, printed as a table.

Every figure is the median of `runs` runs after a warm-up. Generated corpora are paragraphs of
the real corpus/ documents, shuffled into new documents, so chunk lengths are real.
Where a figure is about indexing mechanics rather than the model (adding one document to a large
index, memory as the corpus grows), vectors come from `HashEmbedder` so the model's time does
not hide the pipeline's; those rows say so.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from qa.embedder import Embedder, ModelSpec

QUESTIONS = [
    "Who led the team that created ImageNet?",
    "At which conference was ImageNet presented?",
    "Who began WordNet?",
    "Which crowdsourcing platform verified ImageNet's labels?",
    "How many images does the full ImageNet dataset hold?",
    "How many categories did Caltech-101 have?",
    "In which years did ILSVRC run?",
    "Who built AlexNet?",
    "What top-5 error did AlexNet achieve in ILSVRC 2012?",
    "What GPUs was AlexNet trained on?",
]
PARAGRAPHS_PER_DOCUMENT = 12


class HashEmbedder:
    """Unit vectors picked by a hash of the text: no model, thousands of texts per millisecond."""

    def __init__(self, dimension: int = 384) -> None:
        self.spec = ModelSpec(name="bench-hash", dimension=dimension)
        pool = np.random.default_rng(0).standard_normal((4096, dimension)).astype(np.float32)
        self._pool = pool / np.linalg.norm(pool, axis=1, keepdims=True)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._pool[[zlib.crc32(t.encode("utf-8")) % len(self._pool) for t in texts]]

    def encode_passages(self, texts: list[str], progress=None) -> np.ndarray:
        vectors = self.encode_queries(list(texts)).reshape(len(texts), self.spec.dimension)
        if progress:
            progress(len(texts))
        return vectors


def generate_corpus(folder: Path, chunks: int, corpus: Path = Path("corpus"), seed: int = 7, first: int = 0) -> int:
    """Write Markdown documents of shuffled corpus paragraphs until about `chunks` chunks; returns
    how many documents were written."""
    from qa.documents.chunking import Chunker
    from qa.documents import document_from_text, kind_of, load_document

    paragraphs = []
    for path in sorted(corpus.iterdir()):
        if kind_of(path) is not None:
            text = load_document(path, path.name, path.as_posix()).text
            paragraphs += [p.strip() for p in text.split("\n\n") if len(p.strip()) >= 80]
    rng = random.Random(seed)
    chunker = Chunker()
    folder.mkdir(parents=True, exist_ok=True)
    made = number = 0
    while made < chunks:
        text = f"# Generated document {first + number}\n\n" + "\n\n".join(rng.sample(paragraphs, PARAGRAPHS_PER_DOCUMENT)) + "\n"
        (folder / f"doc{first + number:07d}.md").write_text(text, encoding="utf-8")
        made += len(chunker.split(document_from_text("x.md", text)))
        number += 1
    return number


def run(
    *,
    embedder: Embedder | None = None,
    chunks: int = 200,
    index_chunks: int = 10_000,
    runs: int = 3,
    index_dir: Path = Path("index"),
    memory_scales: tuple[int, ...] = (1, 10),
    cold_start: bool = True,
    corpus: Path = Path("corpus"),
    processes: bool | None = None,
) -> dict:
    """All the figures, as one JSON-ready dict. `processes` (default: only when no embedder is
    given, as the child processes always load the real model) adds ingest against a plain
    sentence-transformers encode, each a whole process."""
    from qa.embedder import load_embedder

    if processes is None:
        processes = embedder is None
    embedder = embedder or load_embedder()
    results = {"model": embedder.spec.name, "runs": runs}
    with tempfile.TemporaryDirectory(prefix="qa-bench-") as scratch:
        scratch = Path(scratch)
        results["ingest"] = _ingest(embedder, chunks, runs, scratch / "ingest", corpus)
        folders = {"generated": scratch / "ingest" / "docs", f"{corpus.name}/": corpus}  # "generated": `_ingest`'s own
        results["ingest_vs_encode_processes"] = _processes(folders, runs, scratch / "processes", corpus) if processes else None
        results["incremental"] = _incremental(embedder, index_chunks, runs, scratch / "incremental", corpus)
        results["memory"] = _memory(memory_scales, scratch / "memory", corpus, embedder.spec.dimension)
    results["latency"] = _latency(embedder, index_dir, runs)
    results["cold_start"] = _cold_start(index_dir, runs) if cold_start else None
    results["peak_rss_mb"] = _mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return results


def cluster_run(
    *, chunks: int = 1000, runs: int = 3, corpus: Path = Path("corpus"), workers: tuple[int, ...] = (1, 2),
    embedder: Embedder | None = None, writer_chunks: int = 20_000,
) -> dict:
    """`qa bench --cluster`: chunks/s of a fresh build of a generated corpus in one process and on
    a local Dask cluster of 1 and 2 workers, with the real model (the cluster's workers always
    load it; `embedder` replaces it on both sides, for tests). The cluster's first run, which loads
    the model on each worker, is reported apart. The writer's own ceiling comes from hash vectors,
    on the same documents plus more, to about `writer_chunks` chunks."""
    from ingest.cluster import start_local
    from ingest.sync import sync
    from qa.embedder import load_embedder

    with tempfile.TemporaryDirectory(prefix="qa-bench-cluster-") as scratch:
        docs, scratch = Path(scratch) / "docs", Path(scratch)
        generate_corpus(docs, chunks, corpus)

        def build(**how) -> tuple[float, int]:
            began = time.perf_counter()
            report = sync([docs], scratch / "index", rebuild=True, **how)
            return time.perf_counter() - began, report.embedded_chunks

        local_embedder = embedder or load_embedder()
        setups = {"single process": {"embedder": local_embedder}}
        clusters, rows = [], []
        try:
            for count in workers:
                began = time.perf_counter()
                clusters.append(start_local(count))
                started = time.perf_counter() - began
                setups[f"Dask, {count} worker{'s' if count > 1 else ''}"] = {"embedder": embedder, "cluster": clusters[-1].scheduler_address}
                rows.append({"workers": count, "cluster_start_s": started})
            first = [build(**how)[0] for how in setups.values()]  # warm-up; on a cluster it loads the model on each worker
            times: dict[str, list[float]] = {name: [] for name in setups}
            for _ in range(runs):  # interleaved, so a busy neighbour slows every setup alike
                for name, how in setups.items():
                    seconds, made = build(**how)
                    times[name].append(seconds)
        finally:
            for local in clusters:
                local.close()
        rows = [{"workers": 0}, *rows]
        for row, name, warm_up in zip(rows, setups, first):
            row.update(setup=name, chunks=made, seconds=_median(times[name]), chunks_per_s=made / _median(times[name]))
            if row["workers"]:
                row["first_run_s"] = warm_up
        generate_corpus(docs, writer_chunks, corpus, first=10**6)  # the writer's own rate, at a size where it shows
        seconds, made = zip(*[build(embedder=HashEmbedder(local_embedder.spec.dimension)) for _ in range(runs)])
        writer = made[0] / _median(seconds)
    return {"runs": runs, "cores": os.cpu_count(), "rows": rows, "writer_chunks": made[0], "writer_chunks_per_s": writer}


def cluster_table(results: dict) -> str:
    """The cluster figures, then the model for more machines derived from them."""
    rows, writer = results["rows"], results["writer_chunks_per_s"]
    lines = [
        f"ingest of a fresh build on this machine ({results['cores']} cores), median of {results['runs']} after a warm-up",
        f"{'setup':<18} {'chunks':>6} {'seconds':>8} {'chunks/s':>9} {'vs single':>10} {'cluster start s':>16} {'first run s':>12}",
    ]
    single = rows[0]["chunks_per_s"]
    for r in rows:
        extra = f"{r['cluster_start_s']:>16.1f} {r['first_run_s']:>12.1f}" if r["workers"] else ""
        lines.append(f"{r['setup']:<18} {r['chunks']:>6,} {r['seconds']:>8.1f} {r['chunks_per_s']:>9.1f} {r['chunks_per_s'] / single:>10.2f} {extra}".rstrip())
    lines.append(f"the one writer alone, hash vectors, {results['writer_chunks']:,} chunks: {writer:,.0f} chunks/s")
    per_worker = next((r["chunks_per_s"] for r in rows if r["workers"] == 1), None)
    if per_worker:
        lines += ["", f"MODEL, not a measurement: workers like this machine ({results['cores']} cores, one worker each) at {per_worker:.1f} chunks/s,",
                  f"the single writer capping the total at {writer:,.0f} chunks/s; the network is assumed not to be the bound.",
                  f"{'workers':>8} {'chunks/s':>9} {'hours per million chunks':>25}"]
        for count in (1, 8, 32, 128):
            rate = min(count * per_worker, writer)
            lines.append(f"{count:>8} {rate:>9,.0f} {1e6 / rate / 3600:>25.2f}")
    return "\n".join(lines)


def _ingest(embedder: Embedder, chunks: int, runs: int, folder: Path, corpus: Path) -> dict:
    """A fresh build of a generated corpus, and the embedder alone on exactly the same chunks."""
    from ingest.sync import sync
    from qa.documents.chunking import Chunker
    from qa.documents import load_document

    docs = folder / "docs"
    generate_corpus(docs, chunks, corpus)
    chunker = Chunker()
    texts = [c.text for path in sorted(docs.iterdir()) for c in chunker.split(load_document(path, path.name, path.as_posix()))]
    chunk_count = len(texts)
    embedder.encode_passages(texts[:64])  # warm-up
    pipeline, encode = [], []
    for number in range(runs):  # interleaved, so a busy neighbour slows both alike
        began = time.perf_counter()
        sync([docs], folder / f"index{number}", embedder=embedder, rebuild=True)
        pipeline.append(time.perf_counter() - began)
        began = time.perf_counter()
        embedder.encode_passages(texts)
        encode.append(time.perf_counter() - began)
    ingest_rate, encode_rate = chunk_count / _median(pipeline), chunk_count / _median(encode)
    return {
        "chunks": chunk_count,
        "pipeline_chunks_per_s": ingest_rate,
        "encode_chunks_per_s": encode_rate,
        "ratio": ingest_rate / encode_rate,
    }


def _incremental(embedder: Embedder, chunks: int, runs: int, folder: Path, corpus: Path) -> dict:
    """Adding one document to an index of `chunks` chunks, against rebuilding it (vectors from
    HashEmbedder, so both figures are indexing work only), and the model's time for that document."""
    from ingest.sync import sync
    from qa.documents.chunking import Chunker
    from qa.documents import load_document

    docs, index_dir = folder / "docs", folder / "index"
    documents = generate_corpus(docs, chunks, corpus)
    hashed = HashEmbedder(embedder.spec.dimension)
    began = time.perf_counter()
    size = sync([docs], index_dir, embedder=hashed).chunks
    rebuild = time.perf_counter() - began
    extra = folder / "extra"
    generate_corpus(extra, 10, corpus, seed=99)
    new = sorted(extra.iterdir())[0]
    target = docs / f"doc{documents // 2:07d}x.md"  # its rows go in the middle, the worst place
    adds, removes = [], []
    for number in range(runs + 1):  # the first is the warm-up
        target.write_bytes(new.read_bytes().replace(b"Generated", f"Added {number}".encode()))
        began = time.perf_counter()
        sync([docs], index_dir, embedder=hashed)
        added = time.perf_counter() - began
        target.unlink()
        began = time.perf_counter()
        sync([docs], index_dir, embedder=hashed)
        if number:
            adds.append(added)
            removes.append(time.perf_counter() - began)
    doc = load_document(new, new.name, new.as_posix())
    texts = [c.text for c in Chunker().split(doc)]
    began = time.perf_counter()
    embedder.encode_passages(texts)
    return {
        "index_chunks": size,
        "add_one_s": _median(adds),
        "remove_one_s": _median(removes),
        "rebuild_s": rebuild,
        "document_embedding_s": time.perf_counter() - began,
    }


# Runs a module as `python -m` would, then reports the process's own peak memory. VmHWM is used
# because ru_maxrss of a child starts at its parent's peak (Linux carries it across fork and exec).
PEAK_DRIVER = """
import runpy, sys
module, sys.argv = sys.argv[1], sys.argv[1:]
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
except SystemExit as exit:
    if exit.code:
        raise
status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
sys.stderr.write("\\npeak-kb " + status + "\\n")
"""


def _memory(scales: tuple[int, ...], folder: Path, corpus: Path, dimension: int) -> list[dict]:
    """Peak memory of a fresh ingest in its own process, at multiples of the default corpus size
    (HashEmbedder vectors: the model's own memory is the same at every size)."""
    from ingest.sync import scan, SyncReport
    from qa.documents.chunking import Chunker
    from qa.documents import load_document

    base = sum(len(Chunker().split(load_document(f.path, f.doc_id, f.source))) for f in scan([corpus], SyncReport()))
    out = []
    for scale in scales:
        docs = folder / f"x{scale}"
        generate_corpus(docs, base * scale, corpus)
        began = time.perf_counter()
        rss = _child_peak_rss(["qa.bench", "ingest", str(docs), str(folder / f"index{scale}"), str(dimension)])
        out.append({"scale": scale, "chunks": base * scale, "peak_rss_mb": rss, "seconds": time.perf_counter() - began})
    return out


# A plain sentence-transformers encode, as a user would write it without this project: imports,
# reading the texts (a JSON list), loading the model and encoding. argv: model folder, texts file.
PLAIN_ENCODE = """
import json, sys
from sentence_transformers import SentenceTransformer
with open(sys.argv[2], encoding="utf-8") as file:
    texts = json.load(file)
SentenceTransformer(sys.argv[1], device="cpu").encode(texts, batch_size=32, normalize_embeddings=True)
"""


def _processes(folders: dict[str, Path], runs: int, scratch: Path, corpus: Path) -> list[dict]:
    """`python -m ingest` of each folder into a fresh index, against a plain sentence-transformers
    encode of exactly its chunk texts, both timed as whole processes from outside: that is what
    a user waits for, so interpreter start, imports and the model load count on both sides (and
    reading and chunking on ingest's). The in-process `_ingest` figure leaves all of that out.
    One warm-up pair on `corpus` first fills the page cache (libraries, model files) for both."""
    from qa.embedder import bundled_model_path

    model = str(bundled_model_path())  # found here, so the plain side runs no code of this project
    scratch.mkdir(parents=True, exist_ok=True)
    _process_pair(corpus, model, _texts_file(corpus, scratch / "warm-up.json"), 1, scratch / "warm-up")
    rows = []
    for name, docs in folders.items():
        texts_file = _texts_file(docs, scratch / f"texts{len(rows)}.json")
        chunks = len(json.loads(texts_file.read_text(encoding="utf-8")))
        ingest, encode = _process_pair(docs, model, texts_file, runs, scratch / f"index{len(rows)}", chunks)
        ingest_rate, encode_rate = chunks / _median(ingest), chunks / _median(encode)
        rows.append({
            "documents": name,
            "chunks": chunks,
            "ingest_s": _median(ingest),
            "encode_s": _median(encode),
            "ingest_chunks_per_s": ingest_rate,
            "encode_chunks_per_s": encode_rate,
            "ratio": ingest_rate / encode_rate,
        })
    return rows


def _texts_file(docs: Path, path: Path) -> Path:
    """The chunk texts ingest embeds for `docs` (its scan order, the default Chunker), as JSON."""
    from ingest.sync import scan, SyncReport
    from qa.documents.chunking import Chunker
    from qa.documents import load_document

    chunker = Chunker()
    texts = [c.text for f in scan([docs], SyncReport()) for c in chunker.split(load_document(f.path, f.doc_id, f.source))]
    path.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    return path


def _process_pair(docs: Path, model: str, texts_file: Path, runs: int, index_root: Path, chunks: int | None = None) -> tuple[list[float], list[float]]:
    """Seconds of `runs` ingest processes and `runs` plain encode processes, interleaved so a busy
    neighbour slows both alike. Each ingest writes a new index (removed after, untimed); when
    `chunks` is given, ingest must report that many, or the two sides did not embed the same texts."""
    ingest, encode = [], []
    for number in range(runs):
        index_dir = index_root / str(number)
        seconds, out = _run_process([sys.executable, "-m", "ingest", str(docs.resolve()), "--index", str(index_dir), "--json"])
        made = json.loads(out)["chunks"]
        if chunks is not None and made != chunks:
            raise RuntimeError(f"python -m ingest {docs} made {made} chunks, the bench's Chunker {chunks}: the figures would not compare")
        ingest.append(seconds)
        shutil.rmtree(index_dir, ignore_errors=True)
        encode.append(_run_process([sys.executable, "-c", PLAIN_ENCODE, model, str(texts_file)])[0])
    return ingest, encode


def _run_process(command: list[str]) -> tuple[float, str]:
    """Wall seconds of `command` run to completion in the project root, and its stdout. Offline,
    and with QA_BACKEND unset so ingest runs the default backend, which is what a user runs."""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    env.pop("QA_BACKEND", None)
    began = time.perf_counter()
    done = subprocess.run(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        what = "python -m ingest" if command[1] == "-m" else "the plain sentence-transformers encode"
        raise RuntimeError(f"{what} failed: {done.stderr[-500:]}")
    return seconds, done.stdout


def _latency(embedder: Embedder, index_dir: Path, runs: int) -> dict:
    """Question to answer on `index_dir`, warm, split by stage (the answer's own timings)."""
    from qa.engine import Engine

    engine = Engine.load(index_dir, embedder=embedder)
    for question in QUESTIONS[:3]:
        engine.ask(question)  # warm-up
    totals, stages = [], {}
    for _ in range(runs):
        for question in QUESTIONS:
            began = time.perf_counter()
            answer = engine.ask(question)
            totals.append((time.perf_counter() - began) * 1000)
            for stage, ms in answer.timings_ms.items():
                stages.setdefault(stage, []).append(ms)
    figures = {"questions": len(totals), "total": _percentiles(totals)}
    figures.update({stage: _percentiles(values) for stage, values in stages.items()})
    return figures


def _cold_start(index_dir: Path, runs: int) -> dict:
    """`python -m qa ask` in a fresh process, end to end: imports, loading the index and the model,
    and the first answer."""
    command = ["qa", "ask", QUESTIONS[0], "--index", str(index_dir)]
    seconds, peaks = [], []
    for _ in range(runs):
        began = time.perf_counter()
        peaks.append(_child_peak_rss(command))
        seconds.append(time.perf_counter() - began)
    return {"seconds": _median(seconds), "peak_rss_mb": _median(peaks)}


def _child_peak_rss(module_and_args: list[str]) -> float:
    """Run `python -m MODULE ARGS` to completion in a fresh process; its peak resident memory in MB."""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", PEAK_DRIVER, *module_and_args], cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0 or "peak-kb " not in done.stderr:
        raise RuntimeError(f"python -m {' '.join(module_and_args[:2])} failed: {done.stderr[-500:]}")
    return _mb(int(done.stderr.rsplit("peak-kb ", 1)[1].split()[0]))


def _mb(kilobytes: int) -> float:
    return kilobytes / 1024  # Linux reports ru_maxrss in kilobytes


def _median(values: list[float]) -> float:
    return float(np.median(values))


def _percentiles(values: list[float]) -> dict:
    return {"p50_ms": float(np.percentile(values, 50)), "p95_ms": float(np.percentile(values, 95))}


def table(results: dict) -> str:
    """The figures as an aligned text table."""
    ingest, inc, lat = results["ingest"], results["incremental"], results["latency"]
    rows = [
        ("model", results["model"], ""),
        (f"ingest, fresh build ({ingest['chunks']} chunks)", f"{ingest['pipeline_chunks_per_s']:.1f} chunks/s", ""),
        ("model encode alone, same chunks", f"{ingest['encode_chunks_per_s']:.1f} chunks/s", ""),
        ("pipeline / encode", f"{ingest['ratio']:.2f}", "target >= 0.9"),
        (f"add one document to {inc['index_chunks']:,} chunks", f"{inc['add_one_s']:.2f} s", "hash vectors; target < 3 s + embedding"),
        ("  that document's embedding", f"{inc['document_embedding_s']:.2f} s", "the model"),
        (f"remove one document from {inc['index_chunks']:,} chunks", f"{inc['remove_one_s']:.2f} s", "hash vectors"),
        (f"rebuild {inc['index_chunks']:,} chunks", f"{inc['rebuild_s']:.2f} s", "hash vectors, one run"),
    ]
    for stage in [s for s in lat if s != "questions"]:  # the total, then the engine's stages in its order
        target = "target p50 <= 60, p95 <= 120" if stage == "total" else ""
        rows.append((f"question {stage} ({lat['questions']} asks)", f"p50 {lat[stage]['p50_ms']:.1f} ms, p95 {lat[stage]['p95_ms']:.1f} ms", target))
    for item in results["memory"]:
        rows.append((f"peak memory, ingest {item['scale']}x corpus ({item['chunks']:,} chunks)", f"{item['peak_rss_mb']:.0f} MB", f"hash vectors, {item['seconds']:.1f} s"))
    if results["cold_start"]:
        cold = results["cold_start"]
        rows.append(("cold start to first answer (python -m qa ask)", f"{cold['seconds']:.2f} s", f"peak {cold['peak_rss_mb']:.0f} MB"))
    rows.append(("peak memory, this benchmark process", f"{results['peak_rss_mb']:.0f} MB", ""))
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    lines = [f"{'figure':<{width}}  {'median of ' + str(results['runs']):<{value_width}}  note", "-" * (width + value_width + 30)]
    lines += [f"{name:<{width}}  {value:<{value_width}}  {note}".rstrip() for name, value, note in rows]
    if results.get("ingest_vs_encode_processes"):
        lines += ["", *_processes_table(results["ingest_vs_encode_processes"], results["runs"])]
    return "\n".join(lines)


def _processes_table(rows: list[dict], runs: int) -> list[str]:
    """Ingest against a plain encode, whole processes: one line per documents folder."""
    lines = [
        f"ingest vs plain encode, whole processes (median of {runs}; ratio = ingest chunks/s / encode chunks/s, target >= 0.9)",
        f"{'documents':<10} {'chunks':>6} {'ingest s':>9} {'encode s':>9} {'ingest chunks/s':>16} {'encode chunks/s':>16} {'ratio':>6}",
    ]
    for r in rows:
        lines.append(f"{r['documents']:<10} {r['chunks']:>6,} {r['ingest_s']:>9.2f} {r['encode_s']:>9.2f} "
                     f"{r['ingest_chunks_per_s']:>16.1f} {r['encode_chunks_per_s']:>16.1f} {r['ratio']:>6.2f}")
    return lines


if __name__ == "__main__" and sys.argv[1:2] == ["ingest"]:  # the child process of `_memory`
    from ingest.sync import sync

    sync([sys.argv[2]], sys.argv[3], embedder=HashEmbedder(int(sys.argv[4])))
