"""Small repairs of the HTML that MkDocs hands to the theme (called from the build hooks).

``unique_code_line_ids``: pymdownx.highlight numbers the code blocks of one Markdown
conversion from 0 and gives each line an ``id`` (``__span-<block>-<line>`` with
``line_spans``, ``__codelineno-<block>-<line>`` with ``anchor_linenums``). mkdocstrings
converts every docstring on its own, so on an API page every signature and every example
restarts at block 0: the same ids appear many times and a link to a line of the second
example lands on the first. The repair gives each colliding block a fresh number, in its
``id``, ``name`` and ``href`` alike; blocks that do not collide keep their ids (and links
to them stay valid).
"""

from __future__ import annotations

import re

_PRE = re.compile(r"<pre\b.*?</pre>", re.S | re.I)
# Only ids written by pymdownx itself: right after a quote or a '#'. mkdocstrings' source
# listings prefix theirs ("obj--source--__codelineno-0-3") and are unique already.
_LINE_REF = re.compile(r'(?<=["#])(?P<kind>__span|__codelineno)-(?P<block>\d+)-(?P<line>\d+)(?=")')
_LINE_ID = re.compile(r'\bid="(?P<id>(?:__span|__codelineno)-\d+-\d+)"')


def unique_code_line_ids(html: str) -> str:
    """Renumber the code blocks whose line ids were already used earlier in ``html``."""
    blocks = [int(m["block"]) for m in _LINE_REF.finditer(html)]
    if not blocks:
        return html
    next_block = max(blocks) + 1
    seen: set[str] = set()

    def fix(m: re.Match) -> str:
        nonlocal next_block
        region = m.group(0)
        ids = set(_LINE_ID.findall(region))
        if ids & seen:
            renumber: dict[str, int] = {}
            for ref in _LINE_REF.finditer(region):
                if ref["block"] not in renumber:
                    renumber[ref["block"]] = next_block
                    next_block += 1
            region = _LINE_REF.sub(lambda r: f'{r["kind"]}-{renumber[r["block"]]}-{r["line"]}', region)
            ids = set(_LINE_ID.findall(region))
        seen.update(ids)
        return region

    return _PRE.sub(fix, html)
