-- Streaming job: dwd.dwd_order_fact's changelog aggregated into dws.dws_city_hourly.
-- The logic is the model sql/models/dws_city_hourly.sql, shared with the T+1 batch.
INSERT INTO lakehouse.dws.dws_city_hourly
{% include 'models/dws_city_hourly.sql' %}
