#!/usr/bin/env python3
"""Copies each "<!-- snippet: FILE -->" block's FILE into the README and docs/,
after a change to a file the docs show (check_snippets.cmake checks them)."""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parents[2]
marker = re.compile(r"<!-- snippet: (\S+) -->\n```(\w+)\n(.*?)```", re.S)
for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
    text = doc.read_text()
    updated = marker.sub(
        lambda m: f"<!-- snippet: {m[1]} -->\n```{m[2]}\n{(root / m[1]).read_text()}```", text)
    if updated != text:
        doc.write_text(updated)
        print(f"updated {doc.relative_to(root)}", file=sys.stderr)
