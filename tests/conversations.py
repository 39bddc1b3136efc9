"""Follow-up questions measured (issue 16): conversations on the default corpus, written for this
project (tests/conversations.json), each follow-up asked with and without its conversation.

`python -m tests.conversations` builds an index of corpus/ with the real model in a temporary
folder and prints how many follow-ups are answered right each way (right: the answer contains
one of the expected strings, ignoring case) and what reading the conversation adds per question.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONVERSATIONS = Path(__file__).with_name("conversations.json")


def right(answer, expected: list[str]) -> bool:
    return not answer.no_answer and any(e.lower() in (answer.answer or "").lower() for e in expected)


def measure(engine, conversations: list[dict]) -> dict:
    from qa.conversation import Turn

    from qa.conversation import resolve

    rows = []
    with_ms, without_ms, resolve_ms = [], [], []
    for conversation in conversations:
        history: list[Turn] = []
        for number, turn in enumerate(conversation["turns"]):
            if number:  # asked alone first, so that neither way gets a warmer machine than the other
                engine.ask(turn["question"])
                began = time.perf_counter()
                alone = engine.ask(turn["question"])
                without_ms.append((time.perf_counter() - began) * 1000)
            engine.ask(turn["question"], history=history)
            began = time.perf_counter()
            followed = engine.ask(turn["question"], history=history)
            if number:
                with_ms.append((time.perf_counter() - began) * 1000)
                began = time.perf_counter()
                for _ in range(100):
                    resolve(turn["question"], history)
                resolve_ms.append((time.perf_counter() - began) * 10)
                rows.append({"question": turn["question"], "read_as": followed.read_as, "with": right(followed, turn["answers"]),
                             "without": right(alone, turn["answers"]), "answer_with": followed.answer, "answer_without": alone.answer})
            history.append(Turn.of(followed))
    return {
        "follow_ups": len(rows),
        "right_with_history": sum(r["with"] for r in rows),
        "right_without_history": sum(r["without"] for r in rows),
        "p50_ms_with": statistics.median(with_ms),
        "p50_ms_without": statistics.median(without_ms),
        "p50_ms_resolve": statistics.median(resolve_ms),
        "rows": rows,
    }


def table(results: dict) -> str:
    lines = [f"{'follow-up':<58} {'read as':<70} with  alone"]
    for r in results["rows"]:
        lines.append(f"{r['question'][:58]:<58} {(r['read_as'] or '-')[:70]:<70} {'yes' if r['with'] else 'no':<5} {'yes' if r['without'] else 'no'}")
    n = results["follow_ups"]
    lines += [
        "",
        f"follow-ups answered right: {results['right_with_history']} of {n} with the conversation, {results['right_without_history']} of {n} alone",
        f"follow-up p50: {results['p50_ms_with']:.1f} ms with the conversation, {results['p50_ms_without']:.1f} ms alone; "
        f"reading the conversation itself: {results['p50_ms_resolve']:.3f} ms",
    ]
    return "\n".join(lines)


def main() -> int:
    from ingest.sync import sync
    from qa.engine import Engine

    with tempfile.TemporaryDirectory(prefix="qa-conversations-") as scratch:
        sync([ROOT / "corpus"], Path(scratch) / "index")
        engine = Engine.load(Path(scratch) / "index")
        results = measure(engine, json.loads(CONVERSATIONS.read_text(encoding="utf-8")))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
