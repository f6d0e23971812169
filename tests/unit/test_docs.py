"""The repository's documents are current and self-contained."""

from __future__ import annotations

import re
from pathlib import Path

from api.reference import render

ROOT = Path(__file__).resolve().parents[2]


def test_api_reference_matches_the_served_document() -> None:
    assert (ROOT / "docs" / "api.md").read_text() == render(), (
        "regenerate with: python -m api.reference > docs/api.md"
    )


def test_readme_links_only_to_files_in_the_repository() -> None:
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#]+)\)", readme)
    assert targets, "the README links to its docs"
    for target in targets:
        assert not target.startswith(("http", "/", "..")), target
        assert (ROOT / target).exists(), target
    assert "../" not in readme
