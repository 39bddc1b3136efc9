"""HTML loading: boilerplate left out, tables as rows, headings as sections, malformed markup survived."""

from tests.conftest import load, write

PAGE = """<!doctype html>
<html><head><title>ImageNet history | Example Encyclopedia</title></head>
<body>
<header class="site-header">
  <a class="skip-link" href="#content">Skip to main</a>
  <a href="/" class="logo">Example Encyclopedia</a>
  <nav id="main-nav"><ul><li><a href="/">Home</a></li><li><a href="/donate">Donate</a></li></ul></nav>
</header>
<div class="cookie-banner" role="dialog"><p>We use cookies to improve your experience.</p><button>Accept all</button></div>
<ol class="breadcrumbs"><li>Encyclopedia</li><li>Computer vision</li></ol>
<div class="layout has-sidebar">
  <main>
    <article>
      <header><h1>ImageNet</h1><p class="byline">Written by the history team</p></header>
      <p>ImageNet is a large visual database designed for object recognition research.</p>
      <h2>Origins</h2>
      <p>Fei-Fei Li began working on the idea in 2006.</p>
      <div class="share-buttons"><a>Tweet this</a><a>Post to Facebook</a></div>
      <h2>Challenge</h2>
      <p>The annual ILSVRC contest ran from 2010 until 2017.</p>
    </article>
  </main>
  <aside class="sidebar"><h3>Trending</h3><p>Ten facts about pandas</p></aside>
</div>
<footer><p>Copyright 2024 Example Media. All rights reserved.</p><a href="/privacy">Privacy policy</a></footer>
</body></html>
"""


def test_navigation_banners_sidebars_and_footers_are_left_out(tmp_path):
    doc = load(write(tmp_path / "page.html", PAGE))
    for boilerplate in ("Skip to main", "Example Encyclopedia", "Home", "Donate", "cookies", "Accept all",
                        "Computer vision", "Tweet this", "Trending", "pandas", "Copyright", "Privacy policy"):
        assert boilerplate not in doc.text
    assert doc.text.startswith("ImageNet\n\nWritten by the history team\n\nImageNet is a large visual database")
    assert doc.text.endswith("The annual ILSVRC contest ran from 2010 until 2017.")
    assert doc.title == "ImageNet history | Example Encyclopedia"


def test_the_article_headings_are_its_sections(tmp_path):
    doc = load(write(tmp_path / "page.html", PAGE))
    assert [(h.level, h.text) for h in doc.headings] == [(1, "ImageNet"), (2, "Origins"), (2, "Challenge")]
    for heading in doc.headings:
        assert doc.text[heading.start : heading.start + len(heading.text)] == heading.text
    assert doc.section_at(doc.text.index("visual database")) == "ImageNet"
    assert doc.section_at(doc.text.index("Fei-Fei Li")) == "Origins"
    assert doc.section_at(doc.text.index("ILSVRC")) == "Challenge"


def test_an_article_keeps_its_own_header_and_footer_and_a_content_class_is_kept(tmp_path):
    markup = (
        "<body><article><header><h1>Results</h1></header><p>AlexNet won.</p>"
        "<footer>Filed under deep learning</footer></article>"
        "<div class='entry-footer'>Entry notes stay.</div><div id='sideBar'>Sidebar text goes.</div></body>"
    )
    doc = load(write(tmp_path / "a.html", markup))
    assert doc.text == "Results\n\nAlexNet won.\n\nFiled under deep learning\n\nEntry notes stay."
    assert doc.title == "Results"


def test_a_table_becomes_a_caption_line_and_one_line_per_row(tmp_path):
    markup = (
        "<p>The winners by year.</p>"
        "<table><caption>ILSVRC winners</caption>"
        "<thead><tr><th>Model</th><th>Year</th><th>Top-5 error</th></tr></thead>"
        "<tbody><tr><td>AlexNet</td><td>2012</td><td>15.3%</td></tr>"
        "<tr><td><p>ResNet</p><p>(152 layers)</p></td><td>2015<td>3.6%</tr></tbody></table>"
        "<p>Errors kept falling.</p>"
    )
    doc = load(write(tmp_path / "t.html", markup))
    assert doc.text == (
        "The winners by year.\n\n"
        "ILSVRC winners\n"
        "Model | Year | Top-5 error\n"
        "AlexNet | 2012 | 15.3%\n"
        "ResNet (152 layers) | 2015 | 3.6%\n\n"
        "Errors kept falling."
    )


def test_a_table_inside_a_cell_keeps_all_its_text(tmp_path):
    markup = "<table><tr><td>outer<table><tr><td>a</td><td>b</td></tr></table></td><td>last</td></tr></table>"
    doc = load(write(tmp_path / "t.html", markup))
    assert "a | b" in doc.text
    assert [w for w in doc.text.replace("|", " ").split()] == ["outer", "a", "b", "last"]


def test_a_page_that_is_all_navigation_keeps_its_text(tmp_path):
    markup = "<html><body><nav><ul><li><a href='/a'>Alpha</a></li><li><a href='/b'>Beta</a></li></ul></nav></body></html>"
    doc = load(write(tmp_path / "menu.html", markup))
    assert doc.text == "Alpha\n\nBeta"


def test_malformed_markup_does_not_lose_the_article(tmp_path):
    markup = (
        "<html><head><title>Broken</title>"  # no </head>
        "<body><div class='menu'><a>Menu item</a></div></div></span>"  # stray end tags
        "<article><h1>Survivor</h1><p>First <b>bold paragraph<p>Second paragraph</i></article>"
        "<nav><a>Never closed navigation</a>"
    )
    doc = load(write(tmp_path / "broken.html", markup))
    assert doc.text == "Survivor\n\nFirst bold paragraph\n\nSecond paragraph"
    assert doc.title == "Broken"
    assert doc.section_at(doc.text.index("Second")) == "Survivor"


def test_a_stray_end_tag_does_not_end_a_boilerplate_block_early(tmp_path):
    markup = "<div class='sidebar'><p>Popular</span></p><p>Most read</p></div><p>Main text.</p>"
    doc = load(write(tmp_path / "stray.html", markup))
    assert doc.text == "Main text."


def test_main_content_survives_a_boilerplate_block_left_open(tmp_path):
    markup = "<body><p>Intro.</p><div class='sidebar'><p>Links</p><main><p>Main text.</p></main></body>"
    doc = load(write(tmp_path / "open.html", markup))
    assert doc.text == "Intro.\n\nMain text."


def test_cells_left_open_end_where_the_next_cell_starts(tmp_path):
    markup = "<table><tr><th>Model<th>Year<tr><td class='ad'>Sponsored<td>AlexNet<td>2012<tr><td>VGG<td>2014</table>"
    doc = load(write(tmp_path / "open-cells.html", markup))
    assert doc.text == "Model | Year\nAlexNet | 2012\nVGG | 2014"
