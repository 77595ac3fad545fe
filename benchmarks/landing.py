"""Benchmark landing data: N events as the producer writes them, in a local folder, generated once.

The producer itself makes the data (``producer.run`` with a simulated clock), so every line is what
a real run lands: realistic traffic, a small share of duplicates, late events, malformed and invalid
lines, 1,000 lines per JSON-lines object, keys ``dt=YYYY-MM-DD/hr=HH/<utc>-<token>.jsonl``. The only
difference from a run into S3 is the client: :class:`FolderClient` answers ``put_object`` by writing
the object under a local folder, so no S3 endpoint is needed and the benchmark reads plain files.

The event-time span matters for the Silver state benchmark: at 50 events/s of simulated clock, 1M
events span 5.6 hours and 5M span 28 hours, so a 10-minute watermark advances many times and the
dedup state must stay bounded while the data grows.

Cached as ``.lakehouse/bench/landing-<n>/`` (data) with ``landing-<n>.manifest/`` next to it (the
producer's manifest: ground-truth counts). A folder is reused when the ``_READY`` marker next to it
names the same generator parameters.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from producer import profiles

BENCH_ROOT = Path(".lakehouse/bench")
PREFIX = "landing/clickstream"
EVENTS_PER_FILE = 1000
# Simulated events per second: sets how many hours of event time the data spans.
SIMULATED_RATE = 50.0
START_TIME = "2026-05-01T00:00:00Z"
SEED = 20260501
GENERATOR_VERSION = 1
READY = "_READY"


class FolderClient:
    """The one S3 call the producer makes (``put_object``), answered by writing local files.

    Keys under the landing prefix go to ``landing`` (prefix stripped); anything else (the producer's
    manifest, truth and faults files) goes to ``other``, outside the landing folder.
    """

    def __init__(self, landing: Path, other: Path, prefix: str = PREFIX) -> None:
        self.landing = landing
        self.other = other
        self.prefix = prefix.strip("/") + "/"
        self.objects = 0

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: object) -> dict:  # noqa: N803 - boto3's names
        if Key.startswith(self.prefix):
            target = self.landing / Key[len(self.prefix) :]
            self.objects += 1
        else:
            target = self.other / Key
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(Body)
        tmp.rename(target)  # whole objects only, as S3 shows them
        return {"ResponseMetadata": {"RetryAttempts": 0}}


def parameters(events: int) -> dict:
    return {
        "generator": GENERATOR_VERSION,
        "events": events,
        "rate": SIMULATED_RATE,
        "start_time": START_TIME,
        "seed": SEED,
        "batch_size": EVENTS_PER_FILE,
        **profiles.BENCHMARK,
    }


def landing_folder(events: int) -> Path:
    return (BENCH_ROOT / f"landing-{events}").resolve()


def ensure_landing(events: int, *, log=print) -> dict:
    """The landing folder for ``events`` events (generated now unless cached). Returns its description."""
    from producer import ProducerConfig, run

    folder = landing_folder(events)
    side = folder.with_name(folder.name + ".manifest")
    marker = side / READY
    wanted = parameters(events)
    if marker.exists():
        info = json.loads(marker.read_text())
        if info.get("parameters") == wanted:
            return info
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(side, ignore_errors=True)
    folder.mkdir(parents=True)
    side.mkdir(parents=True)
    log(f"generating {events:,} events into {folder} (producer, simulated clock; cached for later runs)")
    client = FolderClient(folder, side)
    config = ProducerConfig(
        bucket="bench",
        prefix=PREFIX,
        events=events,
        seed=SEED,
        start_time=START_TIME,
        rate=SIMULATED_RATE,
        batch_size=EVENTS_PER_FILE,
        # Longer than a full batch takes on the simulated clock: every object holds 1,000 lines.
        batch_interval_seconds=EVENTS_PER_FILE / SIMULATED_RATE * 2,
        manifest_path=str(side / "manifest.json"),
        progress=False,
        **profiles.BENCHMARK,
    )
    began = time.perf_counter()
    manifest = run(config, s3_client=client).to_dict()
    seconds = time.perf_counter() - began
    files = sorted(p for p in folder.rglob("*.jsonl"))
    info = {
        "parameters": wanted,
        "path": str(folder),
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
        "lines": manifest["counts"]["lines_sent"],
        "counts": manifest["counts"],
        "generated_in_s": round(seconds, 1),
    }
    # Written last: a folder without it is incomplete and is regenerated.
    marker.write_text(json.dumps(info, indent=2))
    log(f"  {info['lines']:,} lines in {info['files']:,} files ({info['bytes'] / 1e6:,.0f} MB) in {seconds:.0f} s")
    return info
