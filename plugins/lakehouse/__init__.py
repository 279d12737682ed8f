"""The streaming lakehouse's control plane: hooks, operators and logic used by the DAGs.

Importing this package is cheap (no Airflow, pypaimon or pyarrow at import time), so DAG files
can import it at parse time.
"""
