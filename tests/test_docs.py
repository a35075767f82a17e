"""The README reference sections match the parser and the schema."""

from __future__ import annotations

from pathlib import Path

from actor.docs import SECTIONS, main, update_readme

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_sections_are_current():
    text = README.read_text()
    assert update_readme(text) == text, "run: python -m actor.docs --write README.md"
    for name in SECTIONS:
        assert f"<!-- BEGIN {name} -->" in text


def test_stale_readme_is_detected(tmp_path):
    stale = tmp_path / "README.md"
    stale.write_text(README.read_text().replace("`expose [CAMERAS]", "`expose [X]"))
    assert main([str(stale)]) == 1
    assert main([str(stale), "--write"]) == 0
    assert main([str(stale)]) == 0
    assert "`expose [CAMERAS]... EXPTIME" in stale.read_text()
