"""PostgreSQL URLs as they may be shown: never with a password, wherever it was written in them."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["is_postgres_url", "redact", "scrub"]

SCHEMES = ("postgresql", "postgres")
_SECRET_PARAMS = frozenset({"password", "sslpassword"})


def is_postgres_url(text: str) -> bool:
    return urlsplit(text).scheme in SCHEMES


def redact(url: str) -> str:
    """`url` with its password (in the user part or a query parameter) replaced by '***'."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            user, _, host = netloc.rpartition("@")
            if ":" in user:
                user = user.split(":", 1)[0] + ":***"
            netloc = f"{user}@{host}"
        params = parse_qsl(parts.query, keep_blank_values=True)
        query = urlencode([(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in params])
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:  # not even a URL: show nothing of it
        return "postgresql://(unparsable URL)"


def scrub(text: str, url: str) -> str:
    """`text` (an error message) with any password of `url` cut out, should a driver have quoted it."""
    secrets: list[str] = []
    try:
        parts = urlsplit(url)
        if parts.password:
            secrets.append(parts.password)
        secrets += [v for k, v in parse_qsl(parts.query) if k.lower() in _SECRET_PARAMS and v]
    except ValueError:
        return text
    for secret in secrets:
        text = text.replace(secret, "***")
    return text.replace(url, redact(url))
