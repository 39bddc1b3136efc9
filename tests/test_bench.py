"""The benchmark runs end to end on a tiny size with the fake embedder (no timing assertions:
the benchmark prints figures, it does not judge them)."""

import json
import numbers

from ingest.sync import sync
from qa.__main__ import main
from tests.conftest import ROOT, FakeEmbedder


def test_bench_json_has_every_figure(tmp_path, capsys, monkeypatch):
    embedder = FakeEmbedder()
    index_dir = tmp_path / "index"
    sync([ROOT / "corpus"], index_dir, embedder=embedder)
    monkeypatch.chdir(ROOT)
    assert main(["bench", "--json", "--chunks", "20", "--index-chunks", "60", "--runs", "1", "--memory-scales", "1", "--index", str(index_dir)], embedder=embedder) == 0
    results = json.loads(capsys.readouterr().out)
    figures = [
        results["ingest"]["pipeline_chunks_per_s"], results["ingest"]["encode_chunks_per_s"], results["ingest"]["ratio"],
        results["incremental"]["add_one_s"], results["incremental"]["remove_one_s"], results["incremental"]["rebuild_s"],
        results["incremental"]["document_embedding_s"], results["memory"][0]["peak_rss_mb"], results["peak_rss_mb"],
    ]
    figures += [results["latency"][stage][p] for stage in ["total", "embed", "search", "fuse", "extract"] for p in ["p50_ms", "p95_ms"]]
    assert all(isinstance(f, numbers.Real) and f >= 0 for f in figures)
    assert results["ingest"]["chunks"] >= 20 and results["incremental"]["index_chunks"] >= 60
    assert results["cold_start"] is None or results["cold_start"]["seconds"] > 0


def test_bench_table_names_each_figure(tmp_path):
    from qa import bench

    results = bench.run(embedder=FakeEmbedder(), chunks=10, index_chunks=30, runs=1, index_dir=_index(tmp_path), memory_scales=(), cold_start=False, corpus=ROOT / "corpus")
    text = bench.table(results)
    for words in ["chunks/s", "pipeline / encode", "add one document", "rebuild", "question embed", "question extract", "peak memory"]:
        assert words in text


def _index(tmp_path):
    sync([ROOT / "corpus"], tmp_path / "index", embedder=FakeEmbedder())
    return tmp_path / "index"
