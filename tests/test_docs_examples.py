"""Every ```python block of README.md and docs/*.md runs as written (from the repository root).

Illustrative sketches that are not meant to run are fenced as ```text instead.
"""

from __future__ import annotations

import os
import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _blocks():
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for number, match in enumerate(_BLOCK.finditer(doc.read_text()), 1):
            line = doc.read_text()[: match.start()].count("\n") + 1
            yield pytest.param(match.group(1), id=f"{doc.relative_to(REPO)}:{line}#{number}")


@pytest.mark.parametrize("code", list(_blocks()))
def test_python_block_runs(code, monkeypatch):
    monkeypatch.chdir(REPO)
    exec(compile(code, "<doc>", "exec"), {"__name__": "__doc_example__"})


def test_the_readme_has_python_examples():
    assert len(list(_blocks())) >= 2, "README.md lost its library examples"
    assert os.path.isfile(REPO / "checkpoints" / "demo" / "checkpoint")
