"""The embedded S3 endpoint answers ``ListObjectsV2`` from a sorted index exactly as moto would."""

from __future__ import annotations

from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends

from lakehouse_local import s3server


def test_listing_from_the_sorted_index_answers_as_moto_does(s3, bucket):
    keys = [f"landing/dt=2024-01-0{d}/hr={h:02d}/{n}.jsonl" for d in (1, 2) for h in range(3) for n in range(7)]
    for key in [*keys, "landing2/x.jsonl", "landing/dt=2024-01-01/folder/", "other.jsonl"]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"{}\n")
    s3.delete_object(Bucket=bucket, Key=keys[3])
    s3.put_object(Bucket=bucket, Key=keys[5], Body=b"{}\n{}\n")
    s3.list_objects_v2(Bucket=bucket)  # builds the index; later changes must keep it current
    s3.delete_object(Bucket=bucket, Key=keys[20])
    s3.put_object(Bucket=bucket, Key="landing/dt=2024-01-01/hr=01/late.jsonl", Body=b"{}\n")
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["global"]
    fake_bucket = backend.get_bucket(bucket)

    def names(method, prefix, start_after, max_keys, token=None):
        page, truncated, next_token = method(backend, fake_bucket, prefix, None, token, start_after, max_keys)
        return [key.name for key in page], truncated, next_token

    cases = [
        (None, None, 1000),
        ("landing/", None, 1000),
        ("landing/", keys[10], 1000),
        ("landing/", keys[10], 4),
        ("landing", "landing/dt=2024-01-01/hr=09", 1000),
        ("landing/dt=2024-01-02/", None, 0),
        ("nothing/", None, 5),
    ]
    for prefix, start_after, max_keys in cases:
        ours = names(type(backend).list_objects_v2, prefix, start_after, max_keys)
        theirs = names(s3server.moto_list_objects_v2, prefix, start_after, max_keys)
        assert ours[:2] == theirs[:2], (prefix, start_after, max_keys)
    # Pages through continuation tokens, as boto3's paginator asks for them.
    pages = [
        page["Contents"]
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix="landing/", PaginationConfig={"PageSize": 10}
        )
    ]
    listed = [obj["Key"] for page in pages for obj in page]
    assert listed == names(s3server.moto_list_objects_v2, "landing/", None, 1000)[0]
    assert [len(page) for page in pages] == [10, 10, 10, 10, 2]
    assert keys[3] not in listed and keys[20] not in listed and "landing/dt=2024-01-01/hr=01/late.jsonl" in listed
