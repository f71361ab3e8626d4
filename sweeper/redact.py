"""No secret in any message: passwords and tokens taken out of URLs, however the URL spells them.

A URL's user information is everything between "://" and its last "@" (a password may itself hold
"@", "/", "?" or "#"); its password is what follows the first ":" there. Query parameters
whose names speak of secrets (password, token, key, secret, ...) lose their values too.
"""
from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "***"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]*")
_SECRET_NAME = re.compile(r"pass|pwd|secret|token|key|auth|credential|sig|session", re.IGNORECASE)
MAX_MESSAGE = 600  # characters of one message line


def _split(url: str) -> tuple[str, str | None, str, str | None]:
    """(scheme://, userinfo or None, the rest before any query, the query or None)."""
    scheme, rest = url.split("://", 1)
    userinfo = None
    if "@" in rest:  # the last "@" anywhere: a password may hold "?", "/" or "#" (one in a query masks too much, never too little)
        userinfo, rest = rest.rsplit("@", 1)
    query = None
    if "?" in rest:
        rest, query = rest.split("?", 1)
    return scheme + "://", userinfo, rest, query


def secrets(url: str) -> list[str]:
    """The secrets one URL holds (as written and percent-decoded): its password, its secret parameters."""
    if "://" not in url:
        return []
    _, userinfo, _, query = _split(url)
    found = []
    if userinfo and ":" in userinfo:
        found.append(userinfo.split(":", 1)[1])
    for pair in (query or "").split("&"):
        name, _, value = pair.partition("=")
        if value and _SECRET_NAME.search(name):
            found.append(value)
    return [s for secret in found for s in {secret, unquote(secret)} if s]


def url(text: str) -> str:
    """One URL with its password and secret parameters masked."""
    if "://" not in text:
        return text
    scheme, userinfo, rest, query = _split(text)
    shown = scheme
    if userinfo is not None:
        shown += (userinfo.split(":", 1)[0] + ":" + MASK if ":" in userinfo else userinfo) + "@"
    shown += rest
    if query is not None:
        pairs = []
        for pair in query.split("&"):
            name, eq, value = pair.partition("=")
            pairs.append(f"{name}={MASK}" if eq and value and _SECRET_NAME.search(name) else pair)
        shown += "?" + "&".join(pairs)
    return shown


def message(text: str, *sources: str) -> str:
    """A message fit to print: the secrets of any URL in `sources` (the command line) or in the text itself
    replaced wherever they appear, every URL masked, and the whole cut to one bounded line."""
    for source in [*sources, *_URL.findall(text)]:
        for secret in sorted(secrets(str(source)), key=len, reverse=True):
            text = text.replace(secret, MASK)
    text = _URL.sub(lambda m: url(m.group(0)), text)
    text = " ".join(text.split())  # one line
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def quoted(text: str) -> str:
    """The URL with its user and password percent-encoded, as database drivers parse them: a password
    holding "@" or "/" then reaches the server whole instead of being split into a wrong host."""
    from urllib.parse import quote

    if "://" not in text:
        return text
    scheme, userinfo, rest, query = _split(text)
    if userinfo is None:
        return text
    user, colon, password = userinfo.partition(":")
    encoded = quote(unquote(user), safe="") + (colon + quote(unquote(password), safe="") if colon else "")
    return f"{scheme}{encoded}@{rest}" + (f"?{query}" if query is not None else "")
