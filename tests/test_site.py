"""The book as a static website (scripts/build_site.py), opened in a real headless browser.

The site is built into a temporary folder and every page is opened in headless Chromium (selenium driving the
system's chromedriver; on Debian `apt-get install chromium chromium-driver`) with name resolution switched off, so
that any request to the network fails. Each page must load; its math must be typeset by the bundled MathJax with no
TeX error and no raw delimiter left in the text; each image must load; each internal link must reach a file and an
anchor that exist; prev/next must walk the chapters in order; and nothing may come from outside the site. Skipped
when the site builder (pip install -e '.[site]') or the browser is missing. Run alone: pytest tests/test_site.py
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
ARXIV = re.compile(r"arXiv:(\d{4}\.\d{4,5})")


def _load_build_site():
    spec = importlib.util.spec_from_file_location("build_site", ROOT / "scripts" / "build_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _markdown(nb: Path) -> str:
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def _image_outputs(nb: Path) -> int:
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    outputs = [o for c in cells for o in c.get("outputs", [])]
    return sum(any(k.startswith("image/") for k in o.get("data", {})) for o in outputs)


def test_references_list_every_cited_arxiv_id_once():
    cited = {m for nb in NOTEBOOKS for m in ARXIV.findall(_markdown(nb))}
    listed = ARXIV.findall((ROOT / "site" / "references.md").read_text(encoding="utf-8"))
    assert cited, "no arXiv citation found in the chapters"
    assert sorted(set(listed)) == sorted(listed), "an arXiv ID is listed twice on the references page"
    assert cited <= set(listed), (
        f"cited in a chapter but missing from site/references.md: {sorted(cited - set(listed))}"
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    build_site = _load_build_site()
    missing = build_site.missing_builder()
    if missing:
        pytest.skip(f"site builder not installed ({', '.join(missing)}): pip install -e '.[site]'")
    out = tmp_path_factory.mktemp("site") / "_site"
    build_site.build(out)
    return out


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: pip install -e '.[site]'")
    chromium = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip("headless Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    options.add_argument("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost")  # no network from the pages
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.ids.update(v for k, v in attrs if k in ("id", "name") and v)


@functools.cache
def _ids(path: Path) -> frozenset[str]:
    """The id (and name) attributes of an HTML file, the anchors a link may point to."""
    parser = _Ids()
    parser.feed(path.read_text(encoding="utf-8"))
    return frozenset(parser.ids)


PAGE_STATE = """
const done = arguments[arguments.length - 1];
const started = window.MathJax && MathJax.startup ? MathJax.startup.promise : Promise.reject('MathJax did not start');
const ready = document.querySelector('script[src*="mathjax"]') ? started : Promise.resolve();  // pages without math
ready.then(() => {
  const main = document.querySelector('article') || document.body;
  const prose = main.cloneNode(true);
  prose.querySelectorAll('pre, code, mjx-container, script, style').forEach(e => e.remove());
  done({
    title: document.title,
    math: main.querySelectorAll('.math').length,
    typeset: main.querySelectorAll('mjx-container').length,
    untypeset: [...main.querySelectorAll('.math')].filter(m => !m.querySelector('mjx-container'))
      .map(m => m.textContent.slice(0, 80)),
    // TeX errors: MathJax draws a syntax error as merror, an undefined command as red text
    errors: [...main.querySelectorAll('mjx-assistive-mml merror, mjx-assistive-mml mtext[mathcolor=red]')]
      .map(e => e.textContent),
    prose: prose.textContent,
    images: [...document.images].map(i => [i.src, i.complete && i.naturalWidth > 0]),
    outputImages: main.querySelectorAll('.cell_output img').length,
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    fetched: performance.getEntriesByType('resource').map(r => r.name)
      .concat([...document.querySelectorAll('script[src]')].map(s => s.src))
      .concat([...document.querySelectorAll('link[rel=stylesheet]')].map(l => l.href)),
    next: (document.querySelector('a.next-page') || {}).href || null,
    prev: (document.querySelector('a.prev-page') || {}).href || null,
  });
}, e => done({error: String(e)}));
"""


def _path(url: str) -> Path:
    return Path(unquote(urlsplit(url).path))


ORDER = ["index"] + [f"chapters/{nb.stem}" for nb in NOTEBOOKS] + ["references"]


@pytest.mark.parametrize("page", ORDER)
def test_page_in_browser(browser, site, page):
    html = site / f"{page}.html"
    assert html.is_file(), f"{page}.html was not built"
    browser.get(html.as_uri())
    state = browser.execute_async_script(PAGE_STATE)
    assert "error" not in state, state.get("error")
    assert state["title"], "the page has no title"

    # Math: every math node typeset by MathJax, no TeX error, no delimiter or TeX command left in the prose.
    assert state["untypeset"] == [], f"math not typeset: {state['untypeset'][:3]}"
    assert state["errors"] == [], f"MathJax errors: {state['errors'][:3]}"
    assert state["typeset"] >= state["math"]
    leftovers = re.findall(r"\$[^$\n]{1,60}\$|\\[()\[\]]|\\[A-Za-z]{2,}", state["prose"])
    assert leftovers == [], f"raw TeX in the rendered text: {leftovers[:5]}"
    if page.startswith("chapters/"):
        nb = ROOT / f"{page}.ipynb"
        if "$" in _markdown(nb):
            assert state["typeset"] > 0, "the chapter has math but none was typeset"
        assert state["outputImages"] == _image_outputs(nb), "not every image output of the notebook is on the page"

    # Images, offline: every image decoded, every resource from the site's own folder.
    assert [src for src, ok in state["images"] if not ok] == [], "images that did not load"
    outside = [url for url in state["fetched"] if not urlsplit(url).scheme == "file"]
    assert outside == [], f"resources fetched from outside the site: {outside[:5]}"
    assert all(_path(url).resolve().is_relative_to(site.resolve()) for url in state["fetched"])

    # Internal links: the file exists inside the site, and so does the anchor.
    for url in state["links"]:
        if urlsplit(url).scheme != "file":
            continue
        target = _path(url)
        assert target.resolve().is_relative_to(site.resolve()), f"link leaves the site: {url}"
        assert target.is_file(), f"broken link: {url}"
        fragment = unquote(urlsplit(url).fragment)
        if fragment and target.suffix == ".html":
            assert fragment in _ids(target), f"missing anchor: {url}"

    # prev/next walk index -> chapters in order -> references.
    i = ORDER.index(page)
    walk = [
        _path(url).resolve().relative_to(site.resolve()).as_posix() if url else None
        for url in (state["prev"], state["next"])
    ]
    expected = [f"{ORDER[i - 1]}.html" if i > 0 else None, f"{ORDER[i + 1]}.html" if i + 1 < len(ORDER) else None]
    assert walk == expected, "prev/next links out of order"


# a script, image, stylesheet or font whose address starts with http:, https: or //
ONLINE = re.compile(
    r"""<(?:script|img|link|iframe)\b[^>]*\b(?:src|href)=["']?(?:https?:)?//"""
    r"""|(?:url\(|@import\s)\s*["']?(?:https?:)?//"""
)


def test_no_page_or_stylesheet_refers_to_the_network(site):
    files = [*site.rglob("*.html"), *site.rglob("*.css")]
    online = [f"{f.relative_to(site)}: {m[:80]}" for f in files for m in ONLINE.findall(f.read_text(encoding="utf-8"))]
    assert online == [], f"assets loaded from the network: {online[:5]}"


def test_every_chapter_is_built_and_the_search_finds_one(browser, site):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    assert sorted(p.stem for p in (site / "chapters").glob("*.html")) == [nb.stem for nb in NOTEBOOKS]
    browser.get((site / "search.html").as_uri() + "?q=sampler")
    hits = WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#search-results li a"))
    assert any("/chapters/" in a.get_attribute("href") for a in hits)
