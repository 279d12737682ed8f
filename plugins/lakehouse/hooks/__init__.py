"""One hook per external system: Flink (REST + SQL Gateway), Paimon (pypaimon), MySQL (pymysql), StarRocks (pymysql)."""
