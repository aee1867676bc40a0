"""Find the code fences of a Markdown page, including fences nested in admonitions and tabs.

This is the one parser that the build (outputs under snippets) and the copy-paste test use.
The fence-count test checks it against two independent parsers: markdown-it (through
pytest-markdown-docs) and Python-Markdown (the HTML of the built site).

Fence options use the brace form of pymdownx.superfences, which Material renders cleanly::

    ```{.python}                    a snippet: runs on its own in a fresh interpreter
    ```{.python continuation}       runs after the fences before it on the page (one chain)
    ```{.python notest}             never runs; needs a reason in the line above:
                                    <!-- notest: why this fence cannot run -->
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

PYTHON_LANGS = {"python", "py", "python3"}

_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`\n]*)$")
_NOTEST_REASON = re.compile(r"<!--\s*notest:\s*(?P<reason>.*?)\s*-->")


@dataclass
class Fence:
    """One fenced code block of a Markdown file."""

    path: str
    line: int  # 1-based line number of the opening ``` line
    end_line: int  # 1-based line number of the closing ``` line
    indent: str
    info: str
    lang: str
    classes: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    attrs: dict[str, str] = field(default_factory=dict)
    code: str = ""
    notest_reason: str | None = None

    @property
    def is_python(self) -> bool:
        return self.lang in PYTHON_LANGS

    @property
    def runs(self) -> bool:
        """A Python fence that the tests and the build execute."""
        return self.is_python and "notest" not in self.flags

    @property
    def continuation(self) -> bool:
        return "continuation" in self.flags

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def parse_info(info: str) -> tuple[str, list[str], set[str], dict[str, str]]:
    """Split a fence's info string into (lang, classes, flags, attrs).

    ``{.python .extra continuation title="A title"}`` gives ``("python", ["extra"],
    {"continuation"}, {"title": "A title"})``; the plain form ``python continuation`` is
    read the same way (it renders badly in Material, and a test forbids it on the site).
    """
    info = info.strip()
    lang, classes, flags, attrs = "", [], set(), {}
    if info.startswith("{") and info.endswith("}"):
        try:
            parts = shlex.split(info[1:-1])
        except ValueError:
            parts = info[1:-1].split()
        for part in parts:
            if part.startswith("."):
                if not lang:
                    lang = part[1:]
                else:
                    classes.append(part[1:])
            elif "=" in part:
                key, value = part.split("=", 1)
                attrs[key] = value
            elif part.startswith("#"):
                attrs["id"] = part[1:]
            else:
                flags.add(part)
    elif info:
        parts = info.split()
        lang = parts[0]
        for part in parts[1:]:
            if "=" in part:
                key, value = part.split("=", 1)
                attrs[key] = value.strip("\"'")
            else:
                flags.add(part)
    return lang.lower(), classes, flags, attrs


def parse_text(text: str, path: str = "<text>") -> list[Fence]:
    """Return every fence of ``text`` in order of appearance."""
    lines = text.splitlines()
    out: list[Fence] = []
    i = 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        indent, marker, info = m["indent"], m["fence"], m["info"]
        close = re.compile(r"^[ \t]*" + re.escape(marker[0]) + "{" + str(len(marker)) + r",}[ \t]*$")
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            line = lines[j]
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
            j += 1
        lang, classes, flags, attrs = parse_info(info)
        reason = None
        if i > 0:
            r = _NOTEST_REASON.search(lines[i - 1])
            if r:
                reason = r["reason"]
        out.append(
            Fence(
                path=path, line=i + 1, end_line=min(j, len(lines) - 1) + 1, indent=indent,
                info=info.strip(), lang=lang, classes=classes, flags=flags, attrs=attrs,
                code="\n".join(body) + "\n", notest_reason=reason,
            )
        )
        i = j + 1
    return out


def parse_file(path: str | Path) -> list[Fence]:
    return parse_text(Path(path).read_text(encoding="utf-8"), str(path))


def chains(fences: list[Fence]) -> list[list[Fence]]:
    """Group the running Python fences into chains: a fence plus its continuations.

    Raises ``ValueError`` for a continuation with nothing before it.
    """
    out: list[list[Fence]] = []
    for f in fences:
        if not f.runs:
            continue
        if f.continuation:
            if not out:
                raise ValueError(f"{f.where}: a continuation fence with no Python fence before it")
            out[-1].append(f)
        else:
            out.append([f])
    return out
