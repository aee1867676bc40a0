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
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import io
import os
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
import sys

from sitetools.runner import CACHE_DIR as _FENCE_CACHE
from sitetools.runner import package_fingerprint

CACHE_DIR = _FENCE_CACHE.parent / "figures"


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


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def pow10_formatter():
    """A tick formatter for log axes that writes 10⁻³ in plain text (matplotlib's default is
    mathematical text, whose exponent is drawn at 70% of the tick label size)."""
    import math

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

    return _cached(CACHE_DIR / f"{_cache_key(spec, str(theme))}.svg", draw, use_cache)


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


__all__ = ["Theme", "LIGHT", "DARK", "THEMES", "figure", "table", "discover", "render", "render_all", "render_table", "file_name",
           "pow10_formatter"]
