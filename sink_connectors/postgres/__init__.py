"""PostgreSQL sinks: ``postgresqlwriter``, committed with PREPARE TRANSACTION."""
