"""The built book in a real browser: headless Chromium, driven by Selenium, on the fast-mode build.

Every page of the table of contents is served from 127.0.0.1 and loaded; it must log no JavaScript error,
load every image and give each a text alternative, typeset all of its math, fetch nothing from another host,
and link only to pages and anchors that exist. On the VAE chapter the latent explorer is driven with the pointer and the keyboard, and
the digits it draws are compared with PyTorch's decoding of the same codes. Screenshots of key pages are
saved for a person to look at, in $VAE_LESSON_SCREENSHOT_DIR (default _build/screenshots).

The book is the one tests/conftest.py builds (fixture ``built_book``), shared with tests/book/test_book_build.py.
Needs Chromium, its driver and the selenium package; without them the tests are skipped, saying so.
"""

from __future__ import annotations

import functools
import html.parser
import json
import http.server
import os
import re
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from vae_lesson.infra import explorer

ROOT = Path(__file__).resolve().parents[2]
EXPLORER_PAGE = "notebooks/05_vae"
CONDITIONAL_EXPLORER_PAGE = "notebooks/07_cvae"  # the explorer of the conditional VAE, with a class menu
SCREENSHOT_PAGES = {"book/intro": "intro.png", "book/elbo": "elbo.png"}  # 05 is taken with the explorer in view
INSTALL = ("install Chromium and its driver (Debian: apt-get install chromium chromium-driver; `make test` does) "
           "and selenium (pip install -r requirements.txt)")
# A pixel drawn on the canvas is the decoded probability rounded to 8 bits; the decoders agree to 1e-5.
PIXEL_TOLERANCE = 0.5 / 255 + 1e-3
PHONE_WIDTH = 390  # CSS pixels: a common phone


def _toc_pages() -> list[str]:
    return ["book/intro", *re.findall(r"file:\s*(\S+)", (ROOT / "_toc.yml").read_text())]


def _screenshot_dir() -> Path:
    folder = Path(os.environ.get("VAE_LESSON_SCREENSHOT_DIR") or ROOT / "_build" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _first_program(*names: str) -> str | None:
    return next((shutil.which(name) for name in names if shutil.which(name)), None)


# Session scope, like built_book, so that a missing browser skips before the book is built.
@pytest.fixture(scope="session")
def _chromium():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip(f"selenium is not installed: {INSTALL}")
    # $VAE_LESSON_CHROMIUM and $VAE_LESSON_CHROMEDRIVER name other binaries, if needed.
    chromium = _first_program(os.environ.get("VAE_LESSON_CHROMIUM") or "chromium", "chromium-browser",
                              "google-chrome", "google-chrome-stable")
    driver_path = _first_program(os.environ.get("VAE_LESSON_CHROMEDRIVER") or "chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip(f"{'Chromium' if chromium is None else 'chromedriver'} was not found: {INSTALL}")
    drivers = []

    def start(phone_width: int | None = None):
        """A headless Chromium: a 1280 x 900 desktop window, or a phone of the given width (Chromium's
        mobile emulation: the page's viewport meta tag applies and scroll bars take no room)."""
        profile = tempfile.mkdtemp(prefix="vae-book-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,900",
                     "--force-device-scale-factor=1", f"--user-data-dir={profile}"):
            options.add_argument(flag)
        if phone_width is not None:
            options.add_experimental_option(
                "mobileEmulation", {"deviceMetrics": {"width": phone_width, "height": 844, "pixelRatio": 1.0}})
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # An explicit driver: Selenium would otherwise try to download one.
        driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
        driver.set_page_load_timeout(60)
        driver.set_script_timeout(60)
        drivers.append((driver, profile))
        return driver

    yield start
    for driver, profile in drivers:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def browser(_chromium):
    """Chromium in a 1280 x 900 desktop window."""
    return _chromium()


@pytest.fixture(scope="session")
def phone(_chromium):
    """Chromium as a 390 px wide phone."""
    return _chromium(PHONE_WIDTH)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(browser, built_book):
    """The built HTML served on 127.0.0.1 at an ephemeral port; yields the base URL (ending in /)."""
    handler = functools.partial(_QuietHandler, directory=str(built_book))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


# Runs in the page once it has loaded: waits for MathJax and for every image (lazy ones made eager),
# then reports what the test checks. Text is read from text nodes, so closed dropdowns count too;
# code, and what MathJax itself renders, are left out.
INSPECT_PAGE = r"""
const done = arguments[arguments.length - 1];
const images = Array.from(document.images);
images.forEach((img) => { if (img.loading === "lazy") img.loading = "eager"; });
const loaded = images.map((img) => img.complete ? Promise.resolve() :
  new Promise((resolve) => { img.addEventListener("load", resolve); img.addEventListener("error", resolve); }));
const typeset = (window.MathJax && MathJax.startup && MathJax.startup.promise) || Promise.resolve();
const timeout = new Promise((resolve) => setTimeout(resolve, 20000));
Promise.race([Promise.all([typeset, ...loaded]), timeout]).then(() => {
  const skip = "pre, code, script, style, textarea, noscript, mjx-container, .highlight";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const raw = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement && node.parentElement.closest(skip)) continue;
    const text = node.textContent;
    const at = text.search(/\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{/);
    if (at >= 0) raw.push(text.slice(Math.max(0, at - 40), at + 40));
  }
  done({
    mathjax: !!(window.MathJax && MathJax.startup),
    typesetMath: document.querySelectorAll("mjx-container").length,
    mathElements: document.querySelectorAll(".math").length,
    brokenImages: images.filter((img) => !(img.complete && img.naturalWidth > 0)).map((img) => img.currentSrc || img.src),
    // a figure's text alternative, for a reader who cannot see it: not missing, not its file name
    noAlt: images.filter((img) => img.closest("article") && !img.closest(".vae-explorer")
                         && !/[a-z]{3,}\s+[a-z]{2,}/i.test(img.alt || "")).map((img) => img.getAttribute("src").slice(-40)),
    nImages: images.length,
    rawMath: raw,
    links: Array.from(document.querySelectorAll("a[href]")).map((a) => a.href),
    resources: performance.getEntriesByType("resource").map((entry) => entry.name),
  });
});
"""


class _Anchors(html.parser.HTMLParser):
    """Collects the id (and a name) attributes of a page: the targets of #fragment links."""

    def __init__(self):
        super().__init__()
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key == "id" or (key == "name" and tag == "a"):
                self.ids.add(value)


def _check_links(links: dict, base: str) -> list[str]:
    """links: {absolute URL: page it appears on}. Fetches every same-origin target once; checks fragments."""
    problems, pages = [], {}
    for url, where in sorted(links.items()):
        if not url.startswith(base):
            continue  # another host (Colab, GitHub, a DOI): not this book's business offline
        target, _, fragment = url.partition("#")
        if target not in pages:
            try:
                with urllib.request.urlopen(target, timeout=10) as response:
                    body = response.read()
                    kind = response.headers.get_content_type()
                anchors = None
                if kind == "text/html":
                    parser = _Anchors()
                    parser.feed(body.decode("utf-8", "replace"))
                    anchors = parser.ids
                pages[target] = anchors
            except urllib.error.HTTPError as err:
                pages[target] = err
        found = pages[target]
        if isinstance(found, Exception):
            problems.append(f"{where}: link to {url[len(base):]} gives HTTP {found.code}")
        elif fragment and found is not None and urllib.parse.unquote(fragment) not in found:
            problems.append(f"{where}: link to {url[len(base):]}: no element with id {fragment!r} there")
    return problems


def _severe(driver) -> list[str]:
    """The console's errors since the last call. A browser asks for /favicon.ico by itself when a page names no
    icon; that request failing is not the page's error."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"
            and not re.match(r"\S+/favicon\.ico - Failed to load resource", entry["message"])]


def test_every_page_loads_with_images_math_and_working_links(browser, site):
    problems, links = [], {}
    _severe(browser)  # start from an empty console log
    for page in _toc_pages():
        browser.get(site + page + ".html")
        report = browser.execute_async_script(INSPECT_PAGE)
        problems += [f"{page}: console error: {message}" for message in _severe(browser)]
        problems += [f"{page}: image did not load: {src}" for src in report["brokenImages"]]
        problems += [f"{page}: raw math left in the text: ...{text}..." for text in report["rawMath"]]
        if report["mathElements"]:
            if not report["mathjax"] or report["typesetMath"] == 0:
                problems.append(f"{page}: {report['mathElements']} math elements but MathJax typeset nothing")
        problems += [f"{page}: fetched from another host: {url}" for url in report["resources"]
                     if not url.startswith(site) and not url.startswith("data:")]
        if page.startswith("notebooks/") and report["nImages"] == 0:
            problems.append(f"{page}: no image at all")
        problems += [f"{page}: an image without a text alternative (its alt is missing or a file name): {src}"
                     for src in report["noAlt"]]
        for url in report["links"]:
            links.setdefault(url, page)
        if page in SCREENSHOT_PAGES:
            browser.save_screenshot(str(_screenshot_dir() / SCREENSHOT_PAGES[page]))
    problems += _check_links(links, site)
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:60])


# Opens every folded cell and solution (their contents have no size while folded); a helper for the reports.
OPEN_FOLDED = r"""
document.querySelectorAll("details").forEach((details) => { details.open = true; });
document.querySelectorAll(".toggle-hidden").forEach((el) => el.classList.remove("toggle-hidden"));
const longest = (text) => text.split("\n").reduce((a, b) => (b.length > a.length ? b : a), "").trim();
"""
# With every solution and folded cell open: each code block (of a cell or of the text), printed output and display
# equation that is wider than its box, by its longest line (code, output) or its first characters (equations).
WIDE_AT_1280 = OPEN_FOLDED + r"""
const done = arguments[arguments.length - 1];
((window.MathJax && MathJax.startup && MathJax.startup.promise) || Promise.resolve()).then(() => {
  const wide = (el) => el.scrollWidth > el.clientWidth + 1;
  const code = Array.from(document.querySelectorAll("article pre")).filter(wide).map((pre) =>
    `${pre.closest(".cell_output") ? "printed output" : "code"}: ${longest(pre.textContent)}`);
  const equations = Array.from(document.querySelectorAll('article mjx-container[display="true"]')).filter(wide)
    .map((eq) => `equation: ${eq.textContent.slice(0, 60)}`);
  done({problems: code.concat(equations),
        cells: document.querySelectorAll("div.cell_input pre").length,
        text: document.querySelectorAll("article pre").length - document.querySelectorAll(".cell_input pre, " +
                                        ".cell_output pre").length,
        equations: document.querySelectorAll('article mjx-container[display="true"]').length});
});
"""


def test_nothing_scrolls_sideways_at_1280_px(browser, site):
    """Code (of the cells, and of the text: solutions, prose pages), printed output and equations fit the column
    of a 1280 px window, solutions and folded cells open."""
    assert browser.execute_script("return window.innerWidth") == 1280
    problems, n_cells, n_text, n_equations = [], 0, 0, 0
    for page in _toc_pages():
        browser.get(site + page + ".html")
        report = browser.execute_async_script(WIDE_AT_1280)
        problems += [f"{page}: {problem}" for problem in report["problems"]]
        n_cells += report["cells"]
        n_text += report["text"]
        n_equations += report["equations"]
    assert n_cells > 100 and n_text > 10 and n_equations > 50  # the check looked at the book's code and equations
    assert not problems, "wider than the page at 1280 px:\n" + "\n".join(problems)


def _shown_code(notebook: Path) -> list[str]:
    """The source of each code cell whose input the page shows (folded ones included), in order."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"
            and not {"remove-cell", "remove-input"} & set(cell.get("metadata", {}).get("tags", []))]


# Each shown code cell's text (the characters of its <pre>, which is what sphinx-copybutton copies: the text of
# a detached clone) and whether _static/code_lines.js split it into lines.
CELL_TEXTS = r"""
return Array.from(document.querySelectorAll("div.cell_input div.highlight > pre")).map((pre) =>
  [pre.textContent.replace(/\n$/, ""), pre.classList.contains("code-lines")]);
"""
COPY_CLICKED_PAGES = ("notebooks/01_autoencoder", "notebooks/05_vae")


def _click_copy_buttons(browser, site) -> list[str]:
    """Click every code cell's copy button on the page, as a reader does, and read the clipboard each time."""
    from selenium.webdriver import ActionChains
    from selenium.webdriver.common.by import By

    browser.execute_cdp_cmd("Browser.grantPermissions", {
        "origin": site.rstrip("/"), "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    browser.execute_script("document.querySelectorAll('details').forEach((d) => { d.open = true; });")
    read = ("const done = arguments[arguments.length - 1];"
            "navigator.clipboard.readText().then(done, (error) => done('clipboard error: ' + error));")
    copied = []
    for button in browser.find_elements(By.CSS_SELECTOR, "div.cell_input button.copybtn"):
        browser.execute_async_script("const done = arguments[arguments.length - 1];"
                                     "navigator.clipboard.writeText('(nothing copied)').then(done, done);")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
        ActionChains(browser).move_to_element(button).click().perform()
        copied.append(browser.execute_async_script(read))
    return copied


def test_the_copy_button_copies_each_code_cell_as_written(browser, site):
    """_static/code_lines.js rebuilds each code block's markup line by line (so that lines can wrap on a
    phone); the text of every cell must stay its source, character for character, and on two chapters the
    copy buttons are clicked and the clipboard read."""
    n_cells = 0
    for page in _toc_pages():
        if not page.startswith("notebooks/"):
            continue
        browser.get(site + page + ".html")
        texts = browser.execute_script(CELL_TEXTS)
        expected = [source.strip("\n") for source in _shown_code(ROOT / (page + ".ipynb"))]
        assert all(split for _, split in texts), f"{page}: not every code cell was split into lines"
        assert [text for text, _ in texts] == expected, f"{page}: a code cell's text is not its source"
        if page in COPY_CLICKED_PAGES:
            assert _click_copy_buttons(browser, site) == expected, f"{page}: a copy button copies something else"
        n_cells += len(texts)
    assert n_cells > 100


# Opens every folded cell and solution, then lists what makes a page unreadable on a phone: the page wider than
# the screen; a display equation wider than its box with no box of its own to scroll in (clipped), with its
# number drawn over it, or with its number beside it rather than under it; an inline formula that runs past the
# column with no box to scroll in (_static/math_fit.js gives the wide ones one); a table wider than the column
# that does not scroll in a wrapper of its own; a code block, or a printed output that is not a table, that
# scrolls sideways (_static/code_lines.js and phone.css wrap them), or a line of a printed table's output that
# is not one of its rows and runs past the box (it should wrap); a wrapped code line whose continuation does not
# start to the right of the line's first character; a line that starts with the full stop or comma that
# follows a formula (math_fit.js keeps them together); a formula, displayed or inline, that scrolls sideways
# (every one fits: the long ones are written on several lines or as two formulas, and math_fit.js sets the
# slightly wide ones smaller), or one set smaller than 90 % of the text's size.
PHONE_PROBLEMS = OPEN_FOLDED + r"""
window.dispatchEvent(new Event("resize"));  // what was folded is laid out now: math_fit.js measures it again
const width = document.documentElement.clientWidth;
const problems = [];
let wrapped = 0;
let tables = 0;
document.querySelectorAll("article pre").forEach((pre) => {
  const output = pre.closest(".cell_output");
  if (output && !pre.classList.contains("output-text")) return;  // coloured output: left as printed
  if (pre.classList.contains("output-table")) {  // its rows may scroll in its box; a sentence with them wraps
    tables += 1;
    const right = pre.getBoundingClientRect().left + pre.clientLeft + pre.clientWidth;
    pre.querySelectorAll(":scope > span:not(.output-row)").forEach((line) => {
      const text = document.createRange();  // the text's own boxes: a block's box would not show an overflow
      text.selectNodeContents(line);
      if (Array.from(text.getClientRects()).some((r) => r.right > right + 1))
        problems.push(
          `a sentence printed with a table runs past its box: ${longest(line.textContent).slice(0, 60)}`);
    });
  } else if (pre.scrollWidth > pre.clientWidth + 1)
    problems.push(`${output ? "printed output" : "code"} scrolls sideways: ${longest(pre.textContent).slice(0, 60)}`);
});
document.querySelectorAll("article pre.code-lines > .code-line").forEach((line) => {
  const range = document.createRange();
  range.setStart(line, line.firstChild && line.firstChild.classList &&
                 line.firstChild.classList.contains("code-indent") ? 1 : 0);
  range.setEnd(line, line.childNodes.length);
  const rects = Array.from(range.getClientRects()).filter((r) => r.width > 0);
  if (!rects.length) return;
  const later = rects.filter((r) => r.top >= rects[0].bottom - 1);
  if (later.length) wrapped += 1;
  if (later.some((r) => r.left <= rects[0].left + 1))
    problems.push(`a wrapped code line continues left of its start: ${line.textContent.trim().slice(0, 60)}`);
});
if (document.documentElement.scrollWidth > width + 1)
  problems.push(`the page is ${document.documentElement.scrollWidth} px wide on a ${width} px screen`);
function scroller(element, stop) {  // the element itself or the nearest ancestor below stop that scrolls sideways
  for (let el = element; el && el !== stop; el = el.parentElement) {
    const overflow = getComputedStyle(el).overflowX;
    if (overflow === "auto" || overflow === "scroll") return el;
  }
  return null;
}
const article = document.querySelector("article") || document.body;
let shrunk = 0;
document.querySelectorAll('mjx-container[display="true"]').forEach((eq) => {
  const math = eq.querySelector("mjx-math") || eq;
  const box = scroller(eq, article);
  const text = eq.textContent.slice(0, 50);
  if (math.getBoundingClientRect().width > eq.clientWidth + 1 && !box) problems.push(`equation clipped: ${text}`);
  const size = parseFloat(getComputedStyle(eq).fontSize), prose = parseFloat(getComputedStyle(eq.parentElement).fontSize);
  if (eq.dataset.fitSize !== undefined) {
    shrunk += 1;
    if (size < 0.9 * prose - 0.05) problems.push(`equation set at ${size} px, under 90 % of the text's ${prose}: ${text}`);
    if (eq.scrollWidth > eq.clientWidth + 1) problems.push(`equation set smaller still scrolls: ${text}`);
  } else if (eq.clientWidth && eq.scrollWidth > eq.clientWidth + 1)
    problems.push(`equation scrolls sideways (break it into lines with aligned, or shorten it): ${text}`);
  const number = eq.closest("div.math") && eq.closest("div.math").querySelector("span.eqno");
  if (number) {
    const n = number.getBoundingClientRect(), m = math.getBoundingClientRect(), b = eq.getBoundingClientRect();
    const left = Math.max(m.left, b.left), right = Math.min(m.right, b.right);
    if (n.left < right - 1 && n.right > left + 1 && n.top < m.bottom - 1 && n.bottom > m.top + 1)
      problems.push(`equation number ${number.textContent.trim()} drawn over its equation: ${text}`);
    else if (n.top < b.bottom - 1)  // phone.css puts it under the equation, which gets the whole column
      problems.push(`equation number ${number.textContent.trim()} takes room beside its equation: ${text}`);
  }
});
function columnRight(element) {  // the content edge of its nearest block (a paragraph, an exercise's box), or the article's
  let block = element.parentElement;
  while (block && block !== article && getComputedStyle(block).display.startsWith("inline")) block = block.parentElement;
  const edge = (el) => {
    const style = getComputedStyle(el);
    return el.getBoundingClientRect().right - parseFloat(style.paddingRight) - parseFloat(style.borderRightWidth);
  };
  return Math.min(edge(block || article), edge(article));
}
document.querySelectorAll('article mjx-container:not([display="true"])').forEach((formula) => {
  const box = scroller(formula, article);
  if (formula.getBoundingClientRect().right > columnRight(formula) + 1 && !box)
    problems.push(`inline formula runs past the column: ${formula.textContent.slice(0, 50)}`);
  else if (box && (box === formula || box === formula.parentElement) && box.scrollWidth > box.clientWidth + 1)
    problems.push(`inline formula scrolls sideways (write it as two formulas that part at = or +): ` +
                  formula.textContent.slice(0, 50));
  if (formula.dataset.fitSize !== undefined) {
    shrunk += 1;
    const size = parseFloat(getComputedStyle(formula).fontSize);
    const prose = parseFloat(getComputedStyle(formula.parentElement).fontSize);
    if (size < 0.9 * prose - 0.05)
      problems.push(`inline formula set at ${size} px, under 90 % of the text's ${prose}: ${formula.textContent.slice(0, 50)}`);
  }
});
let previous = null;  // a formula written as two (only white space between them): its parts share one size
document.querySelectorAll('article mjx-container:not([display="true"])').forEach((formula) => {
  const holder = formula.parentElement;
  const tail = holder.parentElement.classList.contains("math-tail");
  const gap = (tail ? holder.parentElement : holder).previousSibling;
  const part = previous && gap && gap.nodeType === Node.TEXT_NODE && !gap.nodeValue.trim() &&
    gap.previousSibling === previous.parentElement;
  if (part && !scroller(formula, article) && !scroller(previous, article)) {
    const sizes = [previous, formula].map((f) => getComputedStyle(f).fontSize);
    if (sizes[0] !== sizes[1])
      problems.push(`the parts of one formula are set at ${sizes.join(" and ")}: ${formula.textContent.slice(0, 50)}`);
  }
  previous = tail ? null : formula;
});
document.querySelectorAll("article table").forEach((table) => {
  if (table.getBoundingClientRect().right > width + 1 && !scroller(table.parentElement, article))
    problems.push(`table wider than the screen: ${table.textContent.trim().slice(0, 50)}`);
});
document.querySelectorAll('article .math-scroll, article .math-scroll-block, article mjx-container[display="true"]')
  .forEach((box) => {  // a formula's own scroll box must not cut off what sticks out of its line (limits, indices)
    const overflow = getComputedStyle(box).overflowX;
    if ((overflow === "auto" || overflow === "scroll") && box.scrollHeight > box.clientHeight + 1)
      problems.push(`formula cut off above or below in its scroll box: ${box.textContent.slice(0, 50)}`);
  });
document.querySelectorAll('article mjx-container:not([display="true"])').forEach((formula) => {
  const box = formula.parentElement, next = box.nextSibling;  // a formula's full stop or comma stays beside it
  if (!box.getClientRects().length || !next || next.nodeType !== Node.TEXT_NODE ||
      !/^[.,;:!?)\]]/.test(next.nodeValue)) return;
  const range = document.createRange();
  range.setStart(next, 0);
  range.setEnd(next, 1);
  if (range.getBoundingClientRect().top >= box.getBoundingClientRect().bottom - 1)
    problems.push(`a line starts with the punctuation after a formula: ${box.textContent.slice(0, 50)}`);
});
const stacked = document.querySelectorAll("article table.stack-on-phone");
stacked.forEach((table) => {  // a table of definitions stacks its rows (phone.css, table_labels.js): no sideways scroll
  const box = table.parentElement;
  if (box.scrollWidth > box.clientWidth + 1 || table.getBoundingClientRect().right > width + 1)
    problems.push(`a table that should stack on a phone scrolls sideways: ${table.textContent.trim().slice(0, 50)}`);
  if (!table.querySelector("td[data-label]"))
    problems.push("a stacking table's cells have no column labels (_static/table_labels.js did not run)");
});
return {problems: problems, wrapped: wrapped, tables: tables, shrunk: shrunk,
        codeLines: document.querySelectorAll("pre.code-lines").length,
        stacked: stacked.length, proseZoom: document.querySelectorAll("article figure img.figure-zoomable").length};
"""


def test_every_page_reads_on_a_phone(phone, site):
    problems, n_equations, n_wrapped, n_stacked, n_prose_zoom, n_tables, n_shrunk = [], 0, 0, 0, 0, 0, 0
    for page in _toc_pages():
        phone.get(site + page + ".html")
        assert phone.execute_script("return screen.width") == PHONE_WIDTH
        phone.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "((window.MathJax && MathJax.startup && MathJax.startup.promise) || Promise.resolve()).then(() => done());")
        n_equations += phone.execute_script('return document.querySelectorAll(\'mjx-container[display="true"]\').length')
        report = phone.execute_script(PHONE_PROBLEMS)
        problems += [f"{page}: {problem}" for problem in report["problems"]]
        n_wrapped += report["wrapped"]
        n_stacked += report["stacked"]
        n_prose_zoom += report["proseZoom"]
        n_tables += report["tables"]
        n_shrunk += report["shrunk"]
        if page.startswith("notebooks/") and report["codeLines"] == 0:
            problems.append(f"{page}: no code block was split into lines (_static/code_lines.js did not run)")
        if page == "book/elbo":
            phone.save_screenshot(str(_screenshot_dir() / "elbo_phone.png"))
    assert n_equations > 50  # the check saw the book's equations
    assert n_shrunk >= 30  # and formulas set a little smaller to fit the column (about 70 at 390 px)
    assert n_prose_zoom >= 2  # the drawn figures of the prose pages (intro, elbo) open at full size on a tap too
    assert n_stacked >= 7  # and the tables of definitions (intro, glossary 2, summary 2, teachers' guide, 05)
    assert n_tables >= 5  # and printed tables (04, 08, 09, 10, 12, ...)
    assert n_wrapped > 100  # and code lines that wrap
    assert not problems, f"{len(problems)} problem(s) at {PHONE_WIDTH} px:\n" + "\n".join(problems[:40])


ZOOM_PAGE = "notebooks/06_kl_term"  # a chapter of wide figures: panels in rows, small text once shrunk
ZOOM_STATE = r"""
const overlay = document.querySelector(".figure-zoom");
const big = overlay && overlay.querySelector("img");
return {open: !!overlay, width: big ? big.getBoundingClientRect().width : null,
        natural: big ? big.naturalWidth : null, src: big ? big.getAttribute("src") : null,
        scrolls: overlay ? overlay.querySelector(".figure-zoom-box").scrollWidth > window.innerWidth : null,
        zoomable: document.querySelectorAll("img.figure-zoomable").length,
        shrunk: Array.from(document.querySelectorAll("article .cell_output img"))
          .filter((img) => img.naturalWidth > 1.15 * img.clientWidth).length};
"""


def test_a_tapped_figure_opens_at_full_size_on_a_phone(phone, browser, site):
    """On a phone the column shrinks a chapter's figures to about half, and their text with them
    (_static/figure_zoom.js): a tap opens the figure over the page at its own size, which the back button,
    Escape and the close button close again. On a wide screen a click on a figure does nothing."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    phone.get(site + ZOOM_PAGE + ".html")
    state = phone.execute_script(ZOOM_STATE)
    assert state["shrunk"] >= 5 and state["zoomable"] == state["shrunk"], state
    figure = phone.find_elements(By.CSS_SELECTOR, "article .cell_output img.figure-zoomable")[1]
    phone.execute_script("arguments[0].scrollIntoView({block: 'center'})", figure)
    for how in ("back", "escape", "button"):
        figure.click()
        state = phone.execute_script(ZOOM_STATE)
        assert state["open"] and state["src"] == figure.get_attribute("src"), (how, state)
        assert state["width"] == state["natural"] and state["scrolls"], state  # its own size, wider than a phone
        if how == "back":
            phone.back()
        elif how == "escape":
            phone.switch_to.active_element.send_keys(Keys.ESCAPE)
        else:
            phone.find_element(By.CSS_SELECTOR, ".figure-zoom-close").click()
        assert not phone.execute_script(ZOOM_STATE)["open"], how
        assert phone.current_url == site + ZOOM_PAGE + ".html", how  # still on the chapter
    browser.get(site + ZOOM_PAGE + ".html")
    assert browser.execute_script(ZOOM_STATE)["zoomable"] == 0
    wide = browser.find_elements(By.CSS_SELECTOR, "article .cell_output img")[1]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", wide)
    wide.click()
    assert not browser.execute_script(ZOOM_STATE)["open"]


def test_a_solution_opens_wherever_its_title_is_clicked(browser, site):
    """The title of a folded solution links to its exercise; a click on that link must open the solution,
    not jump away (the book's _static/dropdowns.css)."""
    from selenium.webdriver import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page = site + "notebooks/09_loss_choice.html"
    browser.get(page)
    solution = browser.find_element(By.CSS_SELECTOR, "div.solution.dropdown")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", solution)
    content = solution.find_element(By.CSS_SELECTOR, "section")
    assert not content.is_displayed()
    link = solution.find_element(By.CSS_SELECTOR, ".admonition-title a")
    ActionChains(browser).move_to_element(link).click().perform()
    WebDriverWait(browser, 5).until(lambda driver: content.is_displayed())
    assert browser.current_url == page


# ---------------------------------------------------------------- the latent explorer


def _explorer_state(driver) -> dict:
    return driver.execute_script("""
        const box = document.querySelector(".vae-explorer");
        const canvas = box.querySelector(".vx-digit");
        const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        const size = canvas.width / 28;  // the centre of each enlarged image pixel (red channel)
        const pixels = [];
        for (let r = 0; r < 28; r++) for (let c = 0; c < 28; c++) {
          pixels.push(data[4 * (Math.floor((r + 0.5) * size) * canvas.width + Math.floor((c + 0.5) * size))]);
        }
        return {z: box.dataset.z, renders: Number(box.dataset.renders), mode: box.dataset.mode,
                label: box.dataset.label === undefined ? null : Number(box.dataset.label),
                text: box.querySelector(".vx-z").textContent, pixels: pixels};
    """)


def _wait_for_render(driver, after: int) -> dict:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        state = _explorer_state(driver)
        if state["renders"] > after:
            return state
        time.sleep(0.05)
    raise AssertionError("the explorer did not redraw after the input")


def _check_drawn_digit(state: dict, data: explorer.ExplorerData) -> np.ndarray:
    """The digit on the canvas is the PyTorch decoding of the z the widget reports; returns it in [0, 1]."""
    z = np.array([float(v) for v in state["z"].split()], dtype=np.float32)
    shown = re.fullmatch(r"z = \(([\u2212\d.]+), ([\u2212\d.]+)\)", state["text"])
    assert shown, f"the widget shows {state['text']!r}"
    assert np.allclose([float(v.replace("\u2212", "-")) for v in shown.groups()], z, atol=0.0051), (state["text"], z)
    drawn = np.array(state["pixels"], dtype=np.float64) / 255
    expected = data.decode(torch.from_numpy(z[None]), state["label"])[0].double().numpy()
    difference = np.abs(drawn - expected).max()
    assert difference <= PIXEL_TOLERANCE, f"at z = {z}: the drawn digit differs from PyTorch's by {difference:.4f}"
    return drawn


def _point_at(driver, box, target) -> dict:
    """Move the pointer over the explorer's plot to the latent point ``target``; the state once it has redrawn."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    scatter = box.find_element(By.CSS_SELECTOR, ".vx-scatter")
    point = driver.execute_script("return arguments[0].vaeExplorer.toCanvas(arguments[1], arguments[2])",
                                  box, float(target[0]), float(target[1]))
    before = _explorer_state(driver)["renders"]
    ActionChains(driver).move_to_element_with_offset(
        scatter, int(round(point["x"] - scatter.size["width"] / 2)),
        int(round(point["y"] - scatter.size["height"] / 2))).perform()
    return _wait_for_render(driver, before)


def test_the_latent_explorer_draws_what_pytorch_decodes(browser, site, built_book):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    data = explorer.ExplorerData.from_payload(
        explorer.read_payload((built_book / f"{EXPLORER_PAGE}.html").read_text()))
    browser.get(site + EXPLORER_PAGE + ".html")
    _severe(browser)
    box = browser.find_element(By.CSS_SELECTOR, ".vae-explorer")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
    start = _explorer_state(browser)
    assert start["mode"] == "explore" and start["renders"] >= 1, "the explorer did not start"

    # Of the class centroids and four points near the corners of the view, the two whose decodings differ most
    # (a model trained for seconds, as in the fast build, draws much the same blur everywhere else).
    present = [c for c, centroid in enumerate(data.centroids) if centroid is not None]
    candidates = [tuple(float(v) for v in data.centroids[c]) for c in present]
    candidates += [(sx * 0.8 * data.extent, sy * 0.8 * data.extent) for sx in (-1, 1) for sy in (-1, 1)]
    decoded = data.decode(torch.tensor(candidates))
    gap = (decoded[:, None] - decoded[None]).abs().amax(-1)
    a, b = divmod(int(gap.argmax()), len(candidates))
    step = 2 * data.extent / 300  # about one screen pixel in z
    drawn = []
    for target in (candidates[a], candidates[b]):
        state = _point_at(browser, box, target)
        z = [float(v) for v in state["z"].split()]
        assert np.allclose(z, target, atol=2 * step), f"the pointer at {target} decoded z = {z}"
        drawn.append(_check_drawn_digit(state, data))
    change = np.abs(drawn[0] - drawn[1]).max()
    assert change > 4 / 255 + 2 * PIXEL_TOLERANCE, f"moving the pointer changed no pixel by more than {change:.3f}"
    browser.save_screenshot(str(_screenshot_dir() / "05_vae_explorer.png"))

    # The walk, from one class centroid to another (the two most different), to t = 0.30 by keyboard.
    a, b = divmod(int(gap[:len(present), :len(present)].argmax()), len(present))
    box.find_element(By.CSS_SELECTOR, "input[value=walk]").click()
    Select(box.find_elements(By.CSS_SELECTOR, ".vx-interp select")[0]).select_by_value(str(present[a]))
    Select(box.find_elements(By.CSS_SELECTOR, ".vx-interp select")[1]).select_by_value(str(present[b]))
    slider = box.find_element(By.CSS_SELECTOR, ".vx-interp input[type=range]")
    slider.send_keys(*[Keys.ARROW_RIGHT] * 30)
    start_z, end_z = np.array(candidates[a], np.float64), np.array(candidates[b], np.float64)
    expected_z = (0.7 * start_z + 0.3 * end_z).astype(np.float32)
    deadline = time.monotonic() + 10
    while True:  # the widget redraws once per animation frame, so wait for the last key's frame
        state = _explorer_state(browser)
        z = np.array([float(v) for v in state["z"].split()])
        if np.allclose(z, expected_z, atol=1e-6) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert state["mode"] == "walk"
    assert np.allclose(z, expected_z, atol=1e-6), f"t = 0.3 of the walk should decode {expected_z}, got {z}"
    _check_drawn_digit(state, data)
    browser.save_screenshot(str(_screenshot_dir() / "05_vae_explorer_walk.png"))
    assert not _severe(browser), "the explorer logged errors"


def test_the_conditional_explorer_draws_the_chosen_digit_as_pytorch_decodes_it(browser, site, built_book):
    """Chapter 07's explorer: the class menu changes what the decoder draws at the same code, and every drawing is
    PyTorch's decoding of the reported code with the chosen label."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    data = explorer.ExplorerData.from_payload(
        explorer.read_payload((built_book / f"{CONDITIONAL_EXPLORER_PAGE}.html").read_text()))
    assert data.is_conditional and data.condition == tuple(str(c) for c in range(10))
    browser.get(site + CONDITIONAL_EXPLORER_PAGE + ".html")
    _severe(browser)
    box = browser.find_element(By.CSS_SELECTOR, ".vae-explorer")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
    state = _explorer_state(browser)
    assert state["renders"] >= 1 and state["label"] == data.initial_label, "the explorer did not start on its label"
    _check_drawn_digit(state, data)
    # the same code, drawn as the two digits whose decodings differ most there
    z = np.array([float(v) for v in state["z"].split()], dtype=np.float32)
    images = data.decode(torch.from_numpy(np.repeat(z[None], 10, 0)), torch.arange(10))
    gap = (images[:, None] - images[None]).abs().amax(-1)
    a, b = divmod(int(gap.argmax()), 10)
    menu = Select(box.find_element(By.CSS_SELECTOR, ".vx-label select"))
    drawn, code = [], state["z"]
    for label in (a, b):
        before = _explorer_state(browser)["renders"]
        menu.select_by_value(str(label))
        state = _wait_for_render(browser, before)
        assert state["label"] == label and state["z"] == code, "the menu changed the code, not only the digit"
        drawn.append(_check_drawn_digit(state, data))
    change = np.abs(drawn[0] - drawn[1]).max()
    assert change > 4 / 255 + 2 * PIXEL_TOLERANCE, f"changing the digit changed no pixel by more than {change:.3f}"
    # the pointer still picks the code, with the chosen digit kept
    target = (0.5 * data.extent, -0.5 * data.extent)
    state = _point_at(browser, box, target)
    assert state["label"] == b
    assert np.allclose([float(v) for v in state["z"].split()], target, atol=4 * data.extent / 300)
    _check_drawn_digit(state, data)
    browser.save_screenshot(str(_screenshot_dir() / "07_cvae_explorer.png"))
    assert not _severe(browser), "the explorer logged errors"


def test_the_explorer_works_from_the_files_without_a_server(browser, built_book):
    """Opening the built page straight from disk (file://, no network at all) still runs the explorer."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser.get((built_book / f"{EXPLORER_PAGE}.html").resolve().as_uri())
    box = browser.find_element(By.CSS_SELECTOR, ".vae-explorer")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
    before = _explorer_state(browser)["renders"]
    assert before >= 1, "the explorer did not start from file://"
    scatter = box.find_element(By.CSS_SELECTOR, ".vx-scatter")
    ActionChains(browser).move_to_element_with_offset(scatter, 30, -40).perform()
    state = _wait_for_render(browser, before)
    data = explorer.ExplorerData.from_payload(
        explorer.read_payload((built_book / f"{EXPLORER_PAGE}.html").read_text()))
    _check_drawn_digit(state, data)
