"""MySQL/MariaDB sources: the snapshot reader (``mysqlreader``), binlog CDC (``binlogreader``)
and interval polling (``mysqlreader`` with ``polling``)."""
