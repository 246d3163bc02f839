#!/usr/bin/env python3
"""Takes the C code out of the seed documents, unchanged but for the page's
HTML entities (`&amp;` -> `&`), for the win32_seed_* programs.

    extract_seeds.py SEEDS_DIR OUT_DIR [ORIGINAL_SEEDS_DIR]

From the two Microsoft pages, their fenced code block: a whole program each
(`creator.c`, `writer.c`, and `writer.cpp`, the same). From the network article, a page scraped as text,
the fragments that survived whole, each into a `.inc` a harness includes in a
function body: its CreateMailslot and CreateFile calls lost their argument
lines and two comments lost their `*/`, so those parts are not taken.
"""
import filecmp
import html
import pathlib
import sys


def fenced_block(text):
    start = text.index("```C++\n") + len("```C++\n")
    end = text.index("```", start)
    return html.unescape(text[start:end])


def fragment(text, first, last, name):
    start = text.find(first)
    end = text.find(last, start)
    if start < 0 or end < 0:
        sys.exit(f"extract_seeds.py: the network article has no fragment {name} any more")
    return html.unescape(text[start:end + len(last)]) + "\n"


# The network article's whole fragments: (file, its first text, its last text).
NETWORK_FRAGMENTS = [
    ("network_next_size.inc", "DWORD   msgSize;",
     'printf("Next record is %u bytes.\\n", msgSize);'),
    ("network_read.inc", "void *   buffer;",
     '"ReadFile did not read the correct number of bytes!\\n");'),
    ("network_write.inc", "static LPTSTR MyMessage",
     '"WriteFile did not read the correct number of bytes!\\n");'),
    ("network_set_timeout.inc", "if (!SetMailslotInfo(handle, MAILSLOT_WAIT_FOREVER))",
     'printf("SetMailslotInfo error: %d\\n", GetLastError());'),
]


def main():
    seeds, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    if len(sys.argv) > 3 and pathlib.Path(sys.argv[3]).is_dir():
        original = pathlib.Path(sys.argv[3])
        for doc in original.iterdir():
            if not filecmp.cmp(doc, seeds / doc.name, shallow=False):
                sys.exit(f"extract_seeds.py: {seeds / doc.name} differs from {doc}")
    out.mkdir(parents=True, exist_ok=True)
    outputs = {
        "creator.c": fenced_block((seeds / "creating-a-mailslot.md").read_text()),
        "writer.c": fenced_block((seeds / "writing-to-a-mailslot.md").read_text()),
    }
    outputs["writer.cpp"] = outputs["writer.c"]  # its page marks it C++: built as both
    article = (seeds / "using-a-mailslot-over-a-network.txt").read_text()
    for name, first, last in NETWORK_FRAGMENTS:
        outputs[name] = fragment(article, first, last, name)
    for name, text in outputs.items():
        path = out / name
        if not path.exists() or path.read_text() != text:  # unchanged: no rebuild
            path.write_text(text)


main()
