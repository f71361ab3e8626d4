"""No secret in any message: passwords and tokens taken out of URLs, however the URL spells them.

A URL's user information is everything between "://" and its last "@" (a password may itself hold
"@", "/", "?" or "#"); its password is what follows the first ":" there. Query parameters
whose names speak of secrets (password, token, key, secret, ...) lose their values too.
"""
from __future__ import annotations

import os
import re
import uuid
from urllib.parse import unquote

MASK = "***"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]*")
# a database URL mistyped without its "://" ("postgresql:/user:pw@host", "postgresql:user:pw@host",
# "postgresql//user:pw@host") still holds a password: a database's scheme (SQLAlchemy's dialects, with or without a
# driver), then ":" and any slashes, or "//"; then user information up to the last "@". Only those schemes: a
# folder named "run:2026@node3" is no URL, and nothing of it is a secret.
DATABASE_SCHEMES = r"(?:postgres|postgresql|mysql|mariadb|sqlite|oracle|mssql|cockroachdb)(?:\+[A-Za-z0-9_]+)?"
_DATABASE = re.compile(DATABASE_SCHEMES + r"(?::/*|//)", re.IGNORECASE)
_MISTYPED = re.compile(DATABASE_SCHEMES + r"(?::/*|//)(?=[^\s]*@)", re.IGNORECASE)
_SECRET_NAME = re.compile(r"pass|pwd|secret|token|key|auth|credential|sig|session", re.IGNORECASE)
MAX_MESSAGE = 600  # characters of one message line


def mistyped_url(text: str) -> bool:
    """Whether `text` reads as a database URL without its "://" (postgresql:/user:pw@host, sqlite:study.db)."""
    return "://" not in text and _DATABASE.match(text) is not None


def _is_url(text: str) -> bool:
    return "://" in text or _MISTYPED.match(text) is not None


def _split(url: str) -> tuple[str, str | None, str, str | None]:
    """(scheme://, userinfo or None, the rest before any query, the query or None); a mistyped URL's scheme as typed."""
    if "://" in url:
        scheme, rest = url.split("://", 1)
        scheme += "://"
    else:
        typed = _MISTYPED.match(url)
        scheme, rest = url[:typed.end()], url[typed.end():]
    userinfo = None
    if "@" in rest:  # the last "@" anywhere: a password may hold "?", "/" or "#" (one in a query masks too much, never too little)
        userinfo, rest = rest.rsplit("@", 1)
    query = None
    if "?" in rest:
        rest, query = rest.split("?", 1)
    return scheme, userinfo, rest, query


def secrets(url: str) -> list[str]:
    """The secrets one URL holds (as written and percent-decoded): its password, its secret parameters."""
    if not _is_url(url):
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
    if not _is_url(text):
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


def masked(text: str, *sources: str) -> str:
    """`text` with the secrets of any URL in `sources` (the command line, a function's arguments) or in the text
    itself replaced wherever they appear, and every URL in it masked; nothing else changed."""
    values = [str(s).split("=", 1)[1] for s in sources if "=" in str(s)]  # --study=URL, study.uri=URL
    in_text = [found.rstrip(_CLOSING) for found in _URL.findall(text)]
    for secret in sorted({s for source in [*sources, *values, *in_text] for s in secrets(str(source))}, key=len, reverse=True):
        text = _mask_secret(text, secret)
    return _URL.sub(_url_in_text, text)


SHORT_SECRET = 4  # characters: a shorter secret is masked only where it stands alone


def _mask_secret(text: str, secret: str) -> str:
    """`text` with `secret` masked. A secret of a few characters ("a") is masked where no letter or digit
    adjoins it, not inside every word: masked everywhere it would garble the message, and a word that holds
    it shows nothing of it."""
    if len(secret) >= SHORT_SECRET:
        return text.replace(secret, MASK)
    return re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", MASK, text)


_CLOSING = ".,;:)"  # what ends a sentence or a clause after a URL in running text


def _url_in_text(found: re.Match) -> str:
    """A URL met in running text, masked; the punctuation that ends a sentence or a clause stays the text's."""
    whole = found.group(0)
    bare = whole.rstrip(_CLOSING)
    return url(bare) + whole[len(bare):]


def message(text: str, *sources: str) -> str:
    """A message fit to print: masked(), and the whole cut to one bounded line."""
    text = printable(" ".join(masked(text, *sources).split()))  # one line, and no escape sequence reaches the terminal
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


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 and C1 controls but tab and newline: ESC, BEL, CSI, ...


def printable(text: str) -> str:
    """Text fit for a terminal: control characters (an escape sequence that retitles or clears the terminal,
    a bell, a carriage return that overwrites the line) shown as Python escapes instead (\\x1b)."""
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


REFERENCE_PREFIX = "SWEEPER_SECRET_"


def by_reference(value: str) -> str:
    """The name of an environment variable of this process that holds `value` (set here if none does yet):
    what an object keeps in place of a secret, so that a pickle of it (Ray Tune saves its searcher and
    callbacks under the results directory) holds the name and never the secret. The name is random: it
    says nothing of the value."""
    for name, held in os.environ.items():
        if name.startswith(REFERENCE_PREFIX) and held == value:
            return name
    name = REFERENCE_PREFIX + uuid.uuid4().hex[:16]
    os.environ[name] = value
    return name


def dereference(name: str) -> str:
    """The value by_reference() put under `name`, in this process (or one started from it)."""
    try:
        return os.environ[name]
    except KeyError:
        raise LookupError(f"{name} is not set in this process: the secret it stood for was given to another driver process; "
                          "run the sweep again with --study") from None
