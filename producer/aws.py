"""The AWS side of the demo: set up the landing bucket, verify what landed, clean the demo data up.

* :func:`setup_bucket` is idempotent: it creates the bucket if needed, blocks public access, turns on
  default encryption, adds a TLS-only statement to the bucket policy and an expiration rule on the
  landing prefix, keeping any other policy statements and lifecycle rules as they are.
* :func:`verify_landing` lists the newest landing objects, counts their lines, checks the key layout
  and validates a sample of lines against the contract (and, given a manifest, reconciles with it).
* :func:`cleanup` deletes the demo prefixes (every version, on a versioned bucket), only when told
  so explicitly.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from lakehouse import contract, rules
from lakehouse.rules import FUTURE_TOLERANCE_MINUTES, MAX_LATENESS_HOURS
from producer.reconcile import Recount, differences, object_lines

log = logging.getLogger(__name__)

TLS_ONLY_SID = "DenyInsecureTransport"
LANDING_LIFECYCLE_RULE_ID = "clickstream-landing-expiration"
DEFAULT_LANDING_EXPIRATION_DAYS = 7
KEY_LAYOUT = re.compile(
    r"^(?P<prefix>.+)/dt=(?P<day>\d{4}-\d{2}-\d{2})/hr=(?P<hour>[01]\d|2[0-3])/"
    r"(?P<stamp>\d{8}T\d{9}Z)-(?P<token>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.jsonl(?:\.gz)?$"
)


class AwsCommandError(RuntimeError):
    """An AWS command cannot go on; the message says why and what to do."""


class ConfirmationRequired(AwsCommandError):
    """A destructive command was called without its explicit confirmation."""


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


# ---------------------------------------------------------------------------------------------
# setup
# ---------------------------------------------------------------------------------------------


def tls_only_statement(bucket: str) -> dict[str, Any]:
    return {
        "Sid": TLS_ONLY_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def landing_lifecycle_rule(landing_prefix: str, expiration_days: int) -> dict[str, Any]:
    return {
        "ID": LANDING_LIFECYCLE_RULE_ID,
        "Filter": {"Prefix": landing_prefix.strip("/") + "/"},
        "Status": "Enabled",
        "Expiration": {"Days": expiration_days},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }


def setup_bucket(
    client: Any,
    bucket: str,
    *,
    region: str | None = None,
    landing_prefix: str = "landing/clickstream",
    expiration_days: int = DEFAULT_LANDING_EXPIRATION_DAYS,
    kms_key_id: str | None = None,
    tls_only: bool = True,
) -> list[str]:
    """Make ``bucket`` ready for the landing area; return one line per thing done (or found done).

    With ``tls_only`` the bucket policy denies every request not made over TLS, which also locks
    out a plain-HTTP endpoint (a local MinIO, the embedded endpoint): pass ``tls_only=False`` there.
    """
    if expiration_days < 1:
        raise AwsCommandError(f"--landing-expiration-days must be >= 1, got {expiration_days}")
    done: list[str] = []
    try:
        client.head_bucket(Bucket=bucket)
        done.append(f"bucket {bucket} already exists: kept")
    except ClientError as error:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 403:
            raise AwsCommandError(
                f"bucket {bucket} exists but these credentials cannot use it (it may belong to another account): "
                "choose another --bucket name or fix the credentials"
            ) from error
        if status != 404 and _error_code(error) not in ("404", "NoSuchBucket", "NotFound"):
            raise
        create: dict[str, Any] = {"Bucket": bucket}
        if region and region != "us-east-1":
            create["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            client.create_bucket(**create)
            done.append(f"created bucket {bucket}" + (f" in {region}" if region else ""))
        except ClientError as create_error:
            if _error_code(create_error) != "BucketAlreadyOwnedByYou":
                raise
            done.append(f"bucket {bucket} already exists: kept")

    client.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    done.append("blocked all public access (public access block: all four settings on)")

    if kms_key_id:
        default = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key_id}
        what = f"SSE-KMS with key {kms_key_id}"
    else:
        default = {"SSEAlgorithm": "AES256"}
        what = "SSE-S3 (AES256)"
    client.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": True}]
        },
    )
    done.append(f"default encryption set to {what}")

    if tls_only:
        done.append(_ensure_tls_only_policy(client, bucket))
        if str(client.meta.endpoint_url).startswith("http://"):
            done.append(
                f"warning: {client.meta.endpoint_url} is plain HTTP, so the TLS-only policy now denies its requests "
                "(re-run with --no-tls-only-policy for a local endpoint without TLS)"
            )
    else:
        done.append("TLS-only bucket policy skipped (--no-tls-only-policy)")
    done.append(_ensure_landing_lifecycle(client, bucket, landing_prefix, expiration_days))
    return done


def _ensure_tls_only_policy(client: Any, bucket: str) -> str:
    try:
        policy = json.loads(client.get_bucket_policy(Bucket=bucket)["Policy"])
    except ClientError as error:
        if _error_code(error) != "NoSuchBucketPolicy":
            raise
        policy = {"Version": "2012-10-17", "Statement": []}
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    wanted = tls_only_statement(bucket)
    if wanted in statements:
        return "TLS-only bucket policy already in place: kept"
    # Other statements belong to whoever added them; only ours is replaced.
    policy["Statement"] = [s for s in statements if s.get("Sid") != TLS_ONLY_SID] + [wanted]
    policy.setdefault("Version", "2012-10-17")
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    return "bucket policy denies every request not made over TLS (aws:SecureTransport=false)"


def _ensure_landing_lifecycle(client: Any, bucket: str, landing_prefix: str, expiration_days: int) -> str:
    try:
        rules = client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except ClientError as error:
        if _error_code(error) != "NoSuchLifecycleConfiguration":
            raise
        rules = []
    wanted = landing_lifecycle_rule(landing_prefix, expiration_days)
    others = [r for r in rules if r.get("ID") != LANDING_LIFECYCLE_RULE_ID]
    client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [*others, wanted]})
    return (
        f"lifecycle rule {LANDING_LIFECYCLE_RULE_ID}: objects under {wanted['Filter']['Prefix']} expire after "
        f"{expiration_days} days; incomplete uploads are aborted after 1 day"
    )


# ---------------------------------------------------------------------------------------------
# verify
# ---------------------------------------------------------------------------------------------


@dataclass
class ObjectReport:
    key: str
    size: int
    last_modified: str
    lines: int
    layout_ok: bool


@dataclass
class VerifyReport:
    """What :func:`verify_landing` found; ``ok`` is False when something needs attention."""

    bucket: str
    prefix: str
    total_objects: int = 0
    total_bytes: int = 0
    newest: list[ObjectReport] = field(default_factory=list)
    sampled_lines: int = 0
    valid_lines: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    manifest_problems: list[str] = field(default_factory=list)
    manifest_checked: bool = False
    strict: bool = False

    @property
    def ok(self) -> bool:
        if self.total_objects == 0 or not all(o.layout_ok for o in self.newest) or self.manifest_problems:
            return False
        return not (self.strict and self.reasons)

    def lines(self) -> list[str]:
        out = [f"s3://{self.bucket}/{self.prefix}: {self.total_objects} objects, {self.total_bytes:,} bytes"]
        if self.newest:
            out.append(f"newest {len(self.newest)} objects:")
            for o in self.newest:
                layout = (
                    ""
                    if o.layout_ok
                    else "  <- key does not follow <prefix>/dt=YYYY-MM-DD/hr=HH/<utc>-<uuid>.jsonl[.gz]"
                )
                out.append(f"  {o.last_modified}  {o.lines:>7} lines  {o.size:>10,} B  {o.key}{layout}")
            out.append(f"lines in those objects: {sum(o.lines for o in self.newest)}")
        if self.sampled_lines:
            share = 100.0 * self.valid_lines / self.sampled_lines
            out.append(f"sample of {self.sampled_lines} lines: {self.valid_lines} valid ({share:.1f}%)")
            for reason, count in sorted(self.reasons.items()):
                out.append(f"  {reason}: {count}")
        if self.manifest_checked:
            if self.manifest_problems:
                out.append("manifest reconciliation FAILED:")
                out.extend(f"  {p}" for p in self.manifest_problems)
            else:
                out.append(
                    "manifest reconciliation: every object of the run is there, and recounting its lines "
                    "reproduces every ground-truth count"
                )
        out.append("OK" if self.ok else "NOT OK")
        return out


def _read_lines(client: Any, bucket: str, key: str) -> list[str]:
    return object_lines(client.get_object(Bucket=bucket, Key=key)["Body"].read(), key)


def _list(client: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found.extend(page.get("Contents", []))
    return found


def line_reason(line: str) -> str | None:
    """The quarantine reason Silver will give a landed line: a contract reason or a lateness rule."""
    found = contract.violation_of_line(line)
    if found is not None:
        return found.reason
    event = json.loads(line)
    lateness = (
        datetime.fromisoformat(event["ingest_time"]) - datetime.fromisoformat(event["event_time"])
    ).total_seconds()
    if lateness > MAX_LATENESS_HOURS * 3600:
        return rules.TOO_LATE
    if -lateness > FUTURE_TOLERANCE_MINUTES * 60:
        return rules.FUTURE_EVENT_TIME
    return None


def verify_landing(
    client: Any,
    bucket: str,
    prefix: str = "landing/clickstream",
    *,
    newest: int = 5,
    sample_lines: int = 500,
    manifest: dict[str, Any] | None = None,
    strict: bool = False,
) -> VerifyReport:
    """Inspect the landing area; see the module docstring. Reads only the newest objects' content."""
    prefix = prefix.strip("/")
    report = VerifyReport(bucket=bucket, prefix=prefix, strict=strict)
    listing = _list(client, bucket, prefix + "/")
    report.total_objects = len(listing)
    report.total_bytes = sum(int(o["Size"]) for o in listing)
    chosen = sorted(listing, key=lambda o: (o["LastModified"], o["Key"]), reverse=True)[:newest]
    reasons: Counter[str] = Counter()
    per_object_sample = max(1, sample_lines // max(1, len(chosen)))
    for obj in chosen:
        lines = _read_lines(client, bucket, obj["Key"])
        report.newest.append(
            ObjectReport(
                key=obj["Key"],
                size=int(obj["Size"]),
                last_modified=obj["LastModified"].isoformat(),
                lines=len(lines),
                layout_ok=KEY_LAYOUT.match(obj["Key"]) is not None,
            )
        )
        # Spread the sample over the object rather than taking its head.
        step = max(1, len(lines) // per_object_sample)
        for line in lines[::step][:per_object_sample]:
            report.sampled_lines += 1
            reason = line_reason(line)
            if reason is None:
                report.valid_lines += 1
            else:
                reasons[reason] += 1
    report.reasons = dict(reasons)
    if manifest is not None:
        report.manifest_checked = True
        report.manifest_problems = _reconcile(client, bucket, listing, manifest)
    return report


def _reconcile(client: Any, bucket: str, listing: list[dict[str, Any]], manifest: dict[str, Any]) -> list[str]:
    """Every manifest object must exist with its size and line count, and a recount of the landed
    lines must reproduce every ground-truth count of the manifest."""
    problems: list[str] = []
    if manifest["landing"]["bucket"] != bucket:
        return [f"manifest is for bucket {manifest['landing']['bucket']}, not {bucket}"]
    sizes = {o["Key"]: int(o["Size"]) for o in listing}
    recount = Recount()
    for obj in manifest["objects"]:
        size = sizes.get(obj["key"])
        if size is None:
            problems.append(f"missing: {obj['key']}")
            continue
        if size != obj["bytes"]:
            problems.append(f"{obj['key']}: {size} bytes, manifest says {obj['bytes']}")
        lines = object_lines(client.get_object(Bucket=bucket, Key=obj["key"])["Body"].read(), obj["key"])
        if len(lines) != obj["lines"]:
            problems.append(f"{obj['key']}: {len(lines)} lines, manifest says {obj['lines']}")
        recount.add_object(lines)
    if not problems:
        problems.extend(differences(manifest, recount))
    return problems


# ---------------------------------------------------------------------------------------------
# cleanup
# ---------------------------------------------------------------------------------------------


@dataclass
class CleanupPlan:
    bucket: str
    prefixes: list[str]
    objects: int
    versioned: bool
    # Objects (or versions) outside the prefixes; only counted when the bucket is to be deleted.
    outside: int = 0


def _count_all(client: Any, bucket: str, prefix: str, versioned: bool) -> int:
    count = 0
    if versioned:
        for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
            count += len(page.get("Versions", [])) + len(page.get("DeleteMarkers", []))
    else:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            count += len(page.get("Contents", []))
    return count


def plan_cleanup(client: Any, bucket: str, prefixes: list[str], *, delete_bucket: bool = False) -> CleanupPlan:
    """What :func:`cleanup` would delete. Refuses an empty prefix (that would be the whole bucket)."""
    cleaned = [p.strip("/") for p in prefixes]
    if not cleaned or any(not p for p in cleaned):
        raise AwsCommandError("refusing to clean up an empty prefix (the whole bucket): name each demo prefix")
    versioning = client.get_bucket_versioning(Bucket=bucket).get("Status")
    versioned = versioning in ("Enabled", "Suspended")
    count = sum(_count_all(client, bucket, prefix + "/", versioned) for prefix in cleaned)
    outside = _count_all(client, bucket, "", versioned) - count if delete_bucket else 0
    return CleanupPlan(bucket, cleaned, count, versioned, outside)


def cleanup(
    client: Any,
    bucket: str,
    prefixes: list[str],
    *,
    confirm: bool,
    delete_bucket: bool = False,
) -> list[str]:
    """Delete everything under ``prefixes`` (and the bucket itself if asked and then empty).

    Without ``confirm`` nothing is deleted: :class:`ConfirmationRequired` says what would be. With
    ``delete_bucket``, nothing is deleted either while the bucket holds anything else.
    """
    plan = plan_cleanup(client, bucket, prefixes, delete_bucket=delete_bucket)
    where = ", ".join(f"s3://{bucket}/{p}/" for p in plan.prefixes)
    if plan.outside:
        raise AwsCommandError(
            f"bucket {bucket} holds {plan.outside} objects outside {where}: not deleting the bucket, and nothing "
            "else either (remove those objects first, or clean up without --delete-bucket)"
        )
    if not confirm:
        raise ConfirmationRequired(
            f"would delete {plan.objects} object{' versions' if plan.versioned else 's'} under {where}"
            + (f" and bucket {bucket}" if delete_bucket else "")
            + "; nothing deleted. Re-run with --confirm to delete them."
        )
    done: list[str] = []
    for prefix in plan.prefixes:
        deleted = _delete_prefix(client, bucket, prefix + "/", versioned=plan.versioned)
        done.append(f"deleted {deleted} object{' versions' if plan.versioned else 's'} under s3://{bucket}/{prefix}/")
    if delete_bucket:
        client.delete_bucket(Bucket=bucket)
        done.append(f"deleted bucket {bucket}")
    return done


def _delete_prefix(client: Any, bucket: str, prefix: str, *, versioned: bool) -> int:
    deleted = 0
    if versioned:
        pages = client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix)
        batches = (
            [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            for page in pages
        )
    else:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        batches = ([{"Key": o["Key"]} for o in page.get("Contents", [])] for page in pages)
    for batch in batches:
        # A page holds at most 1,000 keys, which is also DeleteObjects' limit.
        if not batch:
            continue
        response = client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise AwsCommandError(
                f"S3 refused to delete {len(errors)} objects under s3://{bucket}/{prefix} "
                f"(first: {first.get('Key')}: {first.get('Code')} {first.get('Message')})"
            )
        deleted += len(batch)
    return deleted
