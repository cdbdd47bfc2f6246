"""A table holding every MySQL type Sluice maps, filled server-side (MariaDB's SEQUENCE
engine) so a million rows take seconds. Rows 1..8 are hand-written edge rows: max/min of
every integer width, 65-digit decimals, 4-byte UTF-8, zero dates, empty string vs NULL. The
type-matrix tests and the CDC benchmarks both use it."""

from __future__ import annotations

import pymysql

COLUMNS = """
  id BIGINT NOT NULL PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED,
  bi BIGINT, biu BIGINT UNSIGNED,
  d65 DECIMAL(65,30), d10 DECIMAL(10,2) UNSIGNED,
  f FLOAT, db DOUBLE,
  c CHAR(8), vc VARCHAR(100), tx TEXT,
  bn BINARY(4), vb VARBINARY(16), bl BLOB,
  dt DATE, tm TIME(6), dtm DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, yr YEAR,
  en ENUM('red','green','blue'), st SET('a','b','c','d'),
  js JSON, b1 BIT(1), b64 BIT(64)
"""

EDGE_ROWS = [
    # max of every width, 65-digit decimal, emoji, zero dates
    "(1, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295,"
    " 9223372036854775807, 18446744073709551615,"
    " 99999999999999999999999999999999999.999999999999999999999999999999, 99999999.99,"
    " 3.40282e38, 1.7976931348623157e308, 'ççç😀', 'emoji 😀🎉 中文', REPEAT('x', 1000),"
    " x'00FF00FF', x'DEADBEEF', x'000102', '9999-12-31', '838:59:59.000000',"
    " '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999', 2155, 'blue', 'a,b,c,d',"
    " '{\"k\": [1, 2, {\"n\": null}]}', b'1', b'1111111111111111111111111111111111111111111111111111111111111111')",
    # min of every width, negative decimal
    "(2, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,"
    " -99999999999999999999999999999999999.999999999999999999999999999999, 0.00,"
    " -3.40282e38, -1.7976931348623157e308, '', '', '', x'00000000', x'', x'',"
    " '1000-01-01', '-838:59:59.000000', '1000-01-01 00:00:00.000000',"
    " '1970-01-01 00:00:01.000000', 1901, 'red', '', '[]', b'0', b'0')",
    # zero dates (allowed by the default sql_mode of MariaDB, set explicitly below)
    "(3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 'c', x'01', x'02', x'03',"
    " '0000-00-00', '00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', 0000, '', 'b',"
    " 'null', b'1', b'101')",
    # all NULL but the key
    "(4" + ", NULL" * 30 + ")",
    # empty strings next to NULLs
    "(5, NULL, 1, NULL, 1, NULL, 1, NULL, 1, NULL, 1, NULL, 1.5, NULL, 2.5, '', NULL, '',"
    " NULL, x'', NULL, NULL, '-00:00:00.000001', NULL, NULL, NULL, NULL, NULL, '\"\"', NULL, NULL)",
    # quotes, backslashes, control characters
    "(6, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0.000000000000000000000000000001, 0.01, 1.17549e-38,"
    " 2.2250738585072014e-308, 'q\\'\"', 'back\\\\slash\\nnew\\tline', CONCAT('nul', CHAR(0), 'byte'),"
    " x'5C27', x'0A0D', x'00', '2024-02-29', '12:34:56.789012', '2024-02-29 12:34:56.789012',"
    " '2024-02-29 12:34:56.789012', 2024, 'green', 'a,d', '{\"s\": \"\\\\u00e9\"}', b'0', b'1')",
]

FILL = """
INSERT INTO {table}
SELECT seq + 100,
  seq % 256 - 128, seq % 256, seq % 65536 - 32768, seq % 65536,
  seq % 16777216 - 8388608, seq % 16777216, seq * 2654435761 % 4294967296 - 2147483648,
  seq * 2654435761 % 4294967296,
  IF(seq % 17 = 0, NULL, CAST(seq AS DECIMAL(40,0)) * 11400714819323198485 % 18446744073709551616 - 9223372036854775808),
  CAST(seq AS DECIMAL(40,0)) * 11400714819323198485 % 18446744073709551616,
  IF(seq % 13 = 0, NULL, CAST(CONCAT(IF(seq % 2, '-', ''), seq, '.', LPAD(seq % 1000, 30, '7')) AS DECIMAL(65,30))),
  (seq % 100000) / 100,
  IF(seq % 11 = 0, NULL, (seq % 100000) / 7), seq / 3.0e0,
  LEFT(MD5(seq), seq % 9), IF(seq % 7 = 0, NULL, CONCAT('row ', seq, IF(seq % 5 = 0, ' 😀', ''))),
  IF(seq % 19 = 0, '', REPEAT(CHAR(65 + seq % 26), seq % 300)),
  UNHEX(LPAD(HEX(seq % 4294967296), 8, '0')), UNHEX(MD5(seq)), IF(seq % 23 = 0, NULL, UNHEX(SHA1(seq))),
  IF(seq % 29 = 0, NULL, DATE('2000-01-01') + INTERVAL (seq % 20000) DAY),
  SEC_TO_TIME((seq % 6000000) - 3000000 + (seq % 1000000) / 1000000),
  TIMESTAMP('2001-01-01') + INTERVAL seq * 37 SECOND + INTERVAL seq % 1000000 MICROSECOND,
  IF(seq % 31 = 0, NULL, TIMESTAMP('2001-01-01') + INTERVAL seq * 41 SECOND + INTERVAL seq % 999999 MICROSECOND),
  1901 + seq % 255,
  ELT(1 + seq % 3, 'red', 'green', 'blue'), MAKE_SET(seq % 16, 'a', 'b', 'c', 'd'),
  IF(seq % 37 = 0, NULL, JSON_OBJECT('n', seq, 's', CONCAT('v', seq))),
  seq % 2, CAST(seq AS DECIMAL(40,0)) * 11400714819323198485 % 18446744073709551616
FROM (SELECT CAST(seq AS SIGNED) AS seq FROM {database}.seq_1_to_{rows}) AS s
"""


def create_all_types(
    conn: pymysql.connections.Connection, database: str, table: str, rows: int
) -> None:
    """``rows`` generated rows plus the edge rows, in ``database.table``."""
    t = f"`{database}`.`{table}`"
    with conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'")
        cur.execute(f"CREATE TABLE {t} ({COLUMNS}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
        cur.execute(f"INSERT INTO {t} VALUES " + ", ".join(EDGE_ROWS))
        if rows:
            cur.execute(FILL.format(table=t, database=f"`{database}`", rows=rows))
        cur.execute(f"ANALYZE TABLE {t}")


def create_like(
    conn: pymysql.connections.Connection, database: str, source: str, target: str
) -> None:
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE `{database}`.`{target}` LIKE `{database}`.`{source}`")
