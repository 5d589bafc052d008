"""The one base class of errors a user sees: a bad setting, unusable data or checkpoint, a run that is busy.
Their message is one line that says what is wrong and what to do; pages and the CLI show `str(e)`, never a
traceback, and catch `StudioError` rather than a list of classes."""


class StudioError(Exception):
    """An error whose message is meant for the user (one line, names the file or field, says how to fix it)."""
