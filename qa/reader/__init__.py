"""The reader: a span model the project trains from the bundled encoder (qa.reader.train), run
on ONNX Runtime. It reads a question with each passage and scores every span against the no-answer
score of the window it was read in; that margin, plus what the caller knows of each passage (its
prior: retrieval's evidence), is the support a span has. It answers with the best-supported span,
or with none when its support is under the margin chosen on the dev set.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.embedder import cpu_threads
from qa.errors import ModelError
from qa.reader.windows import batch_arrays, best_spans, cut_question, load_tokenizer, windows

SHIPPED = Path(__file__).parent / "model"
TRAINED_ON = "trained-on.txt"  # one question_key per line: every question the reader was trained on
RETRAIN = "restore it with `git checkout qa/reader/model` (or retrain: see the README's model card)"


@dataclass(frozen=True)
class Span:
    """An answer read from one passage: `passages[passage][start:end] == text`."""

    passage: int
    start: int
    end: int
    text: str
    score: float  # start + end logit
    margin: float  # score minus the no-answer score of the window it was read in
    support: float  # margin plus its passage's prior: what the answer is chosen, kept and trusted by
    confidence: float  # calibrated on the dev set: about this share of such answers are right


@dataclass(frozen=True)
class Reading:
    best: Span | None  # None when the passages hold no span at all
    answered: bool  # the best span's support reaches the margin chosen on the dev set
    passage_scores: list[float]  # each passage's best support (-inf when none)
    question: str  # as read: cut to the reader's question length


class Reader:
    """Extractive reader over ONNX Runtime. Settings are validated at construction; the model is
    loaded (and its checksum checked) by `warm_up`, on first use at the latest."""

    # Windows run one at a time by default: on this CPU a batch pads every window to the longest and
    # reads a question 40% slower (54 against 33 ms on dev paragraphs), and the int8 model's
    # activation scales are set per batch, so a window's scores would depend on its batch-mates.
    def __init__(self, model_dir: Path = SHIPPED, *, batch: int = 1, max_answer_tokens: int | None = None,
                 no_answer_margin: float | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.info = _read_info(self.model_dir)
        self.max_length = int(self.info["max_length"])
        self.stride = int(self.info["stride"])
        self.max_answer_tokens = int(self.info["max_answer_tokens"] if max_answer_tokens is None else max_answer_tokens)
        self.no_answer_margin = float(self.info.get("no_answer_margin", 0.0) if no_answer_margin is None else no_answer_margin)
        calibration = self.info.get("calibration", {"slope": 1.0, "intercept": 0.0})
        self._slope, self._intercept = float(calibration["slope"]), float(calibration["intercept"])
        if not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be a whole number >= 1 (got {batch!r})")
        if self.max_answer_tokens < 1:
            raise ValueError(f"max_answer_tokens must be >= 1 (got {self.max_answer_tokens})")
        self.batch = batch
        self._session = None
        self._tokenizer = None

    def warm_up(self) -> None:
        if self._session is not None:
            return
        import onnxruntime

        from qa.embedder import bundled_model_path
        from qa.store import file_sha256

        path = self.model_dir / "reader.onnx"
        if not path.is_file():
            raise ModelError(f"The reader's weights ({path}) are missing: {RETRAIN}.")
        if file_sha256(path) != self.info.get("sha256"):
            raise ModelError(f"The reader's weights ({path}) are damaged (checksum mismatch): {RETRAIN}.")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = cpu_threads()
        options.log_severity_level = 3
        try:
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception:  # onnxruntime raises its own untyped errors for a file it cannot parse
            raise ModelError(f"The reader's weights ({path}) cannot be loaded: {RETRAIN}.") from None
        self._tokenizer = load_tokenizer(bundled_model_path())
        self._session = session

    def confidence(self, support: float) -> float:
        if support == -math.inf:
            return 0.0
        return float(1 / (1 + math.exp(-(self._slope * support + self._intercept))))

    def extract(self, question: str, passages: list[str], priors: list[float] | None = None) -> Reading:
        """The best-supported span over all windows of all passages, and whether it is an answer.
        `priors` (one per passage, in margin points; 0 when None) add what the caller knows of each
        passage to the margins of its spans."""
        self.warm_up()
        priors = [0.0] * len(passages) if priors is None else [float(p) for p in priors]
        if len(priors) != len(passages):
            raise ValueError(f"one prior per passage (got {len(priors)} for {len(passages)})")
        question = cut_question(self._tokenizer, question)
        asked = _words(question)
        found = windows(self._tokenizer, question, passages, self.max_length, self.stride)
        best, best_support = None, -math.inf  # the best-supported SpanScore so far
        passage_scores = [-math.inf] * len(passages)
        order = sorted(range(len(found)), key=lambda i: len(found[i].ids))  # similar lengths batch with little padding
        for begin in range(0, len(order), self.batch):
            part = [found[i] for i in order[begin : begin + self.batch]]
            start_logits, end_logits = self._session.run(None, batch_arrays(part))
            for row, window in enumerate(part):
                spans = best_spans(window, start_logits[row], end_logits[row], self.max_answer_tokens, top=10)
                text = passages[window.passage]
                top = next((s for s in spans if _answerable_span(text[s.start : s.end], asked)), None)
                if top is None:
                    continue
                # Spans compare across windows by their margins, not their raw scores: a window's
                # logits shift with its length and content, its no-answer score with them.
                support = top.score - top.null + priors[window.passage]
                passage_scores[window.passage] = max(passage_scores[window.passage], support)
                if best is None or support > best_support:
                    best, best_support = top, support
        if best is None:
            return Reading(None, False, passage_scores, question)
        text = passages[best.passage][best.start : best.end]
        span = Span(best.passage, best.start, best.end, text, best.score, best.score - best.null, best_support,
                    self.confidence(best_support))
        return Reading(span, best_support > self.no_answer_margin, passage_scores, question)


def question_key(question: str, context: str) -> str:
    """A question with the paragraph it is asked of, as a short key (what TRAINED_ON lists), so
    figures can be measured on the questions of a training file that the reader never saw."""
    return hashlib.sha256(f"{question}\n{context}".encode("utf-8")).hexdigest()[:12]


def trained_on(model_dir: Path) -> set[str] | None:
    """The keys of the questions the reader in `model_dir` was trained on; None when it does not list them."""
    try:
        return set((Path(model_dir) / TRAINED_ON).read_text(encoding="ascii").split())
    except (OSError, ValueError):
        return None


def _answerable_span(span: str, asked: set[str]) -> bool:
    """Not a span that only repeats the question (a heading restating it), nor one that runs on
    past the end of a paragraph (a heading and the start of the next)."""
    return bool(_words(span) - asked) and _PARAGRAPH_BREAK.search(span) is None


_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n")


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def _read_info(model_dir: Path) -> dict:
    path = model_dir / "reader.json"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        raise ModelError(f"The reader's settings ({path}) are missing: {RETRAIN}.") from None
    except ValueError:
        raise ModelError(f"The reader's settings ({path}) are damaged: {RETRAIN}.") from None
    if not isinstance(info, dict) or info.get("format") != 1 or not all(k in info for k in ("max_length", "stride", "max_answer_tokens", "sha256")):
        raise ModelError(f"The reader's settings ({path}) are not a reader this program knows: {RETRAIN}.")
    return info
