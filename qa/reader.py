"""Extractive reading: pick the sentence that answers, then the shortest span in it that does.

No generative model: the answer is always a slice of a passage. Sentences are scored by
cosine similarity to the question (vectors stored at ingest time) plus IDF-weighted word
overlap; the span is chosen by what the question asks for (a person, a date, a number, a
place, a name), falling back to the words of the sentence the question does not already say.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from qa.lexical import STOP_WORDS
from qa.text import words

AnswerType = Literal["number", "date", "person", "place", "name", "other"]

_UNITS = r"(years?|centur(?:y|ies)|decades?|dates?|times?|periods?|eras?|days?|months?)"
_MEASURES = r"(error|rate|accuracy|percentage|percent|proportion|fraction|number|amount|size|share|cost|price|speed|score|count|total|population|length|distance|weight)"
_AUX = r"(do|does|did|is|was|were|are|has|have|had|can|could|would|will)"
_TYPE_PATTERNS: list[tuple[AnswerType, re.Pattern]] = [
    ("date", re.compile(rf"\b(when|(what|which) {_UNITS}|how long ago|since when)\b")),
    ("number", re.compile(rf"\b(how (many|much|large|big|long|old|far|high|tall|fast|often|heavy|deep|wide)|(what|which)( [\w-]+){{0,2}} {_MEASURES})\b")),
    ("person", re.compile(r"\b(who|whom|whose|(which|what) (person|man|woman|king|scientist|researcher|leader|duke|student|engineer|artist|professor))\b")),
    ("place", re.compile(r"\b(where|(what|which) (country|countries|city|cities|place|region|town|location|continent|state|area|island|river|university|universities))\b")),
    ("name", re.compile(rf"\b(what (is|was|were|are) the name|what name|named what|called what|(what|which)( [\w-]+){{1,3}} {_AUX}|which (?!{_AUX}\b)[\w-]+)\b")),
]

_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_NUMBER_WORDS = "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand|million|billion|dozen|dozens|hundreds|thousands|millions|half|several"
_DATE = re.compile(
    rf"\b((?:(?:early|late|mid|the)[ -])*(?:\d{{1,2}}(?:st|nd|rd|th) centur(?:y|ies)(?: (?:BC|AD|BCE|CE))?|"
    rf"(?:(?:\d{{1,2}} )?(?:{_MONTHS})(?: \d{{1,2}})?,? )?\d{{3,4}}s?(?:\s?(?:BC|AD|BCE|CE))?(?:\s?(?:–|-|to|and)\s?\d{{2,4}})?))\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(
    rf"(?:(?:about|around|approximately|nearly|over|more than|less than|fewer than|some|almost|roughly|up to) )?"
    rf"(?:[$€£]\s?)?(?:\d[\d,]*(?:\.\d+)?|\b(?:{_NUMBER_WORDS})\b)(?:[ -](?:{_NUMBER_WORDS})\b)*"
    rf"(?:\s?(?:%|percent|per cent)|(?: (?:million|billion|thousand|hundred)))?",
    re.IGNORECASE,
)
_CONNECTORS = {"of", "de", "von", "van", "der", "the", "du", "la", "le", "and", "&", "di", "da", "al"}
_STOP = STOP_WORDS


def answer_type(question: str) -> AnswerType:
    lowered = question.lower()
    for kind, pattern in _TYPE_PATTERNS:
        if pattern.search(lowered):
            return kind
    return "other"


@dataclass(frozen=True)
class Span:
    start: int  # within the sentence
    end: int
    kind: str


def narrow(sentence: str, question: str, question_stems: set[str], stem) -> Span | None:
    """The shortest span of `sentence` that answers `question`, or None to keep the sentence."""
    kind = answer_type(question)
    tokens = words(sentence)
    if not tokens:
        return None
    matched = [i for i, (_, _, w) in enumerate(tokens) if stem(w.lower()) in question_stems]
    question_words = {w.lower() for _, _, w in words(question)}

    def anchor_distance(start: int, end: int) -> float:
        if not matched:
            return 0.0
        centers = [(tokens[i][0] + tokens[i][1]) / 2 for i in matched]
        middle = (start + end) / 2
        return min(abs(middle - c) for c in centers)

    def fresh(start: int, end: int) -> bool:
        inside = [w.lower() for s, e, w in tokens if s >= start and e <= end]
        # a word the question says, or a name it says another way ("Hinton" for "Hinton's"); numbers
        # only as written, since "Caltech-101" does not say the count 101
        return any(w not in question_words and w not in _STOP and not (w.isalpha() and stem(w) in question_stems) for w in inside)

    described = _kind_of(sentence, question, tokens, stem, question_words)
    if described:
        return described
    candidates: list[tuple[int, int]] = []
    if kind == "date":
        candidates = [m.span(1) for m in _DATE.finditer(sentence)]
    elif kind == "number":
        candidates = [m.span() for m in _NUMBER.finditer(sentence) if any(ch.isalnum() for ch in m.group())]
        candidates += [m.span(1) for m in _DATE.finditer(sentence)] if not candidates else []
    elif kind in ("person", "place", "name"):
        candidates = _proper_names(sentence, tokens)
    candidates = [(s, e) for s, e in candidates if fresh(s, e)]
    if candidates:
        start, end = min(candidates, key=lambda c: (_unlikely(kind, sentence, *c, question), anchor_distance(*c), c[0]))
        return Span(start, end, kind)
    return _named(sentence, question) or _uncovered_run(sentence, tokens, matched, question_words)


_TERM_QUESTION = re.compile(r"\b(term|name|called|known|referred|termed|named|denoted)\b", re.IGNORECASE)
_NAMING = re.compile(r"\b(?:(?:is|are|was|were|be|been) )?(?:called|known as|referred to as|termed|named|denoted(?: by)?)\s+", re.IGNORECASE)


def _named(sentence, question) -> Span | None:
    """'What is the term for X?' is answered by what follows 'called', 'known as', 'referred to as'."""
    if not _TERM_QUESTION.search(question):
        return None
    for match in _NAMING.finditer(sentence):
        tail = words(sentence[match.end() :])
        length = len(tail)  # up to the first comma or full stop
        for index in range(1, len(tail)):
            if _BREAK.search(sentence[match.end() + tail[index - 1][1] : match.end() + tail[index][0]]):
                length = index
                break
        run = _trim(list(range(length)), tail, _STOP)
        if run and len(run) <= 8:
            return Span(match.end() + tail[run[0]][0], match.end() + tail[run[-1]][1], "phrase")
    return None


_KIND_OF = re.compile(r"\b(?:what|which)(?: [\w-]+)? (?:types?|kinds?|sorts?|forms?|class|classes|category|categories) of (?:an? )?([\w-]+)", re.IGNORECASE)


def _kind_of(sentence, question, tokens, stem, question_words) -> Span | None:
    """'What type of circuit ...?' is answered by the words the sentence puts before 'circuit'."""
    match = _KIND_OF.search(question)
    if not match:
        return None
    head = stem(match.group(1).lower())
    for index, (start, _, word) in enumerate(tokens):
        if index == 0 or stem(word.lower()) != head:
            continue
        first = index
        while first > 0:
            before = tokens[first - 1]
            if before[2].lower() in question_words or before[2].lower() in _STOP or _BREAK.search(sentence[before[1] : tokens[first][0]]):
                break
            first -= 1
        if first < index:
            return Span(tokens[first][0], tokens[index - 1][1], "phrase")
    return None


_PLACE_BEFORE = re.compile(r"\b(in|at|from|to|near|of)\s+(the\s+)?$", re.IGNORECASE)


_MODEL_NAME = re.compile(rf"(?<![.!?]\s)\b(?!(?:{_MONTHS})\b)[A-Z][\w-]*\s$")  # a capitalized word just before
_COUNTED = re.compile(r"\bhow many ([\w-]+)", re.IGNORECASE)
_YEAR = re.compile(r"(1[0-9]{3}|20[0-9]{2})s?")
_RATIO = re.compile(r"\b(error|rate|accuracy|percentage|percent|proportion|share)\b", re.IGNORECASE)


def _unlikely(kind: str, sentence: str, start: int, end: int, question: str = "") -> int:
    """0 for a candidate of the expected shape: a person has a first and last name, a place
    follows a preposition, a quantity is not a year (and is a percentage when a rate is asked)."""
    if kind == "number":
        text = sentence[start:end]
        if _YEAR.fullmatch(text.strip()):
            return 2
        name = _MODEL_NAME.search(sentence[:start])  # "GTX 580", "Boeing 747": part of a name, not a count
        if name and name.start() > 0 and name.group().strip().lower() not in _STOP:
            return 2
        if _RATIO.search(question) and "%" not in text and "percent" not in text:
            return 1
        counted = _COUNTED.search(question)  # "how many GPUs": the number that counts GPUs
        if counted:
            noun = counted.group(1).lower().rstrip("s")[:6]
            after = [w.lower() for _, _, w in words(sentence[end:])[:4]]
            if any(noun in w for w in after) or not any(noun in w.lower() for _, _, w in words(sentence)):
                return 0
            return 1
        return 0
    if kind == "person":
        return 0 if len(sentence[start:end].split()) >= 2 else 1
    if kind == "place":
        return 0 if _PLACE_BEFORE.search(sentence[:start]) else 1
    return 0


def _proper_names(sentence: str, tokens: list[tuple[int, int, str]]) -> list[tuple[int, int]]:
    """Runs of capitalized words (with 'of', 'de', ... inside), skipping a lone sentence-initial word."""
    runs, current = [], []
    for index, (start, end, word) in enumerate(tokens):
        capital = word[:1].isupper() or (word[:1].isdigit() and current)
        if current and capital:  # punctuation between two words ends a name, except after an initial
            gap = sentence[tokens[current[-1]][1] : start]
            initial = len(tokens[current[-1]][2]) == 1 and gap.strip() == "."
            if gap.strip() and not initial:
                runs.append(current)
                current = []
        if capital:
            current.append(index)
        elif current and word.lower() in _CONNECTORS and index + 1 < len(tokens) and tokens[index + 1][2][:1].isupper():
            current.append(index)
        else:
            if current:
                runs.append(current)
            current = []
    if current:
        runs.append(current)
    spans = []
    for run in runs:
        if run[0] == 0 and tokens[0][2].lower() in _STOP:  # "The", "In", "After" open sentences
            run = run[1:]
        if run:
            spans.append((tokens[run[0]][0], tokens[run[-1]][1]))
    return spans


# Words an answer neither starts nor ends with: function words, and the adverbs and linking
# verbs that sit between a question's words and its answer.
_EDGE = _STOP | frozenset(
    """however since thus therefore hence although though while whereas because generally commonly usually typically
    often mostly mainly largely widely closely particularly especially also even still yet already instead rather
    called known named termed referred considered regarded described defined used given related stated
    another way one""".split()
)
_BREAK = re.compile(r"[,.;:!?()\[\]\"“”—–]")


def _uncovered_run(sentence, tokens, matched, question_words) -> Span | None:
    """The longest run of words next to the question's words that the question does not say:
    for 'What did X do?' in 'X built Y in Z', that is 'built Y in Z'."""
    if not matched:
        return None
    runs, current = [], []
    for index, (_, _, word) in enumerate(tokens):
        if index in matched or word.lower() in question_words:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(index)
    if current:
        runs.append(current)
    best = None
    for run in runs:
        run = _trim(run, tokens, _STOP)  # its distance to the question's words counts from here
        answer = _trim(run, tokens, _EDGE)
        if not answer:
            continue
        gap = min(min(abs(run[0] - m), abs(run[-1] - m)) for m in matched)
        key = (gap > 1, -len(answer), answer[0])
        if best is None or key < best[0]:
            best = (key, answer)
    if best is None:
        return None
    run = best[1][:12]
    start, end = tokens[run[0]][0], tokens[run[-1]][1]
    if end - start >= len(sentence.rstrip(".!? ")) * 0.9:
        return None
    return Span(start, end, "phrase")


def _trim(run: list[int], tokens, drop: frozenset[str]) -> list[int]:
    first, last = 0, len(run)
    while first < last and tokens[run[first]][2].lower() in drop:
        first += 1
    while last > first and tokens[run[last - 1]][2].lower() in drop:
        last -= 1
    return run[first:last]


# --- confidence -------------------------------------------------------------------------------

# Logistic weights over (sentence cosine, IDF-weighted overlap, best passage cosine, whether the
# sentence holds the kind of thing asked for), fitted on the SQuAD 2.0 dev sample with
# `python -m qa eval DATASET --calibrate` (answerable = 1).
CALIBRATION = {"bias": -1.003, "cosine": 1.737, "overlap": -2.037, "passage": 1.794, "typed": 0.628}
# Below this cosine between the question and its best passage the documents are about something
# else. SQuAD's questions are all asked about the article at hand, so the calibration never sees
# such questions (there, low word overlap even counts for an answer); this floor covers them.
RELEVANT_FROM = 0.25
NO_ANSWER_BELOW = 0.35  # on the same data: abstains on a third of unanswerable questions while still answering 86% of answerable ones


def confidence(features: dict[str, float], weights: dict[str, float] = CALIBRATION) -> float:
    z = weights["bias"] + sum(weights[name] * value for name, value in features.items())
    return 1.0 / (1.0 + math.exp(-z))


def content_stems(question: str, tokenize) -> list[str]:
    """The question's stems without question words and function words."""
    return tokenize(" ".join(w for _, _, w in words(question) if w.lower() not in _STOP))


def coverage(sentence_stems: set[str], idf: dict[str, float]) -> float:
    """Share of the question's IDF mass that the sentence holds."""
    total = sum(idf.values())
    if not total:
        return 0.0
    return sum(weight for stem, weight in idf.items() if stem in sentence_stems) / total


def cosine(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    return np.asarray(matrix, dtype=np.float32) @ vector.astype(np.float32)
