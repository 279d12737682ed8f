"""Alerts: task failures and missed deadlines, recorded in ops.alerts and sent to the destinations a
deployment configures (config/alerts.yaml; docs/ALERTS.md). `notifier` holds the Airflow notifier,
`messages` what an alert says, `destinations` the webhook and SMTP senders, `history` ops.alerts."""
