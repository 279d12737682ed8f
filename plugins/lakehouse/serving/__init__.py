"""StarRocks serving: a Paimon catalog, a serving database and the dashboards' materialized views.

StarRocks reads the DWS tables in place, through an external Paimon catalog over the warehouse
the Flink jobs write; dashboards query asynchronous materialized views kept in StarRocks' own
storage, not the lake. The views are partitioned by day and `REFRESH DEFERRED MANUAL`: nothing
refreshes them on a schedule or on lake changes. After each T+1 publish, `refresh_after_publish`
refreshes exactly the published day of the views built on the published tables, so a dashboard
shows published days and a view never materializes a day the streaming jobs are still writing.

What is served is config/serving.yaml, checked against the registry: a view reads only registered
DWS tables partitioned by `dt`, and its SQL names them only through `source()`. Values reach the
SQL after validation (`dt` is parsed as a date; catalog options contain no quote, backslash or line
break). StarRocks is optional: without the `starrocks_default` connection `serving_configured()`
is False and callers skip serving. See docs/SERVING.md.
"""
