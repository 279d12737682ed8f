{#- Refresh one published day of a materialized view partitioned by str2date(dt): the partition
    range [day, day + 1). FORCE: recompute it whatever StarRocks' change detection on the lake
    table says (a T+1 overwrite replaces the whole partition). WITH SYNC MODE: the statement
    returns when the refresh has succeeded or failed, so the Airflow task reports the outcome. -#}
REFRESH MATERIALIZED VIEW {{ view }}
PARTITION START ("{{ start }}") END ("{{ end }}")
FORCE
WITH SYNC MODE
