"""Values read from a run's files, a link or an upload, shown inside Markdown: the one escaping every page uses."""
from __future__ import annotations

import re

# The marks that make links, images, HTML, code, math, emphasis and tables: a backslash makes each a plain character
# (CommonMark). `_` and `:` stay (names like data_root, "line 3: ..."); a :colour[...] directive can only style text.
MARKDOWN_CHARS = set("\\`*[]()<>!|~$&#")
# GFM turns bare URLs, www. names and e-mail addresses into links *after* escapes are read, so escaping cannot stop
# it: an invisible zero-width space breaks each pattern instead (the text reads the same).
AUTOLINKS = re.compile(r"(?i)(:)(//)|(www)(\.)|(@)")
ZERO_WIDTH_SPACE = "\u200b"


def plain(text) -> str:
    """A value we did not write, for a Markdown element (alerts, captions, headings): no image, link, HTML, code or
    formatting can come of it. Never put the result inside backticks (a code span shows the backslashes)."""
    broken = AUTOLINKS.sub(lambda m: ZERO_WIDTH_SPACE.join(g for g in m.groups() if g) + (ZERO_WIDTH_SPACE if m.group(5) else ""),
                           str(text))
    return "".join("\\" + c if c in MARKDOWN_CHARS else c for c in broken)
