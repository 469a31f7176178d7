"""The README a newcomer reads and the reference in docs/: every link between them leads to a
page that exists, and to a heading that is there."""

import re

import pytest

from harness.live import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(text: str) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation out, spaces as '-'."""
    headings = [line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")]
    return {re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", heading.lower())) for heading in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_link_leads_somewhere(page):
    text = page.read_text(encoding="utf-8")
    in_code = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    for target in LINK.findall(in_code):
        if target.startswith(("http://", "https://", "data:")):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.is_file(), f"{page.name}: {target} leads to no file"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked.read_text(encoding="utf-8")), (
                f"{page.name}: {target} leads to no heading"
            )


def test_the_readme_starts_with_the_two_commands_and_a_first_model():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    first_screen = "\n".join(text.splitlines()[:40])
    for command in ("make dev", "make test", "ml-assets new-model", "dg check defs",
                    "make materialize MODEL="):  # fmt: skip
        assert command in first_screen, command
