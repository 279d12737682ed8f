-- Streaming job: ODS orders, subsidies and dimensions into dwd.dwd_order_fact.
-- The logic is the model sql/models/dwd_order_fact.sql, shared with the T+1 batch.
INSERT INTO lakehouse.dwd.dwd_order_fact
{% include 'models/dwd_order_fact.sql' %}
