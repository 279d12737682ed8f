-- OLTP schema of the food-delivery marketplace (MariaDB / MySQL 8). Idempotent.
-- Every table has a primary key (CDC needs one) and an updated_at maintained by the database,
-- which the freshness checks use as the commit time of the change.

CREATE TABLE IF NOT EXISTS users (
  user_id     BIGINT       NOT NULL PRIMARY KEY,
  name        VARCHAR(64)  NOT NULL,
  city        VARCHAR(32)  NOT NULL,
  phone       VARCHAR(20)  NULL,
  created_at  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS shops (
  shop_id     BIGINT       NOT NULL PRIMARY KEY,
  name        VARCHAR(64)  NOT NULL,
  city        VARCHAR(32)  NOT NULL,
  category    VARCHAR(32)  NOT NULL,
  created_at  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS riders (
  rider_id    BIGINT       NOT NULL PRIMARY KEY,
  name        VARCHAR(64)  NOT NULL,
  city        VARCHAR(32)  NOT NULL,
  status      VARCHAR(16)  NOT NULL,          -- ONLINE | OFFLINE | BUSY
  updated_at  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB;

-- One row per order; status moves CREATED -> ACCEPTED -> PICKED_UP -> DELIVERED, or CANCELLED.
CREATE TABLE IF NOT EXISTS orders (
  order_id      BIGINT        NOT NULL PRIMARY KEY,
  user_id       BIGINT        NOT NULL,
  shop_id       BIGINT        NOT NULL,
  rider_id      BIGINT        NULL,
  city          VARCHAR(32)   NOT NULL,
  status        VARCHAR(16)   NOT NULL,
  amount        DECIMAL(12,2) NOT NULL,       -- what the user pays, before subsidies
  created_at    DATETIME(3)   NOT NULL,
  accepted_at   DATETIME(3)   NULL,
  picked_up_at  DATETIME(3)   NULL,
  delivered_at  DATETIME(3)   NULL,
  cancelled_at  DATETIME(3)   NULL,
  updated_at    DATETIME(3)   NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  KEY idx_orders_created (created_at),
  KEY idx_orders_status (status)
) ENGINE=InnoDB;

-- Append-only history of status changes (one row per transition).
CREATE TABLE IF NOT EXISTS order_status_events (
  event_id    BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
  order_id    BIGINT       NOT NULL,
  status      VARCHAR(16)  NOT NULL,
  rider_id    BIGINT       NULL,
  event_time  DATETIME(3)  NOT NULL,
  KEY idx_events_order (order_id)
) ENGINE=InnoDB;

-- Subsidies granted on an order, by the platform or by the shop.
CREATE TABLE IF NOT EXISTS order_subsidies (
  subsidy_id  BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
  order_id    BIGINT        NOT NULL,
  payer       VARCHAR(16)   NOT NULL,         -- PLATFORM | SHOP
  amount      DECIMAL(12,2) NOT NULL,
  created_at  DATETIME(3)   NOT NULL,
  updated_at  DATETIME(3)   NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  KEY idx_subsidies_order (order_id)
) ENGINE=InnoDB;
