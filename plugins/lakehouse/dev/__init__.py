"""Tooling for the local stack, demos, benchmarks and tests: the OLTP source, the load generator,
the MariaDB truth and its comparisons, the visibility probe. A deployment does not need it, and
runtime code never imports it."""
