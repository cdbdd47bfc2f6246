"""JDBC URLs as FlinkX jobs write them, parsed into what a Python MySQL client needs.

FlinkX jobs name their databases with MySQL Connector/J URLs
(``jdbc:mysql://host:port/db?useUnicode=true&characterEncoding=utf8``). Sluice connects with
PyMySQL, so the URL is taken apart here, once, and every connector gets host, port, database
and options from :class:`JdbcUrl`.

Credentials never live in a URL: Connector/J accepts ``user:pass@host`` and ``?password=``,
but a URL is printed in logs, errors and ``repr``, where a password must never appear. Such
URLs are refused with a message that says to use the job's ``password`` key instead.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import parse_qsl, quote, unquote

from pydantic import AfterValidator

from coordinator.errors import ConfigError

EXPECTED = "jdbc:mysql://host[:port]/database[?options]"
DEFAULT_PORT = 3306
_SCHEMES = ("mysql", "mariadb")
# family → (URL schemes, default port, the form a message shows)
FAMILIES = {
    "mysql": (_SCHEMES, DEFAULT_PORT, EXPECTED),
    "postgresql": (("postgresql",), 5432, "jdbc:postgresql://host[:port]/database[?options]"),
}

# scheme, authority (up to the first '/', '?' or end), then path and query.
_URL_RE = re.compile(
    r"^jdbc:(?P<scheme>[A-Za-z0-9:]+)://(?P<authority>[^/?#]*)(?P<rest>.*)$", re.S | re.I
)
_HOST_PORT_RE = re.compile(
    r"^(?:\[(?P<ipv6>[0-9A-Fa-f:.%]+)\]|(?P<host>[^:\[\]]+))(?::(?P<port>.*))?$"
)
# Anything that looks like it carries a secret: user:pass@, password=..., pwd=...
_USERINFO_RE = re.compile(r"(//)[^/@?#]*@")
_SECRET_OPTION_RE = re.compile(r"([?&;][^=&;]*(?:password|pwd|secret)[^=&;]*=)[^&;#]*", re.I)


class JdbcUrlError(ConfigError, ValueError):
    """A jdbcUrl that Sluice cannot use. It is a :class:`ValueError` too, so that pydantic
    validators can raise it and the job loader reports it under the key's JSON path."""


def _is_secret_option(key: str) -> bool:
    low = key.lower()
    return "password" in low or "secret" in low or low == "pwd"


def redact_url(text: str) -> str:
    """``text`` with anything that may be a credential masked: safe for logs and errors."""
    text = _USERINFO_RE.sub(r"\1***@", text)
    return _SECRET_OPTION_RE.sub(r"\1***", text)


def _quoted(url: str) -> str:
    return json.dumps(redact_url(url), ensure_ascii=False)


def _fail(url: str, why: str = "", expected: str = EXPECTED) -> JdbcUrlError:
    return JdbcUrlError(f"expected {expected}, got {_quoted(url)}" + (f" ({why})" if why else ""))


@dataclass(frozen=True, kw_only=True, repr=False)
class JdbcUrl:
    """A parsed MySQL/MariaDB JDBC URL. Holds no credentials (:func:`parse_jdbc_url` refuses
    URLs that carry them), so printing it is always safe."""

    host: str
    port: int = DEFAULT_PORT
    database: str
    options: dict[str, str] = field(default_factory=dict)
    scheme: str = "mysql"

    def display(self) -> str:
        """The URL in canonical form, for logs and messages."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        text = f"jdbc:{self.scheme}://{host}:{self.port}/{quote(self.database)}"
        if self.options:
            text += "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in self.options.items())
        return redact_url(text)  # belt and braces: options are checked at parse time

    def __repr__(self) -> str:
        return f"JdbcUrl({self.display()!r})"

    __str__ = display

    def charset(self) -> str:
        """The client character set: always ``utf8mb4``, whatever ``characterEncoding``
        says. Connector/J decodes into Java's Unicode strings; Sluice's rows are Unicode too,
        and ``utf8mb4`` is the one MySQL client character set every column's own character set
        converts to without loss (``latin1`` would turn ``中文`` into ``??`` without an
        error). :func:`parse_jdbc_url` still refuses a ``characterEncoding`` that names no
        encoding, as Connector/J would."""
        return "utf8mb4"


# MySQL's names that are not Python codec names.
_MYSQL_ENCODINGS = {"utf8mb4", "utf8mb3", "utf8", "binary"}


def _check_encoding(url: str, key: str, value: str) -> None:
    name = value.strip().lower()
    if name.replace("-", "").replace("_", "") in _MYSQL_ENCODINGS:
        return
    try:
        codecs.lookup(name)
    except LookupError:
        raise JdbcUrlError(
            f"the URL {_quoted(url)} has {key}={value!r}, which is not a character encoding "
            "(e.g. utf8); Sluice always reads and writes in utf8mb4, converted by the server "
            "from each column's own character set"
        ) from None


def parse_jdbc_url(url: str, family: str = "mysql") -> JdbcUrl:
    """Parse ``jdbc:mysql://host[:port]/database[?k=v&...]`` (also ``jdbc:mariadb://``,
    ``[IPv6]`` hosts, no port = 3306), or with ``family="postgresql"``
    ``jdbc:postgresql://host[:port]/database`` (no port = 5432). Raises
    :class:`JdbcUrlError` saying what is expected; the message never repeats a credential."""
    schemes, default_port, expected = FAMILIES[family]
    if not isinstance(url, str):
        raise JdbcUrlError(f"expected a string {expected}, got {type(url).__name__}")
    text = url.strip()
    if not text:
        raise JdbcUrlError(f"expected {expected}, got an empty string")
    if re.match(rf"^({'|'.join(schemes)})://", text, re.I):
        raise _fail(text, "add the 'jdbc:' prefix", expected)
    m = _URL_RE.match(text)
    if m is None:
        raise _fail(text, "", expected)
    scheme = m["scheme"].lower()
    if scheme not in schemes:
        why = (
            "only MySQL and MariaDB URLs are supported here"
            if family == "mysql"
            else "only PostgreSQL URLs are supported here"
        )
        if scheme.startswith(schemes):  # jdbc:mysql:loadbalance:// and friends
            why = "load-balanced and replication URLs are not supported; give one host"
        raise _fail(text, why, expected)
    authority, rest = m["authority"], m["rest"]
    if "@" in authority:
        raise JdbcUrlError(
            f"the URL {_quoted(text)} carries credentials; put them in the job's "
            "username and password keys instead"
        )
    if not authority:
        raise _fail(text, "the host is missing", expected)
    if "," in authority:
        raise _fail(text, "multiple hosts are not supported; give one host", expected)
    hp = _HOST_PORT_RE.match(authority)
    if hp is None:
        raise _fail(text, f"IPv6 hosts go in brackets, like [::1]:{default_port}", expected)
    host = hp["ipv6"] or hp["host"]
    port = default_port
    if hp["port"] is not None:
        if not hp["port"].isdigit() or not 0 < int(hp["port"]) < 65536:
            raise _fail(text, f"port {hp['port']!r} is not a number from 1 to 65535", expected)
        port = int(hp["port"])
    path, _, query = rest.partition("?")
    query = query.split("#", 1)[0]
    database = unquote(path.lstrip("/").split("#", 1)[0])
    if not database:
        raise _fail(text, "the database is missing", expected)
    if "/" in database:
        raise _fail(text, f"{database!r} is not a database name", expected)
    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if _is_secret_option(key):
            raise JdbcUrlError(
                f"the URL {_quoted(text)} carries a password option ({key}); put the "
                "password in the job's password key instead"
            )
        if key.lower() == "characterencoding":
            _check_encoding(text, key, value)
        options[key] = value
    return JdbcUrl(host=host, port=port, database=database, options=options, scheme=scheme)


def checked_jdbc_url(url: str) -> str:
    """``url`` stripped, once :func:`parse_jdbc_url` accepts it: a pydantic validator, so that
    a bad URL is reported under its JSON path when the job is loaded, not when a task starts."""
    parse_jdbc_url(url)
    return url.strip()


MysqlJdbcUrl = Annotated[str, AfterValidator(checked_jdbc_url)]
"""A config field holding a MySQL/MariaDB JDBC URL, checked at load time."""


def checked_postgres_url(url: str) -> str:
    """:func:`checked_jdbc_url` for ``jdbc:postgresql://`` URLs."""
    parse_jdbc_url(url, "postgresql")
    return url.strip()


PostgresJdbcUrl = Annotated[str, AfterValidator(checked_postgres_url)]
"""A config field holding a PostgreSQL JDBC URL, checked at load time."""
