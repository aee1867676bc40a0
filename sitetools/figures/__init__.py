"""The site's pictures and result tables, made from the gptnotes package at build time, never committed.

A figure is a function registered with :func:`figure`. It receives a :class:`Theme` and
returns a matplotlib ``Figure``; the build renders it twice, for Material's light and dark
palettes, as ``figures/<name>.svg`` and ``figures/<name>-dark.svg``. A page shows it with a
plain Markdown image, and the build adds the dark twin::

    ![Softmax of the same logits at three temperatures](../figures/softmax-temperature.svg)

A table is a function registered with :func:`table` that returns Markdown (a table, and a
line or two about it): numbers that a reader should be able to select, search and hear read
out belong in text, not in a picture. A page places it with a line of its own::

    <!-- gn-table: bitnet-gpt-results -->

and the build replaces that line with the Markdown (an unknown name fails the build).

Modules of this package are discovered automatically: one module per concept, each
registering its own figures and tables. Renders are cached like snippet outputs.

Every render, fresh or cached, is checked for legibility (:func:`check_legible`): the
smallest text of a figure, as a reader sees it in Material's 688 px content column at a
1280 px window, must be at least ``MIN_TEXT_PX`` CSS px. An SVG is drawn at its natural
size (1 pt = 4/3 CSS px) unless it is wider than the column, which then scales it down; so
a figure passes with large enough fonts *and* a width no more than about 7 in. A figure that
fails stops the build with :class:`IllegibleFigure`.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import io
import math
import os
import pkgutil
from pathlib import Path
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass

from sitetools.runner import CACHE_DIR as _FENCE_CACHE
from sitetools.runner import package_fingerprint

CACHE_DIR = _FENCE_CACHE.parent / "figures"

#: Smallest text a figure may show, in CSS px, at a 1280 px wide window.
MIN_TEXT_PX = 11.0
#: Width of Material's content column at a 1280 px wide window (and at 390 px), in CSS px.
COLUMN_PX = 688.0
PHONE_COLUMN_PX = 358.0
#: CSS px per pt: an SVG whose width is given in pt is drawn at 4/3 px per pt.
PX_PER_PT = 4 / 3


@dataclass(frozen=True)
class Theme:
    """Colours of one palette. ``colors`` is colour-blind safe (Okabe and Ito)."""

    name: str
    fg: str
    muted: str
    grid: str
    colors: tuple[str, ...]
    cmap: str

    def cycle(self, i: int) -> str:
        return self.colors[i % len(self.colors)]


LIGHT = Theme(
    name="light", fg="#1f2328", muted="#57606a", grid="#d0d7de",
    colors=("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"),
    cmap="Blues",
)
DARK = Theme(
    name="dark", fg="#e6edf3", muted="#9198a1", grid="#3d444d",
    colors=("#56B4E9", "#E69F00", "#009E73", "#CC79A7", "#F0E442", "#D55E00", "#FFFFFF"),
    cmap="magma",
)
THEMES = (LIGHT, DARK)


@dataclass(frozen=True)
class FigureSpec:
    name: str
    make: Callable
    module: str


FIGURES: dict[str, FigureSpec] = {}
TABLES: dict[str, FigureSpec] = {}  # the same record: a name, a function, its module


def _registrar(registry: dict[str, FigureSpec], kind: str, name: str) -> Callable:
    def register(make: Callable) -> Callable:
        if name in registry and registry[name].make.__qualname__ != make.__qualname__:
            raise ValueError(f"{kind} name {name!r} is registered twice")
        registry[name] = FigureSpec(name=name, make=make, module=make.__module__)
        return make

    return register


def figure(name: str) -> Callable:
    """Register ``make(theme) -> matplotlib.figure.Figure`` as the figure ``name``."""
    return _registrar(FIGURES, "figure", name)


def table(name: str) -> Callable:
    """Register ``make() -> str`` (Markdown) as the table ``name``."""
    return _registrar(TABLES, "table", name)


def discover() -> dict[str, FigureSpec]:
    """Import every module of this package so that its figures and tables register themselves."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return FIGURES


def file_name(name: str, theme: Theme) -> str:
    return f"{name}.svg" if theme.name == "light" else f"{name}-{theme.name}.svg"


def _style(theme: Theme) -> dict:
    from cycler import cycler

    return {
        "svg.fonttype": "none",          # text stays text: small, crisp, searchable
        "svg.hashsalt": "gptnotes",      # stable ids: the same figure gives the same bytes
        "font.family": "sans-serif",
        # Sizes in pt; at a figure's natural size 1 pt is 4/3 CSS px. The smallest text (tick
        # labels, legends, annotations) is 11 pt: 14.7 px on a wide screen, and about 9 px on
        # a phone for a figure 6 in wide as drawn (the lightbox zooms). See check_legible.
        "font.size": 12,
        "axes.titlesize": 13,
        "axes.labelsize": 12,
        "xtick.labelsize": 11,
        "ytick.labelsize": 11,
        "legend.fontsize": 11,
        "figure.titlesize": 13,
        "text.color": theme.fg,
        "axes.labelcolor": theme.fg,
        "axes.edgecolor": theme.muted,
        "axes.titlecolor": theme.fg,
        "axes.facecolor": "none",
        "axes.grid": True,
        "grid.color": theme.grid,
        "grid.linewidth": 0.6,
        "xtick.color": theme.muted,
        "ytick.color": theme.muted,
        "xtick.labelcolor": theme.fg,
        "ytick.labelcolor": theme.fg,
        "legend.frameon": False,
        "figure.facecolor": "none",
        "savefig.facecolor": "none",
        "savefig.transparent": True,
        "axes.prop_cycle": cycler(color=list(theme.colors)),
        "image.cmap": theme.cmap,
    }


class IllegibleFigure(ValueError):
    """A figure whose smallest text would be shown smaller than ``MIN_TEXT_PX``."""


@dataclass(frozen=True)
class TextSize:
    """The smallest text of a rendered SVG and the SVG's natural width."""

    smallest_pt: float   # font size of the smallest non-blank text (a <text> or a <tspan>), in pt
    text: str            # that text
    width_pt: float      # the SVG's natural width, in pt
    in_math: bool = False  # the smallest text is part of mathematical text (a <tspan>)

    @property
    def width_px(self) -> float:
        """Natural width in CSS px."""
        return self.width_pt * PX_PER_PT

    def shown_px(self, column_px: float = COLUMN_PX) -> float:
        """The smallest text in CSS px once the figure is fitted into a column ``column_px`` wide."""
        return self.smallest_pt * PX_PER_PT * min(1.0, column_px / self.width_px)


_FONT_SIZE = re.compile(r"font-size:\s*([\d.]+)(px|pt)?")
_LENGTH = re.compile(r"\s*([\d.]+)\s*(pt|px)?\s*$")


def _font_size(elem, inherited: float | None) -> float | None:
    m = _FONT_SIZE.search(elem.get("style") or "")
    value = m.group(1) if m else elem.get("font-size")
    if value is None:
        return inherited
    return float(_LENGTH.match(value).group(1))  # SVG user units: pt in matplotlib's SVGs


def text_size(svg: bytes) -> TextSize:
    """Measure an SVG made by matplotlib: its smallest visible text and its natural width.

    Matplotlib's SVGs (``svg.fonttype: none``) give the width in pt and a viewBox in pt, and
    each text a ``font-size`` in the same user units; mathematical text (an exponent such as
    the 3 of 10^3) is a ``<text>`` of ``<tspan>`` parts of their own, smaller, sizes. Every
    part with visible characters counts.
    """
    root = ET.fromstring(svg)
    width = _LENGTH.match(root.get("width", ""))
    viewbox = (root.get("viewBox") or "").replace(",", " ").split()
    if not (width and width.group(2) == "pt" and len(viewbox) == 4):
        raise ValueError("expected an SVG made by matplotlib: a width in pt and a viewBox")
    width_pt = float(width.group(1))
    if abs(float(viewbox[2]) - width_pt) > 0.01 * width_pt:  # user units would not be pt
        raise ValueError(f"the SVG's viewBox width {viewbox[2]} differs from its width {width_pt} pt")
    smallest: tuple[float, str, bool] | None = None

    def walk(elem, size: float | None, in_text: bool) -> None:
        nonlocal smallest
        tag = elem.tag.rsplit("}", 1)[-1]
        size = _font_size(elem, size)
        in_text = in_text or tag == "text"
        if in_text and tag in ("text", "tspan") and (elem.text or "").strip():
            if size is None:
                raise ValueError(f"the SVG text {elem.text.strip()!r} has no font size")
            if smallest is None or size < smallest[0]:
                smallest = (size, elem.text.strip(), tag == "tspan")
        for child in elem:
            walk(child, size, in_text)

    walk(root, None, False)
    if smallest is None:
        return TextSize(float("inf"), "", width_pt)
    return TextSize(smallest[0], smallest[1], width_pt, smallest[2])


def check_legible(name: str, svg: bytes) -> TextSize:
    """Raise :class:`IllegibleFigure` if the smallest text of figure ``name`` would be shown under ``MIN_TEXT_PX``."""
    size = text_size(svg)
    shown = size.shown_px()
    if shown + 1e-6 >= MIN_TEXT_PX:
        return size
    module = FIGURES[name].module.rsplit(".", 1)[-1] if name in FIGURES else "<concept>"
    need_pt = MIN_TEXT_PX / (PX_PER_PT * min(1.0, COLUMN_PX / size.width_px))  # at this width
    need_pt = math.ceil(need_pt * 10 - 1e-9) / 10  # rounded up: following the advice passes
    if size.width_px > COLUMN_PX:
        where = (f"{size.width_px:.0f} CSS px wide as drawn, wider than the {COLUMN_PX:.0f} px column, "
                 f"which shrinks it to {COLUMN_PX / size.width_px:.0%}")
        change = (f"make it narrower (at most {COLUMN_PX / 96:.1f} in wide once drawn: a smaller figsize "
                  f"width, panels stacked vertically rather than side by side) or its smallest text at "
                  f"least {need_pt:.1f} pt")
    else:
        where = f"{size.width_px:.0f} CSS px wide as drawn, shown at its natural size"
        change = f"make its smallest text at least {need_pt:.1f} pt (fontsize=, tick_params(labelsize=))"
    raise IllegibleFigure(
        f"figure {name!r}: its smallest text ({size.text[:30]!r}, {size.smallest_pt:g} pt) would be shown "
        f"{shown:.1f} CSS px high at 1280 px, under the {MIN_TEXT_PX:g} px minimum; the figure is {where}. "
        f"In sitetools/figures/{module}.py, {change}."
        + (" That text is part of mathematical text (an exponent such as the -3 of 10^-3 is drawn at 70% "
           "of the font size): pow10_formatter() writes 10⁻³ at full size." if size.in_math else "")
    )


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def pow10_formatter():
    """A tick formatter for log axes that writes 10⁻³ in plain text (matplotlib's default is
    mathematical text, whose exponent is drawn at 70% of the tick label size)."""
    from matplotlib.ticker import FuncFormatter

    def fmt(v: float, _pos=None) -> str:
        if v <= 0:
            return ""
        k = math.log10(v)
        if abs(k - round(k)) > 1e-9:
            return ""
        k = round(k)
        return "1" if k == 0 else "10" if k == 1 else f"10{str(k).translate(_SUPERSCRIPT)}"

    return FuncFormatter(fmt)


def _cache_key(spec: FigureSpec, variant: str) -> str:
    import matplotlib

    module = importlib.import_module(spec.module)
    h = hashlib.sha256(package_fingerprint().encode())
    h.update(inspect.getsource(module).encode())
    h.update(inspect.getsource(sys.modules[__name__]).encode())
    h.update(matplotlib.__version__.encode())
    h.update(f"{spec.name}:{variant}".encode())
    for path in getattr(module, "INPUTS", ()):  # files a module reads (e.g. benchmark results)
        h.update(Path(path).read_bytes())
    return h.hexdigest()


def _cached(path, make: Callable[[], bytes], use_cache: bool) -> bytes:
    if use_cache and path.is_file():
        return path.read_bytes()
    data = make()
    if use_cache:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return data


def render(name: str, theme: Theme, use_cache: bool = True) -> bytes:
    """Return the SVG bytes of figure ``name`` in ``theme``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spec = FIGURES[name]

    def draw() -> bytes:
        with matplotlib.rc_context(_style(theme)):
            fig = spec.make(theme)
            buf = io.BytesIO()
            fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": "GPT Notes"})
            plt.close(fig)
        return buf.getvalue()

    svg = _cached(CACHE_DIR / f"{_cache_key(spec, str(theme))}.svg", draw, use_cache)
    check_legible(name, svg)  # on cached renders too: the minimum may have changed since
    return svg


def render_table(name: str, use_cache: bool = True) -> str:
    """Return the Markdown of table ``name``."""
    spec = TABLES[name]

    def write() -> bytes:
        text = spec.make()
        if not isinstance(text, str) or "|" not in text:
            raise ValueError(f"table {name!r} must return Markdown with a table, got {text!r:.80}")
        return text.strip().encode("utf-8")

    return _cached(CACHE_DIR / f"{_cache_key(spec, 'markdown')}.md", write, use_cache).decode("utf-8")


def render_all(use_cache: bool = True) -> dict[str, bytes]:
    """Every registered figure in every theme, as ``{file name: svg bytes}``."""
    discover()
    return {file_name(n, t): render(n, t, use_cache) for n in sorted(FIGURES) for t in THEMES}


__all__ = [
    "COLUMN_PX",
    "DARK",
    "LIGHT",
    "MIN_TEXT_PX",
    "THEMES",
    "IllegibleFigure",
    "TextSize",
    "Theme",
    "check_legible",
    "discover",
    "figure",
    "file_name",
    "pow10_formatter",
    "render",
    "render_all",
    "render_table",
    "table",
    "text_size",
]
