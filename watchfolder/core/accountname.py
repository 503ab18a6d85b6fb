"""The one rule for account names, shared by the config and the token store.

An account name becomes a folder under ``root`` (often an SMB or NFS share), a token file
``state_dir/tokens/<name>.json`` (and its lock), a metrics label and a word in every log line. The
rule keeps all of these safe: letters (any script), digits, spaces, ``.``, ``_`` and ``-``; it starts
with a letter or a digit (never hidden, never ``..``); it does not end with a space or a dot (SMB
clients strip those, so the folder would not be found again); at most 64 characters. ``Alice Smith``
and ``josé`` pass; ``a/b``, ``.hidden``, ``x:y`` (not allowed on SMB) and a newline do not.
"""

from __future__ import annotations

MAX_LENGTH = 64
RULE = ("1 to 64 letters, digits, spaces, '.', '_' or '-', starting with a letter or digit and not ending "
        "with a space or '.'")


def problem(name: object) -> str | None:
    """Return None when ``name`` is a valid account name, else what is wrong (the rule included)."""
    if not isinstance(name, str) or not name:
        return f"an account name must be usable as a folder name: {RULE}"
    bad = sorted({char for char in name if not (char.isalnum() or char in " ._-")})
    if bad:
        shown = ", ".join(repr(char) for char in bad[:5])
        return f"an account name must be usable as a folder name: {RULE} (not {shown})"
    if len(name) > MAX_LENGTH:
        return f"an account name must be usable as a folder name: {RULE} (this one has {len(name)})"
    if not name[0].isalnum() or name[-1] in " .":
        return f"an account name must be usable as a folder name: {RULE}"
    return None


def is_valid(name: object) -> bool:
    """True when ``name`` follows the rule."""
    return problem(name) is None
