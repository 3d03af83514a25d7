"""Identifiers in OpenC3's format."""

import secrets
import string

ALNUM = string.ascii_letters + string.digits


def new_uuid() -> str:
    """Return a 12-character uuid: 11 random letters/digits, then a lowercase letter."""
    return "".join(secrets.choice(ALNUM) for _ in range(11)) + secrets.choice(
        string.ascii_lowercase
    )
