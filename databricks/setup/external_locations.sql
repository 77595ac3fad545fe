-- External locations over the S3 bucket, both through one storage credential whose IAM role is
-- infra/aws/iam/databricks-policy.json (+ databricks-trust-policy.json). Run once, in the SQL editor,
-- as a metastore admin or a user with CREATE EXTERNAL LOCATION on the metastore and the credential.
--
-- Placeholders, replaced before running (see the README):
--   ${bucket}              S3 bucket, e.g. my-clickstream-bucket
--   ${landing_prefix}      landing prefix, e.g. landing/clickstream
--   ${storage_credential}  storage credential name, e.g. clickstream_s3
--
-- SQL cannot mark a location read-only; the IAM role already allows only reads on the landing
-- prefix. To have Unity Catalog enforce it too:
--   databricks external-locations update clickstream_landing --read-only

-- What the producer writes and Auto Loader reads.
CREATE EXTERNAL LOCATION IF NOT EXISTS clickstream_landing
  URL 's3://${bucket}/${landing_prefix}'
  WITH (STORAGE CREDENTIAL `${storage_credential}`)
  COMMENT 'Clickstream landing area: JSON-lines micro-batches from the producer (read by Auto Loader)';

-- Managed storage of the clickstream catalogs (tables and the checkpoint volume).
CREATE EXTERNAL LOCATION IF NOT EXISTS clickstream_lakehouse
  URL 's3://${bucket}/lakehouse'
  WITH (STORAGE CREDENTIAL `${storage_credential}`)
  COMMENT 'Managed storage of the clickstream lakehouse catalogs';

-- The pipeline (run as an engineer) lists and reads the landing files.
GRANT READ FILES ON EXTERNAL LOCATION clickstream_landing TO `clickstream_engineers`;
-- Engineers may create their dev catalog there; tables themselves are governed by catalog grants.
GRANT CREATE MANAGED STORAGE ON EXTERNAL LOCATION clickstream_lakehouse TO `clickstream_engineers`;
