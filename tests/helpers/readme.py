"""The code examples of README.md and of the docs pages, so tests run them as written: a fenced
python block right after a line `<!-- example: NAME -->`. Names are unique across the files."""
from __future__ import annotations

import glob
import os
import re
from typing import Dict, List, NamedTuple, Optional, Sequence

from tests.helpers import ROOT

TAG = re.compile(r"<!-- example: ([\w-]+) -->[ \t]*\n```python\n(.*?)^```", re.S | re.M)
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def markdown_files() -> List[str]:
    """README.md and every page of docs/, as paths relative to the repository root."""
    pages = glob.glob(os.path.join(ROOT, "docs", "*.md"))
    return ["README.md"] + sorted(os.path.relpath(p, ROOT) for p in pages)


class Example(NamedTuple):
    name: str
    file: str    # relative to the repository root
    code: str


def examples(files: Optional[Sequence[str]] = None) -> Dict[str, Example]:
    """Every tagged example of `files` (default: markdown_files()), by name."""
    found: Dict[str, Example] = {}
    for f in markdown_files() if files is None else files:
        with open(os.path.join(ROOT, f), encoding="utf-8") as text:
            for m in TAG.finditer(text.read()):
                name = m.group(1)
                if name in found:
                    raise ValueError(f"example {name!r} is in {found[name].file} and in {f}")
                found[name] = Example(name, f, m.group(2))
    return found


def example(name: str, files: Optional[Sequence[str]] = None) -> str:
    """The code of example `name`, from `files` (default: README.md and docs/*.md)."""
    found = examples(files)
    if name not in found:
        where = ", ".join(markdown_files() if files is None else files)
        raise LookupError(f"no example {name!r} in {where}")
    return found[name].code


def untagged_blocks(file: str) -> List[str]:
    """The python blocks of `file` that carry no example tag, so no test runs them."""
    with open(os.path.join(ROOT, file), encoding="utf-8") as f:
        text = f.read()
    tagged = {m.start(2) for m in TAG.finditer(text)}
    return [m.group(1) for m in BLOCK.finditer(text) if m.start(1) not in tagged]
