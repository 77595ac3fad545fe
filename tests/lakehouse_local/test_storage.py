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


def test_local_listing_after_a_key_returns_later_keys_and_reads_only_folders_that_can_hold_them(tmp_path, monkeypatch):
    for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
        for hour in ("00", "01", "02"):
            for name in ("a.jsonl", "b.jsonl"):
                path = tmp_path / f"dt={day}" / f"hr={hour}" / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"{day} {hour} {name}\n")
    (tmp_path / "dt=2024-01-02" / "hr=01" / "_tmp.jsonl").write_text("hidden\n")
    (tmp_path / "dt=2024-01-02-late.jsonl").write_text("sorts before dt=2024-01-02/ ('-' < '/')\n")
    after = "dt=2024-01-02/hr=01/a.jsonl"
    everything = storage.list_files(str(tmp_path))
    read: list[str] = []
    real_scandir = os.scandir
    monkeypatch.setattr(storage.os, "scandir", lambda path: read.append(path) or real_scandir(path))

    later = storage.list_files(str(tmp_path), start_after=after)

    keys = [storage.relative_key(tmp_path.as_uri(), f.path) for f in later]
    assert keys == sorted(k for k in (storage.relative_key(tmp_path.as_uri(), f.path) for f in everything) if k > after)
    assert keys[:3] == ["dt=2024-01-02/hr=01/b.jsonl", "dt=2024-01-02/hr=02/a.jsonl", "dt=2024-01-02/hr=02/b.jsonl"]
    assert len(keys) == 3 + 6
    # The root, the key's day and hour, the later hour, the later day and its three hours: not the 5 earlier folders.
    assert sorted(os.path.relpath(p, tmp_path) for p in read) == [
        ".",
        "dt=2024-01-02",
        "dt=2024-01-02/hr=01",
        "dt=2024-01-02/hr=02",
        "dt=2024-01-03",
        "dt=2024-01-03/hr=00",
        "dt=2024-01-03/hr=01",
        "dt=2024-01-03/hr=02",
    ]


def test_s3_listing_after_a_key_pays_only_for_later_keys(s3, bucket):
    keys = [f"landing/dt=2024-01-01/hr={n // 400:02d}/{n:05d}.jsonl" for n in range(1_050)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"{}\n")
    s3.put_object(Bucket=bucket, Key="landing2/other.jsonl", Body=b"{}\n")
    for key in keys[100:110]:
        s3.delete_object(Bucket=bucket, Key=key)
    for key in keys[-5:]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"{}\n{}\n")  # overwritten: listed once, new size
    live = [key for key in keys if key not in keys[100:110]]
    requests: list[dict] = []
    events = storage.s3_client().meta.events
    counter = events.register("before-call.s3.ListObjectsV2", lambda params, **_: requests.append(params))
    try:
        everything = storage.list_files(f"s3://{bucket}/landing")
        full_requests = len(requests)
        after = live[-20][len("landing/") :]
        later = storage.list_files(f"s3://{bucket}/landing", start_after=after)
    finally:
        events.unregister("before-call.s3.ListObjectsV2", counter)

    assert [f.path for f in everything] == [f"s3://{bucket}/{key}" for key in live]
    assert [f.size for f in everything[-5:]] == [6] * 5
    assert full_requests == 2  # 1,040 keys: two pages of at most 1,000
    assert [storage.relative_key(f"s3://{bucket}/landing", f.path) for f in later] == [
        key[len("landing/") :] for key in live[-19:]
    ]
    assert len(requests) - full_requests == 1
