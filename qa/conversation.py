"""Follow-up questions: what a question takes from the conversation before it.

There is no generative model to rewrite a follow-up, so the grammar of follow-ups decides:

- a pronoun with nothing to point to in the question ("What did it cost?", "Where did she
  work?"), or a demonstrative ("that company", "this dataset", "the same year"), is read as
  what it refers to: the entity the last answer gave, or the subject of the last question;
- an elliptic question ("And ResNet?", "What about VGG?") is the last question asked again of
  the new subject;
- a question without content words of its own ("Why?", "How much?") is read with the last
  question's subject, and one with no name of its own that speaks of "the workers" with what the
  last answer named (or the last question's subject) beside it.

Which antecedent a pronoun takes follows its kind: "he", "she" and their forms the latest name
that looks like a person's; "it", "its", "this", "that", "they" the topic when the last two
questions share their subject, else the last answer when it named a thing, else the last
question's subject. "It" in "Is it true that ..." or "How
long did it take to ..." points nowhere and is left alone. A question that stands on its own is returned
unchanged. Only the last MAX_TURNS usable turns are looked at; abstentions and errors are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from qa.types import Answer

MAX_TURNS = 3

_WH = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how", "is", "are", "was", "were", "do", "does",
       "did", "can", "could", "has", "have", "had", "will", "would", "should", "and", "in", "on", "at", "for", "of", "so"}
_STOP = _WH | {
    "a", "an", "the", "to", "by", "with", "from", "about", "as", "into", "than", "then", "there", "it", "its", "they", "them",
    "their", "he", "him", "his", "she", "her", "hers", "this", "that", "these", "those", "be", "been", "being", "much", "many",
    "long", "often", "also", "else", "more", "most", "same", "one", "ones", "or", "not", "no", "yes", "up", "out", "get", "got",
    "use", "used", "make", "made", "say", "said", "do", "done", "any", "some", "all", "very", "just", "only", "after", "before",
}
_PERSON = {"he", "him", "his", "she", "her", "hers"}
_THING = {"it", "its"}
_PLURAL = {"they", "them", "their", "theirs"}
_DEMONSTRATIVE = re.compile(r"\b(?:this|that|these|those|the same)\s+([a-z][a-z-]+)", re.IGNORECASE)
_BARE_DEMONSTRATIVE = re.compile(r"\b(?:this|that)\s*\?*$|\b(?:was|is|did|does|about|of|after|before)\s+(?:this|that)\b", re.IGNORECASE)
_ELLIPSIS = re.compile(r"^\s*(?:and|what about|how about|and what about|same for|and for)\s+(.+?)\s*\??\s*$", re.IGNORECASE)
_WORD = re.compile(r"[\w'’-]+")
_DEFINITE = re.compile(r"\bthe\s+(?!same\b)[a-z]", re.IGNORECASE)
_YEAR = re.compile(r"\b(?:1[5-9]\d\d|20\d\d)\b")
_MONTH = re.compile(r"\b(?:January|February|March|April|May|June|July|August|September|October|November|December)\b")
_EXPLETIVE = re.compile(r"\b(?:is|was|isn't|wasn't)\s+it\s+\w+\s+(?:that|to|whether)\b|\bit\s+(?:is|was|takes?|took|did\s+take)\b.*\b(?:that|to)\b|\bdid\s+it\s+take\b", re.IGNORECASE)
_ASKED = re.compile(r"^\s*(?:which|what|how many)\s+([A-Z][\w-]*)", re.IGNORECASE)
_TIMES = {"year", "years", "month", "day", "time", "decade", "season", "week"}
_NOT_AFTER_DEMONSTRATIVE = {"is", "was", "are", "were", "did", "does", "do", "has", "had", "have", "can", "could", "will",
                            "would", "the", "a", "an", "it", "they", "he", "she", "we", "you", "i"}


@dataclass(frozen=True)
class Turn:
    """One earlier question of the conversation and what it got: the answer's text, or None
    for an abstention or an error (such turns are skipped)."""

    question: str
    answer: str | None

    @classmethod
    def of(cls, answer: Answer) -> "Turn":
        """An answer as a turn: the question as it was read, and the answer unless it abstained."""
        return cls(answer.read_as or answer.question, None if answer.no_answer else answer.answer)


@dataclass(frozen=True)
class Reading:
    question: str  # as it is asked of the documents
    carried: str | None  # what came from the conversation, None when the question stands alone


def resolve(question: str, history: Iterable[Turn] | None) -> Reading:
    """The question as it should be read, given the earlier turns (oldest first)."""
    turns = []
    for turn in reversed(list(history or [])):  # the latest usable turns; hundreds cost nothing more
        if turn.answer and turn.question and turn.question.strip():
            turns.insert(0, turn)
            if len(turns) == MAX_TURNS:
                break
    if not turns:
        return Reading(question, None)
    last = turns[-1]
    subject = next((found for t in reversed(turns) if (found := _subject(t.question))), None)
    named = _entity_answer(last.answer)

    elliptic = _ELLIPSIS.match(question)
    if elliptic and subject:
        new_subject = elliptic.group(1).strip()
        if new_subject.lower() not in last.question.lower():
            return Reading(_replace_subject(last.question, subject, new_subject), last.question)

    words = _WORD.findall(question)
    lowered = [w.lower() for w in words]
    own = _entities(question)
    for position, word in enumerate(lowered):
        if word in _PERSON | _THING | _PLURAL:
            if _entities(" ".join(words[:position])) and word not in _THING:
                continue  # it points into the question itself ("Did Fei-Fei Li leave her post?")
            if word == "it" and _EXPLETIVE.search(question):
                continue  # "Is it true that ...", "How long did it take to ..."
            antecedent = _person(turns) if word in _PERSON else _antecedent(turns, named, subject)
            if antecedent:
                following = lowered[position + 1] if position + 1 < len(lowered) else ""
                possessive = word in {"its", "his", "their"} or (word == "her" and following and following not in _STOP)
                return Reading(_substitute(question, words[position], antecedent, possessive), antecedent)
    demonstrative = _DEMONSTRATIVE.search(question)
    if demonstrative and demonstrative.group(1).lower() not in _NOT_AFTER_DEMONSTRATIVE and not own:
        if demonstrative.group(1).lower() in _TIMES:  # "the same year": the year said last
            year = _YEAR.search(f"{last.answer} {last.question}")
            if year:
                return Reading(question.replace(demonstrative.group(), f"{demonstrative.group()} ({year.group()})", 1), year.group())
        antecedent = named or subject
        if antecedent:  # "that company" is the company just named
            return Reading(question.replace(demonstrative.group(), antecedent, 1), antecedent)
    if _BARE_DEMONSTRATIVE.search(question) and not own:
        antecedent = named or subject
        if antecedent:
            return Reading(_substitute(question, re.search(r"\b(?:this|that)\b", question, re.IGNORECASE).group(), antecedent, False), antecedent)
    if not [w for w in lowered if w not in _STOP] and subject:
        return Reading(f"{question.rstrip(' ?')} ({subject})?", subject)
    if not own and _DEFINITE.search(question) and (named or subject):  # "the workers": those of what was just said
        return Reading(f"{question.rstrip(' ?')} ({named or subject})?", named or subject)
    return Reading(question, None)


def _antecedent(turns: list[Turn], named: str | None, subject: str | None) -> str | None:
    """What "it" or "they" points to: what the conversation keeps talking about when the last two
    questions share their subject; else the thing the last answer named, unless that was a person
    (a "who" question), then what the last question was about."""
    earlier = _subject(turns[-2].question) if len(turns) > 1 else None
    if subject and earlier and subject.lower() == earlier.lower():
        return subject
    if turns[-1].question.strip().lower().startswith(("who ", "whom ", "whose ")):
        return subject or named
    return named or subject


def _person(turns: list[Turn]) -> str | None:
    """What "he" or "she" points to: the latest name that looks like a person's, in an answer or
    among the names a question used."""
    for turn in reversed(turns):
        named = _entity_answer(turn.answer)
        candidates = ([named] if named else []) + _entities(turn.question)
        person = next((c for c in candidates if _looks_like_person(c)), None)
        if person:
            return person
    return None


def _entity_answer(answer: str | None) -> str | None:
    """The answer when it names something (a capitalized name), not a number, date or phrase."""
    if not answer or len(answer.split()) > 6 or not re.search(r"[A-Z]", answer) or re.fullmatch(r"[\d\s.,%$–-]+", answer):
        return None
    if _YEAR.search(answer) or _MONTH.search(answer):
        return None
    return answer.strip(" .,;:")


def _looks_like_person(name: str) -> bool:
    parts = name.split()
    return 2 <= len(parts) <= 4 and all(p[:1].isupper() for p in parts)


def _entities(text: str) -> list[str]:
    """Names in `text`: runs of capitalized words, acronyms and model names ("Mechanical Turk",
    "ILSVRC 2012", "ResNet-50"); the question's first word counts only when it is not a question word."""
    found = []
    tokens = list(re.finditer(r"[\w'’-]+", text))
    run: list[str] = []
    for number, token in enumerate(tokens):
        word = token.group()
        capital = word[:1].isupper() and not (number == 0 and word.lower() in _STOP)
        joins = run and (word.isdigit() or (word.lower() in {"of", "de", "the"} and number + 1 < len(tokens)))
        if capital or joins:
            run.append(word)
            continue
        if run:
            found.append(" ".join(run).strip())
        run = []
    if run:
        found.append(" ".join(run))
    return [name for name in (re.sub(r"['’]s$", "", n).removesuffix(" of").removesuffix(" the").strip() for n in found) if name]


def _subject(question: str) -> str | None:
    """What the question is about: its longest name other than what it asks for ("Which GPUs
    was AlexNet trained on?": AlexNet), else its content words."""
    asked = _ASKED.match(question)
    names = [n for n in _entities(question) if not (asked and n == asked.group(1))] or _entities(question)
    if names:
        return max(names, key=lambda n: (len(n.split()), -question.index(n)))
    content = [w for w in _WORD.findall(question) if w.lower() not in _STOP]
    return " ".join(content[-3:]) if content else None


def _substitute(question: str, pronoun: str, antecedent: str, possessive: bool) -> str:
    replacement = f"{antecedent}'s" if possessive else antecedent
    return re.sub(rf"\b{re.escape(pronoun)}\b", replacement, question, count=1)


def _replace_subject(last_question: str, subject: str, new_subject: str) -> str:
    """The last question asked of the new subject: a year for its year ("And in 2015?"), else a
    name for its subject ("And ResNet?")."""
    year = _YEAR.search(new_subject)
    if year and _YEAR.search(last_question):
        return _YEAR.sub(year.group(), last_question, count=1)
    if subject in last_question:
        return last_question.replace(subject, new_subject, 1)
    return f"{last_question.rstrip(' ?')} ({new_subject})?"

