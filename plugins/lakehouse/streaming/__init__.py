"""The streaming jobs: creating tables and deploying jobs, supervising them, on-call operations,
and the Kubernetes path."""
