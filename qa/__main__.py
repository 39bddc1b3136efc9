"""python -m qa ask "QUESTION" | python -m qa chat | python -m qa eval DATASET | python -m qa bench"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from qa.cli_support import run_safely
from qa.errors import QAError


def main(argv: list[str] | None = None, embedder=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa", description="Ask the indexed documents, or measure answer quality.")
    commands = parser.add_subparsers(dest="command", required=True)
    ask = commands.add_parser("ask", help="answer a question (or '-' to read one question per line from stdin)")
    ask.add_argument("question")
    ask.add_argument("--index", default="index", help="index folder (default: index)")
    ask.add_argument("--k", type=int, default=5, help="passages to cite (default: 5)")
    ask.add_argument("--json", action="store_true", help="print JSON (one object per question)")
    ask.add_argument("--reader", type=Path, help="reader folder (reader.onnx, reader.json; default: the shipped one)")
    ask.add_argument("--follow-ups", action="store_true",
                     help="with '-': each question is asked with the earlier ones of its conversation; a blank line starts a new one")
    chat = commands.add_parser("chat", help="an interactive chat in the terminal that follows the conversation")
    chat.add_argument("--index", default="index", help="index folder (default: index)")
    chat.add_argument("--k", type=int, default=5, help="passages to cite (default: 5)")
    chat.add_argument("--reader", type=Path, help="reader folder (reader.onnx, reader.json; default: the shipped one)")
    evaluate = commands.add_parser("eval", help="measure retrieval and answers on a SQuAD JSON or JSON-lines file")
    evaluate.add_argument("dataset", type=Path)
    evaluate.add_argument("--index", default="index", help="index for JSON-lines questions (default: index)")
    evaluate.add_argument("--k", type=int, default=10, help="passages per question (default: 10)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--calibrate", action="store_true",
                          help="fit the reader's confidence and no-answer margin on this (dev) set and write them to its reader.json")
    evaluate.add_argument("--never-abstain", action="store_true",
                          help="answer every on-topic question with the reader's best span, whatever its support (what --calibrate fits on)")
    evaluate.add_argument("--reader", type=Path, help="reader folder (reader.onnx, reader.json; default: the shipped one)")
    evaluate.add_argument("--unseen", action="store_true",
                          help="ask only the questions the reader was not trained on (it lists them in trained-on.txt): held-out figures on a training file")
    evaluate.add_argument("--dump", type=Path, help="write one JSON line per question to this file")
    evaluate.add_argument("--against", type=Path, metavar="DUMP",
                          help="compare with another run's --dump of the same questions: each headline figure's difference, with its 95%% interval")
    bench = commands.add_parser("bench", help="measure ingest, incremental updates, question latency, memory and cold start")
    bench.add_argument("--chunks", type=_positive, default=200, help="chunks in the generated corpus for ingest throughput (default: 200)")
    bench.add_argument("--index-chunks", type=_positive, default=10_000, help="chunks in the index one document is added to (default: 10000)")
    bench.add_argument("--runs", type=_positive, default=3, help="runs per figure; medians are shown (default: 3)")
    bench.add_argument("--memory-scales", default="1,10", help="corpus multiples whose ingest peak memory is measured (default: 1,10)")
    bench.add_argument("--index", default="index", help="index for question latency and cold start (default: index)")
    bench.add_argument("--cluster", action="store_true", help="only ingest chunks/s in one process against a local Dask cluster of 1 and 2 workers, and the model for more machines")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.command == "bench":
        return run_safely(lambda: _bench(args, embedder))
    if args.command == "ask":
        return run_safely(lambda: _ask(args, embedder))
    if args.command == "chat":
        return run_safely(lambda: _chat(args, embedder))
    return run_safely(lambda: _eval(args, embedder))


def _ask(args, embedder) -> int:
    from qa.conversation import Turn
    from qa.errors import BadQuestion

    if args.follow_ups and args.question != "-":
        print("error: --follow-ups reads a conversation from standard input: use `qa ask - --follow-ups`.", file=sys.stderr)
        return 2
    engine = _engine(args, embedder)
    questions = sys.stdin if args.question == "-" else [args.question]
    status = 0
    conversation: list = []
    for line in questions:
        question = line.rstrip("\n")
        if args.question == "-" and not question.strip():
            conversation = []  # a blank line starts a new conversation
            continue
        try:
            answer = engine.ask(question, k=args.k, history=conversation if args.follow_ups else None)
            conversation.append(Turn.of(answer))
        except BadQuestion as exc:
            if args.json:
                print(json.dumps({"question": question, "error": str(exc)}, ensure_ascii=False))
            else:
                print(f"error: {exc}", file=sys.stderr)
            status = 1
            continue
        if args.json:
            print(json.dumps(answer.to_json(), ensure_ascii=False), flush=True)
        else:
            print(render(answer), flush=True)
    return status


def _chat(args, embedder) -> int:
    """Questions typed one at a time, each read with the conversation so far."""
    from qa.conversation import Turn
    from qa.errors import BadQuestion

    engine = _engine(args, embedder)
    print("Ask about the indexed documents. A blank line starts a new conversation; Ctrl-D ends.", file=sys.stderr)
    conversation: list = []
    while True:
        try:
            question = input("? ")
        except EOFError:
            print(file=sys.stderr)
            return 0
        if not question.strip():
            if conversation:
                print("(new conversation)", file=sys.stderr)
            conversation = []
            continue
        try:
            answer = engine.ask(question, k=args.k, history=conversation)
        except BadQuestion as exc:
            print(f"error: {exc}", file=sys.stderr)
            continue
        conversation.append(Turn.of(answer))
        print(render(answer) + "\n", flush=True)


def _engine(args, embedder):
    from qa.engine import Engine
    from qa.reader import Reader

    return Engine.load(args.index, embedder=embedder, reader=Reader(args.reader) if args.reader else None)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1 (got {text!r})")
    return value


def _bench(args, embedder) -> int:
    from qa import bench

    if args.cluster:
        results = bench.cluster_run(chunks=args.chunks, runs=args.runs, embedder=embedder)
        print(json.dumps(results) if args.json else bench.cluster_table(results))
        return 0
    try:
        scales = tuple(int(s) for s in args.memory_scales.split(",") if s.strip())
    except ValueError:
        print(f"error: --memory-scales takes whole numbers separated by commas, e.g. 1,10,100 (got {args.memory_scales!r}).", file=sys.stderr)
        return 2
    results = bench.run(embedder=embedder, chunks=args.chunks, index_chunks=args.index_chunks, runs=args.runs,
                        index_dir=Path(args.index), memory_scales=scales, cold_start=embedder is None)  # a fresh process loads the real model
    print(json.dumps(results) if args.json else bench.table(results))
    return 0


def render(answer) -> str:
    lines = []
    if answer.read_as:
        lines.append(f"(read as: {answer.read_as})")
    if answer.notice:
        lines.append(f"note: {answer.notice}")
    if answer.no_answer:
        lines.append(f"{answer.NO_ANSWER_TEXT} (confidence {answer.confidence:.2f})")
        if answer.citations:
            lines.append("Closest passages:")
    else:
        lines.append(f"Answer: {answer.answer}   (confidence {answer.confidence:.2f})")
        if answer.context and answer.context != answer.answer:
            lines.append(f"From: \"{answer.context}\"")
    for c in answer.citations:
        where = f"page {c.page}" if c.page else (f"section \"{c.section}\"" if c.section else "")
        marker = " *" if c.answer_start is not None else ""
        lines.append(f"[{c.rank}]{marker} {c.source} — {c.title}{', ' + where if where else ''}, characters {c.start}–{c.end}")
        excerpt = " ".join(c.text.split())
        lines.append(f"    {excerpt[:300]}{'…' if len(excerpt) > 300 else ''}")
    return "\n".join(lines)


def _eval(args, embedder) -> int:
    from qa import evaluate
    from qa.reader import SHIPPED, TRAINED_ON, Reader, trained_on

    folder = args.reader or SHIPPED
    baseline = evaluate.read_dump(args.against) if args.against else None  # before the run: a bad file fails at once
    seen = None
    if args.unseen:
        seen = trained_on(folder)
        if seen is None:
            raise QAError(f"The reader in {folder} does not list the questions it was trained on ({TRAINED_ON}), "
                          "so --unseen cannot leave them out; retrain it with python -m qa.reader.train, or leave out --unseen.")
    if args.calibrate:
        _, records = evaluate.run(args.dataset, Path(args.index), args.k, embedder=embedder,
                                  reader=Reader(folder, no_answer_margin=-math.inf), leave_out=seen)
        fitted = evaluate.calibrate(records)
        info_path = folder / "reader.json"
        info = json.loads(info_path.read_text(encoding="utf-8"))
        info.update(no_answer_margin=fitted["no_answer_margin"], calibration=fitted["calibration"])
        info_path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        print(f"wrote no_answer_margin {fitted['no_answer_margin']:.2f} and the confidence calibration to {info_path}", file=sys.stderr)
    reader = Reader(folder, no_answer_margin=-math.inf) if args.never_abstain else Reader(folder)
    summary, records = evaluate.run(args.dataset, Path(args.index), args.k, embedder=embedder, reader=reader, leave_out=seen)
    if seen is not None:
        print(f"asked the {summary['questions']:,} questions of {args.dataset} that the reader was not trained on", file=sys.stderr)
    if args.dump:
        with args.dump.open("w", encoding="utf-8") as out:
            for record in records:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
    spread = evaluate.intervals(records)
    against = None
    if baseline is not None:
        evaluate.check_same_questions(baseline, records, args.against)
        theirs = evaluate.summarize(baseline)
        against = {name: {"this": summary[name], "that": theirs[name], "difference": summary[name] - theirs[name], "interval95": interval}
                   for name, interval in evaluate.intervals(records, baseline).items()}
    if args.json:
        print(json.dumps({**summary, "intervals95": spread, **({"against": against} if against is not None else {})}))
        return 0

    def shown(value: float, like: float) -> str:
        return f"{value:.3f}" if like <= 1 else f"{value:.1f}"

    for name, value in summary.items():
        line = shown(value, value) if isinstance(value, float) else str(value)
        if name in spread:
            low, high = spread[name]
            line = f"{line:<8} 95% {shown(low, value)} to {shown(high, value)}"
        print(f"{name:<18} {line}")
    print("(95%: bootstrap intervals, resampling the paragraphs the questions are asked of)")
    if against is not None:
        print(f"\nagainst {args.against}:\n{'figure':<18} {'this':<8} {'that':<8} {'this-that':<10} 95%")
        for name, row in against.items():
            low, high = row["interval95"]
            print(f"{name:<18} {shown(row['this'], row['this']):<8} {shown(row['that'], row['this']):<8} "
                  f"{shown(row['difference'], row['this']):<10} {shown(low, row['this'])} to {shown(high, row['this'])}")
        print("(the same paragraphs resampled for both runs; an interval that holds 0 is no measured difference)")
    print("\nconfidence   answers  right")
    for band in evaluate.reliability(records):
        print(f"{band['confidence']:<12} {band['answers']:>7}  {band['right']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
