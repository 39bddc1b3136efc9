"""python -m ingest [PATH ...] [--index DIR] [--model PATH] [--rebuild] [--cluster ADDRESS [--send-files]] [--json]"""

from __future__ import annotations

import argparse
import json
import os
import sys

from qa.cli_support import run_safely


def main(argv: list[str] | None = None, embedder=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ingest",
        description="Add new, re-embed changed and remove deleted documents so the index matches the files.",
    )
    parser.add_argument("paths", nargs="*", default=["corpus"], help="documents folders or files (default: corpus)")
    parser.add_argument("--index", default="index", help="index folder (default: index)")
    parser.add_argument("--model", help="local sentence-transformers model folder (default: bundled all-MiniLM-L6-v2)")
    parser.add_argument("--rebuild", action="store_true", help="re-embed everything and read again the files skipped before, e.g. to change model or chunking")
    parser.add_argument("--chunk-size", type=int, help="characters per chunk (default 800; a change re-chunks everything)")
    parser.add_argument("--chunk-overlap", type=int, help="characters shared by neighbouring chunks (default 100)")
    parser.add_argument("--cluster", metavar="ADDRESS", help="embed on a Dask cluster: tcp://HOST:PORT of its scheduler, or local:N to start N local workers for this run")
    parser.add_argument("--send-files", action="store_true", help="with --cluster: send each file's bytes with its task, for workers that do not see the documents folder at the same path")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    args = parser.parse_args(argv)
    return run_safely(lambda: _run(args, embedder))


def _run(args, embedder) -> int:
    from ingest.sync import sync
    from qa.documents.chunking import ChunkSettings

    settings = None
    if args.chunk_size is not None or args.chunk_overlap is not None:
        defaults = ChunkSettings()
        try:
            settings = ChunkSettings(
                args.chunk_size if args.chunk_size is not None else defaults.chunk_size,
                args.chunk_overlap if args.chunk_overlap is not None else defaults.chunk_overlap,
            )
        except ValueError as exc:
            print(f"error: {exc}.", file=sys.stderr)
            return 2
    if args.send_files and not args.cluster:
        print("error: --send-files only applies with --cluster; leave it out, or add --cluster ADDRESS.", file=sys.stderr)
        return 2
    bar = _ProgressBar(enabled=sys.stderr.isatty() or os.environ.get("QA_PROGRESS") == "1")
    try:
        report = sync(args.paths, args.index, model=args.model, embedder=embedder, settings=settings, rebuild=args.rebuild, progress=bar, cluster=args.cluster, send_files=args.send_files)
    finally:
        bar.close()
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        for path, reason in report.skipped:
            print(f"skipped {path}: {reason}")
        print(f"{args.index}: {report.summary()}")
    return 0


class _ProgressBar:
    """A tqdm bar on stderr while embedding: chunks per second and time left. The total is an
    estimate (ingest streams, so it extrapolates from the bytes read so far) and firms up as it goes."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled or stage != "embedding" or not total:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="chunk", desc="embedding", file=sys.stderr, dynamic_ncols=True)
        self.bar.total = max(total, done)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


if __name__ == "__main__":
    sys.exit(main())
