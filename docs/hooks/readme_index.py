"""mkdocs hook: the site's home page is README.md, its links to docs/ pages made relative to
docs/ (README.md lives beside docs/, the site's pages inside it)."""
from __future__ import annotations

import os
import re

from mkdocs.structure.files import File


def on_files(files, config):
    root = os.path.dirname(config.config_file_path)
    with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
        text = f.read()
    text = re.sub(r"\]\(docs/", "](", text)
    files.append(File.generated(config, "index.md", content=text))
    return files
