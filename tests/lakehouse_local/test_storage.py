"""Storage access shared by the local runtime: listing and reading on S3 and local disks."""

from __future__ import annotations

import os

import pytest

from lakehouse_local import storage


def test_local_listing_is_recursive_and_skips_hidden_names(tmp_path):
    (tmp_path / "dt=2024-01-01" / "hr=00").mkdir(parents=True)
    (tmp_path / "dt=2024-01-01" / "hr=00" / "a.jsonl").write_text("a\n")
    (tmp_path / "b.jsonl").write_text("bb\n")
    (tmp_path / "_SUCCESS").write_text("")
    (tmp_path / ".b.jsonl.crc").write_text("")
    (tmp_path / "_temporary").mkdir()
    (tmp_path / "_temporary" / "c.jsonl").write_text("c\n")
    os.utime(tmp_path / "b.jsonl", ns=(1_700_000_000_123_000_000, 1_700_000_000_123_000_000))

    files = storage.list_files(str(tmp_path))

    assert sorted((f.path, f.size) for f in files) == [
        ((tmp_path / "b.jsonl").as_uri(), 3),
        ((tmp_path / "dt=2024-01-01" / "hr=00" / "a.jsonl").as_uri(), 2),
    ]
    assert {f.name: f.modification_time_ms for f in files}["b.jsonl"] == 1_700_000_000_123
    assert storage.list_files(tmp_path.as_uri()) == files
    assert storage.list_files(str(tmp_path / "missing")) == []


def test_s3_listing_reads_and_atomic_writes(s3, bucket):
    s3.put_object(Bucket=bucket, Key="landing/dt=1/a.json", Body=b"{}\n")
    s3.put_object(Bucket=bucket, Key="landing/_tmp/b.json", Body=b"{}\n")
    s3.put_object(Bucket=bucket, Key="landing/folder/", Body=b"")
    s3.put_object(Bucket=bucket, Key="landing2/c.json", Body=b"{}\n")

    files = storage.list_files(f"s3://{bucket}/landing")

    assert [(f.path, f.size, f.name) for f in files] == [(f"s3://{bucket}/landing/dt=1/a.json", 3, "a.json")]
    assert storage.read_bytes(files[0].path) == b"{}\n"
    storage.write_bytes(f"s3://{bucket}/state/x", b"v1")
    assert storage.read_bytes(f"s3://{bucket}/state/x") == b"v1"
    storage.delete([f"s3://{bucket}/state/x"])
    assert storage.list_files(f"s3://{bucket}/state") == []
    # A URI naming one object lists that object.
    assert [f.path for f in storage.list_files(f"s3://{bucket}/landing2/c.json")] == [f"s3://{bucket}/landing2/c.json"]


def test_local_write_bytes_replaces_whole_file_or_refuses_when_exclusive(tmp_path):
    target = tmp_path / "log" / "00001.jsonl"
    storage.write_bytes(str(target), b"one\n", exclusive=True)
    storage.write_bytes(target.as_uri(), b"two\n")
    with pytest.raises(FileExistsError):
        storage.write_bytes(str(target), b"three\n", exclusive=True)
    assert target.read_bytes() == b"two\n"
    assert [p.name for p in target.parent.iterdir()] == ["00001.jsonl"]


def test_s3_exclusive_write_refuses_an_existing_object(bucket):
    storage.write_bytes(f"s3://{bucket}/log/1.jsonl", b"one", exclusive=True)
    with pytest.raises(FileExistsError):
        storage.write_bytes(f"s3://{bucket}/log/1.jsonl", b"two", exclusive=True)
    assert storage.read_bytes(f"s3://{bucket}/log/1.jsonl") == b"one"
