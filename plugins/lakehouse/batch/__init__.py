"""T+1 batch work on the tables the streaming jobs write: recomputing a partition, the daily run,
backfills, and the partition leases they share."""
