"""Producer throughput into the embedded S3 endpoint, with 1,000-event batches.

Run: ``python -m benchmarks.producer_throughput [--events N] [--faults] [--gzip] [--endpoint-in-process]``

The embedded endpoint (moto's server) runs in its own process by default, as an S3 service would:
on 2 cores the producer gets one and the endpoint the other. The run is a backfill (simulated
clock), so nothing sleeps and the figure is what the producer can sustain: generating realistic
traffic, validating every event against the contract, serializing, PUTting and keeping the ground
truth. A generation-only figure (no S3) is printed too, to show where the time goes.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import random
import tempfile
import time
from pathlib import Path

from lakehouse_local.s3server import LOCAL_CREDENTIALS, EmbeddedS3, free_port
from producer import profiles

log = logging.getLogger("benchmarks.producer_throughput")

BATCH_SIZE = 1000


def _serve(port: int, ready, stop, cpu_seconds) -> None:
    # moto's server logs every request through werkzeug; a benchmark wants quiet.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = EmbeddedS3(port=port).start(export_env=False)
    began = time.process_time()
    ready.set()
    stop.wait()
    # CPU the endpoint spent serving (not starting up), for the per-core figures.
    cpu_seconds.put(time.process_time() - began)
    server.stop()


def _client(endpoint_url: str):
    from producer import make_s3_client

    for key, value in LOCAL_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    return make_s3_client(endpoint_url)


def generation_only(events: int, faults: bool) -> float:
    """Events/s of the line stream alone: traffic, faults, contract validation, JSON."""
    from producer.stream import LineStream
    from producer.traffic import TrafficModel

    rng = random.Random(1)
    traffic = TrafficModel(
        rng, users=5000, rate=50_000, click_probability=0.45, add_to_cart_probability=0.3, purchase_probability=0.4
    )
    stream = LineStream(rng, traffic, **(profiles.DEMO if faults else {}))
    start = 1.78e9
    began = time.perf_counter()
    for k in range(events):
        stream.next_line(start + k / 50_000)
    return events / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="events to produce (default 200,000)")
    parser.add_argument("--faults", action="store_true", help="inject every fault kind at typical rates")
    parser.add_argument("--gzip", action="store_true", help="write .jsonl.gz objects")
    parser.add_argument("--endpoint-in-process", action="store_true", help="run the endpoint in this process")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    from producer import ProducerConfig, run

    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    endpoint_cpu = context.Queue()
    server = process = None
    if args.endpoint_in_process:
        server = EmbeddedS3().start(export_env=False)
        endpoint = server.endpoint_url
    else:
        ready = context.Event()
        port = free_port()
        process = context.Process(target=_serve, args=(port, ready, stop, endpoint_cpu), daemon=True)
        process.start()
        if not ready.wait(60):
            raise SystemExit("the embedded S3 endpoint did not start within 60 s")
        endpoint = f"http://127.0.0.1:{port}"
    try:
        client = _client(endpoint)
        bucket = "producer-benchmark"
        client.create_bucket(Bucket=bucket)
        print(
            f"generation only (no S3):     {generation_only(min(args.events, 100_000), args.faults):>10,.0f} events/s"
        )
        with tempfile.TemporaryDirectory() as folder:
            config = ProducerConfig(
                bucket=bucket,
                events=args.events,
                rate=50_000.0,
                batch_size=BATCH_SIZE,
                seed=1,
                start_time="2026-05-01T00:00:00Z",
                gzip=args.gzip,
                manifest_path=str(Path(folder) / "manifest.json"),
                progress=False,
                **(profiles.DEMO if args.faults else {}),
            )
            began, cpu_began = time.perf_counter(), time.process_time()
            manifest = run(config, s3_client=client)
            elapsed, producer_cpu = time.perf_counter() - began, time.process_time() - cpu_began
        sent = manifest.counts["lines_sent"]
        where = "in this process" if args.endpoint_in_process else "in its own process"
        print(
            f"into the embedded endpoint:  {sent / elapsed:>10,.0f} events/s "
            f"({sent:,} events, {manifest.counts['objects']} objects of {BATCH_SIZE:,}, {elapsed:.2f} s; "
            f"endpoint {where}{', gzip' if args.gzip else ''}{', faults' if args.faults else ''})"
        )
        print(f"producer CPU:                {producer_cpu / sent * 1e6:>10.1f} µs/event (all its threads)")
        if process is not None:
            stop.set()
            serving = endpoint_cpu.get(timeout=30)
            process.join(10)
            process = None
            print(f"endpoint CPU:                {serving / sent * 1e6:>10.1f} µs/event")
            # One core each: the slower side sets the pace when nothing else competes for the CPUs.
            print(
                f"CPU-bound rate on 2 cores:   {sent / max(producer_cpu, serving):>10,.0f} events/s "
                f"(load average now {os.getloadavg()[0]:.1f})"
            )
    finally:
        if server is not None:
            server.stop()
        if process is not None:
            stop.set()
            process.join(10)


if __name__ == "__main__":
    main()
