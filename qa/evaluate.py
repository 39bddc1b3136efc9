"""`python -m qa eval`: retrieval and answer quality on SQuAD-format data or JSON-lines questions."""

from __future__ import annotations

import json
import re
import string
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa.errors import QAError


@dataclass
class Question:
    text: str
    answers: list[str]  # gold answer texts; empty when unanswerable
    impossible: bool = False
    spans: list[tuple[str, int, int]] = field(default_factory=list)  # (doc id, start, end) of each gold span
    paragraph: str = ""  # the SQuAD paragraph it is asked of


@dataclass
class Dataset:
    questions: list[Question]
    documents: list = field(default_factory=list)  # qa.types.Document, for SQuAD files

    @property
    def is_squad(self) -> bool:
        return bool(self.documents)


def read_dataset(path: Path) -> Dataset:
    from qa.documents import document_from_text

    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise QAError(f"Cannot read {path} ({exc.strerror}); give the path of a SQuAD JSON or JSON-lines file.") from None
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if isinstance(data, dict) and "data" in data:
        documents, questions, seen = [], [], Counter()
        for article in data["data"]:
            title = str(article.get("title", f"article-{len(documents)}")).replace("_", " ")
            seen[title] += 1  # articles may share a title (TyDi QA has one per passage): each is its own document
            doc_id = f"{title}.txt" if seen[title] == 1 else f"{title} ({seen[title]}).txt"
            parts, offset = [], 0
            for paragraph in article["paragraphs"]:
                context = paragraph["context"]
                for qa in paragraph["qas"]:
                    gold = [(a["text"], offset + a["answer_start"]) for a in qa.get("answers", [])]
                    questions.append(
                        Question(
                            text=qa["question"],
                            answers=[text for text, _ in gold],
                            impossible=bool(qa.get("is_impossible", False)) or not gold,
                            spans=[(doc_id, start, start + len(text)) for text, start in gold],
                            paragraph=context,
                        )
                    )
                parts.append(context)
                offset += len(context) + 2
            documents.append(document_from_text(doc_id, "\n\n".join(parts), title=title))
        return Dataset(questions, documents)
    questions = []
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            answers = [str(a) for a in item.get("answers", [])]
            questions.append(Question(str(item["question"]), answers, impossible=not answers))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise QAError(f"{path} line {number} is not a {{\"question\", \"answers\"}} JSON object; fix it or remove it.") from None
    if not questions:
        raise QAError(f"{path} holds no questions: give a SQuAD JSON file or JSON lines of {{\"question\", \"answers\"}}.")
    return Dataset(questions)


# --- the official SQuAD normalization -------------------------------------------------------------


def normalize(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def f1_score(prediction: str, gold: str) -> float:
    pred, truth = normalize(prediction).split(), normalize(gold).split()
    if not pred or not truth:
        return float(pred == truth)
    common = Counter(pred) & Counter(truth)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(truth)
    return 2 * precision * recall / (precision + recall)


def contains(text: str | None, answers: list[str]) -> bool:
    if not text:
        return False
    haystack = f" {normalize(text)} "
    return any(f" {normalize(a)} " in haystack for a in answers if normalize(a))


def auroc(scores, labels) -> float | None:
    """The chance that a positive scores above a negative (ties count half); None without both."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if not positives or not negatives:
        return None
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse]  # 1-based, averaged over ties
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


# --- running --------------------------------------------------------------------------------------


def evaluate(dataset: Dataset, engine, k: int = 10) -> tuple[dict, list[dict]]:
    """Ask every question; returns the summary figures and one record per question."""
    engine.ask(dataset.questions[0].text, k=k)  # warm-up
    records = []
    groups: dict[str | int, int] = {}
    for number, question in enumerate(dataset.questions):
        began = time.perf_counter()
        answer = engine.ask(question.text, k=k)
        latency = (time.perf_counter() - began) * 1000
        if dataset.is_squad:
            relevant = [
                any(doc == c.source and c.start <= s and e <= c.end for doc, s, e in question.spans) for c in answer.citations
            ]
        else:
            relevant = [contains(c.text, question.answers) for c in answer.citations]
        records.append(
            {
                "question": question.text,
                "impossible": question.impossible,
                "answers": question.answers,
                "answer": answer.answer,
                "context": answer.context,
                "confidence": answer.confidence,
                "no_answer": answer.no_answer,
                "first_relevant": next((i + 1 for i, r in enumerate(relevant) if r), None),
                "latency_ms": latency,
                "signals": answer.signals,
                # questions asked of one paragraph are not independent: intervals resample paragraphs
                "group": groups.setdefault(question.paragraph or number, len(groups)),
            }
        )
    return summarize(records), records


def summarize(records: list[dict]) -> dict:
    answerable = [r for r in records if not r["impossible"]]
    n = len(answerable) or 1

    def recall(at: int) -> float:
        return sum(1 for r in answerable if r["first_relevant"] and r["first_relevant"] <= at) / n

    latencies = [r["latency_ms"] for r in records]
    scores = _columns(records)
    return {
        "questions": len(records),
        "answerable": len(answerable),
        "recall@1": recall(1),
        "recall@3": recall(3),
        "recall@5": recall(5),
        "recall@10": recall(10),
        "mrr@10": sum(1 / r["first_relevant"] for r in answerable if r["first_relevant"] and r["first_relevant"] <= 10) / n,
        "sentence_accuracy": sum(contains(r["context"], r["answers"]) for r in answerable) / n,
        "answer_accuracy": sum(contains(r["answer"], r["answers"]) for r in answerable) / n,
        "exact_match": 100 * sum(max(float(normalize(r["answer"] or "") == normalize(a)) for a in r["answers"]) for r in answerable) / n,
        "f1": float(scores["f1"][scores["answerable"]].sum()) / n,
        "squad2_f1": float(scores["squad2"].mean()),
        "no_answer_auroc": auroc(scores["confidence"], scores["answerable"]),
        "abstain_accuracy": sum(r["no_answer"] == r["impossible"] for r in records) / len(records),
        "latency_ms_p50": float(np.percentile(latencies, 50)),
        "latency_ms_p95": float(np.percentile(latencies, 95)),
    }


HEADLINE = ("recall@5", "f1", "squad2_f1", "no_answer_auroc")


def intervals(records: list[dict], baseline: list[dict] | None = None, resamples: int = 1000, seed: int = 0) -> dict[str, tuple[float, float]]:
    """95% bootstrap intervals of the headline figures (as `summarize` defines them): the records
    resampled by group (the paragraph a SQuAD question is asked of, or the question itself), so
    questions that share a paragraph count as the one piece of evidence they are. With
    `baseline` (another run's records of the same questions, in the same order, as
    `check_same_questions` makes sure): of this run's figure minus the baseline's, both
    resampled alike, since two readers asked the same questions differ by less than their own
    intervals are wide."""
    runs = [_columns(records)] + ([_columns(baseline)] if baseline is not None else [])
    groups: dict = {}
    for number, record in enumerate(records):
        groups.setdefault(record.get("group", number), []).append(number)
    members = [np.array(m) for m in groups.values()]
    rng = np.random.default_rng(seed)
    drawn: dict[str, list[float]] = {name: [] for name in HEADLINE}
    for _ in range(resamples):
        sample = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
        figures = [_headline(run, sample) for run in runs]
        for name in HEADLINE:
            values = [f[name] for f in figures]
            if None not in values:
                drawn[name].append(values[0] - values[1] if baseline is not None else values[0])
    return {name: (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))) for name, v in drawn.items() if v}


def _columns(records: list[dict]) -> dict[str, np.ndarray]:
    """Per record: answerable?, its f1 (0-100, an abstention scores 0), its official SQuAD 2.0
    score (f1 when answerable, 100 for an abstention when not), passage found in the first 5,
    and confidence."""
    answerable = np.array([not r["impossible"] for r in records], dtype=bool)
    f1 = np.array([100 * best_f1(r["answer"] or "", r["answers"]) for r in records])
    return {
        "answerable": answerable,
        "f1": f1,
        "squad2": np.where(answerable, f1, [100.0 * (r["answer"] is None) for r in records]),
        "found": np.array([bool(r["first_relevant"]) and r["first_relevant"] <= 5 for r in records]),
        "confidence": np.array([r["confidence"] for r in records], dtype=np.float64),
    }


def _headline(run: dict[str, np.ndarray], sample: np.ndarray) -> dict[str, float | None]:
    asked = sample[run["answerable"][sample]]
    return {
        "recall@5": float(run["found"][asked].mean()) if len(asked) else None,
        "f1": float(run["f1"][asked].mean()) if len(asked) else None,
        "squad2_f1": float(run["squad2"][sample].mean()),
        "no_answer_auroc": auroc(run["confidence"][sample], run["answerable"][sample]),
    }


def read_dump(path: Path) -> list[dict]:
    """The records a `qa eval --dump` file holds (to compare a run against: `intervals`)."""
    try:
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not all(isinstance(r, dict) and isinstance(r.get("question"), str) for r in records):
            raise ValueError("a line that is not a record")
        _columns(records)  # reads every other field the comparison needs
    except OSError as exc:
        raise QAError(f"Cannot read {path} ({exc.strerror}); give a file written by qa eval --dump.") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise QAError(f"{path} is not a file written by qa eval --dump; make one with qa eval DATASET --dump FILE.") from None
    return records


def check_same_questions(baseline: list[dict], records: list[dict], path: Path) -> None:
    if [r["question"] for r in baseline] != [r["question"] for r in records]:
        raise QAError(f"{path} holds other questions than this run ({len(baseline)} against {len(records)}); "
                      "make it with qa eval --dump on the same file and flags (--unseen included).")


def run(dataset_path: Path, index_dir: Path | None, k: int, embedder=None, reader=None, leave_out: set[str] | None = None):
    """Evaluate on a SQuAD file (indexed into a temporary folder, every paragraph of it) or JSON
    lines against `index_dir`; `leave_out`: keys of questions not to ask (qa.reader.question_key)."""
    from qa.engine import Engine
    from qa.store.indexing import build_index

    dataset = read_dataset(dataset_path)
    if leave_out:
        dataset = unseen(dataset, leave_out, dataset_path)
    if not dataset.is_squad:
        return evaluate(dataset, Engine.load(index_dir or "index", embedder=embedder, reader=reader), k)
    from qa.embedder import load_embedder

    embedder = embedder or load_embedder()
    with tempfile.TemporaryDirectory(prefix="qa-eval-") as folder:
        build_index(dataset.documents, Path(folder), embedder)
        return evaluate(dataset, Engine.load(folder, embedder=embedder, reader=reader), k)


def unseen(dataset: Dataset, seen: set[str], path: Path) -> Dataset:
    """The dataset without the questions listed in `seen`; its documents all stay."""
    from qa.reader import question_key

    kept = [q for q in dataset.questions if question_key(q.text, q.paragraph) not in seen]
    if not kept:
        raise QAError(f"The reader was trained on every question of {path}, so there is none left to measure it on; leave out --unseen.")
    return Dataset(kept, dataset.documents)


PLATEAU = 1.0  # SQuAD 2.0 F1 points


def calibrate(records: list[dict]) -> dict:
    """From records asked with no abstention (every question gets the reader's best span): the
    logistic map from the answer's support (the reader's margin plus its passage's prior) to "this
    answer is right" (F1 >= 0.5 with a gold answer), and the no-answer margin, the support an
    answer needs: the lowest within PLATEAU of the best official SQuAD 2.0 F1 over all questions."""
    read = [r for r in records if r["answer"] is not None and "support" in r["signals"]]
    if not read:
        raise QAError("No question was answered, so nothing can be calibrated: check the dataset and the index.")
    supports = np.array([r["signals"]["support"] for r in read])
    right = np.array([1.0 if best_f1(r["answer"], r["answers"]) >= 0.5 else 0.0 for r in read])
    x = np.stack([supports, np.ones_like(supports)], axis=1)
    w = np.zeros(2)
    for _ in range(50):  # Newton's method, lightly regularized
        p = 1 / (1 + np.exp(-x @ w))
        gradient = x.T @ (right - p) - 1e-3 * w
        hessian = x.T @ (x * (p * (1 - p))[:, None]) + 1e-3 * np.eye(2)
        w += np.linalg.solve(hessian, gradient)

    answered_f1 = [best_f1(r["answer"] or "", r["answers"]) for r in records]
    record_supports = np.array([r["signals"].get("support", -np.inf) if r["answer"] is not None else -np.inf for r in records])
    impossible = np.array([r["impossible"] for r in records])

    def squad2_f1(threshold: float) -> float:
        answered = record_supports > threshold
        return 100 * float(np.mean(np.where(impossible, ~answered, answered * np.array(answered_f1))))

    # SQuAD 2.0 F1 is flat over a wide band of thresholds; the lowest within PLATEAU points of the
    # best is taken, so the reader answers as often as abstaining does not pay for.
    candidates = sorted(set(np.round(supports, 2).tolist()))
    best = max(squad2_f1(t) for t in candidates)
    threshold = min(t for t in candidates if squad2_f1(t) >= best - PLATEAU)
    return {"no_answer_margin": float(threshold), "calibration": {"slope": float(w[0]), "intercept": float(w[1])},
            "squad2_f1": squad2_f1(threshold)}


def best_f1(prediction: str, answers: list[str]) -> float:
    return max((f1_score(prediction, a) for a in answers), default=0.0)


def reliability(records: list[dict], bins: int = 5) -> list[dict]:
    """How often answers given with each band of confidence are right (F1 >= 0.5)."""
    out = []
    given = [r for r in records if r["answer"] is not None]
    for low in np.linspace(0, 1, bins, endpoint=False):
        band = [r for r in given if low <= r["confidence"] < low + 1 / bins or (low + 1 / bins >= 1 and r["confidence"] == 1)]
        if band:
            out.append({"confidence": f"{low:.1f}-{low + 1 / bins:.1f}", "answers": len(band),
                        "mean_confidence": float(np.mean([r["confidence"] for r in band])),
                        "right": float(np.mean([best_f1(r["answer"], r["answers"]) >= 0.5 for r in band]))})
    return out
