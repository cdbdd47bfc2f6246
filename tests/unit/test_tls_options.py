"""TLS options of JDBC URLs as the drivers get them (no server: the real handshakes are in
tests/integration/test_mysql_tls.py and test_local_postgres.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.errors import ConfigError
from coordinator.jdbc import parse_jdbc_url
from coordinator.mysql_client import tls_settings
from coordinator.pg_client import tls_options


def my(options: str) -> dict:
    return tls_settings(parse_jdbc_url(f"jdbc:mysql://h:3306/db?{options}"), "x.jdbcUrl")


def pg(options: str) -> dict:
    return tls_options(parse_jdbc_url(f"jdbc:postgresql://h/db?{options}", "postgresql"), "x")


def test_connector_j_names_map_to_pymysql(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    assert my("") == {}  # PREFERRED: PyMySQL's own default
    assert my("sslMode=DISABLED") == my("useSSL=false") == {"ssl_disabled": True}
    required = {"ssl": {"verify_mode": False}}
    assert (
        my("sslMode=REQUIRED") == my("useSSL=true") == my("trustServerCertificate=true") == required
    )
    assert my(f"sslMode=VERIFY_CA&serverSslCert={ca}") == {
        "ssl": {"ca": str(ca), "check_hostname": False}
    }
    assert my(f"useSSL=true&verifyServerCertificate=true&serverSslCert={ca}") == my(
        f"sslMode=verify_ca&serverSslCert={ca}")  # fmt: skip
    assert my(f"sslMode=VERIFY_IDENTITY&serverSslCert={ca}")["ssl"]["check_hostname"] is True


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ("sslMode=SOMETIMES", "sslMode='SOMETIMES' is not one of DISABLED"),
        ("sslMode=VERIFY_CA", "needs serverSslCert"),
        ("sslMode=VERIFY_CA&serverSslCert=/no/such/ca.pem", "is not a readable file"),
    ],
)
def test_bad_mysql_tls_options_are_one_line(options: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as refused:
        my(options)
    assert str(refused.value).startswith("x.jdbcUrl: ")


def test_pgjdbc_names_are_libpq_names(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    assert pg("") == {}
    assert pg("ssl=true") == {"sslmode": "verify-full"}
    assert pg(f"sslmode=verify-ca&sslrootcert={ca}&ApplicationName=x") == {
        "sslmode": "verify-ca", "sslrootcert": str(ca)}  # fmt: skip
    with pytest.raises(ConfigError, match="sslmode='maybe' is not one of"):
        pg("sslmode=maybe")
    with pytest.raises(ConfigError, match="is not a readable file"):
        pg("sslrootcert=/no/such.pem")
