"""MySQL protocol type codes → SQL type names, shared by the two places that meet bare codes:
result-set fields (``customSql``) and binlog TABLE_MAP columns. The codes are the server's,
the same in PyMySQL and mysql-replication; each place adds the types it reads differently
(decimals, temporal types with fractional seconds, strings)."""

from __future__ import annotations

from pymysql.constants import FIELD_TYPE

PLAIN_TYPE_NAMES: dict[int, str] = {
    FIELD_TYPE.TINY: "tinyint",
    FIELD_TYPE.SHORT: "smallint",
    FIELD_TYPE.INT24: "mediumint",
    FIELD_TYPE.LONG: "int",
    FIELD_TYPE.LONGLONG: "bigint",
    FIELD_TYPE.FLOAT: "float",
    FIELD_TYPE.DOUBLE: "double",
    FIELD_TYPE.DATE: "date",
    FIELD_TYPE.NEWDATE: "date",
    FIELD_TYPE.YEAR: "year",
    FIELD_TYPE.JSON: "json",
}
"""Types whose name follows from the code alone."""
