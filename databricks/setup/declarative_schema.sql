-- The declarative pipeline's schema (resources/clickstream.pipeline.yml) in a catalog that
-- unity_catalog.sql has set up, and its grants. The pipeline publishes Bronze, Silver, Gold and its event
-- log to this one schema; the notebook job's bronze, silver, gold and ops schemas are not touched.
-- Run after unity_catalog.sql, once per catalog, in the SQL editor. Safe to run again.
--
-- Placeholders, replaced before running (see the README):
--   ${catalog}  catalog name, e.g. clickstream
--   ${schema}   the bundle's declarative_schema variable, e.g. declarative

CREATE SCHEMA IF NOT EXISTS `${catalog}`.`${schema}`
  COMMENT 'declarative edition of the clickstream lakehouse: bronze_*, silver_* and the Gold views, published by the Lakeflow pipeline';

-- Engineers: the pipeline runs as one of them (dev: the deploying user; prod: the service principal).
GRANT USE SCHEMA, SELECT, MODIFY, CREATE TABLE, CREATE MATERIALIZED VIEW ON SCHEMA `${catalog}`.`${schema}` TO `clickstream_engineers`;

-- Analysts: the Gold views only (the metrics and the analytical model). The schema also holds the raw lines (bronze_landed, silver_quarantine),
-- so the grant is per view; they exist after the pipeline's first update. Run these then:
GRANT USE SCHEMA ON SCHEMA `${catalog}`.`${schema}` TO `clickstream_analysts`;
-- GRANT SELECT ON TABLE `${catalog}`.`${schema}`.daily_kpis TO `clickstream_analysts`;
-- GRANT SELECT ON TABLE `${catalog}`.`${schema}`.events_per_minute TO `clickstream_analysts`;
-- GRANT SELECT ON TABLE `${catalog}`.`${schema}`.funnel_daily TO `clickstream_analysts`;
-- GRANT SELECT ON TABLE `${catalog}`.`${schema}`.traffic_daily TO `clickstream_analysts`;
-- GRANT SELECT ON TABLE `${catalog}`.`${schema}`.top_pages_daily TO `clickstream_analysts`;
-- GRANT SELECT ON TABLE `${catalog}`.`${schema}`.fact_events TO `clickstream_analysts`;
-- GRANT SELECT ON TABLE `${catalog}`.`${schema}`.dim_user TO `clickstream_analysts`;
-- GRANT SELECT ON TABLE `${catalog}`.`${schema}`.dim_page TO `clickstream_analysts`;
-- GRANT SELECT ON TABLE `${catalog}`.`${schema}`.dim_date TO `clickstream_analysts`;
-- GRANT SELECT ON TABLE `${catalog}`.`${schema}`.sessions TO `clickstream_analysts`;
-- GRANT SELECT ON TABLE `${catalog}`.`${schema}`.customer_features TO `clickstream_analysts`;
