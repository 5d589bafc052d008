"""Values read from a run's files, shown inside Markdown: the one escaping every page uses."""
from __future__ import annotations

MARKDOWN_CHARS = set("\\`[]()<>!")


def plain(text) -> str:
    """A value from a run's files inside Markdown (alerts render it): no image, link, HTML or code can come of it.
    Brackets, parentheses, angle brackets, `!` and backticks are escaped, and bare URLs are not linked."""
    out = "".join("\\" + c if c in MARKDOWN_CHARS else c for c in str(text))
    return out.replace("://", ":\\/\\/").replace("www.", "www\\.")
