"""Check that a step's ``scripts_argv`` parses as shell words, as the node will read it.

OpenC3 hands argv to the shell (``set -- <argv>``), so the node's bash is the authority on
what parses. The check asks bash to read the same text with ``-n``, which parses and runs
nothing. The node script checks again (see :func:`engine.ansible.nodescripts.run_script`), so
an argv that only went wrong after variable substitution fails there too.
"""

import functools
import subprocess

from engine.errors import InvalidInput

BASH = "/bin/bash"
PREFIX = "set -- "  # what the node evaluates, so both read the text the same way


@functools.lru_cache(maxsize=512)
def problem(text: str) -> str | None:
    """Return bash's complaint about ``text`` as argv, or None when it parses."""
    if not text.strip():
        return None
    if "\x00" in text:
        return "contains a NUL byte"
    if (len(text) - len(text.rstrip("\\"))) % 2:
        return "ends in a lone backslash"
    try:
        out = subprocess.run(
            [BASH, "-n", "-c", PREFIX + text],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=10,
            env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
        )
    except subprocess.TimeoutExpired:
        return "could not be checked in time"
    if out.returncode == 0:
        return None
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    first = lines[0] if lines else f"bash exited with {out.returncode}"
    # "bash: -c: line 1: syntax error ..." -> "syntax error ..."
    return first.split(": ", 3)[-1] if first.startswith(BASH + ": -c: ") else first


def check(field: str, text: str | None) -> str | None:
    """Return ``text`` if it parses as shell words, else raise InvalidInput naming ``field``."""
    found = problem(text or "")
    if found:
        raise InvalidInput(f"{field}: does not parse as shell words ({found})")
    return text
