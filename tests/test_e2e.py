"""End to end: `streamlit run app.py` on a free localhost port, driven by headless Chromium.

Uses Debian's `chromium` through the Python `playwright` package (browser downloads are not
possible here, so never `playwright install`). Screenshots and the measured time from launching
the server to the first answer go to test-artifacts/.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from . import pdf_samples
from .conftest import ROOT, write

pytestmark = pytest.mark.e2e

ARTIFACTS = ROOT / "test-artifacts"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]
INSTALL_HINT = "install Chromium with `apt-get install chromium` (or `make browser`, as root)"
WAIT_MS = 60_000
PDF_FACT = "ResNet won the ILSVRC 2015 classification task with a network of 152 layers."


@dataclass(frozen=True)
class Server:
    url: str
    started: float  # time.monotonic() just before `streamlit run` was launched


def _chromium() -> str:
    """The system Chromium, or a skip that says how to install it (a failure when CI is set)."""
    found = next((p for p in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")) if p and os.access(p, os.X_OK)), None)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        found, why = None, "the Python playwright package is missing: run `make setup`"
    else:
        why = f"no Chromium found: {INSTALL_HINT}"
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"The end-to-end test must run in CI, but {why}.")
        pytest.skip(f"End-to-end test skipped: {why}.")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"streamlit exited with code {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"streamlit did not answer on {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@contextmanager
def _streamlit(docs: Path, index: Path) -> Iterator[Server]:
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / "e2e-server.log"
    url = f"http://127.0.0.1:{_free_port()}"
    command = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
        "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", url.rsplit(":", 1)[1],
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal",
        "--", "--index", str(index), "--docs", str(docs),
    ]
    with log.open("w") as out:
        started = time.monotonic()
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_until_healthy(url, process, log)
            yield Server(url, started)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    """Launched before the server, so its start-up is not counted in the time to first answer."""
    chromium = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=BROWSER_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, browser) -> Iterator[Server]:
    from ingest.sync import sync

    root = tmp_path_factory.mktemp("e2e")
    docs = root / "docs"
    write(docs / "alexnet.md", "# AlexNet\n\nAlexNet was designed by Alex Krizhevsky.\n\n## Training\n\nIt was trained on two GTX 580 GPUs for five to six days.\n")
    write(docs / "wordnet.txt", "WordNet\n\nWordNet is a lexical database of English begun at Princeton by George A. Miller.\n")
    write(docs / "tricky.txt", "Tricky\n\nThis note has <script>alert(1)</script>, **bold stars** and\n# not a heading\nin it.\n")
    if pdf_samples.font_path():
        pdf_samples.paper(docs / "resnet-paper.pdf", lead=PDF_FACT)
    sync([docs], root / "index")
    with _streamlit(docs, root / "index") as running:
        yield running


@pytest.fixture(scope="module")
def page(browser, server: Server):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    page.goto(server.url, timeout=WAIT_MS)
    yield page
    page.close()


@pytest.fixture(autouse=True)
def screenshot_on_failure(request: pytest.FixtureRequest, page) -> Iterator[None]:
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed > failed:
        page.screenshot(path=str(ARTIFACTS / f"e2e-failed-{request.node.name}.png"))


def _settle(page) -> None:
    """Wait for the page run to end, so a click is not lost to the rerun it interrupts."""
    page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden")


def _ask(page, question: str, number: int) -> None:
    box = page.get_by_placeholder("Ask a question about the documents")
    box.fill(question)
    box.press("Enter")
    page.locator(f".st-key-turn_{number} [data-testid='stExpander']").first.wait_for()
    _settle(page)


def _screenshot(page, name: str, anchor: str | None = None) -> Path:
    if anchor:
        page.locator(anchor).first.scroll_into_view_if_needed()
    page.wait_for_timeout(300)  # let the last element finish its entry transition
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path


def test_ask_open_a_citation_and_see_the_highlighted_passage(page, server: Server, record_property) -> None:
    """The first question asked since the server started: its time is the time to first answer."""
    _ask(page, "How many GPUs was AlexNet trained on?", 0)
    seconds = time.monotonic() - server.started
    record_property("first_answer_seconds", round(seconds, 2))
    (ARTIFACTS / "e2e-timing.txt").write_text(f"first answer {seconds:.1f} s after launching streamlit run\n")
    print(f"\nfirst answer {seconds:.1f} s after launching `streamlit run`")

    turn = page.locator(".st-key-turn_0")
    heading = turn.locator("h3")
    page.locator(".st-key-cite_0_1 summary").click()
    passage = page.locator(".st-key-cite_0_1 [data-testid='stMarkdownContainer']").nth(1)
    passage.wait_for()
    if heading.count():  # an answer: its span is highlighted in the cited passage
        answer = heading.inner_text().rsplit("[", 1)[0].strip()
        assert passage.locator(".stMarkdownColoredBackground").first.inner_text().strip() == answer
        assert answer in passage.inner_text()
    else:  # an abstention: said plainly, with the closest passages beneath
        assert "don't seem to answer" in turn.inner_text()
    # A click that lands as a rerun starts can be lost, and while a rerun replaces the page the old
    # toggle can still be there beside the new one (marked stale): click the current one until it is on.
    toggle = page.locator(".st-key-view_0_1:not([data-stale='true'])").last
    for _ in range(3):
        if not toggle.locator("input").is_checked():
            toggle.locator("label").click()
        _settle(page)
        if toggle.locator("input").is_checked():
            break
    window = page.locator(".st-key-cite_0_1 [class*='st-key-document_']").last
    window.wait_for()
    assert window.locator(".stMarkdownColoredBackground").count() >= 1
    _screenshot(page, "e2e-answer.png", ".st-key-turn_0 h3, .st-key-turn_0 strong")


def test_document_text_is_shown_as_text(page) -> None:
    _ask(page, "Which note has bold stars and a script in it?", 1)
    citation = page.locator(".st-key-turn_1 [data-testid='stExpander']", has_text="tricky.txt").first
    citation.locator("summary").click()
    text = citation.inner_text()
    assert "<script>alert(1)</script>" in text and "**bold stars**" in text and "# not a heading" in text
    assert citation.locator("script, h1, img").count() == 0


def test_an_abstention_shows_the_closest_passages(page) -> None:
    _ask(page, "What time does the train to Paris leave?", 2)
    assert page.locator(".st-key-turn_2 [data-testid='stExpander']").count() >= 1
    _screenshot(page, "e2e-abstention.png", ".st-key-turn_2")


def test_a_pdf_citation_shows_its_page_with_the_passage_marked(page) -> None:
    if not pdf_samples.font_path():
        pytest.skip("no TrueType font with ligatures here for the test paper (fonts-dejavu-core)")
    _ask(page, "How many layers did the network that won ILSVRC 2015 have?", 3)
    citation = page.locator(".st-key-turn_3 [data-testid='stExpander']", has_text="resnet-paper.pdf").first
    citation.locator("summary").click()
    image = citation.locator("[class*='st-key-page_3_'] img")
    image.wait_for()
    _settle(page)
    assert "page 1, the passage marked" in citation.inner_text()
    assert image.evaluate("img => img.naturalWidth") > 600  # the page itself, drawn at 1.5 times its size
    page.wait_for_timeout(300)  # let the image finish its entry transition
    citation.screenshot(path=str(ARTIFACTS / "e2e-pdf-citation.png"))  # the whole citation: passage, then its page


def test_several_sessions_asking_at_once_are_all_answered(browser, server: Server) -> None:
    """Four browser contexts are four Streamlit sessions; their questions go in back to back, so
    the server answers them side by side from one shared engine."""
    asked = [("Who designed AlexNet?", "alexnet.md"), ("Who began WordNet?", "wordnet.txt"),
             ("How many GPUs was AlexNet trained on?", "alexnet.md"), ("Where was WordNet begun?", "wordnet.txt")]
    contexts = [browser.new_context(viewport={"width": 1000, "height": 800}) for _ in asked]
    try:
        pages = [context.new_page() for context in contexts]
        for session in pages:
            session.set_default_timeout(WAIT_MS)
            session.goto(server.url, timeout=WAIT_MS)
            session.get_by_placeholder("Ask a question about the documents").wait_for()
            _settle(session)
        for session, (question, _) in zip(pages, asked):
            box = session.get_by_placeholder("Ask a question about the documents")
            box.fill(question)
            box.press("Enter")
        for session, (question, source) in zip(pages, asked):
            first = session.locator(".st-key-turn_0 [data-testid='stExpander']").first
            first.wait_for()
            assert source in first.locator("summary").inner_text(), question
            assert question in session.locator("[data-testid='stChatMessage']").first.inner_text()
    finally:
        for context in contexts:
            context.close()


def test_a_follow_up_is_read_with_its_own_sessions_conversation_only(browser, server: Server) -> None:
    """Two sessions at once: one's conversation never reaches the other."""
    contexts = [browser.new_context(viewport={"width": 1000, "height": 800}) for _ in range(2)]
    try:
        first, second = (context.new_page() for context in contexts)
        for session in (first, second):
            session.set_default_timeout(WAIT_MS)
            session.goto(server.url, timeout=WAIT_MS)
            session.get_by_placeholder("Ask a question about the documents").wait_for()
            _settle(session)
        _ask(first, "Who began WordNet?", 0)
        _ask(first, "Where was it begun?", 1)
        _ask(second, "Where was it begun?", 0)
        assert "read as: Where was WordNet begun?" in first.locator("[data-testid='stChatMessage']").nth(2).inner_text()
        assert "read as" not in second.locator("[data-testid='stChatMessage']").first.inner_text()
        first.get_by_role("button", name="New conversation").filter(visible=True).first.click()
        first.get_by_text("Ask a question about the", exact=False).first.wait_for()
        _settle(first)
        assert first.locator("[data-testid='stChatMessage']").count() == 0
    finally:
        for context in contexts:
            context.close()


def test_upload_and_reindex_from_the_sidebar(page, tmp_path: Path) -> None:
    upload = write(tmp_path / "zebras.md", "# Zebras\n\nThe Grevy's zebra lives in the grasslands of Kenya and Ethiopia.\n")
    page.locator(".st-key-upload input[type='file']").set_input_files(str(upload))
    page.get_by_text("Saved zebras.md.").wait_for()
    _settle(page)
    page.locator(".st-key-reindex button").click()
    result = page.locator(".st-key-reindex_result")
    result.wait_for()
    _settle(page)
    assert "1 added" in result.inner_text()
    page.locator(".st-key-documents summary").click()
    page.locator("[data-testid='stSidebar']").get_by_text("zebras.md").first.wait_for()
    _screenshot(page, "e2e-reindex.png")
