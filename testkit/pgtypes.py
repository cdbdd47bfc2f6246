"""A PostgreSQL table of every type the PostgreSQL connectors map (schemas/postgres_types.py),
with edge rows — extremes, NaN and infinities, empty and NULL, BC and infinite dates, 24:00,
time zones, intervals of months, arrays with NULLs — for the type-matrix tests."""

from __future__ import annotations

from typing import Any

ENUM = "CREATE TYPE {schema}.mood AS ENUM ('sad', 'ok', 'happy', 'it''s')"

COLUMNS = """
  id bigint PRIMARY KEY,
  i2 smallint, i4 integer, i8 bigint,
  n102 numeric(10,2), n numeric, n50 numeric(50,20), nneg numeric(5,-2),
  f4 real, f8 double precision, b boolean,
  vc varchar(20), ch char(5), tx text, by bytea,
  d date, t time, t3 time(3), tz timetz,
  ts timestamp, ts3 timestamp(3), tstz timestamptz, tstz0 timestamptz(0),
  iv interval, u uuid, j json, jb jsonb, e {schema}.mood,
  ai integer[], atx text[], an numeric[], bt bit(10), vb varbit(16),
  ip inet, cid cidr, mac macaddr, m money, x xml, pt point
"""

ROWS = [
    "(1, 32767, 2147483647, 9223372036854775807, 99999999.99,"
    " 123456789012345678901234567890.123456789012345678901234567890,"
    " 999999999999999999999999999999.99999999999999999999, 9999900,"
    " 3.4028235e38, 1.7976931348623157e308, true,"
    " 'ççç😀 中文', 'ab', repeat('x', 10000), '\\x00ff00'::bytea,"
    " '9999-12-31', '24:00:00', '23:59:59.999', '12:34:56+05:30',"
    " '9999-12-31 23:59:59.999999', '2024-02-29 12:34:56.789', '2038-01-19 03:14:07.123456+02',"
    " '2001-02-03 04:05:06-08',"
    " '1 year 2 mons 3 days 04:05:06.789', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',"
    ' \'{"a": [1, 2.50, "x"], "b": null}\', \'{"z": 1, "a": {"n": 1.0}}\', \'it\'\'s\','
    " '{1,NULL,-3}', '{\"a b\",\"\",NULL,\"q\\\"uote\"}', '{1.5,NaN}', B'1010101010', B'1101',"
    " '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', 1234567.89, '<a>x</a>', '(1.5,-2)')",
    "(2, -32768, -2147483648, -9223372036854775808, -99999999.99, 'NaN',"
    " -0.00000000000000000001, -9999900,"
    " '-Infinity', 'NaN', false, '', '', '', ''::bytea,"
    " '4713-01-01 BC', '00:00:00', '00:00:00.001', '00:00:00-12',"
    " '-infinity', '1970-01-01 00:00:00', 'infinity', 'epoch',"
    " '-1 days -00:00:01', '00000000-0000-0000-0000-000000000000', '[]', '{}', 'sad',"
    " '{}', '{}', '{}', B'0000000000', B'', '::1', '::/0', '00:00:00:00:00:00', -92233720368547758.08,"
    " '', '(0,0)')",
    "(3" + ", NULL" * 38 + ")",
    "(4, 0, 0, 0, 0, 0, 0, 0, 'Infinity', '-0', true, 'tab\tnew\nline', 'a  ', 'back\\slash', '\\x5c27'::bytea,"
    " '2000-02-29', '12:00:00.5', '12:00:00.5', '00:00:00+00', '2000-02-29 00:00:00',"
    " '2000-02-29 00:00:00.001', '2000-02-29 00:00:00.000001+00', '2000-02-29 23:59:59+14',"
    " '0 seconds', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '\"text\"', '\"text\"', 'happy',"
    " '{2147483647,-2147483648}', '{\"\\\\\"}', '{-0.5}', B'1111111111', B'1111111111111111',"
    " '2001:db8::1', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff', 0, '<r/>', '(-1e-10,1e10)')",
]


def create_pg_types(conn: Any, schema: str, table: str, rows: bool = True) -> None:
    """``schema.table`` with every type (and the ``mood`` enum), filled with :data:`ROWS`."""
    with conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        cur.execute(
            "SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
            " WHERE n.nspname = %s AND t.typname = 'mood'",
            (schema,),
        )
        if cur.fetchone() is None:
            cur.execute(ENUM.format(schema=schema))
        cur.execute(f"CREATE TABLE {schema}.{table} ({COLUMNS.format(schema=schema)})")
        if rows:
            cur.execute(f"INSERT INTO {schema}.{table} VALUES " + ", ".join(ROWS))


def text_rows(conn: Any, schema: str, table: str) -> list[tuple[Any, ...]]:
    """Every row, every column as the server's own text, by id: what 'exact' is compared on."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT array_agg(quote_ident(attname) ORDER BY attnum) FROM pg_attribute"
            " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            (f"{schema}.{table}",),
        )
        (cols,) = cur.fetchone()
        cur.execute(
            f"SELECT {', '.join(c + '::text' for c in cols)} FROM {schema}.{table} ORDER BY id"
        )
        return [tuple(r) for r in cur.fetchall()]


FILL = """
INSERT INTO {schema}.{table} (id, i2, i4, i8, n102, n, f8, b, vc, tx, by, d, t3, ts, tstz,
                              iv, u, jb, e, ai)
SELECT g, (g % 32767)::smallint, g * 7, g * 1000003, (g % 100000) / 7.0, g / 3.0, g / 7.0,
       g % 2 = 0, 'row ' || g, repeat('t', g % 50), decode(md5(g::text), 'hex'),
       DATE '2000-01-01' + g, TIME '00:00' + g * INTERVAL '1.001 second',
       TIMESTAMP '2001-01-01' + g * INTERVAL '37 seconds',
       TIMESTAMPTZ '2001-01-01 00:00+00' + g * INTERVAL '41 seconds',
       g * INTERVAL '1 minute', md5(g::text)::uuid, jsonb_build_object('n', g),
       (ARRAY['sad', 'ok', 'happy'])[1 + g % 3]::{schema}.mood, ARRAY[g, -g]
FROM generate_series(100, 99 + {rows}) AS g
"""


def fill_pg_types(conn: Any, schema: str, table: str, rows: int) -> None:
    """``rows`` more rows (ids from 100), most columns set."""
    with conn.cursor() as cur:
        cur.execute(FILL.format(schema=schema, table=table, rows=rows))
