"""Check pages of the built site the way a reader's browser shows them (Chromium, Playwright).

The tests (tests/test_browser.py) run these checks on every page of the build; the
checkers' own tests (tests/test_browser_checks.py) run them on crafted broken pages to
prove that each one catches what it is for. Every check is a function that returns a list
of problems (strings; an empty list means the page passed), so that both can call it.

The browser is the system's Chromium (``GPTNOTES_CHROMIUM``, else ``chromium`` on the
PATH), never one downloaded by a test tool. It runs with every host name but the local
server unresolvable, so a page that tries to load something from the internet fails here
instead of quietly fetching it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    # Nothing but the local server (an IP address, never resolved) can be reached.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]

# axe-core's tags for the success criteria of WCAG 2.0, 2.1 and 2.2, levels A and AA.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
# Run again in dark mode: the rule whose result depends on the palette. (Links in text are
# underlined in both palettes, so link-in-text-block cannot fail in one only.)
DARK_RULES = ["color-contrast"]
AXE_SOURCE = Path(__file__).resolve().parent.parent / "tests" / "vendor" / "axe.min.js"

LIGHT, DARK = "default", "slate"  # Material's names of the two palettes


class BrowserMissing(RuntimeError):
    """No Chromium to run the browser checks with."""


def chromium_executable() -> str:
    """The Chromium (or Chrome) binary to drive: ``$GPTNOTES_CHROMIUM``, else ``chromium``."""
    chosen = os.environ.get("GPTNOTES_CHROMIUM")
    if chosen:
        if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
            raise BrowserMissing(f"GPTNOTES_CHROMIUM={chosen!r} is not an executable file")
        return chosen
    found = shutil.which("chromium")
    if not found:
        raise BrowserMissing(
            "the browser tests need Chromium and none was found: run scripts/ensure-chromium "
            "(or `sudo apt-get install chromium`), or set GPTNOTES_CHROMIUM to a Chromium or "
            "Chrome binary. Test tools never download a browser here."
        )
    return found


def launch(playwright):
    """Start the headless browser (one per test session)."""
    return playwright.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_ARGS, headless=True)


# --------------------------------------------------------------------------------------
# A local server for a site directory
# --------------------------------------------------------------------------------------

class _QuietHandler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".woff2": "font/woff2", ".svg": "image/svg+xml",
                      ".js": "text/javascript", ".json": "application/json"}

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a browser that drops a connection is not a failure of the site


@contextlib.contextmanager
def serve(directory: str | Path) -> Iterator[str]:
    """Serve ``directory`` read-only on 127.0.0.1 (a free port); yields the base URL."""
    server = _Server(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def html_pages(site: str | Path) -> list[str]:
    """Addresses (relative to the site root) of the site's pages, 404.html excepted."""
    site = Path(site)
    out = []
    for p in sorted(site.rglob("*.html")):
        rel = p.relative_to(site).as_posix()
        if rel == "404.html":
            continue
        out.append(rel[: -len("index.html")] if rel == "index.html" or rel.endswith("/index.html") else rel)
    return out


# --------------------------------------------------------------------------------------
# Opening a page and recording what happens
# --------------------------------------------------------------------------------------

# A reader at 1280 px in the light palette who has asked their system for less motion: the
# figure viewer opens and closes at once (docs/assets/stylesheets/extra.css) instead of
# fading for half a second each way (tests/test_browser_checks.py checks both).
CONTEXT_OPTIONS = {"color_scheme": "light", "viewport": {"width": 1280, "height": 900}, "reduced_motion": "reduce"}
_TEXT_TYPES = {".html", ".css", ".js", ".mjs", ".json", ".svg", ".xml", ".txt", ".map"}


SEARCH_INDEX = "search/search_index.json"  # loaded by every page; weighed apart (it grows with the site)


def resource_kind(url: str) -> str:
    """What a response is, from its address: html, css, js, font, image, search index, other."""
    path = urlsplit(url).path
    if path.endswith("/" + SEARCH_INDEX) or path == "/" + SEARCH_INDEX:
        return "search index"
    ext = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else "html"
    return {"html": "html", "css": "css", "js": "js", "mjs": "js", "woff2": "font", "woff": "font", "ttf": "font",
            "svg": "image", "png": "image", "jpg": "image", "jpeg": "image", "webp": "image", "gif": "image",
            "ico": "image"}.get(ext, "other")


@dataclass(frozen=True)
class Weight:
    """The cost of reading one page with an empty cache (see :func:`open_page`): every
    response the browser received while the page loaded and a reader scrolled to its end."""

    path: str
    requests: int
    transferred: int  # bytes received from the local server (uncompressed), headers included
    gzip_estimate: int | None = None  # the same over a server that gzips text (GitHub Pages)
    search_index: int = 0  # bytes of the search index among ``transferred``
    kinds: dict = field(default_factory=dict)  # bytes by kind of resource (:func:`resource_kind`)
    resources: list = field(default_factory=list)  # every response, largest first: [address, bytes]

    @property
    def budgeted(self) -> int:
        """What the page budget counts: everything but the search index."""
        return self.transferred - self.search_index

    def line(self) -> str:
        est = f", about {self.gzip_estimate / 1e6:.2f} MB gzipped" if self.gzip_estimate is not None else ""
        index = f" + search index {self.search_index:,}" if self.search_index else ""
        return (f"{self.path or '/'}: {self.requests} requests, {self.budgeted:,} bytes "
                f"({self.budgeted / 1e6:.2f} MB){index}{est}")

    def largest_line(self, n: int = 6) -> str:
        """The ``n`` largest responses but the search index."""
        counted = [(u, b) for u, b in self.resources if u != SEARCH_INDEX]
        return ", ".join(f"{u} {b / 1e3:,.0f} KB" for u, b in counted[:n])


def budget_problems(weight: Weight, limit: int) -> list[str]:
    """The page's bytes (:attr:`Weight.budgeted`) over ``limit``, with what weighs most."""
    if weight.budgeted <= limit:
        return []
    kinds = ", ".join(f"{k} {b / 1e3:,.0f} KB" for k, b in sorted(weight.kinds.items(), key=lambda kv: -kv[1])
                      if k != "search index")
    return [(f"{weight.path or '/'} receives {weight.budgeted:,} bytes in {weight.requests} requests, over its "
             f"budget of {limit:,} (the search index, {weight.search_index:,} bytes, not counted). "
             f"By kind: {kinds}. Largest: {weight.largest_line()}")]


@functools.lru_cache(maxsize=512)
def _file_size(path: Path, gzipped: bool) -> int:
    import gzip

    data = path.read_bytes()
    return len(gzip.compress(data, compresslevel=6, mtime=0)) if gzipped else len(data)


def _compressed_size(site: Path, url: str, base: str) -> int:
    if not url.startswith(base):
        return 0
    rel = unquote(urlsplit(url[len(base):]).path)
    target = site / rel
    if rel == "" or rel.endswith("/"):
        target = target / "index.html"
    if not target.is_file():
        return 0
    return _file_size(target, target.suffix in _TEXT_TYPES)

@dataclass
class Visit:
    """One page, opened in the browser, with everything it logged and requested."""

    url: str
    base: str
    page: object  # playwright Page
    cdp: object  # CDP session of the page
    html: str = ""  # the HTML the server sent (before any script ran)
    console_errors: list[str] = field(default_factory=list)
    console_warnings: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    http_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    finished: list = field(default_factory=list)  # playwright Request objects that completed
    search_meta: str = ""  # the result count the last search() showed, for messages
    read: int | None = None  # how many of ``finished`` a reader's full read had loaded
    problems_loading: list[str] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.url[len(self.base):] if self.url.startswith(self.base) else self.url

    def weight(self, site: str | Path | None = None) -> "Weight":
        """What reading the page cost: requests, and bytes as the browser received them
        (the responses finished when the reader had scrolled to the end, :attr:`read`).

        With ``site`` (the directory served), also an estimate of the bytes over GitHub
        Pages, which compresses text (HTML, CSS, JavaScript, JSON, SVG) with gzip.
        """
        transferred = compressed = index = 0
        kinds: dict[str, int] = {}
        each: list[tuple[str, int]] = []
        requests = self.finished[: self.read] if self.read is not None else self.finished
        for req in requests:
            try:
                sizes = req.sizes()
            except Exception:  # noqa: BLE001 - a request whose sizes are gone counts as 0
                continue
            body = sizes["responseBodySize"]
            if body == 0:  # Chromium reports 0 for a worker's script: take the server's word
                response = req.response()
                body = int((response.headers.get("content-length") or 0) if response else 0)
            size = body + sizes["responseHeadersSize"]
            transferred += size
            kind = resource_kind(req.url)
            kinds[kind] = kinds.get(kind, 0) + size
            index += size if kind == "search index" else 0
            each.append((req.url.removeprefix(self.base).split("?")[0] or "/", size))
            if site is not None:
                compressed += _compressed_size(Path(site), req.url, self.base) + sizes["responseHeadersSize"]
        return Weight(self.path, len(requests), transferred, compressed if site is not None else None,
                      index, kinds, [list(e) for e in sorted(each, key=lambda e: -e[1])])


# A reader reads the page to its end: scroll down, two screens at a time (Chromium starts
# loading a lazy image 1250 px or more before it comes into view), letting the page draw at
# each step so that lazy images start loading; then back to the top.
_READ_THROUGH = """async () => {
  const frame = () => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)));
  const step = 2 * window.innerHeight;
  for (let y = step; y < document.documentElement.scrollHeight + step; y += step) {
    window.scrollTo(0, y);
    await frame();
  }
  window.scrollTo(0, 0);
}"""

_PREPARE = """async () => {
  // Lazy images below the fold (and the other palette's twin, hidden) load only when
  // shown: load them all now, so that a missing one is a failed request here.
  const images = [...document.images];
  images.forEach(img => { img.loading = "eager"; });
  await Promise.all(images.map(img => img.complete ? null : new Promise(done => {
    img.addEventListener("load", done, {once: true});
    img.addEventListener("error", done, {once: true});
  })));
  await document.fonts.ready;
}"""

def open_page(context, base: str, path: str, *, cold: bool = True, timeout_s: float = 60.0) -> Visit:
    """Open ``base + path`` in a new tab of ``context`` and wait until it has settled.

    ``cold``: bypass the browser's cache, so that the transferred bytes are those of a
    first visit. Once loaded, the page is read to its end (scrolled to the bottom, so that
    the lazy images a reader would see load) and what it had received then is its weight
    (:attr:`Visit.read`: the light palette's figures, not the dark twins nor the images in
    collapsed boxes). Then every image is made to load (the twins, collapsed ones), so that
    a missing one is a failed request. Settled means: loaded, every image and font loaded or
    failed, and no request in flight for a moment.
    """
    page = context.new_page()
    visit = Visit(url=base + path, base=base, page=page, cdp=context.new_cdp_session(page))
    inflight: set = set()
    last_activity = [time.monotonic()]

    def started(req):
        visit.requests.append(req.url)
        inflight.add(req)
        last_activity[0] = time.monotonic()

    def finished(req):
        inflight.discard(req)
        visit.finished.append(req)
        last_activity[0] = time.monotonic()

    def failed(req):
        inflight.discard(req)
        visit.failed_requests.append(f"{req.url} ({req.failure})")
        last_activity[0] = time.monotonic()

    def response(resp):
        if resp.status >= 400:
            visit.http_errors.append(f"{resp.url} (HTTP {resp.status})")

    def console(msg):
        text = msg.text
        loc = msg.location or {}
        if loc.get("url"):
            text += f" [{loc['url']}:{loc.get('lineNumber', 0)}]"
        if msg.type == "error":
            visit.console_errors.append(text)
        elif msg.type == "warning":
            visit.console_warnings.append(text)

    page.on("request", started)
    page.on("requestfinished", finished)
    page.on("requestfailed", failed)
    page.on("response", response)
    page.on("console", console)
    page.on("pageerror", lambda err: visit.page_errors.append(str(err)))
    if cold:
        visit.cdp.send("Network.enable")
        visit.cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})

    deadline = time.monotonic() + timeout_s

    def settle(what: str) -> None:
        while inflight or time.monotonic() - last_activity[0] < 0.1:
            if time.monotonic() > deadline:
                visit.problems_loading.append(f"{what}: requests still in flight: {sorted(r.url for r in inflight)}")
                return
            page.wait_for_timeout(25)

    response_ = page.goto(visit.url, wait_until="load", timeout=timeout_s * 1000)
    visit.html = response_.text() if response_ is not None else ""
    page.evaluate(_READ_THROUGH)
    settle("reading the page to its end")
    visit.read = len(visit.finished)
    page.evaluate(_PREPARE)
    settle("loading every image")
    return visit


# --------------------------------------------------------------------------------------
# The checks: each returns a list of problems
# --------------------------------------------------------------------------------------

def console_problems(visit: Visit) -> list[str]:
    """Errors logged to the console, and exceptions nobody caught."""
    return ([f"console error: {t}" for t in visit.console_errors]
            + [f"uncaught error: {t}" for t in visit.page_errors]
            + visit.problems_loading)


def request_problems(visit: Visit) -> list[str]:
    """Failed requests, HTTP errors, and any request to a host other than the local server."""
    out = [f"failed request: {t}" for t in visit.failed_requests]
    out += [f"HTTP error: {t}" for t in visit.http_errors]
    origin = urlsplit(visit.base).netloc
    for url in visit.requests:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about"):
            continue
        if parts.netloc != origin:
            out.append(f"request to another host: {url}")
    return out


_MATH_JS = r"""() => {
  const problems = [];
  document.querySelectorAll(".arithmatex").forEach((el, i) => {
    if (!el.querySelector(".katex")) {
      problems.push(`formula ${i + 1} was not rendered by KaTeX: ${el.textContent.trim().slice(0, 80)}`);
    }
  });
  document.querySelectorAll(".katex-error").forEach(el => {
    problems.push(`KaTeX error: ${(el.getAttribute("title") || el.textContent).slice(0, 160)}`);
  });
  // Raw delimiters in the text a reader sees (code shows TeX on purpose; KaTeX keeps the
  // source in its MathML annotation).
  const skip = "script, style, noscript, template, pre, code, kbd, samp, textarea, .katex";
  const delimiters = ["\\(", "\\)", "\\[", "\\]", "$$"];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest(skip)) continue;
    const text = node.nodeValue;
    for (const d of delimiters.filter(d => text.includes(d))) {
      problems.push(`raw maths delimiter ${d} in the text: "${text.trim().slice(0, 80)}"`);
    }
  }
  return problems;
}"""


def math_problems(visit: Visit) -> list[str]:
    """Every formula typeset (by KaTeX, at build time), no KaTeX error, no raw ``\\(``, ``\\[``
    or ``$$`` left."""
    return visit.page.evaluate(_MATH_JS)


# Scripts that would draw maths or diagrams in the reader's browser: KaTeX (katex.min.js,
# its auto-render extension, any katex-render.js) and Mermaid (entry file and chunks). None
# may load: formulas and diagrams come drawn in the HTML, at build time (sitetools/maths.py,
# sitetools/diagrams.py); KaTeX's stylesheet and fonts are allowed.
_RENDER_SCRIPT = re.compile(r"(katex|auto-render|mermaid)[^/]*\.m?js$|/mermaid[^/]*/.*\.m?js$", re.IGNORECASE)


def render_script_problems(visit: Visit) -> list[str]:
    """No maths or diagram script: every formula and diagram is drawn at build time."""
    found = []
    for url in visit.requests:
        path = urlsplit(url).path
        if _RENDER_SCRIPT.search(path) and path not in found:
            found.append(path)
    if not found:
        return []
    named = ", ".join(p.rsplit("/", 1)[-1] for p in found[:4]) + (f" and {len(found) - 4} more" if len(found) > 4 else "")
    return [f"the page loads {len(found)} maths or diagram script(s): {named} (draw them at build time)"]


# Diagrams drawn at build time (sitetools/diagrams.py): each fence becomes a container
# (DIAGRAM_CONTAINER) holding one inline <svg role="img"> with an accessible name.
DIAGRAM_CONTAINER = ".gn-diagram"
_INLINE_DIAGRAMS_JS = """(container) => [...document.querySelectorAll("article " + container)].map((div, i) => {
  const svg = div.querySelector("svg");
  if (!svg) return {index: i + 1, svg: false};
  const r = svg.getBoundingClientRect();
  const shown = div.getClientRects().length > 0 && (!div.checkVisibility || div.checkVisibility());
  return {index: i + 1, svg: true, role: svg.getAttribute("role"), shown,
          name: (svg.getAttribute("aria-label") || (svg.querySelector("title") || {}).textContent || "").trim(),
          width: r.width, height: r.height, texts: svg.querySelectorAll("text").length};
})"""


def diagram_problems(visit: Visit) -> list[str]:
    """Every diagram (drawn at build time, sitetools/diagrams.py) is an ``<svg role="img">``
    with a name, text, and (where shown) a non-zero size. (Its legibility is a reading check:
    :func:`reading`.)"""
    out = []
    for d in visit.page.evaluate(_INLINE_DIAGRAMS_JS, DIAGRAM_CONTAINER):
        where = f"diagram {d['index']}"
        if not d["svg"]:
            out.append(f"{where} has no <svg>")
            continue
        if d["role"] != "img" or not d["name"]:
            out.append(f"{where}: its <svg> needs role=\"img\" and a name (aria-label), has role={d['role']!r}")
        if not d["texts"]:
            out.append(f"{where} has no text")
        if d["shown"] and (d["width"] <= 0 or d["height"] <= 0):
            out.append(f"{where}'s <svg> has size {d['width']}x{d['height']}")
    return out


_COPY_JS = """() => {
  const blocks = [...document.querySelectorAll(".md-content pre")]
    .filter(pre => pre.querySelector("code") && !pre.closest(".linenodiv"));
  return blocks.map((pre, i) => {
    const button = pre.querySelector(".md-clipboard, button[data-md-type='copy']");
    return {
      index: i + 1,
      button: !!button,
      target: button ? (button.getAttribute("data-clipboard-target") || "") : "",
      text: pre.querySelector("code").innerText,
      start: pre.textContent.trim().slice(0, 60),
    };
  });
}"""


def copy_button_problems(visit: Visit) -> list[str]:
    """Every code block of the content has Material's copy button, aimed at that block."""
    out = []
    for block in visit.page.evaluate(_COPY_JS):
        if not block["button"]:
            out.append(f"code block {block['index']} has no copy button: {block['start']!r}")
            continue
        target = block["target"]
        if target:
            # clipboard.js copies the text of the element the button names: it must be this block.
            copied = visit.page.evaluate("sel => { const el = document.querySelector(sel); return el ? el.innerText : null }", target)
            if copied != block["text"]:
                out.append(f"code block {block['index']}: its copy button copies {target!r}, another block")
    return out


_IMAGES_JS = """() => [...document.images]
  .filter(img => !(img.complete && img.naturalWidth > 0))
  .map(img => img.getAttribute("src"))"""


def image_problems(visit: Visit) -> list[str]:
    """Every image of the page loaded (the hidden palette twin included)."""
    return [f"image did not load: {src}" for src in visit.page.evaluate(_IMAGES_JS)]


# -- accessibility ------------------------------------------------------------------------

@dataclass(frozen=True)
class Allowed:
    """An axe violation accepted on purpose: ``rule`` on elements whose axe target matches
    ``target`` (a regular expression), with the reason."""

    rule: str
    target: str
    why: str

    def matches(self, rule: str, target: str) -> bool:
        return rule == self.rule and re.search(self.target, target) is not None


_AXE_JS = """async ([tags, rules, skip]) => {
  const options = rules
    ? {runOnly: {type: "rule", values: rules}, resultTypes: ["violations"]}
    : {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"],
       rules: Object.fromEntries(skip.map(r => [r, {enabled: false}]))};
  const result = await axe.run(document, options);
  return result.violations.flatMap(v => v.nodes.map(n => ({
    rule: v.id, impact: v.impact, help: v.help, target: n.target.join(" "),
    summary: (n.failureSummary || "").replace(/\\s+/g, " ").slice(0, 300),
  })));
}"""


@functools.lru_cache(maxsize=1)
def _axe_source() -> str:
    return AXE_SOURCE.read_text(encoding="utf-8")


def axe_problems(visit: Visit, *, rules: list[str] | None = None, allowed: Iterable[Allowed] = (),
                 label: str = "", skip: Iterable[str] = ()) -> list[str]:
    """Run axe-core for WCAG 2 A/AA (or only ``rules``; never the ``skip`` rules);
    violations not ``allowed`` are problems."""
    page = visit.page
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.add_script_tag(content=_axe_source())
    out = []
    for v in page.evaluate(_AXE_JS, [WCAG_TAGS, rules, list(skip)]):
        if any(a.matches(v["rule"], v["target"]) for a in allowed):
            continue
        out.append(f"{label}{v['rule']} ({v['impact']}) at {v['target']}: {v['help']}. {v['summary']}")
    return out


# -- the light/dark toggle ---------------------------------------------------------------

_SCHEME_JS = "() => document.body.getAttribute('data-md-color-scheme')"
_FIGURES_JS = """() => [...document.images]
  .filter(img => /#only-(light|dark)$/.test(img.getAttribute("src") || ""))
  .map(img => ({
    src: img.getAttribute("src"),
    shown: img.getClientRects().length > 0 && getComputedStyle(img).display !== "none",
    loaded: img.complete && img.naturalWidth > 0,
  }))"""


def scheme(visit: Visit) -> str | None:
    return visit.page.evaluate(_SCHEME_JS)


def toggle_scheme(visit: Visit) -> str | None:
    """Click the header's palette toggle; returns the new scheme (None if it did not change)."""
    page = visit.page
    before = scheme(visit)
    toggle = page.locator("form[data-md-component='palette'] label.md-header__button:not([hidden])")
    if toggle.count() != 1:
        return None
    toggle.click()
    try:
        page.wait_for_function(f"() => document.body.getAttribute('data-md-color-scheme') !== {before!r}", timeout=10_000)
    except Exception:  # noqa: BLE001 - reported by the caller
        return None
    return scheme(visit)


def figure_problems(visit: Visit) -> list[str]:
    """In the current scheme, each figure shows its own palette's SVG and hides the other."""
    current = scheme(visit)
    want = {LIGHT: "light", DARK: "dark"}.get(current)
    if want is None:
        return [f"unknown colour scheme {current!r}"]
    out = []
    for fig in visit.page.evaluate(_FIGURES_JS):
        kind = "light" if fig["src"].endswith("#only-light") else "dark"
        if kind == want and not fig["shown"]:
            out.append(f"{current}: the {kind} figure {fig['src']} is hidden")
        if kind != want and fig["shown"]:
            out.append(f"{current}: the {kind} figure {fig['src']} is shown in the {want} scheme")
        if kind == want and not fig["loaded"]:
            out.append(f"{current}: the figure {fig['src']} did not load")
        if kind == "dark" and not re.search(r"-dark\.svg#only-dark$", fig["src"]):
            out.append(f"the dark figure {fig['src']} is not a -dark.svg")
    return out


# -- search ----------------------------------------------------------------------------

_SEARCH_META = ".md-search-result__meta"
_SEARCH_DONE_JS = """() => {
  const meta = document.querySelector(".md-search-result__meta");
  const text = meta ? meta.textContent.trim() : "";
  return text !== "" && !/initializing|type to start/i.test(text);
}"""
_SEARCH_RESULTS_JS = """() => ({
  meta: document.querySelector(".md-search-result__meta").textContent.trim(),
  items: document.querySelectorAll(".md-search-result__item").length,
  links: [...document.querySelectorAll(".md-search-result__item > a.md-search-result__link")]
    .map(a => a.href),
})"""


def search(visit: Visit, query: str, timeout_s: float = 10.0, until: Iterable[str] = ()) -> list[str]:
    """Type ``query`` into the search box; returns the result pages (paths from the root).

    The answer is read once the result count is shown and that many results are listed, or
    every page of ``until`` is (or ``timeout_s`` has passed); the count is kept in
    ``visit.search_meta`` for messages.
    """
    until = list(until)
    page = visit.page
    box = page.locator("input.md-search__input")
    box.click()
    box.fill("")
    box.press("End")
    page.wait_for_function("() => /type to start|initializing/i.test(document.querySelector('.md-search-result__meta').textContent)",
                           timeout=timeout_s * 1000)
    box.fill(query)
    box.press("End")  # Material searches on key events
    page.wait_for_function(_SEARCH_DONE_JS, timeout=timeout_s * 1000)
    result = page.evaluate(_SEARCH_RESULTS_JS)
    m = re.match(r"(\d+)", result["meta"])
    wanted = int(m[1]) if m else 0
    # Material shows the first results and adds more each time the list is scrolled down to
    # its end: leave the end, then reach it again. On a busy machine that takes a while: keep
    # going until all are there or timeout_s has passed.
    def listed() -> list[str]:
        paths = []
        for href in result["links"]:
            p = href.split("#")[0].split("?")[0]
            p = p[len(visit.base):] if p.startswith(visit.base) else p
            if p not in paths:
                paths.append(p)
        return paths

    wrap = page.locator(".md-search__scrollwrap")
    deadline = time.monotonic() + timeout_s
    while (result["items"] < wanted and not (until and set(until) <= set(listed()))
           and time.monotonic() < deadline):
        wrap.evaluate("el => { el.scrollTop = 0 }")  # two steps: two scroll events
        wrap.evaluate("el => { el.scrollTop = el.scrollHeight }")
        page.wait_for_timeout(50)
        result = page.evaluate(_SEARCH_RESULTS_JS)
    visit.search_meta = f"{result['meta']!r}, {result['items']} listed"
    return listed()


def search_problems(visit: Visit, cases: Iterable[tuple[str, str]]) -> list[str]:
    """For each ``(query, page path)``: searching ``query`` lists that page."""
    wanted: dict[str, list[str]] = {}
    for query, path in cases:
        wanted.setdefault(query, []).append(path)
    out = []
    for query, paths in wanted.items():  # one search per query, and one more if it misses
        found: list[str] = []
        for attempt in range(2):  # on a loaded machine the result list can lag behind the box
            try:
                found = search(visit, query, timeout_s=10.0 * (attempt + 1), until=paths)
            except Exception as err:  # noqa: BLE001 - a search that never answers is the problem
                found, visit.search_meta = [], f"no answer: {err}"
            if all(p in found for p in paths):
                break
        out += [f"searching {query!r} does not find {p or '/'} (found: {found}; result count {visit.search_meta})"
                for p in paths if p not in found]
    visit.page.keyboard.press("Escape")  # close the search again
    return out


# --------------------------------------------------------------------------------------
# Everything about one page
# --------------------------------------------------------------------------------------

@dataclass
class Audit:
    """The problems of one page, by check, and what loading it cost."""

    path: str
    problems: dict[str, list[str]]
    weight: Weight
    console_warnings: list[str]
    requested: list[str]  # every URL the page requested
    screenshots: list[Path] = field(default_factory=list)
    reading: "Reading | None" = None  # what a reader sees at 1280 px
    phone_reading: "Reading | None" = None  # ... and at 390 px (``phone=True``)

    def failed(self) -> dict[str, list[str]]:
        return {check: found for check, found in self.problems.items() if found}

    def report(self) -> str:
        lines = [f"{self.path or '/'}: {len(self.failed())} check(s) failed: {', '.join(self.failed())}"]
        for check, found in self.failed().items():
            lines.append(f"  {check}:")
            lines += [f"    - {p}" for p in found]
        return "\n".join(lines)


def audit(context, base: str, path: str, *, site: str | Path | None = None, allowed: Iterable[Allowed] = (),
          screenshot: Path | None = None, contrast: bool = True, concept: bool = False,
          phone: bool = False) -> Audit:
    """Open one page in a fresh ``context`` (made with :data:`CONTEXT_OPTIONS`) and run
    every check on it, in both palettes, in one load.

    Light (the default): loading, requests, no maths or diagram script, maths, diagrams,
    copy buttons, images, axe (WCAG 2 A/AA), figures. Then the header's toggle must switch
    to dark, where the figures must switch to their dark twins; and back. Colour contrast
    (axe's slowest rule, and one that depends on the theme's colour for each kind of
    element rather than on the page's words) is checked in both palettes when ``contrast``
    is true, else in neither. ``screenshot`` (a path without suffix) saves
    ``<name>-light.png`` and ``<name>-dark.png`` (and ``<name>-phone.png``). Reading comfort
    at 1280 px (:func:`reading_problems`; ``concept``: hold the page to the core budget),
    figures opening full-screen, and on the home page the start link. ``phone``: then the
    same page, narrowed to a phone's screen (:func:`phone_problems`), as check "phone".
    """
    allowed = list(allowed)
    visit = open_page(context, base, path)
    try:
        weight = visit.weight(site)
        found: dict[str, list[str]] = {}
        found["scripts"] = render_script_problems(visit)
        found["maths"] = math_problems(visit)
        found["diagrams"] = diagram_problems(visit)
        found["copy buttons"] = copy_button_problems(visit)
        found["images"] = image_problems(visit)
        read = reading(visit, DESKTOP)
        found["reading"] = reading_problems(read, concept=concept, code=not path.startswith("api/"))
        if path == "":
            found["reading"] += start_link_problems(visit)
        found["lightbox"] = lightbox_problems(visit)
        found["accessibility"] = axe_problems(visit, allowed=allowed, label="light: ",
                                              skip=() if contrast else DARK_RULES)
        palette = found["light/dark"] = []
        shots: list[Path] = []
        start = scheme(visit)
        if start != LIGHT:
            palette.append(f"the page opened in scheme {start!r}, not the light {LIGHT!r}")
        palette += figure_problems(visit)
        if screenshot is not None:
            shots.append(_screenshot(visit, screenshot, "light"))
        if toggle_scheme(visit) != DARK:
            palette.append(f"the toggle did not switch to the dark scheme (now {scheme(visit)!r})")
        else:
            palette += figure_problems(visit)
            if contrast:
                found["accessibility"] += axe_problems(visit, rules=DARK_RULES, allowed=allowed, label="dark: ")
            if screenshot is not None:
                shots.append(_screenshot(visit, screenshot, "dark"))
            if toggle_scheme(visit) != LIGHT:
                palette.append(f"the toggle did not switch back to the light scheme (now {scheme(visit)!r})")
            else:
                palette += figure_problems(visit)
        phone_read = None
        if phone:
            as_phone(visit)
            phone_read, found["phone"] = phone_problems(visit)
            if screenshot is not None:
                shots.append(_screenshot(visit, screenshot, "phone"))
        # Last, so that they include whatever the interactions above caused.
        found["console"] = console_problems(visit)
        found["requests"] = request_problems(visit)
        return Audit(visit.path, found, weight, list(visit.console_warnings), list(visit.requests), shots, read,
                     phone_read)
    finally:
        visit.page.close()


def _screenshot(visit: Visit, stem: Path, palette: str) -> Path:
    out = stem.with_name(f"{stem.name}-{palette}.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    visit.page.screenshot(path=str(out), full_page=True, animations="disabled")
    return out


# --------------------------------------------------------------------------------------
# Reading comfort: what a reader sees without expanding anything, code that scrolls
# sideways, figure text too small to read
# --------------------------------------------------------------------------------------

# Code blocks: the scrolling element is Material's ``pre > code``. Figures: the smallest
# text of an SVG figure as the reader sees it, in CSS px: its font size in the SVG's user
# units times the rendered width over the viewBox width.
_READING_JS = r"""async () => {
  const article = document.querySelector("article") || document.body;
  // The content of a closed <details> keeps its boxes in current Chromium (it is hidden with
  // content-visibility), so boxes alone do not say "visible": checkVisibility() does.
  const shown = el => el.getClientRects().length > 0 && (!el.checkVisibility || el.checkVisibility());
  const inPre = n => n.parentElement && n.parentElement.closest("pre, .headerlink, .gn-stamp, .katex-mathml");
  // 1. What is visible before anything is expanded.
  let words = 0;
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (inPre(n) || !n.parentElement || !shown(n.parentElement)) continue;
    words += (n.textContent.match(/[^\s]+/g) || []).length;
  }
  const programs = [...article.querySelectorAll("div.language-python pre")].filter(shown).length;
  const closedDetails = [...article.querySelectorAll("details")].filter(d => !d.open);
  const closed = closedDetails.map(d => ({
    classes: d.className,
    title: (d.querySelector("summary") || {}).textContent || "",
  }));
  const openDetails = [...article.querySelectorAll("details.misconception")].filter(d => d.open)
    .map(d => (d.querySelector("summary") || {}).textContent || "");
  // 2. Open every collapsed block and show every tab, then measure code and figures.
  closedDetails.forEach(d => { d.open = true; });
  const style = document.createElement("style");
  style.textContent = ".tabbed-block { display: block !important; }";
  document.head.appendChild(style);
  const overflowing = [];
  for (const code of article.querySelectorAll("pre > code")) {
    if (!shown(code)) continue;
    if (code.scrollWidth > code.clientWidth + 1) {
      const first = code.textContent.split("\n").reduce((a, b) => b.length > a.length ? b : a, "");
      overflowing.push({by: code.scrollWidth - code.clientWidth, line: first.slice(0, 100)});
    }
  }
  const figures = [];
  for (const img of article.querySelectorAll("img")) {
    if (!shown(img) || !/\.svg(#|$)/.test(img.getAttribute("src") || "")) continue;
    const svg = new DOMParser().parseFromString(await (await fetch(img.src)).text(), "image/svg+xml");
    const root = svg.documentElement;
    const vb = (root.getAttribute("viewBox") || "").split(/[\s,]+/).map(Number);
    const vbw = vb.length === 4 ? vb[2] : parseFloat(root.getAttribute("width"));
    let smallest = Infinity;
    for (const t of svg.querySelectorAll("text")) {
      const m = /font-size:\s*([\d.]+)/.exec(t.getAttribute("style") || "") || [null, t.getAttribute("font-size")];
      const size = parseFloat(m[1]);
      if (size > 0 && t.textContent.trim()) smallest = Math.min(smallest, size);
    }
    if (smallest === Infinity) continue;
    const width = img.getBoundingClientRect().width;
    figures.push({src: img.getAttribute("src"), px: smallest * width / vbw, width});
  }
  // Diagrams drawn at build time: inline SVGs with text (icons have none). Their smallest
  // text as shown: its font size times the SVG's scale on screen.
  const diagrams = [];
  [...article.querySelectorAll("svg")].filter(svg => svg.querySelector("text")).forEach((svg, i) => {
    if (!shown(svg)) return;
    let smallest = Infinity;
    for (const t of svg.querySelectorAll("text")) {
      if (!t.textContent.trim()) continue;
      const m = t.getScreenCTM();
      const size = parseFloat(getComputedStyle(t).fontSize) * (m ? Math.hypot(m.a, m.b) : 1);
      if (size > 0) smallest = Math.min(smallest, size);
    }
    if (smallest === Infinity) return;
    const box = svg.getBoundingClientRect();
    diagrams.push({diagram: i + 1, px: smallest, width: box.width,
                   room: (svg.parentElement || article).clientWidth});
  });
  closedDetails.forEach(d => { d.open = false; });
  style.remove();
  // 3. The page as a whole must not scroll sideways (a wide table scrolls in its own box).
  const pageOverflow = Math.max(0, document.documentElement.scrollWidth - window.innerWidth);
  const fixedBoxes = [...article.querySelectorAll(".admonition.misconception")].length;
  return {words, programs, closed, openMisconceptions: openDetails, overflowing, figures, pageOverflow,
          fixedBoxes, diagrams};
}"""


@dataclass
class Reading:
    """What one page offers a reader at one width (see :func:`reading`)."""

    path: str
    width: int
    core_words: int                 # words of prose visible without expanding anything
    core_programs: int              # Python blocks visible without expanding anything
    collapsed: list[dict]           # each closed <details>: classes and title
    open_misconceptions: list[str]  # misconception boxes that are open on arrival
    overflowing: list[dict]         # code blocks that scroll sideways (collapsed ones opened)
    figures: list[dict]             # each SVG figure: src, smallest text in CSS px, width
    page_overflow: int = 0          # how far the whole page scrolls sideways, in CSS px
    fixed_boxes: int = 0            # misconception boxes that cannot be collapsed (!!!)
    diagrams: list[dict] = field(default_factory=list)  # each diagram: smallest text px, width, room

    @property
    def smallest_figure_text(self) -> float | None:
        return min((f["px"] for f in self.figures), default=None)


def reading(visit: Visit, width: int) -> Reading:
    """Measure what a reader sees on an open page (its viewport ``width`` wide)."""
    r = visit.page.evaluate(_READING_JS)
    return Reading(visit.path, width, r["words"], r["programs"], r["closed"], r["openMisconceptions"],
                   r["overflowing"], r["figures"], r["pageOverflow"], r["fixedBoxes"], r["diagrams"])


DESKTOP, PHONE = 1280, 390
# At 1280 px (both sidebars shown) Material's content column is 688 CSS px wide.
MIN_FIGURE_TEXT_PX = 11.0
# A diagram (inline SVG, drawn at build time): its smallest text at least MIN_FIGURE_TEXT_PX
# at every width, phones included, and no wider than the column.
# A concept page's core: what a reader sees without expanding anything.
CORE_WORDS = 1600
CORE_PROGRAMS = 5


def reading_problems(r: Reading, *, concept: bool, code: bool = True) -> list[str]:
    """What makes a page hard to read at its width (``r.width``).

    At every width: misconception boxes collapsed on arrival (and collapsible), the page
    itself never wider than the screen, each diagram no wider than its column and its text
    at least :data:`MIN_FIGURE_TEXT_PX`. At 1280 px also: no code block scrolls sideways,
    the smallest figure text at least :data:`MIN_FIGURE_TEXT_PX`, and, on a concept page
    (``concept``), a core of at most :data:`CORE_WORDS` words and :data:`CORE_PROGRAMS`
    programs. ``code=False`` (the API pages, whose source listings show the package's own
    lines) leaves the width of code blocks out.
    """
    out = [f"a misconception box is open on arrival: {t.strip()!r}" for t in r.open_misconceptions]
    if r.fixed_boxes:
        out.append(f"{r.fixed_boxes} misconception box(es) cannot be collapsed (use '??? misconception')")
    if r.page_overflow > 1:
        out.append(f"the page scrolls sideways by {r.page_overflow} px at {r.width} px wide")
    out += [f"diagram {d['diagram']} shows text of {d['px']:.1f} px at {r.width} px (at least {MIN_FIGURE_TEXT_PX})"
            for d in r.diagrams if d["px"] < MIN_FIGURE_TEXT_PX - 0.05]
    out += [f"diagram {d['diagram']} is {d['width']:.0f} px wide at {r.width} px, wider than its column "
            f"({d['room']} px): it scrolls sideways (draw it narrower)" for d in r.diagrams if d["width"] > d["room"] + 1]
    if r.width >= DESKTOP:
        out += [f"a code block scrolls sideways by {o['by']} px at {r.width} px: {o['line']!r}"
                for o in r.overflowing if code]
        out += [f"figure {f['src']} shows text of {f['px']:.1f} px at {r.width} px (at least {MIN_FIGURE_TEXT_PX})"
                for f in r.figures if f["px"] < MIN_FIGURE_TEXT_PX]
        if concept and r.core_words > CORE_WORDS:
            out.append(f"the core (what shows without expanding) has {r.core_words} words, over {CORE_WORDS}")
        if concept and r.core_programs > CORE_PROGRAMS:
            out.append(f"the core shows {r.core_programs} programs, over {CORE_PROGRAMS}")
    return out


_LIGHTBOX_OPEN_JS = """() => {
  const img = document.querySelector(".glightbox-container .gslide.current img");
  if (!img) return null;
  const r = img.getBoundingClientRect();
  const box = document.querySelector(".glightbox-container").getBoundingClientRect();
  return {src: img.getAttribute("src"), width: r.width, height: r.height,
          naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,
          covers: box.width >= window.innerWidth - 1 && box.height >= window.innerHeight - 1,
          vw: window.innerWidth, vh: window.innerHeight};
}"""


# Each figure of the article: its src, whether a lightbox link holds it, whether it is visible
# (as Playwright means it: rendered, e.g. not in a closed <details>, with a box of some size,
# not visibility: hidden).
_LIGHTBOX_FIGURES_JS = """() => [...document.querySelectorAll('article img.gn-figure')].map(img => {
  const r = img.getBoundingClientRect();
  return {src: img.getAttribute('src'), link: !!img.closest('a.glightbox'),
          visible: img.checkVisibility() && r.width > 0 && r.height > 0
                   && getComputedStyle(img).visibility !== 'hidden'};
})"""


def lightbox_problems(visit: Visit) -> list[str]:
    """Each figure opens full-screen when clicked (or tapped), and closes with Escape.

    Checks the first figure shown in the current palette, and that every figure is a
    lightbox link."""
    page = visit.page
    figures = page.evaluate(_LIGHTBOX_FIGURES_JS)  # one round trip for all of them
    if not figures:
        return []
    out = [f"figure {f['src']} is not a lightbox link" for f in figures if not f["link"]]
    shown = [n for n, f in enumerate(figures) if f["visible"]]
    if not shown:  # every figure sits in a collapsed box: open the first one's
        palette = page.evaluate("() => document.body.getAttribute('data-md-color-scheme')")
        twin = "#only-dark" if palette == DARK else "#only-light"
        boxed = [n for n, f in enumerate(figures) if (f["src"] or "").endswith(twin)]
        if boxed:
            page.evaluate("n => { const i = document.querySelectorAll('article img.gn-figure')[n];"
                          " window.__gnOpened = []; for (let d = i.closest('details'); d;"
                          " d = d.parentElement.closest('details')) if (!d.open) { d.open = true;"
                          " window.__gnOpened.push(d); } }", boxed[0])
            figures = page.evaluate(_LIGHTBOX_FIGURES_JS)
        shown = [n for n in boxed if figures[n]["visible"]]
    if not shown:
        return out + ["no figure is visible in this palette"]
    target = page.locator("article img.gn-figure").nth(shown[0])
    src = (figures[shown[0]]["src"] or "").split("#")[0]
    target.scroll_into_view_if_needed()
    target.click()
    state = None
    for _ in range(80):
        state = page.evaluate(_LIGHTBOX_OPEN_JS)
        if state and state["width"] > 0:
            break
        page.wait_for_timeout(25)
    if not state or state["width"] <= 0:
        return out + [f"clicking figure {src} opened no full-screen view"]
    if state["src"].split("#")[0].rsplit("/", 1)[-1] != src.rsplit("/", 1)[-1]:
        out.append(f"the full-screen view shows {state['src']}, not {src}")
    # Full-screen: the viewer covers the screen, and the figure is shown at least at its
    # natural size, or as large as the screen allows (then pinch or the zoom button enlarge it).
    full = (state["width"] >= min(state["naturalWidth"], 0.9 * state["vw"]) - 1
            or state["height"] >= min(state["naturalHeight"], 0.9 * state["vh"]) - 1)
    if not state["covers"] or not full:
        out.append(f"the full-screen view of {src} shows it at {state['width']:.0f}x{state['height']:.0f} px "
                   f"(natural {state['naturalWidth']}x{state['naturalHeight']}) on a {state['vw']}x{state['vh']} screen")
    page.keyboard.press("Escape")
    for _ in range(80):
        if not page.evaluate("() => !!document.querySelector('.glightbox-container')"):
            break
        page.wait_for_timeout(25)
    else:
        out.append("Escape did not close the full-screen view")
    # close again the boxes opened to show the figure (the page as the reader left it)
    page.evaluate("() => { (window.__gnOpened || []).forEach(d => { d.open = false; }); window.__gnOpened = []; }")
    return out


START_LINK = "#gn-start-here"


def start_link_problems(visit: Visit, target: str = "gpt-in-one-page/") -> list[str]:
    """The home page's "Start here" link is on the first screen and leads to chapter 0."""
    info = visit.page.evaluate("""(sel) => {
      const a = document.querySelector(sel);
      if (!a) return null;
      const r = a.getBoundingClientRect();
      return {href: a.href, top: r.top + window.scrollY, bottom: r.bottom + window.scrollY,
              visible: r.width > 0 && r.height > 0, vh: window.innerHeight, text: a.textContent.trim()};
    }""", START_LINK)
    if info is None:
        return [f"no start link ({START_LINK})"]
    out = []
    if not info["visible"] or info["bottom"] > info["vh"]:
        out.append(f"the start link is not on the first screen (bottom at {info['bottom']:.0f} px of {info['vh']})")
    if not info["href"].split("#")[0].endswith("/" + target):
        out.append(f"the start link leads to {info['href']}, not to {target}")
    if "start" not in info["text"].lower():
        out.append(f"the start link reads {info['text']!r}")
    return out


PHONE_VIEWPORT = {"width": PHONE, "height": 844}
PHONE_OPTIONS = {**CONTEXT_OPTIONS, "viewport": PHONE_VIEWPORT, "has_touch": True}


def as_phone(visit: Visit) -> None:
    """Make an open page a phone's: its viewport 390 px wide, touch input, back at the top.
    (The same load as at 1280 px: a reader who narrows the window gets the same layout as
    one who opens the page on a phone; Material's layout depends on the width alone.)"""
    visit.cdp.send("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
    visit.page.set_viewport_size(PHONE_VIEWPORT)
    visit.page.evaluate("() => window.scrollTo(0, 0)")


def phone_problems(visit: Visit) -> tuple[Reading, list[str]]:
    """What a phone reader meets on an open page 390 px wide (:func:`as_phone`, or a
    context made with :data:`PHONE_OPTIONS`): :func:`reading_problems` at that width, the
    start link on the home page, figures opening full-screen on a tap. Code blocks may
    scroll sideways here; what they show is recorded in the reading."""
    read = reading(visit, PHONE)
    found = reading_problems(read, concept=False)
    if visit.path == "":
        found += start_link_problems(visit)
    found += lightbox_problems(visit)
    return read, found


def phone_audit(context, base: str, path: str, *, screenshot: Path | None = None) -> tuple[Reading, list[str]]:
    """Open one page in ``context`` (made with :data:`PHONE_OPTIONS`, 390 px wide) and check
    it as :func:`phone_problems` does. (The page tests check phones within :func:`audit`.)"""
    visit = open_page(context, base, path, cold=False)
    try:
        read, found = phone_problems(visit)
        if screenshot is not None:
            _screenshot(visit, screenshot, "phone")
        return read, found
    finally:
        visit.page.close()
