"""What every part of the control plane shares: paths, the registry and typed configuration, SQL
files and the Flink SQL context, days, errors, ops tables, polling, task results as JSON, the hooks
by role (resources), assets. Imports nothing heavy."""
