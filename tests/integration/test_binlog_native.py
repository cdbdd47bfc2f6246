"""The C row decoder gives exactly the values — and the types — of the Python reference
(:mod:`source_connectors.mysql.binlog_rows`) on a real MariaDB binlog of every width,
precision, charset and edge value: the same binlog range is read twice, once each way. (What
both give is checked against SELECT in ``test_binlog_decode.py``.)"""

from __future__ import annotations

from typing import Any

import pytest

from source_connectors.mysql import binlog_rows
from testkit.cdc import binlog_position, execute
from testkit.mysql import mysql_connect
from tests.integration.test_binlog_decode import read_all

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(binlog_rows._native is None, reason="_binlog_rows is not built"),
]

COLUMNS = """
  id BIGINT NOT NULL PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  d65 DECIMAL(65,30), d12 DECIMAL(12,2), d5 DECIMAL(5,0), d10u DECIMAL(10,2) UNSIGNED,
  d4 DECIMAL(4,4), f FLOAT, db DOUBLE,
  c CHAR(8), c100 CHAR(100), vc VARCHAR(64), vl VARCHAR(300),
  lat VARCHAR(20) CHARACTER SET latin1, asc7 VARCHAR(20) CHARACTER SET ascii,
  tt TINYTEXT, tx TEXT, mt MEDIUMTEXT,
  bn BINARY(4), vb VARBINARY(16), tb TINYBLOB, bl BLOB, lb LONGBLOB,
  dt DATE, tm0 TIME, tm1 TIME(1), tm3 TIME(3), tm6 TIME(6),
  dt0 DATETIME, dt1 DATETIME(1), dt2 DATETIME(2), dt3 DATETIME(3), dt4 DATETIME(4),
  dt5 DATETIME(5), dt6 DATETIME(6),
  ts0 TIMESTAMP NULL DEFAULT NULL, ts3 TIMESTAMP(3) NULL DEFAULT NULL,
  ts6 TIMESTAMP(6) NULL DEFAULT NULL, yr YEAR, en ENUM('red', 'green', 'blue')
"""
WIDTH = 49

EDGE_ROWS = [
    # max of every width, largest decimals, emoji, 2-byte length prefixes
    "(1, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295,"
    " 9223372036854775807, 18446744073709551615,"
    " 99999999999999999999999999999999999.999999999999999999999999999999, 9999999999.99,"
    " 99999, 99999999.99, 0.9999, 3.40282e38, 1.7976931348623157e308,"
    " 'ççç😀', REPEAT('é', 100), 'emoji 😀🎉 中文', REPEAT('z', 300), 'café €‰', '~ascii~',"
    " REPEAT('t', 255), REPEAT('x', 1000), REPEAT('😀', 3000),"
    " x'00FF00FF', x'DEADBEEF', x'FF', x'000102', REPEAT(x'00', 70000),"
    " '9999-12-31', '838:59:59', '838:59:59.9', '838:59:59.999', '838:59:59.999999',"
    " '9999-12-31 23:59:59', '9999-12-31 23:59:59.9', '9999-12-31 23:59:59.99',"
    " '9999-12-31 23:59:59.999', '9999-12-31 23:59:59.9999', '9999-12-31 23:59:59.99999',"
    " '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07', '2038-01-19 03:14:07.999',"
    " '2038-01-19 03:14:07.999999', 2155, 'blue')",
    # min of every width, negative decimals
    "(2, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,"
    " -99999999999999999999999999999999999.999999999999999999999999999999, -9999999999.99,"
    " -99999, 0.00, -0.9999, -3.40282e38, -1.7976931348623157e308,"
    " '', '', '', '', '', '', '', '', '', x'00000000', x'', x'', x'', x'',"
    " '1000-01-01', '-838:59:59', '-838:59:59.9', '-838:59:59.999', '-838:59:59.999999',"
    " '1000-01-01 00:00:00', '1000-01-01 00:00:00.1', '1000-01-01 00:00:00.01',"
    " '1000-01-01 00:00:00.001', '1000-01-01 00:00:00.0001', '1000-01-01 00:00:00.00001',"
    " '1000-01-01 00:00:00.000001', '1970-01-01 00:00:01', '1970-01-01 00:00:01.001',"
    " '1970-01-01 00:00:01.000001', 1901, 'red')",
    # zero and partial dates, zero values, an empty ENUM
    "(3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 'c', 'd', 'e', 'f', 'g',"
    " 'h', 'i', x'01', x'02', x'03', x'04', x'05', '0000-00-00', '00:00:00', '00:00:00.0',"
    " '00:00:00.000', '-00:00:00.000001', '0000-00-00 00:00:00', '2020-00-00 00:00:00.1',"
    " '2020-02-00 01:02:03.45', '0000-01-01 00:00:00.001', '0000-00-00 00:00:00.0001',"
    " '2021-00-15 12:00:00.00001', '0000-00-00 00:00:00.000000', '0000-00-00 00:00:00',"
    " '0000-00-00 00:00:00.000', '0000-00-00 00:00:00.000000', 0000, '')",
    # all NULL but the key
    "(4" + ", NULL" * (WIDTH - 1) + ")",
    # small and negative fractions, leading/trailing zeros, control characters
    "(5, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -0.000000000000000000000000000001, 0.01, -1,"
    " 0.10, 0.0001, 1.17549e-38, 2.2250738585072014e-308, 'q\\'\"', CONCAT('nul', CHAR(0)),"
    " 'back\\\\slash\\nnew\\tline', '  pad  ', 'àéîõü', 'A', 'x', 'y', 'z', x'00000001',"
    " x'0000', x'00', x'0A0D', x'5C27', '2024-02-29', '-00:00:01', '-12:34:56.7',"
    " '-00:00:00.001', '12:34:56.789012', '2024-02-29 12:34:56', '2024-02-29 12:34:56.7',"
    " '2024-02-29 12:34:56.78', '2024-02-29 12:34:56.789', '2024-02-29 12:34:56.7891',"
    " '2024-02-29 12:34:56.78912', '2024-02-29 12:34:56.789012', '2001-02-03 04:05:06',"
    " '2001-02-03 04:05:06.007', '2001-02-03 04:05:06.000007', 2000, 'green')",
]

FILL = """
INSERT INTO src
SELECT seq + 100,
  seq % 256 - 128, seq % 256, seq % 65536 - 32768, seq % 65536,
  seq % 16777216 - 8388608, seq % 16777216, seq * 2654435761 % 4294967296 - 2147483648,
  seq * 2654435761 % 4294967296,
  IF(seq % 17 = 0, NULL, CAST(seq AS DECIMAL(40,0)) * 11400714819323198485 % 18446744073709551616 - 9223372036854775808),
  CAST(seq AS DECIMAL(40,0)) * 11400714819323198485 % 18446744073709551616,
  IF(seq % 13 = 0, NULL, CAST(CONCAT(IF(seq % 2, '-', ''), seq, '.', LPAD(seq % 1000, 30, '7')) AS DECIMAL(65,30))),
  (seq % 100000) / IF(seq % 2, 100, -100), seq % 99999 - 50000, (seq % 100000) / 100,
  (seq % 10000) / 10000 * IF(seq % 3, 1, -1),
  IF(seq % 11 = 0, NULL, (seq % 100000) / 7), seq / 3.0e0,
  LEFT(MD5(seq), seq % 9), REPEAT('ü', seq % 100), IF(seq % 7 = 0, NULL, CONCAT('row ', seq, IF(seq % 5 = 0, ' 😀', ''))),
  REPEAT(CHAR(65 + seq % 26), seq % 300), IF(seq % 3, 'déjà vu', ''), LEFT(MD5(seq), 20),
  REPEAT('t', seq % 256), IF(seq % 19 = 0, '', REPEAT(CHAR(65 + seq % 26), seq % 300)), MD5(seq),
  UNHEX(LPAD(HEX(seq % 65536), 4, '0')), UNHEX(MD5(seq)), UNHEX(SHA1(seq)),
  IF(seq % 23 = 0, NULL, UNHEX(SHA1(seq))), UNHEX(REPEAT(MD5(seq), 3)),
  IF(seq % 29 = 0, NULL, DATE('2000-01-01') + INTERVAL (seq % 20000) DAY),
  SEC_TO_TIME((seq % 6000000) - 3000000), SEC_TO_TIME((seq % 6000000) - 3000000 + (seq % 10) / 10),
  SEC_TO_TIME((seq % 6000000) - 3000000 + (seq % 1000) / 1000),
  SEC_TO_TIME((seq % 6000000) - 3000000 + (seq % 1000000) / 1000000),
  TIMESTAMP('2001-01-01') + INTERVAL seq * 37 SECOND,
  TIMESTAMP('2001-01-01') + INTERVAL seq * 37 SECOND + INTERVAL seq % 10 * 100000 MICROSECOND,
  TIMESTAMP('2001-01-01') + INTERVAL seq * 37 SECOND + INTERVAL seq % 100 * 10000 MICROSECOND,
  TIMESTAMP('2001-01-01') + INTERVAL seq * 37 SECOND + INTERVAL seq % 1000 * 1000 MICROSECOND,
  TIMESTAMP('2001-01-01') + INTERVAL seq * 37 SECOND + INTERVAL seq % 10000 * 100 MICROSECOND,
  TIMESTAMP('2001-01-01') + INTERVAL seq * 37 SECOND + INTERVAL seq % 100000 * 10 MICROSECOND,
  TIMESTAMP('2001-01-01') + INTERVAL seq * 37 SECOND + INTERVAL seq % 1000000 MICROSECOND,
  IF(seq % 31 = 0, NULL, TIMESTAMP('2001-01-01') + INTERVAL seq * 41 SECOND),
  TIMESTAMP('2001-01-01') + INTERVAL seq * 41 SECOND + INTERVAL seq % 1000 * 1000 MICROSECOND,
  TIMESTAMP('2001-01-01') + INTERVAL seq * 41 SECOND + INTERVAL seq % 999999 MICROSECOND,
  IF(seq % 37 = 0, 0, 1901 + seq % 255), ELT(1 + seq % 3, 'red', 'green', 'blue')
FROM (SELECT CAST(seq AS SIGNED) AS seq FROM seq_1_to_{rows}) AS s
"""


def typed(image: tuple[Any, ...] | None) -> Any:
    """A row image with every value's type: 1 == 1.0 and Decimal('1.0') == Decimal('1.00'),
    but a reader that gave the one for the other would be wrong."""
    return None if image is None else tuple((type(v).__name__, repr(v)) for v in image)


def test_the_c_decoder_gives_the_python_references_values(
    mysql_url, mysql_database, unique_name, monkeypatch
):
    db = mysql_database
    conn = mysql_connect(mysql_url, db)
    execute(
        conn,
        "SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'",
        "SET SESSION time_zone = '+00:00'",
        f"CREATE TABLE src ({COLUMNS}) DEFAULT CHARSET=utf8mb4",
    )
    start = binlog_position(conn)
    execute(
        conn,
        "SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'",
        "SET SESSION time_zone = '+00:00'",
        "INSERT INTO src VALUES " + ", ".join(EDGE_ROWS),
        FILL.format(rows=600),  # multi-row events
        "UPDATE src SET vc = NULL, tx = '', dt = '0000-00-00', yr = 0, bn = x'00' WHERE id % 3 = 0",
        "UPDATE src SET d12 = -d12, tm6 = NULL, en = 'red' WHERE id <= 5",
        # one-row transactions: one row per event
        "BEGIN NOT ATOMIC FOR n IN 101..200 DO UPDATE src SET i = -n, lat = 'ÿ' WHERE id = n;"
        " END FOR; END",
        "DELETE FROM src WHERE id % 7 = 0 OR id <= 5",
    )
    conn.close()
    native = read_all(mysql_url, db, unique_name, start, ["src"])
    monkeypatch.setattr(binlog_rows, "_native", None)  # what SLUICE_NO_NATIVE=1 does
    monkeypatch.setattr(binlog_rows, "_plans", {})
    python = read_all(mysql_url, db, f"{unique_name}-python", start, ["src"])
    ops = [op for _t, op, _b, _a in native]
    assert ops.count("INSERT") == len(EDGE_ROWS) + 600
    assert ops.count("UPDATE") > 300 and ops.count("DELETE") > 80
    assert len(native) == len(python)
    for k, (n, p) in enumerate(zip(native, python, strict=True)):
        assert (n[1], typed(n[2]), typed(n[3])) == (p[1], typed(p[2]), typed(p[3])), k
