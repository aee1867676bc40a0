"""The common-misconceptions boxes: found, anchored, listed, and held to the page anatomy
(collapsed, in their section, addressed to the reader rather than to someone's notes)."""

from __future__ import annotations

from sitetools import misconceptions

PAGE = """# Batches

Some lesson.

## Common misconceptions

??? misconception "`get_batch` returns targets equal to the inputs"

    It is tempting to think so; in fact they are shifted by one.

??? misconception "`scatter_` copies"

    Text.

## API
"""


def test_boxes_are_found_with_anchors_and_listed_with_their_code_titles(tmp_path):
    found = misconceptions.find(PAGE)
    assert [m.anchor for m in found] == ["misconception-getbatch-returns-targets-equal-to-the-inputs",
                                          "misconception-scatter-copies"]
    assert misconceptions.problems(PAGE, "p.md") == []
    (tmp_path / "concepts").mkdir()
    (tmp_path / "concepts" / "batching.md").write_text(PAGE, encoding="utf-8")
    page = misconceptions.render_page(tmp_path, ["concepts/batching.md"])
    assert page.startswith("# Common misconceptions\n")
    assert "## Batches" in page  # grouped by concept
    assert "- [`get_batch` returns targets equal to the inputs](concepts/batching.md#misconception-getbatch" in page
    assert "**2**" in page


def test_a_box_open_or_fixed_or_outside_its_section_is_refused():
    page = PAGE.replace('??? misconception "`scatter_` copies"', '???+ misconception "`scatter_` copies"')
    assert any("is collapsed" in p for p in misconceptions.problems(page, "p.md"))
    page = PAGE.replace('??? misconception "`scatter_` copies"', '!!! misconception "`scatter_` copies"')
    assert any("is collapsed" in p for p in misconceptions.problems(page, "p.md"))
    early = '??? misconception "Too early"\n\n    Text.\n\n' + PAGE
    assert any("'Too early' is not in" in p for p in misconceptions.problems(early, "p.md"))
    late = PAGE + '\n??? misconception "After the API"\n\n    Text.\n'
    assert any("'After the API' is not in" in p for p in misconceptions.problems(late, "p.md"))


def test_the_old_correction_boxes_are_refused():
    page = PAGE + '\n!!! correction "What the notes get wrong"\n\n    Text.\n'
    found = misconceptions.problems(page, "p.md")
    assert len(found) == 1 and "'correction' boxes are gone" in found[0] and found[0].startswith("p.md:")
    assert len(misconceptions.find(page)) == 2  # and it is not listed
