"""Every public name of gptnotes that takes or returns tensors documents their shapes.

A name of ``gptnotes.__all__`` needs a ``Shape:`` section in its docstring when an annotation
of its signature mentions ``torch.Tensor`` (a parameter or the return value):

- a function: in its own docstring;
- a class: in the class docstring or in the docstring of its ``forward``, when the
  signature of ``__init__`` or ``forward`` mentions a tensor;
- a public method defined in the class body (not inherited), other than ``forward``: in its
  own docstring, when its signature mentions a tensor.

The test lists every name that lacks one, so a single run shows all that is missing.
"""

from __future__ import annotations

import inspect
import re

import torch

import gptnotes

_TENSOR = re.compile(r"\b(?:torch\.)?Tensor\b")
_SHAPE = re.compile(r"^\s*Shape:\s*$", re.M)

# Names whose module belongs to another branch at the time of writing; each entry must still be
# missing (the test fails once it has its Shape section, so that the entry gets removed).
KNOWN_MISSING: dict[str, str] = {}


def _mentions_tensor(fn: object) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    annotations = [p.annotation for p in sig.parameters.values()] + [sig.return_annotation]
    for a in annotations:
        if a is inspect.Parameter.empty or a is inspect.Signature.empty:
            continue
        text = a if isinstance(a, str) else getattr(a, "__name__", "") + " " + repr(a)
        if a is torch.Tensor or _TENSOR.search(text):
            return True
    return False


def _has_shape(doc: str | None) -> bool:
    return bool(doc) and _SHAPE.search(doc) is not None


def _documented_items() -> list[tuple[str, bool]]:
    """``(name, has a Shape section)`` for every callable that needs one."""
    items: list[tuple[str, bool]] = []
    for name in gptnotes.__all__:
        obj = getattr(gptnotes, name)
        if inspect.isclass(obj):
            forward = obj.__dict__.get("forward") or getattr(obj, "forward", None)
            own = [obj.__init__] if obj.__init__ is not object.__init__ else []
            if forward is not None:
                own.append(forward)
            if any(_mentions_tensor(f) for f in own):
                items.append((name, _has_shape(obj.__doc__) or _has_shape(getattr(forward, "__doc__", None))))
            for meth_name, member in vars(obj).items():
                if meth_name.startswith("_") or meth_name == "forward":
                    continue
                fn = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
                if inspect.isfunction(fn) and _mentions_tensor(fn):
                    items.append((f"{name}.{meth_name}", _has_shape(fn.__doc__)))
        elif callable(obj) and _mentions_tensor(obj):
            items.append((name, _has_shape(obj.__doc__)))
    return items


def test_the_check_sees_tensors_and_shape_sections():
    """The two detectors on their own, so that the main test cannot pass by seeing nothing."""

    def takes(x: torch.Tensor) -> int:
        """Doc.

        Shape:
            - x: ``(B, T)``.
        """
        return 0

    def plain(n: int) -> str:
        """Doc."""
        return ""

    assert _mentions_tensor(takes) and not _mentions_tensor(plain)
    assert _has_shape(takes.__doc__) and not _has_shape(plain.__doc__)
    names = [n for n, _ in _documented_items()]
    for expected in ("Head", "BigramLanguageModel", "softmax", "get_batch", "bigram_counts"):
        assert expected in names


def test_every_public_callable_with_tensors_has_a_shape_section():
    items = _documented_items()
    missing = sorted(n for n, ok in items if not ok)
    unexpected = [n for n in missing if n not in KNOWN_MISSING]
    assert not unexpected, (
        f"{len(unexpected)} public names take or return tensors but have no 'Shape:' section: "
        + ", ".join(unexpected)
    )
    fixed = sorted(set(KNOWN_MISSING) - set(missing))
    assert not fixed, f"these now have a Shape section; remove them from KNOWN_MISSING: {fixed}"


def test_known_missing_names_exist():
    """An entry of KNOWN_MISSING that names nothing would hide nothing and mean nothing."""
    for name in sorted(KNOWN_MISSING):  # empty once every name has its Shape section
        head, _, meth = name.partition(".")
        obj = getattr(gptnotes, head)
        assert not meth or callable(getattr(obj, meth))


def test_each_api_page_documents_exactly_its_module_public_names():
    """An API page that lists its members lists exactly the module's ``__all__``: a new
    public name is documented, and no page names something that is gone. A subpackage
    (``gptnotes.bitnet``) has a page per module in a folder of its name (``api/bitnet/``):
    together they document exactly the subpackage's ``__all__``, each name once."""
    import importlib
    import re
    from collections import Counter

    from tests.site_files import ROOT

    api = ROOT / "docs" / "api"
    checked = 0
    by_package: dict[str, Counter] = {}
    for page in sorted(api.rglob("*.md")):
        text = page.read_text(encoding="utf-8")
        m = re.search(r"^:::\s*(gptnotes(?:\.\w+)+)", text, re.M)
        if not m:
            continue
        listed = re.findall(r"^\s+- (\w+)\s*$", text.split("members:", 1)[1], re.M) if "members:" in text else None
        if listed is None:
            continue
        public = set(importlib.import_module(m[1]).__all__)
        name = page.relative_to(api).as_posix()
        assert set(listed) == public, (
            f"{name}: not documented {sorted(public - set(listed))}, not public {sorted(set(listed) - public)}")
        if page.parent != api:  # api/bitnet/quant.md documents gptnotes.bitnet.quant
            package = "gptnotes." + ".".join(page.parent.relative_to(api).parts)
            assert m[1] == f"{package}.{page.stem}", f"{name} documents {m[1]}"
            by_package.setdefault(package, Counter()).update(listed)
        checked += 1
    assert checked >= 5
    assert "gptnotes.bitnet" in by_package
    for package, names in by_package.items():
        public = set(importlib.import_module(package).__all__)
        twice = sorted(n for n, c in names.items() if c > 1)
        assert set(names) == public and not twice, (
            f"{package}: on no module page {sorted(public - set(names))}, not public {sorted(set(names) - public)}, "
            f"on two pages {twice}")
