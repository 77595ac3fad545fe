-- Unity Catalog for the clickstream lakehouse: one catalog, a schema per layer, the checkpoint volume
-- and the grants of the two groups. Run once per catalog (prod: clickstream; dev:
-- clickstream_dev_<short user name>, printed by
-- `databricks bundle validate -t dev -o json | jq -r .variables.catalog.value`) in the SQL editor as a
-- metastore admin or a user with CREATE CATALOG on the metastore and CREATE MANAGED STORAGE on the
-- clickstream_lakehouse external location (databricks/setup/external_locations.sql). Safe to run again.
-- The pipeline never creates a catalog: this is where it gets its managed location.
--
-- Placeholders, replaced before running (see the README):
--   ${catalog}  catalog name, e.g. clickstream
--   ${bucket}   S3 bucket, e.g. my-clickstream-bucket
--
-- Groups (account groups: Unity Catalog cannot grant to workspace-local ones):
--   clickstream_engineers run and change the pipeline (every layer);
--   clickstream_analysts read Gold only.
--
-- Table and column comments are not set here: 00_setup creates every table with its comment and
-- column comments, from lakehouse/catalog.py.

-- Managed tables and volumes of the catalog live under the lakehouse prefix of the bucket, which
-- the Databricks IAM role may read and write (infra/aws/iam/databricks-policy.json).
CREATE CATALOG IF NOT EXISTS `${catalog}`
  MANAGED LOCATION 's3://${bucket}/lakehouse/${catalog}'
  COMMENT 'Clickstream lakehouse: bronze (raw lines), silver (valid events, quarantine), gold (metrics), ops (pipeline metrics)';

CREATE SCHEMA IF NOT EXISTS `${catalog}`.bronze
  COMMENT 'bronze layer of the clickstream lakehouse: every landed line as it arrived';
CREATE SCHEMA IF NOT EXISTS `${catalog}`.silver
  COMMENT 'silver layer of the clickstream lakehouse: valid deduplicated events and the quarantine';
CREATE SCHEMA IF NOT EXISTS `${catalog}`.gold
  COMMENT 'gold layer of the clickstream lakehouse: metrics for Databricks SQL (the public contract)';
CREATE SCHEMA IF NOT EXISTS `${catalog}`.ops
  COMMENT 'ops layer of the clickstream lakehouse: per-batch pipeline metrics and stream checkpoints';

-- Stream checkpoints and Auto Loader schema locations: the job's checkpoint_root is
-- /Volumes/<catalog>/ops/checkpoints.
CREATE VOLUME IF NOT EXISTS `${catalog}`.ops.checkpoints
  COMMENT 'Structured Streaming checkpoints of the bronze, silver and gold streams';

-- Engineers: every layer. The job runs as one of them (dev: the deploying user; prod: a service
-- principal in the group), so these are also the pipeline's privileges.
GRANT USE CATALOG, CREATE SCHEMA ON CATALOG `${catalog}` TO `clickstream_engineers`;
GRANT USE SCHEMA, SELECT, MODIFY, CREATE TABLE ON SCHEMA `${catalog}`.bronze TO `clickstream_engineers`;
GRANT USE SCHEMA, SELECT, MODIFY, CREATE TABLE ON SCHEMA `${catalog}`.silver TO `clickstream_engineers`;
GRANT USE SCHEMA, SELECT, MODIFY, CREATE TABLE ON SCHEMA `${catalog}`.gold TO `clickstream_engineers`;
GRANT USE SCHEMA, SELECT, MODIFY, CREATE TABLE, CREATE VOLUME ON SCHEMA `${catalog}`.ops TO `clickstream_engineers`;
GRANT READ VOLUME, WRITE VOLUME ON VOLUME `${catalog}`.ops.checkpoints TO `clickstream_engineers`;

-- Analysts: Gold only. SELECT on the schema covers the Gold tables 00_setup creates later.
GRANT USE CATALOG ON CATALOG `${catalog}` TO `clickstream_analysts`;
GRANT USE SCHEMA, SELECT ON SCHEMA `${catalog}`.gold TO `clickstream_analysts`;
