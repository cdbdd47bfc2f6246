"""MySQL/MariaDB sources: the snapshot reader (``mysqlreader``) and, later, binlog and polling."""
