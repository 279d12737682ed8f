-- Streaming job: user-behaviour events aggregated into dws.dws_shop_traffic_hourly (PV/UV).
-- The logic is the model sql/models/dws_shop_traffic_hourly.sql, shared with the T+1 batch.
INSERT INTO lakehouse.dws.dws_shop_traffic_hourly
{% include 'models/dws_shop_traffic_hourly.sql' %}
