"""Check the links and the static structure of a built site, offline.

MkDocs' strict build validates the links written in Markdown; this reads the final HTML,
so it also covers raw HTML, templates, generated pages (misconceptions, API pages) and the
search index. For every HTML file of the site:

- every internal reference resolves to a file of the site: ``href`` (links, stylesheets,
  icons), ``src`` (images, scripts, frames, media), ``srcset``, ``poster``;
- every ``#anchor`` of a link to an HTML page exists on that page (an element ``id``, or
  the ``name`` of an ``<a>``), and no ``id`` appears twice on a page (a link to it would
  land on the first one);
- nothing is loaded from another host: a script, stylesheet, image, font, icon or frame
  with an ``http(s)://`` or ``//`` address is a problem. Links a reader may click to
  another site (``<a href="https://...">``) are allowed, listed, and never fetched;
- every image has a non-empty ``alt``;
- headings are in order: exactly one ``<h1>``, and going down no level is skipped
  (``h2`` then ``h4`` is a problem; ``h4`` then ``h2`` is fine).

The sitemap's addresses and the search index's locations (MkDocs' or Zensical's) must resolve too (a search
result is a link a reader clicks).

Run it on a build: ``python -m sitetools.linkcheck site/`` (exit status 1 on problems).
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urljoin, urlsplit

_BASE = "http://site.invalid/"  # stands for the site's root while resolving relative URLs
_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.I)
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)
# <link rel=...> values that load something into the page (others, such as canonical or
# alternate, only name an address).
_LOADING_RELS = {"stylesheet", "icon", "shortcut", "apple-touch-icon", "preload", "modulepreload",
                 "prefetch", "manifest", "mask-icon"}
# (tag, attribute) pairs whose URL the browser fetches while showing the page.
_RESOURCE_ATTRS = {
    ("img", "src"), ("script", "src"), ("iframe", "src"), ("frame", "src"), ("embed", "src"),
    ("source", "src"), ("audio", "src"), ("video", "src"), ("track", "src"), ("input", "src"),
    ("video", "poster"), ("object", "data"),
}
_SRCSET_TAGS = {"img", "source"}
_HEADING = re.compile(r"^h([1-6])$")


@dataclass
class Ref:
    """One URL found in a page."""

    page: str  # the page's path in the site, e.g. "concepts/softmax/index.html"
    tag: str
    attr: str
    url: str
    line: int
    loads: bool  # fetched when the page is shown (False: a link the reader may follow)

    def where(self) -> str:
        return f"{self.page}:{self.line} <{self.tag} {self.attr}={self.url!r}>"


@dataclass
class PageInfo:
    path: str
    ids: list[str] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    refs: list[Ref] = field(default_factory=list)
    headings: list[tuple[int, int, str]] = field(default_factory=list)  # (level, line, text)
    images_without_alt: list[tuple[int, str]] = field(default_factory=list)  # (line, src)


class _PageParser(HTMLParser):
    def __init__(self, path: str):
        super().__init__(convert_charrefs=True)
        self.info = PageInfo(path)
        self._heading: list | None = None  # [level, line, text parts] while inside a heading

    def handle_starttag(self, tag, attrs):
        self._element(tag, attrs)

    def handle_startendtag(self, tag, attrs):
        self._element(tag, attrs)

    def _element(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        line = self.getpos()[0]
        info = self.info
        if "id" in a:
            info.ids.append(a["id"])
        if tag == "a" and a.get("name"):
            info.names.add(a["name"])
        m = _HEADING.match(tag)
        if m:
            self._heading = [int(m[1]), line, []]
        if tag == "img" and not a.get("alt", "").strip():
            info.images_without_alt.append((line, a.get("src", "")))

        def ref(attr: str, url: str, loads: bool) -> None:
            url = url.strip()
            if url:
                info.refs.append(Ref(info.path, tag, attr, url, line, loads))

        if tag in ("a", "area") and "href" in a:
            ref("href", a["href"], False)
        if tag == "link" and "href" in a:
            rels = set(a.get("rel", "").lower().split())
            ref("href", a["href"], bool(rels & _LOADING_RELS))
        for t, attr in _RESOURCE_ATTRS:
            if tag == t and attr in a:
                ref(attr, a[attr], True)
        if tag in _SRCSET_TAGS and a.get("srcset"):
            for candidate in a["srcset"].split(","):
                parts = candidate.split()
                if parts:
                    ref("srcset", parts[0], True)

    def handle_data(self, data):
        if self._heading is not None:
            self._heading[2].append(data)

    def handle_endtag(self, tag):
        if self._heading is not None and _HEADING.match(tag):
            level, line, parts = self._heading
            self.info.headings.append((level, line, " ".join("".join(parts).split())))
            self._heading = None


def parse_page(site: Path, path: Path) -> PageInfo:
    rel = path.relative_to(site).as_posix()
    parser = _PageParser(rel)
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser.info


def _page_url(rel: str) -> str:
    """The address of a page, relative to the site root (``a/index.html`` -> ``a/``)."""
    return rel[: -len("index.html")] if rel == "index.html" or rel.endswith("/index.html") else rel


@dataclass
class Report:
    pages: int = 0
    links_checked: int = 0
    problems: list[str] = field(default_factory=list)
    external_links: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def external_links_text(self) -> str:
        lines = [f"{len(self.external_links)} external links (listed, never fetched):"]
        for url in sorted(self.external_links):
            pages = sorted(set(self.external_links[url]))
            lines.append(f"{url}\n    on {', '.join(pages)}")
        return "\n".join(lines) + "\n"


class SiteChecker:
    """Checks one built site. ``site_url`` is the address the site is published at
    (mkdocs' ``site_url``): absolute links into it count as internal."""

    def __init__(self, site: Path, site_url: str | None = None):
        self.site = Path(site)
        self.site_url = site_url if not site_url or site_url.endswith("/") else site_url + "/"
        self.prefix = urlsplit(self.site_url).path if self.site_url else "/"
        self.pages: dict[str, PageInfo] = {}
        self.report = Report()

    # -- resolving --------------------------------------------------------------------
    def _target(self, base_rel: str, url: str) -> tuple[str | None, str, str | None]:
        """Resolve ``url`` seen on page ``base_rel``.

        Returns ``(file, fragment, error)``: the file's path in the site (None for a
        link that leaves the site or names no file), the fragment, and why it failed.
        """
        if self.site_url and url.startswith(self.site_url):
            url = url[len(self.site_url):] or "./"
            base_rel = "index.html"
        if url.startswith("/") and not url.startswith("//"):
            if not url.startswith(self.prefix):
                return None, "", f"absolute path outside the site (site path is {self.prefix!r})"
            url = url[len(self.prefix):] or "./"
            base_rel = "index.html"
        parts = urlsplit(urljoin(_BASE + _page_url(base_rel), url))  # ".." stops at the root
        path = unquote(parts.path[len(urlsplit(_BASE).path):])
        frag = unquote(parts.fragment)
        candidates = [path + "index.html"] if path == "" or path.endswith("/") else [path, path + "/index.html"]
        for c in candidates:
            norm = PurePosixPath(c).as_posix()
            if (self.site / norm).is_file():
                return norm, frag, None
        return None, frag, f"no file {path or '/'!r} in the site"

    def _page(self, rel: str) -> PageInfo:
        if rel not in self.pages:
            self.pages[rel] = parse_page(self.site, self.site / rel)
        return self.pages[rel]

    def _check_anchor(self, where: str, target: str, frag: str) -> None:
        if not frag or not target.endswith(".html"):
            return  # "#only-light" on an image is Material's palette switch, not an anchor
        info = self._page(target)
        if frag not in info.ids and frag not in info.names:
            self.report.problems.append(f"{where}: no anchor #{frag} on {target}")

    def _check_ref(self, ref: Ref) -> None:
        url = ref.url
        self.report.links_checked += 1
        internal_absolute = bool(self.site_url) and url.startswith(self.site_url)
        if _EXTERNAL.match(url) and not internal_absolute:
            if ref.loads:
                self.report.problems.append(f"{ref.where()}: loads a resource from outside the site")
            elif urlsplit(url).scheme in ("http", "https", ""):
                self.report.external_links[url].append(_page_url(ref.page) or "/")
            else:
                self.report.problems.append(f"{ref.where()}: unexpected {urlsplit(url).scheme}: address")
            return
        if _SCHEME.match(url) and not internal_absolute:
            scheme = url.split(":", 1)[0].lower()
            if scheme == "data" or (scheme in ("mailto", "tel") and not ref.loads):
                return
            self.report.problems.append(f"{ref.where()}: unexpected {scheme}: address")
            return
        if url.startswith("#"):
            self._check_anchor(ref.where(), ref.page, unquote(url[1:]))
            return
        target, frag, error = self._target(ref.page, url)
        if error:
            self.report.problems.append(f"{ref.where()}: {error}")
            return
        self._check_anchor(ref.where(), target, frag)

    # -- static page checks ------------------------------------------------------------
    def _check_structure(self, info: PageInfo) -> None:
        where = info.path
        counts = Counter(info.ids)
        for i, n in counts.items():
            if n > 1:
                self.report.problems.append(f"{where}: id {i!r} is used {n} times (a link to it lands on the first)")
        for line, src in info.images_without_alt:
            self.report.problems.append(f"{where}:{line}: image {src!r} has no alt text")
        levels = info.headings
        h1 = [h for h in levels if h[0] == 1]
        if len(h1) != 1:
            self.report.problems.append(f"{where}: {len(h1)} <h1> headings (one expected): {[t for _, _, t in h1]}")
        previous = 0
        for level, line, text in levels:
            if previous and level > previous + 1:
                self.report.problems.append(
                    f"{where}:{line}: heading level skipped, h{previous} then h{level} ({text!r})"
                )
            previous = level

    def _check_sitemap(self) -> None:
        sitemap = self.site / "sitemap.xml"
        if not sitemap.is_file() or not self.site_url:
            return
        for loc in re.findall(r"<loc>\s*([^<\s]+)\s*</loc>", sitemap.read_text(encoding="utf-8")):
            self.report.links_checked += 1
            if not loc.startswith(self.site_url):
                self.report.problems.append(f"sitemap.xml: {loc} is not under the site's address {self.site_url}")
                continue
            target, frag, error = self._target("index.html", loc)
            if error:
                self.report.problems.append(f"sitemap.xml: {loc}: {error}")

    def _check_search_index(self) -> None:
        # MkDocs' search plugin writes search/search_index.json ("docs"), Zensical search.json ("items").
        for name, key in (("search/search_index.json", "docs"), ("search.json", "items")):
            index = self.site / name
            if index.is_file():
                self._check_search_locations(name, json.loads(index.read_text(encoding="utf-8")).get(key, []))

    def _check_search_locations(self, name: str, docs: list) -> None:
        for doc in docs:
            loc = doc.get("location", "")
            self.report.links_checked += 1
            where = f"{name}: location {loc!r}"
            target, frag, error = self._target("index.html", loc or "./")
            if error:
                self.report.problems.append(f"{where}: {error}")
            else:
                self._check_anchor(where, target, frag)

    def run(self) -> Report:
        html = sorted(p.relative_to(self.site).as_posix() for p in self.site.rglob("*.html"))
        for rel in html:
            info = self._page(rel)
            self.report.pages += 1
            self._check_structure(info)
            for ref in info.refs:
                self._check_ref(ref)
        self._check_sitemap()
        self._check_search_index()
        return self.report


def check_site(site: str | Path, site_url: str | None = None) -> Report:
    """Check every HTML page of the built site in ``site``; see the module's docstring."""
    return SiteChecker(Path(site), site_url).run()


def site_url_of(site: str | Path) -> str | None:
    """The ``site_url`` a build was made with, read back from its sitemap (None if absent)."""
    sitemap = Path(site) / "sitemap.xml"
    if not sitemap.is_file():
        return None
    locs = re.findall(r"<loc>\s*([^<\s]+)\s*</loc>", sitemap.read_text(encoding="utf-8"))
    return min(locs, key=len) if locs else None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2):
        print("usage: python -m sitetools.linkcheck SITE_DIR [SITE_URL]", file=sys.stderr)
        return 2
    site = Path(args[0])
    report = check_site(site, args[1] if len(args) > 1 else site_url_of(site))
    print(report.external_links_text())
    for p in report.problems:
        print(p)
    print(f"{report.pages} pages, {report.links_checked} links checked, {len(report.problems)} problems")
    return 1 if report.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
