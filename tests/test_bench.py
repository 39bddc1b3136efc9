"""The benchmark runs end to end on a tiny size with the fake embedder (no timing assertions:
the benchmark prints figures, it does not judge them)."""

import contextlib
import io
import json
import numbers
import subprocess
import sys

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
    figures += [results["latency"][stage][p] for stage in ["total", "embed", "search", "read"] for p in ["p50_ms", "p95_ms"]]
    assert all(isinstance(f, numbers.Real) and f >= 0 for f in figures)
    assert results["ingest"]["chunks"] >= 20 and results["incremental"]["index_chunks"] >= 60
    assert results["cold_start"] is None or results["cold_start"]["seconds"] > 0
    assert results["ingest_vs_encode_processes"] is None  # an injected embedder: the child processes would not use it


def test_bench_table_names_each_figure(tmp_path):
    from qa import bench

    results = bench.run(embedder=FakeEmbedder(), chunks=10, index_chunks=30, runs=1, index_dir=_index(tmp_path), memory_scales=(), cold_start=False, corpus=ROOT / "corpus")
    text = bench.table(results)
    for words in ["chunks/s", "pipeline / encode", "add one document", "rebuild", "question embed", "question search", "question read", "peak memory"]:
        assert words in text


def test_bench_process_rows_run_both_commands(tmp_path, monkeypatch):
    """The whole-process figure's two commands, run in this process with fixed "seconds": the
    ingest command line parses and builds an index, the encode side gets the same chunk texts."""
    from ingest.__main__ import main as ingest_main
    from qa import bench

    def fake_run(command):
        if command[1:3] == ["-m", "ingest"]:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                assert ingest_main(command[3:], embedder=FakeEmbedder()) == 0
            return 2.0, out.getvalue()
        assert command[1:3] == ["-c", bench.PLAIN_ENCODE]
        texts = json.loads(open(command[-1], encoding="utf-8").read())
        assert texts and all(isinstance(t, str) and t.strip() for t in texts)
        return 1.0, ""

    monkeypatch.setattr(bench, "_run_process", fake_run)
    results = bench.run(embedder=FakeEmbedder(), chunks=10, index_chunks=30, runs=1, index_dir=_index(tmp_path), memory_scales=(),
                        cold_start=False, processes=True, corpus=ROOT / "corpus")
    rows = results["ingest_vs_encode_processes"]
    assert [r["documents"] for r in rows] == ["generated", "corpus/"]
    assert rows[0]["chunks"] == results["ingest"]["chunks"] and rows[1]["chunks"] > 0
    assert all(r["ratio"] == 0.5 for r in rows)  # 2 s against 1 s for the same chunks: arithmetic, not a timing
    text = bench.table(results)
    for words in ["ingest vs plain encode, whole processes", "encode chunks/s", "ratio", "corpus/"]:
        assert words in text


def _index(tmp_path):
    sync([ROOT / "corpus"], tmp_path / "index", embedder=FakeEmbedder())
    return tmp_path / "index"


def test_bench_cluster_compares_one_process_with_local_clusters():
    """In a fresh process: Dask's spawned workers re-import the parent's __main__, which other
    tests (AppTest's generated scripts) leave pointing at a file they cannot run."""
    code = (
        "import json\n"
        "from qa import bench\n"
        "from tests.conftest import ROOT, FakeEmbedder\n"
        "results = bench.cluster_run(chunks=10, runs=1, corpus=ROOT / 'corpus', workers=(1, 2), embedder=FakeEmbedder(), writer_chunks=30)\n"
        "print(json.dumps({'results': results, 'table': bench.cluster_table(results)}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    results, text = out["results"], out["table"]
    assert [r["setup"] for r in results["rows"]] == ["single process", "Dask, 1 worker", "Dask, 2 workers"]
    assert len({r["chunks"] for r in results["rows"]}) == 1 and results["rows"][0]["chunks"] >= 10
    assert all(r["chunks_per_s"] > 0 for r in results["rows"]) and results["writer_chunks_per_s"] > 0
    assert results["writer_chunks"] >= 30
    assert "MODEL, not a measurement" in text and "hours per million chunks" in text
    assert [line.split()[0] for line in text.splitlines()[-4:]] == ["1", "8", "32", "128"]
