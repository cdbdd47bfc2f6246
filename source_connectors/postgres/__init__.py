"""PostgreSQL sources: full and split table reads (``postgresqlreader``)."""
