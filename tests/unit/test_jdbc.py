"""coordinator.jdbc: FlinkX jdbcUrls -> host/port/database/options, never a credential."""

from __future__ import annotations

import pytest

from coordinator.errors import ConfigError
from coordinator.jdbc import JdbcUrl, JdbcUrlError, parse_jdbc_url, redact_url


def test_flinkx_url_with_options() -> None:
    url = parse_jdbc_url("jdbc:mysql://127.0.0.1:3306/rpl?useUnicode=true&characterEncoding=utf8")
    assert url == JdbcUrl(
        host="127.0.0.1",
        port=3306,
        database="rpl",
        options={"useUnicode": "true", "characterEncoding": "utf8"},
    )
    assert url.charset() == "utf8mb4"


@pytest.mark.parametrize(
    ("text", "host", "port", "database", "scheme"),
    [
        ("jdbc:mysql://db.example.com/shop", "db.example.com", 3306, "shop", "mysql"),
        ("jdbc:mariadb://10.0.0.5:3307/shop", "10.0.0.5", 3307, "shop", "mariadb"),
        ("JDBC:MySQL://h:1/d", "h", 1, "d", "mysql"),
        ("jdbc:mysql://[::1]:3310/d", "::1", 3310, "d", "mysql"),
        ("jdbc:mysql://[fe80::1]/d", "fe80::1", 3306, "d", "mysql"),
        ("  jdbc:mysql://h/my%20db  ", "h", 3306, "my db", "mysql"),
    ],
)
def test_accepted_forms(text: str, host: str, port: int, database: str, scheme: str) -> None:
    url = parse_jdbc_url(text)
    assert (url.host, url.port, url.database, url.scheme) == (host, port, database, scheme)
    assert url.options == {}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("jdbc:postgresql://x/y", "only MySQL and MariaDB"),
        ("mysql://h/d", "add the 'jdbc:' prefix"),
        ("jdbc:mysql://h:3306", "the database is missing"),
        ("jdbc:mysql://h:3306/", "the database is missing"),
        ("jdbc:mysql:///d", "the host is missing"),
        ("jdbc:mysql://h:port/d", "is not a number from 1 to 65535"),
        ("jdbc:mysql://h:70000/d", "is not a number from 1 to 65535"),
        ("jdbc:mysql://a,b/d", "multiple hosts"),
        ("jdbc:mysql:loadbalance://a/d", "load-balanced"),
        ("jdbc:mysql://::1/d", "IPv6 hosts go in brackets"),
        ("", "empty string"),
        ("127.0.0.1:3306/db", ""),
    ],
)
def test_rejected_forms_say_what_is_expected(text: str, why: str) -> None:
    with pytest.raises(JdbcUrlError) as info:
        parse_jdbc_url(text)
    message = str(info.value)
    assert "jdbc:mysql://host[:port]/database[?options]" in message
    assert why in message
    assert "\n" not in message
    # usable both as the user-facing ConfigError and inside pydantic validators
    assert isinstance(info.value, ConfigError)
    assert isinstance(info.value, ValueError)


def test_postgres_message_names_the_url() -> None:
    with pytest.raises(JdbcUrlError, match=r'got "jdbc:postgresql://x/y"'):
        parse_jdbc_url("jdbc:postgresql://x/y")


@pytest.mark.parametrize(
    "text",
    [
        "jdbc:mysql://root:hunter2@h/d",
        "jdbc:mysql://h/d?user=root&password=hunter2",
        "jdbc:mysql://h/d?trustCertificateKeyStorePassword=hunter2",
        "jdbc:postgresql://root:hunter2@x/y",
        "jdbc:mysql://h:bad/d?password=hunter2",
    ],
)
def test_credentials_in_url_are_refused_and_never_echoed(text: str) -> None:
    with pytest.raises(JdbcUrlError) as info:
        parse_jdbc_url(text)
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in repr(info.value)


def test_display_and_repr_are_canonical_and_safe() -> None:
    url = parse_jdbc_url("jdbc:mysql://[::1]/rpl?characterEncoding=utf8")
    assert url.display() == "jdbc:mysql://[::1]:3306/rpl?characterEncoding=utf8"
    assert str(url) == url.display()
    assert repr(url) == "JdbcUrl('jdbc:mysql://[::1]:3306/rpl?characterEncoding=utf8')"
    # even a hand-built URL with a secret option does not print it
    sneaky = JdbcUrl(host="h", database="d", options={"password": "hunter2"})
    assert "hunter2" not in sneaky.display()
    assert "hunter2" not in repr(sneaky)


def test_redact_url() -> None:
    assert redact_url("jdbc:mysql://u:p@h/d?a=1&password=p&b=2") == (
        "jdbc:mysql://***@h/d?a=1&password=***&b=2"
    )


@pytest.mark.parametrize("encoding", ["UTF-8", "utf8mb4", "latin1", "GBK", "Cp1252", "ISO8859_1"])
def test_charset_is_always_utf8mb4(encoding: str) -> None:
    # The server converts every column's own character set to utf8mb4 without loss.
    url = parse_jdbc_url(f"jdbc:mysql://h/d?characterEncoding={encoding}")
    assert url.charset() == "utf8mb4"


def test_unknown_character_encoding_is_refused() -> None:
    with pytest.raises(JdbcUrlError, match="characterEncoding='nonsense'"):
        parse_jdbc_url("jdbc:mysql://h/d?characterEncoding=nonsense")
