"""Flowcharts drawn at build time: the site's ```` ```mermaid ```` fences as inline SVG.

Every diagram of the site is a small top-to-bottom flowchart in Mermaid's syntax. This module
draws that subset itself, in Python, so that a page needs no diagram script and the build
needs no browser or Node:

- :func:`parse` reads ``flowchart TD`` (or ``TB``): nodes ``id["label"]``, ``id[label]``,
  circles ``id(("+"))``; edges ``-->``, ``-->|label|``, ``-- "label" -->``, dotted
  ``-.->`` and ``-. "label" .->``, invisible ``~~~`` (order only); chains ``a --> b --> c``;
  ``subgraph id["title"]`` ... ``end`` (with ``direction TB``), an edge to or from a
  subgraph meeting its box; ``%%`` comments. Labels may break lines with ``<br/>`` and use
  ``<b>``. Anything else raises :class:`DiagramError` naming the line, and fails the build.
- :func:`layout` places it in layers: ranks by longest path (back edges, found depth-first,
  left out and drawn around the side; a side input's chain moved down next to where it is
  used), a label or a bend point for every edge in the gap between two ranks, the order
  within each rank by barycentre sweeps that keep the arrangement with fewest crossings, and
  x positions that pull each node towards its neighbours with no overlap.
- :func:`to_svg` writes one inline ``<svg>`` themed by Material's CSS variables (classes
  styled in ``docs/assets/stylesheets/extra.css``, in the colours Material gives Mermaid),
  so the same SVG serves the light and the dark palette; ``role="img"`` with an ``aria-label`` and a ``<title>`` that list the
  diagram's steps. Text is measured with DejaVu Sans's metrics (matplotlib), wider than the
  fonts the page falls back to, so it fits its box. A long label line wraps; the SVG scales
  down to the column but never below :data:`MIN_TEXT_PX` per letter (it scrolls sideways
  first), so a phone keeps it legible.

:func:`fence_format` is the pymdownx.superfences custom fence formatter (``mkdocs.yml``).
"""

from __future__ import annotations

import functools
import html
import math
import re
from dataclasses import dataclass, field

from pymdownx.superfences import SuperFencesException

FONT_PX = 14.0           # text size in the SVG's own units
LINE_PX = 18.0           # line height
MIN_TEXT_PX = 11.0       # smallest text a reader gets: the SVG never shrinks below that
PHONE_COLUMN = 358.0     # the text column of a 390 px wide phone, in CSS px
#: The widest drawing that fits a phone's column with its text at MIN_TEXT_PX or more.
PHONE_MAX_WIDTH = PHONE_COLUMN * FONT_PX / MIN_TEXT_PX
NODE_MAX_LINE = 220.0    # a longer line of a node's label wraps at a space
LABEL_MAX_LINE = 200.0   # same for an edge's label
PAD_X, PAD_Y = 12.0, 8.0
NODE_GAP = 24.0          # between two boxes of a rank
DUMMY_GAP = 12.0         # next to a bend point of an edge
GAP_MIN = 26.0           # vertical gap between two ranks without a label
CLUSTER_PAD = 14.0
CLUSTER_TITLE = LINE_PX + 10.0
LANE_GAP = 22.0          # between the drawing and a back edge's lane, and between lanes
ARROW = 7.0
MARGIN = 4.0


class DiagramError(SuperFencesException, ValueError):
    """A diagram outside the supported subset; the message names the line."""


# ---------------------------------------------------------------------------------------
# Model and parser

@dataclass
class Node:
    id: str
    lines: list          # list of lines; a line is a list of (text, bold) runs
    shape: str = "box"   # "box" or "circle"
    cluster: str | None = None
    declared: bool = False


@dataclass
class Edge:
    src: str
    dst: str
    label: list          # lines, as for a node ([] without a label)
    style: str = "solid"  # "solid", "dotted" or "invisible"
    line: int = 0


@dataclass
class Cluster:
    id: str
    title: list
    members: list = field(default_factory=list)
    line: int = 0


@dataclass
class Flowchart:
    nodes: dict          # id -> Node, in order of first appearance
    edges: list
    clusters: dict       # id -> Cluster


_ID = r"[A-Za-z_][A-Za-z0-9_]*"
_SHAPES = [
    (re.compile(r'\(\(\s*"([^"]*)"\s*\)\)'), "circle"),
    (re.compile(r"\(\(([^()\"]*)\)\)"), "circle"),
    (re.compile(r'\[\s*"([^"]*)"\s*\]'), "box"),
    (re.compile(r"\[([^\[\]\"]*)\]"), "box"),
]
_EDGES = [
    (re.compile(r'-->\s*\|\s*(?:"([^"]*)"|([^|"]*))\s*\|'), "solid"),
    (re.compile(r"-->"), "solid"),
    (re.compile(r'--\s+(?:"([^"]*)"|([^"]*?))\s+-->'), "solid"),
    (re.compile(r"-\.->"), "dotted"),
    (re.compile(r'-\.\s+(?:"([^"]*)"|([^"]*?))\s+\.->'), "dotted"),
    (re.compile(r"~~~"), "invisible"),
]
_TAG = re.compile(r"<\s*(/?)\s*([A-Za-z]+)\s*/?\s*>")


def _label(text: str, where: str) -> list:
    """A label's lines of (text, bold) runs: ``<br>``/``<br/>`` break, ``<b>`` bolds."""
    lines, runs, bold, pos = [], [], False, 0
    for m in _TAG.finditer(text):
        if m.start() > pos:
            runs.append((text[pos:m.start()], bold))
        pos = m.end()
        closing, tag = m.group(1), m.group(2).lower()
        if tag == "br":
            lines.append(runs)
            runs = []
        elif tag == "b":
            bold = not closing
        else:
            raise DiagramError(f"{where}: the HTML tag <{closing}{tag}> is not supported in a "
                               "label (only <br/> and <b>)")
    if pos < len(text):
        runs.append((text[pos:], bold))
    lines.append(runs)
    out = []
    for line in lines:
        runs = [(html.unescape(re.sub(r"\s+", " ", t)), b) for t, b in line]
        if runs:
            runs[0] = (runs[0][0].lstrip(), runs[0][1])
            runs[-1] = (runs[-1][0].rstrip(), runs[-1][1])
        out.append([(t, b) for t, b in runs if t])
    return out


def _plain(lines: list) -> str:
    return " ".join("".join(t for t, _ in line) for line in lines if line).strip()


def parse(source: str) -> Flowchart:
    """Read a flowchart of the supported subset (see the module's docstring)."""
    if not isinstance(source, str):
        raise TypeError(f"source must be a str, got {type(source).__name__}")
    nodes: dict[str, Node] = {}
    edges: list[Edge] = []
    clusters: dict[str, Cluster] = {}
    stack: list[Cluster] = []
    header = False
    for number, raw in enumerate(source.splitlines(), 1):
        where = f"diagram line {number} ({raw.strip()!r})"
        line = raw.strip()
        if not line or line.startswith("%%"):
            continue
        if not header:
            m = re.fullmatch(r"(flowchart|graph)\s+(\w+)\s*;?", line)
            if not m:
                raise DiagramError(f"{where}: a diagram starts with 'flowchart TD' (or TB); "
                                   "other Mermaid diagram types are not supported")
            if m.group(2) not in ("TD", "TB"):
                raise DiagramError(f"{where}: direction {m.group(2)} is not supported "
                                   "(only TD and TB, top to bottom)")
            header = True
            continue
        m = re.fullmatch(rf'subgraph\s+({_ID})\s*(?:\[\s*"([^"]*)"\s*\]|\[([^\]"]*)\])?', line)
        if m:
            cid = m.group(1)
            if cid in clusters or (cid in nodes and (nodes[cid].declared or nodes[cid].cluster)):
                raise DiagramError(f"{where}: the subgraph id {cid!r} is already used")
            nodes.pop(cid, None)   # an edge named the subgraph before it was opened
            title = m.group(2) if m.group(2) is not None else m.group(3)
            cluster = Cluster(cid, _label(title if title is not None else cid, where), line=number)
            if stack:
                raise DiagramError(f"{where}: nested subgraphs are not supported")
            clusters[cid] = cluster
            stack.append(cluster)
            continue
        if line == "end":
            if not stack:
                raise DiagramError(f"{where}: 'end' without a subgraph")
            stack.pop()
            continue
        m = re.fullmatch(r"direction\s+(\w+)", line)
        if m:
            if not stack:
                raise DiagramError(f"{where}: 'direction' outside a subgraph")
            if m.group(1) not in ("TD", "TB"):
                raise DiagramError(f"{where}: direction {m.group(1)} is not supported "
                                   "(only TD and TB)")
            continue
        _statement(line, where, number, nodes, edges, clusters, stack)
    if not header:
        raise DiagramError("the diagram is empty: it starts with 'flowchart TD'")
    if stack:
        raise DiagramError(f"subgraph {stack[-1].id!r} (diagram line {stack[-1].line}) "
                           "has no 'end'")
    for e in edges:
        for end in (e.src, e.dst):
            if end in clusters and not clusters[end].members:
                raise DiagramError(f"diagram line {e.line}: subgraph {end!r} is empty")
    if not nodes:
        raise DiagramError("the diagram has no node")
    return Flowchart(nodes, edges, clusters)


def _statement(line, where, number, nodes, edges, clusters, stack) -> None:
    pos, prev, pending = 0, None, None
    while True:
        m = re.compile(_ID).match(line, pos)
        if not m:
            raise DiagramError(f"{where}: expected a node id at column {pos + 1}, found "
                               f"{line[pos:pos + 20]!r}")
        nid, pos = m.group(0), m.end()
        if nid in ("end", "subgraph", "direction", "style", "classDef", "class", "click",
                   "linkStyle"):
            raise DiagramError(f"{where}: {nid!r} is not supported here")
        label, shape = None, "box"
        for pattern, kind in _SHAPES:
            s = pattern.match(line, pos)
            if s:
                label, shape, pos = s.group(1), kind, s.end()
                break
        else:
            if pos < len(line) and line[pos] in "[({>":
                raise DiagramError(f"{where}: node shape {line[pos:pos + 12]!r}... is not "
                                   "supported (only id[\"label\"] and id((\"label\")))")
        if nid in clusters:
            if label is not None:
                raise DiagramError(f"{where}: {nid!r} is a subgraph and takes no label here")
        else:
            node = nodes.get(nid)
            if node is None:
                node = nodes[nid] = Node(nid, [[(nid, False)]])
                if stack:
                    node.cluster = stack[-1].id
                    stack[-1].members.append(nid)
            if label is not None:
                if node.declared:
                    raise DiagramError(f"{where}: node {nid!r} is given a label twice")
                node.lines, node.shape, node.declared = _label(label, where), shape, True
        if prev is not None:
            edges.append(Edge(prev, nid, pending[0], pending[1], number))
        while pos < len(line) and line[pos] == " ":
            pos += 1
        if pos >= len(line):
            return
        for pattern, style in _EDGES:
            e = pattern.match(line, pos)
            if e:
                text = next((g for g in e.groups() if g is not None), None) if e.groups() else None
                pending = (_label(text, where) if text and text.strip() else [], style)
                pos = e.end()
                break
        else:
            raise DiagramError(f"{where}: unsupported syntax at column {pos + 1}: "
                               f"{line[pos:pos + 20]!r} (edges: -->, -->|label|, "
                               "-- \"label\" -->, -.->, -. \"label\" .->, ~~~)")
        while pos < len(line) and line[pos] == " ":
            pos += 1
        prev = nid


# ---------------------------------------------------------------------------------------
# Text

@functools.cache
def _measurer():
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    t2p = TextToPath()
    props = {b: FontProperties(family="DejaVu Sans", size=FONT_PX, weight="bold" if b else "normal")
             for b in (False, True)}
    return t2p, props


@functools.lru_cache(maxsize=8192)
def text_width(text: str, bold: bool = False) -> float:
    """Width of ``text`` in DejaVu Sans at :data:`FONT_PX`, in px."""
    if not text:
        return 0.0
    t2p, props = _measurer()
    width = t2p.get_text_width_height_descent(text, props[bold], ismath=False)[0]
    if text[0] == " " or text[-1] == " ":   # the metrics drop outer spaces
        width += (text[0] == " ") * 4.45 + (text[-1] == " ") * 4.45
    return width


def _line_width(line) -> float:
    return sum(text_width(t, b) for t, b in line)


def _wrap(lines: list, limit: float) -> list:
    """Break a line longer than ``limit`` px at spaces (bold runs kept, a parenthesised
    group whole if it fits), into as few lines as the limit needs, of widths as even as
    possible."""
    out = []
    for line in lines:
        if _line_width(line) <= limit:
            out.append(line)
            continue
        # A shape such as "(B, T, C)" stays on one line when it fits.
        words = [(w, b) for t, b in line for w in re.findall(r"(?:\([^()]*\)|\S)+\s*", t)]
        if any(text_width(w.rstrip(), b) > limit for w, b in words):
            words = [(w, b) for t, b in line for w in re.findall(r"\S+\s*", t)]
        greedy = _greedy(words, limit)
        lo, hi = 0.0, limit          # the narrowest limit that keeps as few lines
        for _ in range(12):
            mid = (lo + hi) / 2
            if len(_greedy(words, mid)) <= len(greedy):
                hi = mid
            else:
                lo = mid
        out += _greedy(words, hi)
    return out


def _greedy(words, limit):
    out, current = [], []
    for word, bold in words:
        trial = current + [(word, bold)]
        if current and _line_width(_merge(trial)) > limit:
            out.append(_merge(current))
            current = [(word, bold)]
        else:
            current = trial
    out.append(_merge(current))
    return out


def _merge(words):
    runs = []
    for w, b in words:
        if runs and runs[-1][1] == b:
            runs[-1] = (runs[-1][0] + w, b)
        else:
            runs.append((w, b))
    if runs:
        runs[-1] = (runs[-1][0].rstrip(), runs[-1][1])
    return runs


def _text_size(lines) -> tuple[float, float]:
    return max((_line_width(line) for line in lines), default=0.0), LINE_PX * len(lines)


# ---------------------------------------------------------------------------------------
# Layout

@dataclass
class Item:
    """A box in the layout: a node, an edge's label, or an edge's bend point (no size)."""
    key: str
    kind: str            # "node", "label" or "point"
    w: float
    h: float
    rank: int = 0
    x: float = 0.0
    y: float = 0.0
    lines: list = field(default_factory=list)
    shape: str = "box"
    cluster: str | None = None


@dataclass
class Route:
    edge: Edge
    chain: list          # item keys from the source to the target (forward edges)
    back: bool = False
    side: str = "right"
    lane: float = 0.0
    label_key: str | None = None
    src_cluster: str | None = None
    dst_cluster: str | None = None


@dataclass
class Layout:
    chart: Flowchart
    items: dict
    ranks: list          # list of lists of item keys, top to bottom
    routes: list
    boxes: dict          # cluster id -> (x0, y0, x1, y1)
    width: float
    height: float


def _ends(chart: Flowchart, edge: Edge):
    """The nodes an edge joins for the layout: a subgraph stands for its first or last node."""
    def entry(cid):
        members = chart.clusters[cid].members
        inner = {(e.src, e.dst) for e in chart.edges}
        firsts = [m for m in members if not any((o, m) in inner for o in members)]
        return (firsts or members)[0]

    def exit_(cid):
        members = chart.clusters[cid].members
        inner = {(e.src, e.dst) for e in chart.edges}
        lasts = [m for m in members if not any((m, o) in inner for o in members)]
        return (lasts or members)[-1]

    src = exit_(edge.src) if edge.src in chart.clusters else edge.src
    dst = entry(edge.dst) if edge.dst in chart.clusters else edge.dst
    return src, dst


def layout(chart: Flowchart, max_line: float | None = None) -> Layout:
    """Place the nodes, edge labels and bends of ``chart`` (see the module's docstring).

    ``max_line``: a node's label line longer than that (px) wraps; by default
    :data:`NODE_MAX_LINE`, or narrower when that is what it takes for the drawing to fit a
    phone's column (:data:`PHONE_MAX_WIDTH`) with legible text.
    """
    if max_line is None:
        for limit in (NODE_MAX_LINE, 180.0, 150.0, 120.0):
            lay = layout(chart, limit)
            if lay.width <= PHONE_MAX_WIDTH:
                break
        return lay
    ids = list(chart.nodes)
    ends = [_ends(chart, e) for e in chart.edges]
    succ: dict[str, list[int]] = {n: [] for n in ids}
    for i, (s, d) in enumerate(ends):
        succ[s].append(i)

    # Back edges: depth-first from the nodes in order of appearance.
    back: set[int] = set()
    state: dict[str, int] = {}

    def visit(n):
        state[n] = 1
        for i in succ[n]:
            d = ends[i][1]
            if state.get(d) == 1:
                back.add(i)
            elif d not in state:
                visit(d)
        state[n] = 2

    for n in ids:
        if n not in state:
            visit(n)
    for i, (s, d) in enumerate(ends):
        if s == d:
            back.add(i)
    forward = [i for i in range(len(ends)) if i not in back]

    # Ranks: longest path from the sources.
    preds: dict[str, list[str]] = {n: [] for n in ids}
    outs: dict[str, list[str]] = {n: [] for n in ids}
    for i in forward:
        s, d = ends[i]
        preds[d].append(s)
        outs[s].append(d)
    order = _topological(ids, preds, outs)
    rank = {}
    for n in order:
        rank[n] = max((rank[p] + 1 for p in preds[n]), default=0)
    # A side input (a source other than the first) and the chain only it feeds move down,
    # next to where they are used.
    sources = [n for n in ids if not preds[n]]
    reach = {s: _reachable(s, outs) for s in sources}
    for s in sources[1:]:
        private = reach[s] - set().union(*(reach[o] for o in sources if o != s))
        leaving = [(u, v) for u in private for v in outs[u] if v not in private]
        if private and leaving:
            delta = min(rank[v] - rank[u] - 1 for u, v in leaving)
            for u in private:
                rank[u] += delta

    # Items: the nodes at even ranks, labels and bend points at odd ranks in between.
    items: dict[str, Item] = {}
    for n in ids:
        node = chart.nodes[n]
        lines = _wrap(node.lines, max_line)
        tw, th = _text_size(lines)
        if node.shape == "circle":
            d = max(tw, th) + 2 * PAD_Y
            w = h = max(d, 30.0)
        else:
            w, h = max(tw + 2 * PAD_X, 40.0), th + 2 * PAD_Y
        items[n] = Item(n, "node", w, h, 2 * rank[n], lines=lines, shape=node.shape,
                        cluster=node.cluster)
    routes = []
    for i, e in enumerate(chart.edges):
        s, d = ends[i]
        r = Route(e, [s, d], back=i in back,
                  src_cluster=e.src if e.src in chart.clusters else None,
                  dst_cluster=e.dst if e.dst in chart.clusters else None)
        routes.append(r)
        if r.back or e.style == "invisible":
            continue
        chain = [s]
        lo, hi = items[s].rank, items[d].rank
        label_at = lo + 1
        inner = items[s].cluster if items[s].cluster == items[d].cluster else None
        for k in range(lo + 1, hi):
            key = f"{i}:{k}"
            if k == label_at and e.label:
                lines = _wrap(e.label, min(LABEL_MAX_LINE, max_line))
                tw, th = _text_size(lines)
                items[key] = Item(key, "label", tw + 8, th + 2, k, lines=lines, cluster=inner)
                r.label_key = key
            else:
                items[key] = Item(key, "point", 0.0, 0.0, k, cluster=inner)
            chain.append(key)
        chain.append(d)
        r.chain = chain
    nranks = max(it.rank for it in items.values()) + 1
    ranks: list[list[str]] = [[] for _ in range(nranks)]
    for key, it in items.items():          # in order of appearance
        ranks[it.rank].append(key)

    links = [(a, b) for r in routes if not r.back and r.edge.style != "invisible"
             for a, b in zip(r.chain, r.chain[1:])]
    ranks = _order(ranks, links)
    _place_x(items, ranks, links)
    boxes = _place_y(chart, items, ranks)
    width, height = _lanes(items, ranks, routes, boxes)
    return Layout(chart, items, ranks, routes, boxes, width, height)


def _topological(ids, preds, outs):
    indeg = {n: len(preds[n]) for n in ids}
    ready = [n for n in ids if indeg[n] == 0]
    out = []
    while ready:
        n = ready.pop(0)
        out.append(n)
        for d in outs[n]:
            indeg[d] -= 1
            if indeg[d] == 0:
                ready.append(d)
    return out


def _reachable(start, outs):
    seen, todo = {start}, [start]
    while todo:
        for d in outs[todo.pop()]:
            if d not in seen:
                seen.add(d)
                todo.append(d)
    return seen


def _crossings(ranks, links) -> int:
    pos = {k: i for rank in ranks for i, k in enumerate(rank)}
    level = {k: r for r, rank in enumerate(ranks) for k in rank}
    by_gap: dict[int, list] = {}
    for a, b in links:
        by_gap.setdefault(level[a], []).append((pos[a], pos[b]))
    total = 0
    for pairs in by_gap.values():
        for i, (a1, b1) in enumerate(pairs):
            for a2, b2 in pairs[i + 1:]:
                if (a1 - a2) * (b1 - b2) < 0:
                    total += 1
    return total


def _order(ranks, links):
    """Barycentre sweeps, down and up; the order with fewest crossings wins (first on ties)."""
    up: dict[str, list[str]] = {}
    down: dict[str, list[str]] = {}
    for a, b in links:
        down.setdefault(a, []).append(b)
        up.setdefault(b, []).append(a)
    best = [list(r) for r in ranks]
    best_cost = _crossings(best, links)
    current = [list(r) for r in ranks]
    for sweep in range(8):
        rng = range(1, len(current)) if sweep % 2 == 0 else range(len(current) - 2, -1, -1)
        for r in rng:
            ref = current[r - 1] if sweep % 2 == 0 else current[r + 1]
            where = {k: i for i, k in enumerate(ref)}
            nbrs = up if sweep % 2 == 0 else down

            current[r] = [k for _, k in sorted((_bary(k, i, nbrs, where), k)
                                               for i, k in enumerate(current[r]))]
        cost = _crossings(current, links)
        if cost < best_cost:
            best, best_cost = [list(r) for r in current], cost
    return best


def _bary(item, i, nbrs, where):
    ps = [where[p] for p in nbrs.get(item, []) if p in where]
    return (sum(ps) / len(ps) if ps else i, i)


def _gap(a: Item, b: Item) -> float:
    sep = DUMMY_GAP if "point" in (a.kind, b.kind) else NODE_GAP
    return a.w / 2 + sep + b.w / 2


def _isotonic(values, weights):
    """Pool adjacent violators: the non-decreasing sequence nearest ``values``."""
    blocks = []   # [mean, weight, count]
    for v, w in zip(values, weights):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, c2 = blocks.pop()
            v1, w1, c1 = blocks[-1]
            blocks[-1] = [(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, c1 + c2]
    out = []
    for v, _, c in blocks:
        out += [v] * c
    return out


def _place_x(items, ranks, links) -> None:
    nbrs: dict[str, list[str]] = {}
    for a, b in links:
        nbrs.setdefault(a, []).append(b)
        nbrs.setdefault(b, []).append(a)
    for rank in ranks:          # packed, centred on 0
        x = 0.0
        for i, k in enumerate(rank):
            if i:
                x += _gap(items[rank[i - 1]], items[k])
            items[k].x = x
        shift = x / 2
        for k in rank:
            items[k].x -= shift
    for _ in range(30):
        for rank in ranks:
            desired, weights = [], []
            for k in rank:
                ns = nbrs.get(k, [])
                if ns:
                    desired.append(sum(items[n].x for n in ns) / len(ns))
                    weights.append(2.0 if items[k].kind != "node" else 1.0)
                else:
                    desired.append(items[k].x)
                    weights.append(0.5)
            offsets = [0.0]
            for i in range(1, len(rank)):
                offsets.append(offsets[-1] + _gap(items[rank[i - 1]], items[rank[i]]))
            fitted = _isotonic([d - o for d, o in zip(desired, offsets)], weights)
            for k, f, o in zip(rank, fitted, offsets):
                items[k].x = f + o
    _straighten(items, ranks, links)


def _straighten(items, ranks, links) -> None:
    """Put each run of one-to-one links (a node with one way out into one with one way in)
    on one vertical line, at the run's median x, as far as its neighbours in the ranks allow."""
    outdeg: dict[str, int] = {}
    indeg: dict[str, int] = {}
    for a, b in links:
        outdeg[a] = outdeg.get(a, 0) + 1
        indeg[b] = indeg.get(b, 0) + 1
    parent = {k: k for k in items}

    def root(k):
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for a, b in links:
        if outdeg[a] == 1 and indeg[b] == 1:
            parent[root(b)] = root(a)
    runs: dict[str, list[str]] = {}
    for k in items:
        runs.setdefault(root(k), []).append(k)
    pos = {k: (r, i) for r, rank in enumerate(ranks) for i, k in enumerate(rank)}
    for _ in range(2):
        for members in runs.values():
            if len(members) < 2:
                continue
            xs = sorted(items[k].x for k in members)
            target = xs[len(xs) // 2]
            bounds = [_room(items, ranks, pos[k]) for k in members]
            lo, hi = max(b[0] for b in bounds), min(b[1] for b in bounds)
            if lo <= hi:                   # one line that all of them can reach
                target = min(max(target, lo), hi)
            for k in sorted(members, key=lambda m: abs(items[m].x - target)):
                a, b = _room(items, ranks, pos[k])
                items[k].x = min(max(target, a), b)


def _room(items, ranks, where):
    """How far an item may move sideways without coming too close to its rank neighbours."""
    r, i = where
    rank, it = ranks[r], items[ranks[r][i]]
    lo = items[rank[i - 1]].x + _gap(items[rank[i - 1]], it) if i else -math.inf
    hi = items[rank[i + 1]].x - _gap(it, items[rank[i + 1]]) if i + 1 < len(rank) else math.inf
    return lo, hi


def _place_y(chart, items, ranks):
    """y of every rank; room above and below each subgraph for its box and title."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for cid, c in chart.clusters.items():
        rs = [items[m].rank for m in c.members]
        first[min(rs)] = first.get(min(rs), 0) + 1
        last[max(rs)] = last.get(max(rs), 0) + 1
    y = MARGIN
    for r, rank in enumerate(ranks):
        if r % 2 == 0:
            y += first.get(r, 0) * (CLUSTER_TITLE + CLUSTER_PAD)
        h = max((items[k].h for k in rank), default=0.0)
        if r % 2 == 1:      # a label leaves some of its edge visible above and below
            h = max(h + 24.0 if h else 0.0, GAP_MIN)
        for k in rank:
            items[k].y = y + h / 2
        y += h
        if r % 2 == 0:
            y += last.get(r, 0) * CLUSTER_PAD
    boxes = {}
    for cid, c in chart.clusters.items():
        inside = [it for it in items.values() if it.cluster == cid]
        x0 = min(it.x - it.w / 2 for it in inside) - CLUSTER_PAD
        x1 = max(it.x + it.w / 2 for it in inside) + CLUSTER_PAD
        tw = _line_width(c.title[0]) if c.title else 0.0
        if x1 - x0 < tw + 2 * CLUSTER_PAD:
            grow = (tw + 2 * CLUSTER_PAD - (x1 - x0)) / 2
            x0, x1 = x0 - grow, x1 + grow
        nodes = [items[m] for m in c.members]
        y0 = min(it.y - it.h / 2 for it in nodes) - CLUSTER_PAD - CLUSTER_TITLE
        y1 = max(it.y + it.h / 2 for it in nodes) + CLUSTER_PAD
        boxes[cid] = (x0, y0, x1, y1)
    return boxes


def _lanes(items, ranks, routes, boxes):
    """Back edges in lanes beside the drawing; shift everything to start at the margin."""
    def extent(it):
        return it.x - it.w / 2, it.x + it.w / 2

    left = min([extent(it)[0] for it in items.values()] + [b[0] for b in boxes.values()])
    right = max([extent(it)[1] for it in items.values()] + [b[2] for b in boxes.values()])
    pos = {k: i for rank in ranks for i, k in enumerate(rank)}
    level = {k: r for r, rank in enumerate(ranks) for k in rank}

    def blocked(key, side):
        rank = ranks[level[key]]
        i = pos[key]
        others = rank[i + 1:] if side == "right" else rank[:i]
        return sum(1 for k in others if items[k].kind == "node")

    lane_r, lane_l = right, left
    for r in routes:
        if not r.back or r.edge.style == "invisible":
            continue
        s, d = r.chain[0], r.chain[-1]
        r.side = "right" if blocked(s, "right") + blocked(d, "right") <= \
            blocked(s, "left") + blocked(d, "left") else "left"
        lw = _text_size(_wrap(r.edge.label, LABEL_MAX_LINE))[0] + 8 if r.edge.label else 0.0
        if r.side == "right":
            r.lane = lane_r + LANE_GAP + lw / 2
            lane_r = r.lane + lw / 2
        else:
            r.lane = lane_l - LANE_GAP - lw / 2
            lane_l = r.lane - lw / 2
    shift = MARGIN - lane_l
    for it in items.values():
        it.x += shift
    for r in routes:
        r.lane += shift
    for cid, (x0, y0, x1, y1) in boxes.items():
        boxes[cid] = (x0 + shift, y0, x1 + shift, y1)
    height = max([it.y + it.h / 2 for it in items.values()] + [b[3] for b in boxes.values()])
    return lane_r - lane_l + 2 * MARGIN, height + MARGIN


# ---------------------------------------------------------------------------------------
# SVG

def _f(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _text(lines, cx, cy, cls="") -> list[str]:
    out = []
    top = cy - LINE_PX * len(lines) / 2
    attr = f' class="{cls}"' if cls else ""
    for i, line in enumerate(lines):
        y = top + LINE_PX * (i + 0.5)
        spans = "".join(f'<tspan font-weight="bold">{html.escape(t)}</tspan>' if b
                        else html.escape(t) for t, b in line)
        out.append(f'<text x="{_f(cx)}" y="{_f(y)}" dy=".35em"{attr}>{spans}</text>')
    return out


def _port(it: Item, dx: float, bottom: bool):
    if it.shape == "circle":
        r = it.w / 2
        dx = max(-r * 0.7, min(r * 0.7, dx))
        dy = math.sqrt(r * r - dx * dx)
        return it.x + dx, it.y + (dy if bottom else -dy)
    return it.x + dx, it.y + (it.h / 2 if bottom else -it.h / 2)


def _spread(it: Item, k: int, i: int) -> float:
    if k <= 1 or it.kind != "node":
        return 0.0
    step = min(16.0, it.w / (k + 1))
    return (i - (k - 1) / 2) * step


def description(chart: Flowchart) -> str:
    """The diagram in words, for ``aria-label`` and ``<title>``: each edge, in order."""
    def name(n):
        if n in chart.clusters:
            return _plain(chart.clusters[n].title)
        return _plain(chart.nodes[n].lines)

    parts = []
    for e in chart.edges:
        if e.style == "invisible":
            continue
        label = f" ({_plain(e.label)})" if e.label else ""
        parts.append(f"{name(e.src)} to {name(e.dst)}{label}")
    for c in chart.clusters.values():
        members = ", ".join(name(m) for m in c.members)
        parts.append(f"{name(c.id)} holds {members}")
    if not parts:
        parts = [name(n) for n in chart.nodes]
    return "Diagram: " + "; ".join(parts) + "."


def to_svg(lay: Layout) -> str:
    """The layout as one inline ``<svg>`` (see the module's docstring)."""
    items = lay.items
    body: list[str] = []
    for cid, (x0, y0, x1, y1) in lay.boxes.items():
        body.append(f'<rect class="gn-d-cluster" x="{_f(x0)}" y="{_f(y0)}" '
                    f'width="{_f(x1 - x0)}" height="{_f(y1 - y0)}" rx="6"/>')
        body += _text(lay.chart.clusters[cid].title, (x0 + x1) / 2,
                      y0 + CLUSTER_TITLE / 2 + 4, "gn-d-title")

    # Where each edge leaves and enters its node: spread along the side, in target order.
    outgoing: dict[str, list] = {}
    incoming: dict[str, list] = {}
    for r in lay.routes:
        if r.back or r.edge.style == "invisible":
            continue
        outgoing.setdefault(r.chain[0], []).append(r)
        incoming.setdefault(r.chain[-1], []).append(r)
    start, end = {}, {}
    for key, rs in outgoing.items():
        rs.sort(key=lambda r: items[r.chain[1]].x)
        for i, r in enumerate(rs):
            start[id(r)] = _spread(items[key], len(rs), i)
    for key, rs in incoming.items():
        rs.sort(key=lambda r: items[r.chain[-2]].x)
        for i, r in enumerate(rs):
            end[id(r)] = _spread(items[key], len(rs), i)

    edges, labels = [], []
    for r in lay.routes:
        if r.edge.style == "invisible":
            continue
        cls = "gn-d-edge gn-d-dotted" if r.edge.style == "dotted" else "gn-d-edge"
        if r.back:
            path, arrow, label_at = _back_path(lay, r)
        else:
            path, arrow, label_at = _forward_path(lay, r, start[id(r)], end[id(r)])
        edges.append(f'<path class="{cls}" d="{path}"/>')
        edges.append(f'<path class="gn-d-arrow" d="{arrow}"/>')
        if r.edge.label:
            lines = items[r.label_key].lines if r.label_key else _wrap(r.edge.label, LABEL_MAX_LINE)
            tw, th = _text_size(lines)
            cx, cy = label_at
            labels.append(f'<rect class="gn-d-label" x="{_f(cx - tw / 2 - 4)}" '
                          f'y="{_f(cy - th / 2 - 1)}" width="{_f(tw + 8)}" height="{_f(th + 2)}"/>')
            labels += _text(lines, cx, cy)
    body += edges
    for key, it in items.items():
        if it.kind != "node":
            continue
        if it.shape == "circle":
            body.append(f'<circle class="gn-d-node" cx="{_f(it.x)}" cy="{_f(it.y)}" '
                        f'r="{_f(it.w / 2)}"/>')
        else:
            body.append(f'<rect class="gn-d-node" x="{_f(it.x - it.w / 2)}" '
                        f'y="{_f(it.y - it.h / 2)}" width="{_f(it.w)}" height="{_f(it.h)}" rx="5"/>')
        body += _text(it.lines, it.x, it.y)
    body += labels
    words = html.escape(description(lay.chart), quote=True)
    w, h = math.ceil(lay.width), math.ceil(lay.height)
    min_w = math.ceil(w * MIN_TEXT_PX / FONT_PX)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="gn-d" role="img" '
            f'aria-label="{words}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
            f'style="min-width:{min_w}px" font-size="{_f(FONT_PX)}">'
            f'<title>{words}</title>' + "".join(body) + "</svg>")


def _curve(points) -> str:
    """Through the points, each step a cubic with vertical tangents at both ends."""
    (x0, y0), rest = points[0], points[1:]
    d = [f"M{_f(x0)},{_f(y0)}"]
    for x1, y1 in rest:
        ym = (y0 + y1) / 2
        d.append(f"C{_f(x0)},{_f(ym)} {_f(x1)},{_f(ym)} {_f(x1)},{_f(y1)}")
        x0, y0 = x1, y1
    return "".join(d)


def _arrow(x, y, dx, dy) -> str:
    """An arrowhead with its tip at (x, y), pointing along (dx, dy) (a unit vector)."""
    bx, by = x - dx * ARROW, y - dy * ARROW
    px, py = -dy * ARROW * 0.55, dx * ARROW * 0.55
    return (f"M{_f(x)},{_f(y)}L{_f(bx + px)},{_f(by + py)}L{_f(bx - px)},{_f(by - py)}Z")


def _forward_path(lay: Layout, r: Route, dx0: float, dx1: float):
    items = lay.items
    src, dst = items[r.chain[0]], items[r.chain[-1]]
    if r.src_cluster:
        x0, y0 = src.x, lay.boxes[r.src_cluster][3]
    else:
        x0, y0 = _port(src, dx0, bottom=True)
    if r.dst_cluster:
        x1, y1 = dst.x, lay.boxes[r.dst_cluster][1]
    else:
        x1, y1 = _port(dst, dx1, bottom=False)
    mids = [(items[k].x, items[k].y) for k in r.chain[1:-1]]
    points = [(x0, y0)] + mids + [(x1, y1 - ARROW)]
    label_at = (items[r.label_key].x, items[r.label_key].y) if r.label_key else None
    return _curve(points), _arrow(x1, y1, 0.0, 1.0), label_at


def _back_path(lay: Layout, r: Route):
    items = lay.items
    src, dst = items[r.chain[0]], items[r.chain[-1]]
    sign = 1.0 if r.side == "right" else -1.0
    x0, y0 = src.x + sign * src.w / 2, src.y
    x1, y1 = dst.x + sign * dst.w / 2, dst.y
    lane, rad = r.lane, 8.0
    tip = x1 + sign * ARROW
    d = (f"M{_f(x0)},{_f(y0)}H{_f(lane - sign * rad)}"
         f"Q{_f(lane)},{_f(y0)} {_f(lane)},{_f(y0 - rad)}"
         f"V{_f(y1 + rad)}Q{_f(lane)},{_f(y1)} {_f(lane - sign * rad)},{_f(y1)}H{_f(tip)}")
    return d, _arrow(x1, y1, -sign, 0.0), (lane, (y0 + y1) / 2)


def render(source: str) -> str:
    """The ``<svg>`` of a flowchart's source."""
    return to_svg(layout(parse(source)))


def fence_format(source, language, class_name, options, md, **kwargs) -> str:
    """pymdownx.superfences custom fence formatter: the diagram as a ``<div>`` with its SVG."""
    svg = render(source)
    classes = " ".join([class_name or "gn-diagram"] + list(kwargs.get("classes", [])))
    return f'<div class="{classes}">{svg}</div>'
