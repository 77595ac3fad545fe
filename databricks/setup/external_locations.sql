-- External locations over the S3 bucket, both through one storage credential whose IAM role is
-- infra/aws/iam/databricks-policy.json (+ databricks-trust-policy.json). Run once, in the SQL editor,
-- as a metastore admin or a user with CREATE EXTERNAL LOCATION on the metastore and the credential.
--
-- Placeholders, replaced before running (see the README):
--   ${bucket}              S3 bucket, e.g. my-clickstream-bucket
--   ${storage_credential}  storage credential name, e.g. clickstream_s3
--
-- The landing location (what the producer writes and Auto Loader reads) is not created here: SQL has
-- no read-only option, and it must be read-only from its first moment. Create it first, in one step:
--   databricks external-locations create clickstream_landing s3://<bucket>/landing/clickstream clickstream_s3 --read-only
-- (the IAM role allows only reads on that prefix as well).

-- Managed storage of the clickstream catalogs (tables and the checkpoint volume).
CREATE EXTERNAL LOCATION IF NOT EXISTS clickstream_lakehouse
  URL 's3://${bucket}/lakehouse'
  WITH (STORAGE CREDENTIAL `${storage_credential}`)
  COMMENT 'Managed storage of the clickstream lakehouse catalogs';

-- The pipeline (run as an engineer, or in prod as a service principal in the group) lists and reads
-- the landing files.
GRANT READ FILES ON EXTERNAL LOCATION clickstream_landing TO `clickstream_engineers`;
-- Engineers may create their dev catalog there; tables themselves are governed by catalog grants.
GRANT CREATE MANAGED STORAGE ON EXTERNAL LOCATION clickstream_lakehouse TO `clickstream_engineers`;
