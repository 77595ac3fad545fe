"""IAM policy documents in infra/aws/iam: least privilege for the producer and for Unity Catalog's role.

* The producer may only put objects under the landing and manifests prefixes (no reads, no deletes),
  and list nothing else.
* Databricks reads the landing prefix, reads and writes the lakehouse prefix, never writes landing.
* The trust policy lets Unity Catalog's master role and the role itself assume it, with the storage
  credential's external id.
* With SSE-KMS on the bucket (01_setup_aws --kms-key-id), two optional policies let the producer and the
  Databricks role use that key, only through S3 and only for what each of them does.
* Prefixes agree with the producer's defaults and the bundle's landing_prefix.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml
from support import REPO_ROOT

from producer.config import DEFAULT_MANIFESTS_PREFIX, DEFAULT_PREFIX

IAM_DIR = REPO_ROOT / "infra" / "aws" / "iam"
BUNDLE_FILE = REPO_ROOT / "databricks.yml"
UC_MASTER_ROLE = "arn:aws:iam::414351767826:role/unity-catalog-prod-UCMasterRole-14S5ZJVKOTYTL"
BUCKET_ARN = "arn:aws:s3:::<bucket>"
PLACEHOLDERS = {
    "<bucket>",
    "<aws-account-id>",
    "<databricks-role-name>",
    "<storage-credential-external-id>",
    "<kms-key-arn>",
    "<aws-region>",
}
KMS_KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _policy(name: str) -> dict:
    return json.loads((IAM_DIR / name).read_text())


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _grants(policy: dict) -> list[tuple[str, str]]:
    """(action, resource) pairs the policy allows."""
    pairs = []
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"]):
            for resource in _as_list(statement["Resource"]):
                pairs.append((action, resource))
    return pairs


def _list_prefixes(policy: dict) -> set[str]:
    prefixes = set()
    for statement in policy["Statement"]:
        if "s3:ListBucket" in _as_list(statement["Action"]):
            assert _as_list(statement["Resource"]) == [BUCKET_ARN]
            condition = statement.get("Condition", {}).get("StringLike", {})
            assert "s3:prefix" in condition, f"{statement.get('Sid')}: ListBucket must be limited by s3:prefix"
            prefixes |= set(_as_list(condition["s3:prefix"]))
    return prefixes


@pytest.mark.parametrize("name", sorted(p.name for p in IAM_DIR.glob("*.json")))
def test_policy_documents_parse_and_use_only_known_placeholders(name):
    text = (IAM_DIR / name).read_text()
    policy = json.loads(text)
    assert policy["Version"] == "2012-10-17"
    assert policy["Statement"], name
    assert set(re.findall(r"<[a-z0-9-]+>", text)) <= PLACEHOLDERS
    # ${...} is an IAM policy variable, not a placeholder: none may slip in.
    assert "${" not in text
    for action in re.findall(r'"((?:s3|sts|kms):[^"]*)"', text):
        assert "*" not in action, f"{name}: wildcard action {action}"


def test_the_expected_documents_exist():
    assert sorted(p.name for p in IAM_DIR.glob("*.json")) == [
        "databricks-kms-policy.json",
        "databricks-policy.json",
        "databricks-trust-policy.json",
        "producer-kms-policy.json",
        "producer-policy.json",
    ]


def test_producer_only_writes_landing_and_manifests():
    policy = _policy("producer-policy.json")
    grants = _grants(policy)
    actions = {action for action, _ in grants}
    assert actions == {"s3:PutObject", "s3:ListBucket"}
    assert not actions & {"s3:GetObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutBucketPolicy"}
    objects = {resource for action, resource in grants if action == "s3:PutObject"}
    assert objects == {f"{BUCKET_ARN}/{DEFAULT_PREFIX}/*", f"{BUCKET_ARN}/{DEFAULT_MANIFESTS_PREFIX}/*"}
    assert _list_prefixes(policy) == {
        DEFAULT_PREFIX,
        f"{DEFAULT_PREFIX}/*",
        DEFAULT_MANIFESTS_PREFIX,
        f"{DEFAULT_MANIFESTS_PREFIX}/*",
    }


def test_databricks_reads_landing_and_reads_writes_the_lakehouse_prefix():
    policy = _policy("databricks-policy.json")
    grants = _grants(policy)
    landing = f"{BUCKET_ARN}/{DEFAULT_PREFIX}/*"
    lakehouse = f"{BUCKET_ARN}/lakehouse/*"
    assert {a for a, r in grants if r == landing} == {"s3:GetObject"}, "landing is read-only for Databricks"
    assert {a for a, r in grants if r == lakehouse} == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
    assert {r for a, r in grants if a in ("s3:PutObject", "s3:DeleteObject")} == {lakehouse}
    assert ("s3:GetBucketLocation", BUCKET_ARN) in grants
    assert _list_prefixes(policy) == {DEFAULT_PREFIX, f"{DEFAULT_PREFIX}/*", "lakehouse", "lakehouse/*"}
    # Unity Catalog storage credentials must be able to assume their own role.
    assert ("sts:AssumeRole", "arn:aws:iam::<aws-account-id>:role/<databricks-role-name>") in grants


def test_trust_policy_admits_unity_catalog_and_the_role_itself_with_the_external_id():
    (statement,) = _policy("databricks-trust-policy.json")["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRole"
    assert set(statement["Principal"]["AWS"]) == {
        UC_MASTER_ROLE,
        "arn:aws:iam::<aws-account-id>:role/<databricks-role-name>",
    }
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": "<storage-credential-external-id>"}}


def test_landing_prefix_agrees_with_the_bundle():
    variables = yaml.safe_load(BUNDLE_FILE.read_text())["variables"]
    assert variables["landing_prefix"]["default"] == DEFAULT_PREFIX


def test_rendered_policies_have_valid_arns():
    values = {"<bucket>": "my-clickstream-bucket", "<aws-account-id>": "123456789012", "<databricks-role-name>": "clickstream-databricks"}
    for name in ("producer-policy.json", "databricks-policy.json"):
        text = (IAM_DIR / name).read_text()
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        for _, resource in _grants(json.loads(text)):
            assert re.fullmatch(r"arn:aws:(s3:::my-clickstream-bucket(/[\w/.-]+\*?)?|iam::123456789012:role/[\w-]+)", resource), resource


@pytest.mark.parametrize(
    ("name", "actions"),
    [
        # Unity Catalog reads the landing files and reads and writes the lakehouse prefix.
        ("databricks-kms-policy.json", {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"}),
        # The producer only puts objects (single-part PUTs: no kms:Decrypt needed).
        ("producer-kms-policy.json", {"kms:GenerateDataKey"}),
    ],
)
def test_kms_policies_use_the_bucket_key_only_through_s3(name, actions):
    policy = _policy(name)
    (statement,) = policy["Statement"]
    assert set(_as_list(statement["Action"])) == actions
    assert _as_list(statement["Resource"]) == ["<kms-key-arn>"], "that one key, no wildcard"
    assert statement["Condition"] == {"StringEquals": {"kms:ViaService": "s3.<aws-region>.amazonaws.com"}}
    text = (IAM_DIR / name).read_text().replace("<kms-key-arn>", KMS_KEY_ARN).replace("<aws-region>", "eu-west-1")
    rendered = json.loads(text)["Statement"][0]
    assert rendered["Resource"] == [KMS_KEY_ARN]
    assert rendered["Condition"]["StringEquals"]["kms:ViaService"] == "s3.eu-west-1.amazonaws.com"


def test_the_s3_policies_grant_no_kms_so_sse_s3_buckets_need_nothing_more():
    for name in ("producer-policy.json", "databricks-policy.json"):
        assert not any(action.startswith("kms:") for action, _ in _grants(_policy(name))), name
