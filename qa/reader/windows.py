"""Question-and-passage windows for the reader, and the spans read back from its logits.

Training and question time share this module, so a span is decoded exactly as it was taught.
Offsets come from the tokenizer's offset mapping, so every span maps back to the characters of
the passage it was read from: `passage[start:end]` is the answer, never a re-tokenized guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAX_QUESTION_TOKENS = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Window:
    """One window of a passage after the question: model inputs, and for each token its
    character span in the passage (None for the question and special tokens)."""

    passage: int  # which passage of the call
    ids: list[int]
    type_ids: list[int]
    offsets: list[tuple[int, int] | None]


def load_tokenizer(model_dir: Path):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def readable(text: str) -> str:
    """`text` with each lone surrogate (undecodable bytes) as U+FFFD: same length, so offsets hold."""
    return _SURROGATE.sub("\ufffd", text)


def cut_question(tokenizer, question: str) -> str:
    """The question's first MAX_QUESTION_TOKENS word pieces, cut at a character boundary."""
    encoding = tokenizer.encode(readable(question), add_special_tokens=False)
    if len(encoding.ids) <= MAX_QUESTION_TOKENS:
        return question
    return question[: encoding.offsets[MAX_QUESTION_TOKENS - 1][1]]


def windows(tokenizer, question: str, passages: list[str], max_length: int, stride: int) -> list[Window]:
    """Every passage read as overlapping windows of at most `max_length` tokens, the question
    first in each; consecutive windows of one passage share `stride` tokens."""
    question = cut_question(tokenizer, question)
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    q_ids = tokenizer.encode(readable(question), add_special_tokens=False).ids
    room = max_length - len(q_ids) - 3
    if room < 8:
        raise ValueError(f"max_length {max_length} leaves no room for a passage after a {len(q_ids)}-token question")
    if stride >= room:
        raise ValueError(f"stride must be less than the passage room of a window (got {stride} >= {room})")
    out = []
    encodings = tokenizer.encode_batch([readable(p) for p in passages], add_special_tokens=False) if passages else []
    for number, encoding in enumerate(encodings):
        ids, offsets = encoding.ids, encoding.offsets
        begin = 0
        while True:
            end = min(begin + room, len(ids))
            out.append(
                Window(
                    passage=number,
                    ids=[cls, *q_ids, sep, *ids[begin:end], sep],
                    type_ids=[0] * (len(q_ids) + 2) + [1] * (end - begin + 1),
                    offsets=[None] * (len(q_ids) + 2) + [tuple(o) for o in offsets[begin:end]] + [None],
                )
            )
            if end >= len(ids):
                break
            begin = end - stride
    return out


def batch_arrays(batch: list[Window]) -> dict[str, np.ndarray]:
    """Inputs padded to the longest window of the batch."""
    width = max(len(w.ids) for w in batch)
    ids = np.zeros((len(batch), width), dtype=np.int64)
    types = np.zeros_like(ids)
    mask = np.zeros_like(ids)
    for row, window in enumerate(batch):
        n = len(window.ids)
        ids[row, :n], types[row, :n], mask[row, :n] = window.ids, window.type_ids, 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


@dataclass(frozen=True)
class SpanScore:
    passage: int
    start: int  # characters, in the passage
    end: int
    score: float  # start logit + end logit
    null: float  # the window's no-answer score (both logits on [CLS])


def best_spans(window: Window, start_logits: np.ndarray, end_logits: np.ndarray, max_answer_tokens: int, top: int = 20) -> list[SpanScore]:
    """The window's best spans over passage tokens, best first, each scored on its own."""
    n = len(window.ids)
    start_logits, end_logits = start_logits[:n], end_logits[:n]
    context = np.array([o is not None for o in window.offsets])
    if not context.any():
        return []
    null = float(start_logits[0] + end_logits[0])
    masked_start = np.where(context, start_logits, -np.inf)
    masked_end = np.where(context, end_logits, -np.inf)
    starts = np.argsort(-masked_start)[:top]
    ends = np.argsort(-masked_end)[:top]
    spans = []
    for s in starts:
        if not context[s]:
            break
        for e in ends:
            if not context[e]:
                break
            if e < s or e - s + 1 > max_answer_tokens:
                continue
            first, last = window.offsets[s], window.offsets[e]
            spans.append(SpanScore(window.passage, first[0], last[1], float(masked_start[s] + masked_end[e]), null))
    spans.sort(key=lambda span: -span.score)
    return spans
