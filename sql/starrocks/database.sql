{#- The StarRocks database (default catalog) that holds the dashboards' materialized views. -#}
CREATE DATABASE IF NOT EXISTS `{{ database }}`
