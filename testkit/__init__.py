"""Helpers shared by the test suite (tests/) and the benchmarks (bench/): connecting to the
servers, building FlinkX jobs, running ``sluice run`` in a child process, comparing tables.

Neither tests/ nor bench/ imports the other; both import this package. pytest fixtures stay in
tests/conftest.py.

- :mod:`testkit.servers`: ``Servers``, the Kafka and MariaDB a session uses;
- :mod:`testkit.wait`: ``wait_until``, polling a condition with a timeout;
- :mod:`testkit.mysql`: connections, JDBC URLs, ``mysqlreader → mysqlwriter`` jobs, table
  fingerprints and key differences;
- :mod:`testkit.kafka`: creating topics and reading them back;
- :mod:`testkit.cdc`: ``binlogreader`` jobs, ``RunningJob`` (``sluice run`` in a child
  process), waiting for a target to equal its source;
- :mod:`testkit.alltypes`: a table of every MySQL type Sluice maps, filled server-side.
"""
