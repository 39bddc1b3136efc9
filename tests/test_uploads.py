"""Uploads land inside the documents folder under a safe name, and never over a different file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qa.documents import MAX_DOCUMENT_BYTES
from qa.documents.uploads import UploadRefused, delete_document, safe_name, save_upload


@pytest.mark.parametrize(
    "name, expected",
    [
        ("notes.md", "notes.md"),
        ("Report 2024.PDF", "Report 2024.PDF"),
        ("../x.md", "x.md"),
        ("../../etc/cron.d/evil.txt", "evil.txt"),
        ("/etc/passwd.txt", "passwd.txt"),
        ("C:\\Users\\me\\paper.html", "paper.html"),
        ("..\\..\\win.md", "win.md"),
        (".hidden.md", "hidden.md"),
        ("bad\x00name\x1b[31m.txt", "badname[31m.txt"),
        ("line\nbreak.md", "linebreak.md"),
        ("evil\u202etxt.md", "eviltxt.md"),  # right-to-left override could disguise the extension
        ("what?.md", "what_.md"),
        ("  spaced   out  .md", "spaced out.md"),
        ("café.txt", "café.txt"),
    ],
)
def test_safe_name_keeps_files_inside_the_folder(name: str, expected: str) -> None:
    assert safe_name(name) == expected


@pytest.mark.parametrize("name", ["virus.exe", "archive.tar.gz", "README", "notes.md.exe", "x.md/"])
def test_other_extensions_are_refused(name: str) -> None:
    with pytest.raises(UploadRefused, match="only .* files can be added"):
        safe_name(name)


@pytest.mark.parametrize("name", [".md", "../.md", "\x00.txt", " . .pdf"])
def test_names_without_a_stem_are_refused(name: str) -> None:
    with pytest.raises(UploadRefused, match="no usable file name"):
        safe_name(name)


def test_long_names_are_shortened_and_keep_their_extension() -> None:
    name = safe_name("é" * 300 + ".md")
    assert name.endswith(".md") and len(name.encode("utf-8")) <= 200


def test_save_writes_the_bytes_inside_the_folder(tmp_path: Path) -> None:
    upload = save_upload(tmp_path / "docs", "../../outside.md", b"# Outside\n")
    assert upload.outcome == "renamed" and upload.saved
    assert upload.path == tmp_path / "docs" / "outside.md"
    assert upload.path.read_bytes() == b"# Outside\n"
    assert not (tmp_path / "outside.md").exists()
    assert "'../../outside.md' as outside.md" in upload.message
    assert _visible_files(tmp_path / "docs") == ["outside.md"]


def test_a_different_file_of_the_same_name_is_kept(tmp_path: Path) -> None:
    first = save_upload(tmp_path, "a.md", b"first")
    second = save_upload(tmp_path, "a.md", b"second")
    third = save_upload(tmp_path, "a.md", b"third")
    assert (first.outcome, second.outcome, third.outcome) == ("saved", "renamed", "renamed")
    assert [p.read_bytes() for p in (first.path, second.path, third.path)] == [b"first", b"second", b"third"]
    assert second.path.name == "a-2.md" and third.path.name == "a-3.md"
    assert second.message == "A different a.md is already in the documents folder, so this one was saved as a-2.md."


def test_the_same_bytes_again_are_not_duplicated(tmp_path: Path) -> None:
    save_upload(tmp_path, "a.md", b"same")
    again = save_upload(tmp_path, "a.md", b"same")
    assert again.outcome == "unchanged" and not again.saved
    assert _visible_files(tmp_path) == ["a.md"]


def test_replace_overwrites_only_when_asked(tmp_path: Path) -> None:
    save_upload(tmp_path, "a.md", b"old")
    replaced = save_upload(tmp_path, "a.md", b"new", replace=True)
    assert replaced.outcome == "replaced"
    assert (tmp_path / "a.md").read_bytes() == b"new"
    assert _visible_files(tmp_path) == ["a.md"]


def test_a_symlink_of_the_same_name_is_never_written_through(tmp_path: Path) -> None:
    outside = tmp_path / "outside.md"
    outside.write_bytes(b"keep me")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").symlink_to(outside)
    upload = save_upload(docs, "a.md", b"new", replace=True)
    assert upload.path == docs / "a-2.md"
    assert outside.read_bytes() == b"keep me"


def test_empty_files_are_refused(tmp_path: Path) -> None:
    for data in (b"", b"  \n\t"):
        upload = save_upload(tmp_path, "empty.txt", data)
        assert upload.outcome == "refused" and upload.path is None
        assert upload.message == "empty.txt is empty, so there is nothing to index."
    assert _visible_files(tmp_path) == []


def test_files_over_the_limit_are_refused(tmp_path: Path) -> None:
    upload = save_upload(tmp_path, "big.pdf", b"x" * (MAX_DOCUMENT_BYTES + 1))
    assert upload.outcome == "refused"
    assert upload.message == "big.pdf is 25.0 MB, over the 25 MB limit for one document."
    assert save_upload(tmp_path, "fits.txt", b"x" * MAX_DOCUMENT_BYTES).saved


def test_refusal_messages_show_control_characters_as_escapes(tmp_path: Path) -> None:
    upload = save_upload(tmp_path, "bad\x1b.exe", b"data")
    assert upload.message == "bad\\x1b.exe is not a supported document: only .htm, .html, .markdown, .md, .pdf, .txt files can be added."


def test_no_temporary_files_are_left_behind(tmp_path: Path) -> None:
    save_upload(tmp_path, "a.md", b"one")
    save_upload(tmp_path, "a.md", b"two")
    save_upload(tmp_path, "a.md", b"three", replace=True)
    assert sorted(os.listdir(tmp_path)) == ["a-2.md", "a.md"]


def test_delete_removes_a_file_inside_the_folder(tmp_path: Path) -> None:
    path = save_upload(tmp_path, "a.md", b"x").path
    assert delete_document(tmp_path, path) == path
    assert not path.exists()


def test_delete_refuses_files_outside_the_folder(tmp_path: Path) -> None:
    outside = tmp_path / "outside.md"
    outside.write_bytes(b"x")
    docs = tmp_path / "docs"
    docs.mkdir()
    for source in (outside, docs / ".." / "outside.md"):
        with pytest.raises(UploadRefused, match="is not in the documents folder"):
            delete_document(docs, source)
    assert outside.exists()


def test_delete_of_a_missing_file_says_to_reindex(tmp_path: Path) -> None:
    with pytest.raises(UploadRefused, match="re-index"):
        delete_document(tmp_path, tmp_path / "gone.md")


def _visible_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
