"""Putting uploaded files into the documents folder, and taking them out again.

Whatever name a browser sends, a file lands directly inside the folder under a name that is safe
on any file system and that ingest will not ignore; it never replaces a different file unless the
caller asks for that. Every refusal or rename carries one sentence for the user.
"""

from __future__ import annotations

import os
import re
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from qa.documents import MAX_DOCUMENT_BYTES, SUFFIXES

MAX_NAME_BYTES = 200  # well under the usual 255-byte limit, leaving room for a "-2" suffix
_UNSAFE = re.compile(r'[<>:"|?*]')  # not allowed in Windows file names, where the folder may be copied
_SPACES = re.compile(r"\s+")
_RESERVED = re.compile(r"con|prn|aux|nul|com\d|lpt\d", re.IGNORECASE)  # devices on Windows, whatever the extension
_TYPES = ", ".join(sorted(SUFFIXES))

Outcome = Literal["saved", "renamed", "replaced", "unchanged", "refused"]


class UploadRefused(ValueError):
    """The upload cannot be saved; the message says why in one sentence."""


@dataclass(frozen=True)
class Upload:
    """What happened to one uploaded file."""

    name: str  # as the browser sent it
    outcome: Outcome
    message: str
    path: Path | None = None  # where it is now; None when refused

    @property
    def saved(self) -> bool:
        return self.outcome in ("saved", "renamed", "replaced")


def safe_name(name: str) -> str:
    """The file name to store `name` under: no folders, no control or format characters (which
    can hide a real extension), no leading dot (ingest skips hidden files), no Windows device
    name (CON.txt becomes CON_.txt). Raises UploadRefused."""
    shown = printable(name)
    cleaned = "".join(ch for ch in unicodedata.normalize("NFC", name) if not _invisible(ch))
    cleaned = re.split(r"[/\\]", cleaned)[-1]
    stem, dot, extension = _SPACES.sub(" ", _UNSAFE.sub("_", cleaned)).strip(" ").rstrip(". ").rpartition(".")
    suffix = dot + extension
    if not dot or suffix.lower() not in SUFFIXES:
        raise UploadRefused(f"{shown} is not a supported document: only {_TYPES} files can be added.")
    stem = stem.strip(" .")
    if not stem:
        raise UploadRefused(f"{shown} has no usable file name: rename it and upload it again.")
    head, dot, rest = stem.partition(".")
    if _RESERVED.fullmatch(head.rstrip(" ")):
        stem = f"{head.rstrip(' ')}_{dot}{rest}"
    while len((stem + suffix).encode("utf-8")) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return stem + suffix


def save_upload(folder: Path, name: str, data: bytes, *, replace: bool = False) -> Upload:
    """Save one upload directly inside `folder`. A file of the same name with the same bytes is
    left as it is; with different bytes the upload is saved as `name-2.ext` (the next free
    number), unless `replace` is true."""
    shown = printable(name)
    try:
        target_name = safe_name(name)
        _check_content(shown, data)
    except UploadRefused as exc:
        return Upload(name, "refused", str(exc))
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / target_name
    if _same_bytes(target, data):
        return Upload(name, "unchanged", f"{target_name} is already in the documents folder with the same content.", target)
    try:
        if replace and _is_plain_file(target):
            _write_over(target, data)
            return Upload(name, "replaced", f"Replaced {target_name} with the uploaded version.", target)
        path = _write_new(folder, target_name, data)
    except OSError as exc:
        return Upload(name, "refused", f"{target_name} could not be saved ({exc.strerror or exc}).")
    if path.name != target_name:
        message = f"A different {target_name} is already in the documents folder, so this one was saved as {path.name}."
    elif target_name != name:
        message = f"Saved '{shown}' as {target_name}, a safe name inside the documents folder."
    else:
        return Upload(name, "saved", f"Saved {target_name}.", path)
    return Upload(name, "renamed", message, path)


def delete_document(folder: Path, source: str | Path) -> Path:
    """Delete an indexed document's file, only if it lies inside `folder`. Raises UploadRefused."""
    path = Path(source)
    resolved = path.resolve()
    if not resolved.is_relative_to(folder.resolve()):
        raise UploadRefused(f"{path} is not in the documents folder {folder}/, so it is not deleted from here.")
    if not _is_plain_file(path):
        raise UploadRefused(f"{path} is no longer in the documents folder; re-index to drop it from the index.")
    path.unlink()
    return path


def printable(name: str) -> str:
    """`name` with control and format characters shown as escapes, for messages."""
    return "".join(ch.encode("unicode_escape").decode("ascii") if _invisible(ch) else ch for ch in name)


def _invisible(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def _check_content(shown: str, data: bytes) -> None:
    if len(data) > MAX_DOCUMENT_BYTES:
        limit = MAX_DOCUMENT_BYTES // 2**20
        raise UploadRefused(f"{shown} is {len(data) / 2**20:.1f} MB, over the {limit} MB limit for one document.")
    if not data.strip():
        raise UploadRefused(f"{shown} is empty, so there is nothing to index.")


def _is_plain_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _same_bytes(path: Path, data: bytes) -> bool:
    try:
        return _is_plain_file(path) and path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def _temporary(folder: Path, data: bytes) -> Path:
    """A hidden file (ingest skips it) holding `data`, to be linked or renamed into place."""
    temporary = folder / f".upload-{uuid.uuid4().hex}.part"
    temporary.write_bytes(data)
    return temporary


def _write_new(folder: Path, name: str, data: bytes) -> Path:
    """Link the bytes in under `name`, or `stem-2.ext`, `stem-3.ext`...: linking never replaces an
    existing file, even one another session creates at the same moment."""
    stem, suffix = os.path.splitext(name)
    temporary = _temporary(folder, data)
    try:
        for number in range(1, 10_000):
            path = folder / (name if number == 1 else f"{stem}-{number}{suffix}")
            try:
                os.link(temporary, path)
                return path
            except FileExistsError:
                continue
        raise FileExistsError(f"too many files named like {name}")
    finally:
        temporary.unlink(missing_ok=True)


def _write_over(path: Path, data: bytes) -> None:
    temporary = _temporary(path.parent, data)
    try:
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
