import pytest

from qa.documents import document_from_text
from qa.errors import DocumentError
from tests.conftest import load, make_pdf, write


def test_markdown_keeps_file_text_and_finds_title_and_sections(tmp_path):
    text = "# The Title\n\nIntro.\n\n```\n# not a heading\n```\n\n## Second\n\nBody.\n"
    doc = load(write(tmp_path / "a.md", text))
    assert doc.text == text
    assert doc.title == "The Title"
    assert [h.text for h in doc.headings] == ["The Title", "Second"]
    assert doc.section_at(text.index("Body")) == "Second"
    assert doc.section_at(text.index("Intro")) == "The Title"


def test_plain_text_title_is_first_line_and_standalone_short_lines_are_sections(tmp_path):
    text = "ImageNet in brief\n\nFirst paragraph.\n\nOrigins\n\nIt began at Princeton.\n"
    doc = load(write(tmp_path / "a.txt", text))
    assert doc.title == "ImageNet in brief"
    assert doc.section_at(text.index("It began")) == "Origins"


def test_html_keeps_visible_text_only(tmp_path):
    markup = (
        "<html><head><title>Page &amp; Title</title><style>p{color:red}</style></head>"
        "<body><h1>Heading</h1><script>alert('x')</script><p onclick=\"evil()\">Visible <b>bold</b> text.</p>"
        "<noscript>nojs</noscript><p>Second&nbsp;para.</p></body></html>"
    )
    doc = load(write(tmp_path / "a.html", markup))
    assert doc.title == "Page & Title"
    assert "Visible bold text." in doc.text and "Second para." in doc.text
    for hidden in ("alert", "color:red", "nojs", "evil", "<"):
        assert hidden not in doc.text
    assert doc.section_at(doc.text.index("Visible")) == "Heading"


def test_deeply_nested_html_loads(tmp_path):
    markup = "<div>" * 50_000 + "deep text" + "</div>" * 50_000
    assert load(write(tmp_path / "deep.html", markup)).text == "deep text"


def test_pdf_text_per_page_with_page_numbers(tmp_path):
    path = make_pdf(tmp_path / "a.pdf", ["First page about perceptrons.", "Second page about GPUs."], title="A PDF")
    doc = load(path)
    assert doc.title == "A PDF"
    assert len(doc.pages) == 2
    assert doc.page_at(doc.text.index("GPUs")) == 2
    assert doc.page_at(doc.text.index("perceptrons")) == 1


def test_windows_1252_text_falls_back(tmp_path):
    doc = load(write(tmp_path / "a.txt", "café crème “quoted”".encode("cp1252")))
    assert doc.text == "café crème “quoted”"


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("empty.txt", b"", "empty file"),
        ("blank.md", b"  \n\n ", "empty file"),
        ("binary.txt", bytes(range(256)) * 4, "binary"),
        ("undecodable.txt", b"abc \x81\x8d\x8f\x90\x9d def", "unknown encoding"),
        ("corrupt.pdf", b"%PDF-1.4\n this is not really a pdf", "PDF"),
        ("script-only.html", b"<script>only()</script>", "no text"),
        ("image.png", b"\x89PNG....", "unsupported"),
    ],
)
def test_bad_documents_are_refused_with_a_reason(tmp_path, name, content, reason):
    with pytest.raises(DocumentError, match=reason):
        load(write(tmp_path / name, content))


def test_encrypted_and_textless_pdfs_are_refused(tmp_path):
    from pypdf import PdfReader, PdfWriter

    plain = make_pdf(tmp_path / "plain.pdf", ["Secret text."])
    writer = PdfWriter()
    for page in PdfReader(plain).pages:
        writer.add_page(page)
    writer.encrypt(user_password="pw", owner_password="owner", algorithm="RC4-128")
    with open(tmp_path / "locked.pdf", "wb") as out:
        writer.write(out)
    with pytest.raises(DocumentError, match="encrypted"):
        load(tmp_path / "locked.pdf")

    blank = PdfWriter()
    blank.add_blank_page(width=200, height=200)
    with open(tmp_path / "scan.pdf", "wb") as out:
        blank.write(out)
    with pytest.raises(DocumentError, match="no text layer"):
        load(tmp_path / "scan.pdf")


def test_truncated_pdf_is_refused(tmp_path):
    data = make_pdf(tmp_path / "full.pdf", ["Some words on a page."]).read_bytes()
    with pytest.raises(DocumentError):
        load(write(tmp_path / "cut.pdf", data[: len(data) // 3]))


def test_document_from_text_has_a_stable_hash():
    assert document_from_text("a", "# T\n\nx").sha256 == document_from_text("a", "# T\n\nx").sha256
