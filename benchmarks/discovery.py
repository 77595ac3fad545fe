"""``python -m benchmarks.discovery``: what one trigger's file discovery costs as the landing grows.

The landing holds N objects (10,000 and 100,000 by default) under the producer's keys,
``dt=YYYY-MM-DD/hr=HH/<utc>-<token>.jsonl``, one every 6 seconds of key time (100,000 objects are the
7 days the landing bucket keeps), in a local folder and in the embedded S3 endpoint. A stream's reader
(the ``cloudFiles`` source Spark's planner drives) first discovers all N files, then runs triggers:
one that finds nothing new, then one that finds 100 new objects (landed just before it, keys after
every other), ``--repeats`` times (``--baseline-repeats`` when listing everything). A trigger's
discovery cost is its ``latestOffset`` call: listing, recording the new files in the discovery log
and choosing the batch's end; figures are medians.

Each store is measured with ``cloudFiles.useIncrementalListing`` ``auto`` (the default: after the
run's first listing, only the keys after the last one seen) and ``false`` (every trigger lists
everything, as the source did before incremental listing). Local objects are written as files; S3
objects are put straight into the endpoint's in-process backend (a PUT request each would take
minutes at 100,000), while discovery goes through boto3 and HTTP, the real S3 API, and S3
``ListObjectsV2`` requests are counted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks import emit
from benchmarks import landing as landing_data
from benchmarks.procmem import load_average

KEY_SPACING_S = 6  # one object every 6 seconds of key time: 100,000 objects span 6.9 days
START_S = 1_777_593_600  # 2026-05-01T00:00:00Z
BODY = b'{"event_id": "00000000-0000-4000-8000-000000000000", "action": "view"}\n'
PREFIX = "landing/clickstream"
MODES = ("auto", "false")
AIM_RATIO = 1.5


def object_key(index: int) -> str:
    """The producer's key for the ``index``-th object (relative to the landing prefix)."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(START_S + index * KEY_SPACING_S))
    return f"dt={stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}/hr={stamp[9:11]}/{stamp}000Z-{index:08x}.jsonl"


class LocalLanding:
    def __init__(self, root: Path) -> None:
        self.folder = root / "landing"
        self.uri = str(self.folder)

    def put(self, keys: list[str]) -> None:
        made: set[Path] = set()
        for key in keys:
            path = self.folder / key
            if path.parent not in made:
                path.parent.mkdir(parents=True, exist_ok=True)
                made.add(path.parent)
            path.write_bytes(BODY)

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            (self.folder / key).unlink()


class S3Landing:
    """A bucket in the embedded endpoint, filled through moto's in-process backend."""

    def __init__(self, bucket: str) -> None:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        from lakehouse_local import storage

        self.backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        self.bucket = bucket
        storage.s3_client().create_bucket(Bucket=bucket)
        self.uri = f"s3://{bucket}/{PREFIX}"

    def put(self, keys: list[str]) -> None:
        for key in keys:
            self.backend.put_object(self.bucket, f"{PREFIX}/{key}", BODY)

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            self.backend.delete_object(self.bucket, f"{PREFIX}/{key}")


class RequestCounter:
    """S3 ListObjectsV2 requests sent by the runtime's client."""

    def __init__(self) -> None:
        from lakehouse_local import storage

        self.count = 0
        self._events = storage.s3_client().meta.events
        self._handler = self._events.register("before-call.s3.ListObjectsV2", self._seen)

    def _seen(self, **_: object) -> None:
        self.count += 1

    def close(self) -> None:
        self._events.unregister("before-call.s3.ListObjectsV2", self._handler)


def measure_mode(landing, size: int, mode: str, schema_root: Path, new_files: int, repeats: int, counter) -> dict:
    """One stream over ``landing`` (``size`` objects) with ``useIncrementalListing=mode``."""
    from pyspark.sql.streaming.datasource import ReadAllAvailable

    from lakehouse_local.sources.cloudfiles import TEXT_SCHEMA, CloudFilesOptions, CloudFilesStreamReader, OutputLayout

    options = CloudFilesOptions.from_options(
        {
            "cloudFiles.format": "text",
            "path": landing.uri,
            "cloudFiles.schemaLocation": str(schema_root / f"schema-{mode}"),
            "cloudFiles.useIncrementalListing": mode,
        }
    )
    reader = CloudFilesStreamReader(options, OutputLayout.for_schema(TEXT_SCHEMA, options))
    everything = ReadAllAvailable()

    def trigger(offset: dict) -> tuple[dict, float, int]:
        requests = counter.count if counter else 0
        began = time.perf_counter()
        end = reader.latestOffset(offset, everything)
        seconds = time.perf_counter() - began
        reader.commit(end)
        return end, seconds, (counter.count - requests) if counter else 0

    offset = reader.initialOffset()
    offset, first_s, first_requests = trigger(offset)
    assert offset["seq"] == size, (offset, size)
    nothing, nothing_requests, new, new_requests = [], [], [], []
    landed: list[str] = []
    for repeat in range(repeats):
        end, seconds, requests = trigger(offset)
        assert end["seq"] == offset["seq"]
        nothing.append(seconds)
        nothing_requests.append(requests)
        keys = [object_key(size + repeat * new_files + n) for n in range(new_files)]
        landing.put(keys)
        landed += keys
        end, seconds, requests = trigger(offset)
        assert end["seq"] == offset["seq"] + new_files, (end, offset)
        new.append(seconds)
        new_requests.append(requests)
        offset = end
    discovery = reader._discovery()
    known = discovery.known_paths
    landing.delete(landed)  # the next mode starts from the same N objects
    return {
        "first_listing_s": round(first_s, 3),
        "first_listing_list_requests": first_requests,
        "nothing_new_ms": round(statistics.median(nothing) * 1000, 2),
        "nothing_new_ms_each": [round(s * 1000, 2) for s in nothing],
        "new_files_ms": round(statistics.median(new) * 1000, 2),
        "new_files_ms_each": [round(s * 1000, 2) for s in new],
        "list_requests_nothing_new": max(nothing_requests),
        "list_requests_new_files": max(new_requests),
        "known_paths": known,
    }


def measure_store(kind: str, sizes: list[int], new_files: int, repeats: tuple[int, int], work: Path) -> dict:
    runs: dict[str, dict] = {}
    counter = RequestCounter() if kind == "s3" else None
    try:
        for size in sizes:
            root = work / f"{kind}-{size}"
            root.mkdir(parents=True)
            landing = LocalLanding(root) if kind == "local" else S3Landing(f"discovery-{size}")
            began = time.perf_counter()
            landing.put([object_key(index) for index in range(size)])
            fill_s = time.perf_counter() - began
            print(f"{kind}: {size:,} objects landed in {fill_s:.1f} s", flush=True)
            runs[str(size)] = {"fill_s": round(fill_s, 1)}
            for mode in MODES:
                times = repeats[0] if mode == "auto" else repeats[1]
                result = measure_mode(landing, size, mode, root, new_files, times, counter)
                print(f"  {mode:5s} {json.dumps(result)}", flush=True)
                runs[str(size)][mode] = result
            shutil.rmtree(root, ignore_errors=True)
    finally:
        if counter:
            counter.close()
    return runs


def ratios(runs: dict, sizes: list[int]) -> dict:
    """Largest size over smallest, per mode and trigger kind."""
    small, large = runs[str(min(sizes))], runs[str(max(sizes))]
    return {
        mode: {
            kind: round(large[mode][kind] / small[mode][kind], 2) if small[mode][kind] else None
            for kind in ("nothing_new_ms", "new_files_ms")
        }
        for mode in MODES
    }


def run(sizes: list[int], new_files: int, repeats: tuple[int, int]) -> dict:
    """Both stores at every size; ``repeats``: triggers of each kind, incremental and listing everything."""
    from lakehouse_local.s3server import EmbeddedS3

    load_before = load_average()
    work = Path(tempfile.mkdtemp(prefix="discovery-", dir=landing_data.BENCH_ROOT.resolve()))
    server = EmbeddedS3().start(export_env=True)
    try:
        stores = {kind: measure_store(kind, sizes, new_files, repeats, work) for kind in ("local", "s3")}
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "what": f"one trigger's discovery (latestOffset: listing + discovery log) with nothing new and with "
        f"{new_files} new objects, at {' and '.join(f'{s:,}' for s in sizes)} landed objects; median of "
        f"{repeats[0]} triggers of each kind ({repeats[1]} when listing everything)",
        "sizes": sizes,
        "new_files": new_files,
        "repeats": repeats,
        "stores": stores,
        "ratios": {kind: ratios(runs, sizes) for kind, runs in stores.items()},
        "aim_ratio": AIM_RATIO,
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }
    result["met"] = all(r["auto"]["new_files_ms"] <= AIM_RATIO for r in result["ratios"].values())
    return result


# -- results in the benchmark report (benchmarks.report) --------------------------------------------

STORE_NAMES = {"local": "local folder", "s3": "embedded S3 endpoint"}


def _ms(value: float) -> str:
    return f"{value:,.1f} ms" if value < 1000 else f"{value / 1000:,.2f} s"


def summary_rows(result: dict) -> list[tuple[str, str, str, str, str]]:
    """A row per store: a trigger with new files, smallest → largest landing, incremental and full listing."""
    if "error" in result:
        return [("Discovery", f"failed ({result['error']})", "", "", "")]
    small, large = str(min(result["sizes"])), str(max(result["sizes"]))
    before, after = result.get("load_average_before"), result.get("load_average_after")
    load = f"{before[0]:.1f} → {after[0]:.1f}" if before and after else ""
    rows = []
    for kind, runs in result["stores"].items():
        auto, full = (runs[small]["auto"], runs[large]["auto"]), (runs[small]["false"], runs[large]["false"])
        ratio = result["ratios"][kind]
        rows.append(
            (
                f"Discovery · {STORE_NAMES[kind]}, a trigger with {result['new_files']} new files, "
                f"{int(small):,} → {int(large):,} landed",
                f"{_ms(auto[0]['new_files_ms'])} → {_ms(auto[1]['new_files_ms'])} = {ratio['auto']['new_files_ms']}× "
                f"(nothing new: {_ms(auto[0]['nothing_new_ms'])} → {_ms(auto[1]['nothing_new_ms'])}; listing "
                f"everything: {_ms(full[0]['new_files_ms'])} → {_ms(full[1]['new_files_ms'])} = "
                f"{ratio['false']['new_files_ms']}×)",
                f"≤ {result['aim_ratio']}×",
                "yes" if ratio["auto"]["new_files_ms"] <= result["aim_ratio"] else "no",
                load,
            )
        )
    return rows


def details(result: dict) -> list[str]:
    if "error" in result:
        return [f"- failed ({result['error']}); log {result.get('log')}"]
    out = [f"- {result['what']}."]
    for kind, runs in result["stores"].items():
        out.append(f"- **{STORE_NAMES[kind]}**:")
        for size, run in runs.items():
            for mode in MODES:
                r = run[mode]
                requests = (
                    f"; ListObjectsV2 requests: {r['list_requests_nothing_new']} / {r['list_requests_new_files']}"
                    if kind == "s3"
                    else ""
                )
                out.append(
                    f"  - {int(size):,} landed, useIncrementalListing={mode}: nothing new {_ms(r['nothing_new_ms'])}, "
                    f"{result['new_files']} new {_ms(r['new_files_ms'])} (each: {r['new_files_ms_each']}); first "
                    f"listing of all {int(size):,} {_ms(r['first_listing_s'] * 1000)}{requests}; paths remembered "
                    f"{r['known_paths']:,}"
                )
        ratio = result["ratios"][kind]
        out.append(
            f"  - {max(result['sizes']):,} / {min(result['sizes']):,} landed: incremental "
            f"{ratio['auto']['new_files_ms']}× with new files, {ratio['auto']['nothing_new_ms']}× with nothing new; "
            f"listing everything {ratio['false']['new_files_ms']}× and {ratio['false']['nothing_new_ms']}×"
        )
    out.append(f"- load average before/after: {result.get('load_average_before')} / {result.get('load_average_after')}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.discovery", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="landed objects, comma-separated")
    parser.add_argument("--new-files", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline-repeats", type=int, default=3, help="repeats with useIncrementalListing=false")
    parser.add_argument("--out", help="write the result as JSON here")
    args = parser.parse_args(argv)
    landing_data.BENCH_ROOT.mkdir(parents=True, exist_ok=True)
    sizes = sorted(int(size) for size in args.sizes.split(",") if size.strip())
    result = {"name": "discovery", **run(sizes, args.new_files, (args.repeats, args.baseline_repeats))}
    return emit(result, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
