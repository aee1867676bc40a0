"""The diagrams the build draws (sitetools/diagrams.py): the subset of Mermaid's flowchart
syntax it reads, the layout it makes, and the inline SVG of every diagram on the site."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import markdown
import pytest

from sitetools import diagrams
from sitetools.diagrams import DiagramError, layout, parse, render, to_svg
from tests.site_files import ROOT, markdown_files, rel

SVG = "{http://www.w3.org/2000/svg}"
FENCE = re.compile(r"^```mermaid\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _site_diagrams() -> list[tuple[str, str]]:
    out = []
    for path in markdown_files():
        for i, m in enumerate(FENCE.finditer(path.read_text(encoding="utf-8")), 1):
            out.append((f"{rel(path)}#{i}", m.group(1)))
    return out


SITE = _site_diagrams()


def _texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def _overlap(a, b, margin=0.0) -> bool:
    return (a[0] < b[2] - margin and b[0] < a[2] - margin
            and a[1] < b[3] - margin and b[1] < a[3] - margin)


def _box(it):
    return (it.x - it.w / 2, it.y - it.h / 2, it.x + it.w / 2, it.y + it.h / 2)


# ---------------------------------------------------------------------------------------
# Parsing

def test_parse_nodes_edges_and_labels():
    chart = parse('flowchart TD\n'
                  '    a["first<br/>line two"] -- "says" --> b(("+"))\n'
                  '    b -->|"goes, <b>bold</b>"| c[plain label]\n'
                  '    c -. back .-> a\n'
                  '    c -.-> d\n'
                  '    %% a comment\n'
                  '    d ~~~ e\n')
    assert list(chart.nodes) == ["a", "b", "c", "d", "e"]
    assert chart.nodes["a"].lines == [[("first", False)], [("line two", False)]]
    assert chart.nodes["b"].shape == "circle" and chart.nodes["b"].lines == [[("+", False)]]
    assert chart.nodes["c"].lines == [[("plain label", False)]]
    assert chart.nodes["d"].lines == [[("d", False)]]           # a bare id is its own label
    got = [(e.src, e.dst, diagrams._plain(e.label), e.style, e.line) for e in chart.edges]
    assert got == [("a", "b", "says", "solid", 2), ("b", "c", "goes, bold", "solid", 3),
                   ("c", "a", "back", "dotted", 4), ("c", "d", "", "dotted", 5),
                   ("d", "e", "", "invisible", 7)]
    assert chart.edges[1].label == [[("goes, ", False), ("bold", True)]]


def test_parse_chains_and_subgraphs():
    chart = parse('flowchart TB\n'
                  '  x --> s\n'
                  '  subgraph s["a group"]\n'
                  '    direction TB\n'
                  '    p --> q --> r\n'
                  '  end\n'
                  '  s --> y\n')
    assert list(chart.clusters) == ["s"] and chart.clusters["s"].members == ["p", "q", "r"]
    assert "s" not in chart.nodes                     # named by an edge before it was opened
    assert [(e.src, e.dst) for e in chart.edges] == [("x", "s"), ("p", "q"), ("q", "r"),
                                                      ("s", "y")]
    assert diagrams._plain(chart.clusters["s"].title) == "a group"


@pytest.mark.parametrize("source, line, words", [
    ("flowchart LR\n a --> b", 1, "direction LR is not supported"),
    ("sequenceDiagram\n A->>B: hi", 1, "starts with 'flowchart TD'"),
    ("flowchart TD\n a --> b\n a ==> c", 3, "unsupported syntax at column 3"),
    ("flowchart TD\n a{\"decide\"} --> b", 2, "node shape"),
    ("flowchart TD\n a[\"<i>x</i>\"] --> b", 2, "<i>"),
    ("flowchart TD\n end", 2, "'end' without a subgraph"),
    ("flowchart TD\n a --> b\n style a fill:#f00", 3, "'style' is not supported"),
    ("flowchart TD\n subgraph s\n direction LR\n a\n end", 3, "direction LR"),
    ("flowchart TD\n a[\"one\"] --> b\n a[\"two\"]", 3, "label twice"),
    ("flowchart TD\n a --> b --> ", 2, "expected a node id"),
])
def test_unsupported_syntax_names_the_line(source, line, words):
    with pytest.raises(DiagramError) as err:
        parse(source)
    assert f"diagram line {line} " in str(err.value) and words in str(err.value)


def test_unclosed_subgraph_and_empty_diagram_fail():
    with pytest.raises(DiagramError, match="subgraph 's' .diagram line 2. has no 'end'"):
        parse("flowchart TD\n subgraph s\n a --> b\n")
    with pytest.raises(DiagramError, match="empty"):
        parse("   \n%% nothing\n")
    with pytest.raises(TypeError, match="source must be a str"):
        parse(b"flowchart TD")


def test_a_bad_diagram_stops_the_markdown_conversion():
    """superfences swallows a formatter's ordinary exception (the fence then shows as code);
    DiagramError is a SuperFencesException, which it lets through, so the build fails."""
    md = markdown.Markdown(extensions=["pymdownx.superfences"], extension_configs={
        "pymdownx.superfences": {"custom_fences": [
            {"name": "mermaid", "class": "gn-diagram", "format": diagrams.fence_format}]}})
    html = md.convert('```mermaid\nflowchart TD\n  a["A"] --> b["B"]\n```\n')
    assert html.startswith('<div class="gn-diagram"><svg ') and ">A</text>" in html
    with pytest.raises(DiagramError, match="diagram line 2"):
        md.reset().convert("```mermaid\nflowchart TD\n  a => b\n```\n")


# ---------------------------------------------------------------------------------------
# Layout

def _ranks(lay):
    return {k: it.rank for k, it in lay.items.items() if it.kind == "node"}


def test_ranks_follow_the_longest_path_and_side_inputs_move_down():
    lay = layout(parse("flowchart TD\n a --> b --> c --> d\n a --> d\n"
                       " w --> v --> d\n"))
    r = _ranks(lay)
    assert [r[k] for k in "abcd"] == [0, 2, 4, 6]
    assert (r["w"], r["v"]) == (2, 4)        # next to d, where they are used, not at the top
    ys = {k: lay.items[k].y for k in "abcd"}
    assert ys["a"] < ys["b"] < ys["c"] < ys["d"]
    # the long edge a --> d bends around b and c: one point in each gap and rank between
    route = next(x for x in lay.routes if (x.edge.src, x.edge.dst) == ("a", "d"))
    assert len(route.chain) == 7 and all(lay.items[k].kind == "point" for k in route.chain[1:-1])


def test_back_edges_go_around_the_side():
    lay = layout(parse('flowchart TD\n a --> b --> c\n c -. "again" .-> a\n'))
    back = [r for r in lay.routes if r.back]
    assert [(r.edge.src, r.edge.dst) for r in back] == [("c", "a")]
    right = max(it.x + it.w / 2 for it in lay.items.values())
    assert back[0].side == "right" and back[0].lane > right
    label = diagrams.text_width("again") / 2
    assert back[0].lane + label <= lay.width     # the lane and its label are in the drawing


def test_ordering_removes_avoidable_crossings():
    # Declared crosswise: a's child is declared after b's.
    lay = layout(parse("flowchart TD\n a --> y\n b --> x\n a --> x2\n b --> y2\n"
                       " x --> z\n y --> z\n"))
    links = [(a, b) for r in lay.routes for a, b in zip(r.chain, r.chain[1:])]
    assert diagrams._crossings(lay.ranks, links) == 0


def test_long_lines_wrap_and_words_stay_whole():
    word = "tokens"
    lay = layout(parse(f'flowchart TD\n a["{" ".join([word] * 40)}"]\n'))
    lines = lay.items["a"].lines
    assert len(lines) > 1
    assert all(diagrams._line_width(line) <= diagrams.NODE_MAX_LINE for line in lines)
    assert " ".join("".join(t for t, _ in line) for line in lines) == " ".join([word] * 40)


@pytest.mark.parametrize("name, source", SITE, ids=[n for n, _ in SITE])
def test_every_site_diagram_lays_out_without_overlaps(name, source):
    lay = layout(parse(source))
    boxes = {k: _box(it) for k, it in lay.items.items() if it.kind in ("node", "label")}
    keys = list(boxes)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            assert not _overlap(boxes[a], boxes[b]), f"{a} and {b} overlap"
    for cid, box in lay.boxes.items():
        members = set(lay.chart.clusters[cid].members)
        for k, it in lay.items.items():
            if it.kind != "node":
                continue
            inside = box[0] <= _box(it)[0] and _box(it)[2] <= box[2] and \
                box[1] <= _box(it)[1] and _box(it)[3] <= box[3]
            if k in members:
                assert inside, f"{k} sticks out of subgraph {cid}"
            else:
                assert not _overlap(box, _box(it)), f"{k} is drawn inside subgraph {cid}"
    for k, it in lay.items.items():
        x0, y0, x1, y1 = _box(it)
        assert 0 <= x0 and x1 <= lay.width and 0 <= y0 and y1 <= lay.height, k
    # On a 390 px phone the whole drawing fits the column with text of 11 px or more.
    assert lay.width <= diagrams.PHONE_MAX_WIDTH


# ---------------------------------------------------------------------------------------
# SVG

@pytest.mark.parametrize("name, source", SITE, ids=[n for n, _ in SITE])
def test_every_site_diagram_renders_to_accessible_svg(name, source):
    svg = render(source)
    root = ET.fromstring(svg)                  # well-formed XML
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == root.get("aria-label")
    assert title.text.startswith("Diagram: ")
    chart = parse(source)
    shown = " ".join(_texts(svg))
    words = [w for n in chart.nodes.values() for w in diagrams._plain(n.lines).split()]
    words += [w for e in chart.edges for w in diagrams._plain(e.label).split()]
    words += [w for c in chart.clusters.values() for w in diagrams._plain(c.title).split()]
    for w in words:
        assert w in shown, f"{w!r} is not drawn"
        assert w in title.text, f"{w!r} is not in the description"
    # Colours come from the palette (classes in extra.css), never fixed in the SVG.
    for el in root.iter():
        assert not {"fill", "stroke", "style", "color"} & set(el.attrib) or el is root, el.attrib
    w = float(root.get("width"))
    assert root.get("style") == f"min-width:{-(-w * 11 // 14):.0f}px"
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"


def test_every_svg_class_is_styled():
    styles = (ROOT / "docs" / "assets" / "stylesheets" / "extra.css").read_text(encoding="utf-8")
    used = set()
    for _, source in SITE:
        used |= set(re.findall(r'class="([\w-]+)', render(source)))
        used |= {c for cs in re.findall(r'class="([\w -]+)"', render(source)) for c in cs.split()}
    for cls in used:
        assert f".{cls}" in styles, f"class {cls} has no rule in extra.css"


def test_text_is_escaped_and_bold_kept():
    svg = render('flowchart TD\n a["x < y & <b>z</b>"] --> b["\'q\'"]\n')
    ET.fromstring(svg)
    assert "x &lt; y &amp; " in svg and '<tspan font-weight="bold">z</tspan>' in svg


def test_description_lists_the_steps():
    chart = parse('flowchart TD\n a["text"] -- "tokenizer" --> b["ids"]\n b ~~~ c\n')
    assert diagrams.description(chart) == "Diagram: text to ids (tokenizer)."


def test_drawing_is_deterministic():
    _, source = SITE[0]
    assert render(source) == render(source) == to_svg(layout(parse(source)))


def test_a_shape_in_brackets_stays_on_one_line():
    lines = diagrams._wrap([[("logits of the model (B, T, C), C = V, once per step", False)]],
                           150.0)
    text = ["".join(t for t, _ in line) for line in lines]
    assert len(text) > 1 and any("(B, T, C)" in line for line in text), text
