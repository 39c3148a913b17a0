"""Text from documents and models made safe to print on a terminal.

An indexed page or a model's output can hold escape sequences (`ESC ] 0 ; title BEL` retitles
the window, `ESC [ 2 J` clears it, others rewrite what was printed before), so every place the
CLI prints such text goes through `printable`, and through `shown` where rich markup is parsed.
"""

from __future__ import annotations

import re

from rich.markup import escape

# A whole escape sequence (CSI, OSC up to BEL or ST, or a two-character escape), then any other
# C0 control but tab and newline, DEL and the C1 controls, and the bidirectional overrides that
# make a line read differently from what it holds.
_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[@-Z\\-_]?"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"
)


def printable(text: str) -> str:
    """`text` with control characters and escape sequences removed; tabs and newlines kept."""
    return _CONTROL.sub("", text)


def shown(text: str) -> str:
    """`text` for a rich `print`: no control characters, and no `[...]` read as markup."""
    return escape(printable(text))
