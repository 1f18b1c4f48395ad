"""The code examples of README.md, so tests run them as written: a fenced python block right
after a line `<!-- example: NAME -->`."""
from __future__ import annotations

import os
import re

from tests.helpers import ROOT

README = os.path.join(ROOT, "README.md")


def example(name: str) -> str:
    text = open(README, encoding="utf-8").read()
    found = re.search(rf"<!-- example: {re.escape(name)} -->\s*```python\n(.*?)```", text, re.S)
    if found is None:
        raise LookupError(f"README.md has no example {name!r}")
    return found.group(1)
