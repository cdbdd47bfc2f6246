"""The MySQL/MariaDB sink (``mysqlwriter``): batched writes, XA two-phase commit."""
