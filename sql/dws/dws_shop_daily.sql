-- Streaming job: dwd.dwd_order_fact's changelog aggregated into dws.dws_shop_daily.
-- The logic is the model sql/models/dws_shop_daily.sql, shared with the T+1 batch.
INSERT INTO lakehouse.dws.dws_shop_daily
{% include 'models/dws_shop_daily.sql' %}
