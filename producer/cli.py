"""``python -m producer``: the command line over :func:`producer.run` and :mod:`producer.aws`.

Commands: ``run`` (the default: produce events), ``setup-aws``, ``verify`` and ``cleanup``. The
scripts in ``scripts/`` (PowerShell and bash) only forward their arguments here.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from producer.config import (
    BUCKET_ENV,
    DEFAULT_MANIFESTS_PREFIX,
    DEFAULT_PREFIX,
    ConfigError,
    ProducerConfig,
)

log = logging.getLogger(__name__)

COMMANDS = ("run", "setup-aws", "verify", "cleanup")
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

EXAMPLES = """\
examples:
  # 1,000 events/s for a minute into the embedded or a MinIO/LocalStack endpoint
  python -m producer --bucket demo --endpoint-url http://127.0.0.1:9000 --rate 1000 --duration 60
  # a reproducible backfill of one simulated hour with every fault kind
  python -m producer run --bucket demo --start-time 2026-05-01T00:00:00Z --duration 3600 --rate 50 \\
      --seed 7 --dup-rate 0.02 --synthetic-dup-rate 0.01 --late-rate 0.03 --malformed-rate 0.01 --invalid-rate 0.02
  python -m producer setup-aws --bucket my-clickstream-landing --region eu-west-1
  python -m producer verify --bucket my-clickstream-landing
  python -m producer cleanup --bucket my-clickstream-landing --confirm

'run' is the default command: `python -m producer --bucket demo` runs the producer.
`python -m producer run --help` lists every producer option.
"""


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only when there is one and the help text does not already explain it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, []) or "default" in text:
            return text
        return super()._get_help_string(action) or text


def _common(parser: argparse.ArgumentParser, *, prefix_help: str) -> None:
    parser.add_argument("--bucket", default=os.environ.get(BUCKET_ENV), help=f"S3 bucket (default: ${BUCKET_ENV})")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help=prefix_help)
    parser.add_argument(
        "--endpoint-url",
        default=None,
        help="S3 endpoint for MinIO, LocalStack or the embedded endpoint (default: $AWS_ENDPOINT_URL, else AWS)",
    )
    parser.add_argument("--region", default=None, help="AWS region (default: boto3's configuration)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m producer",
        description="Clickstream producer: realistic storefront events as JSON-lines micro-batches in S3, "
        "with fault injection and a ground-truth run manifest; plus the bucket setup, verify and cleanup tools.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="produce events into S3 (default command)",
        description="Produce clickstream events into s3://BUCKET/PREFIX/dt=YYYY-MM-DD/hr=HH/<utc>-<uuid>.jsonl[.gz], "
        "one object per batch, and write the run manifest locally and to S3.",
        formatter_class=_HelpFormatter,
    )
    _common(run, prefix_help="landing prefix")
    pace = run.add_argument_group("pace and size")
    pace.add_argument("--rate", type=float, default=100.0, help="lines per second of clock time, faults included")
    pace.add_argument("--events", type=int, default=None, help="stop after this many lines")
    pace.add_argument("--duration", type=float, default=None, help="stop after this many seconds of clock time")
    pace.add_argument("--batch-size", type=int, default=1000, help="lines per object at most")
    pace.add_argument("--batch-interval", type=float, default=5.0, help="flush a batch at least this often (seconds)")
    pace.add_argument("--gzip", action="store_true", help="write .jsonl.gz objects")
    pace.add_argument(
        "--seed", type=int, default=None, help="fixed seed for reproducible content (default: random, recorded)"
    )
    pace.add_argument(
        "--start-time",
        default="now",
        help="'now' (real clock, paced) or an ISO-8601 UTC time: a simulated clock from there (a backfill, no sleeping)",
    )
    traffic = run.add_argument_group("traffic model")
    traffic.add_argument("--users", type=int, default=5000, help="size of the user pool")
    traffic.add_argument("--p-click", type=_share, default=0.45, help="P(click | view)")
    traffic.add_argument("--p-add-to-cart", type=_share, default=0.30, help="P(add_to_cart | click)")
    traffic.add_argument("--p-purchase", type=_share, default=0.40, help="P(purchase | add_to_cart)")
    faults = run.add_argument_group("fault injection (shares of the lines written)")
    faults.add_argument(
        "--dup-rate", type=_share, default=0.0, help="natural duplicates: an earlier valid line resent as is"
    )
    faults.add_argument(
        "--synthetic-dup-rate",
        type=_share,
        default=0.0,
        help="synthetic duplicates: an earlier event_id with a different payload and a later ingest_time",
    )
    faults.add_argument("--late-rate", type=_share, default=0.0, help="late events: event_time minutes to hours old")
    faults.add_argument("--malformed-rate", type=_share, default=0.0, help="lines of broken JSON")
    faults.add_argument(
        "--invalid-rate",
        type=_share,
        default=0.0,
        help="contract-invalid events and events breaking the too_late / future_event_time rules",
    )
    out = run.add_argument_group("manifest and delivery")
    out.add_argument(
        "--manifest", default=None, help="local path of the run manifest (default: .lakehouse/manifests/<run_id>.json)"
    )
    out.add_argument(
        "--manifests-prefix",
        default=DEFAULT_MANIFESTS_PREFIX,
        help="S3 prefix of run manifests, outside the landing prefix",
    )
    out.add_argument("--max-attempts", type=int, default=5, help="botocore attempts per PUT, first one included")
    out.add_argument(
        "--retry-mode", choices=("standard", "adaptive", "legacy"), default="standard", help="botocore retry mode"
    )
    out.add_argument("--batch-retries", type=int, default=5, help="whole-batch retries after botocore gives up")
    out.add_argument(
        "--batch-retry-backoff", type=float, default=1.0, help="first whole-batch retry delay, doubling (seconds)"
    )
    out.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="live progress line (default: only when stderr is a terminal)",
    )

    setup = commands.add_parser(
        "setup-aws",
        help="create and secure the landing bucket (idempotent)",
        description="Create the bucket if needed, block public access, set default encryption, add a TLS-only "
        "bucket policy and an expiration rule on the landing prefix. Safe to run again.",
        formatter_class=_HelpFormatter,
    )
    _common(setup, prefix_help="landing prefix the lifecycle rule applies to")
    setup.add_argument("--landing-expiration-days", type=int, default=7, help="days before landing objects expire")
    setup.add_argument("--kms-key-id", default=None, help="use SSE-KMS with this key instead of SSE-S3")
    setup.add_argument(
        "--tls-only-policy",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="bucket policy denying requests not made over TLS (turn off for a plain-HTTP local endpoint)",
    )

    verify = commands.add_parser(
        "verify",
        help="inspect the newest landing objects and validate a sample",
        description="List the newest landing objects, count their lines, check the key layout and validate a "
        "sample of lines against the contract. With --manifest, reconcile every object of a run.",
        formatter_class=_HelpFormatter,
    )
    _common(verify, prefix_help="landing prefix")
    verify.add_argument("--newest", type=int, default=5, help="how many of the newest objects to read")
    verify.add_argument("--sample", type=int, default=500, help="lines to validate, spread over those objects")
    verify.add_argument("--manifest", default=None, help="local run manifest to reconcile the landing area with")
    verify.add_argument("--strict", action="store_true", help="fail when any sampled line would be quarantined")

    clean = commands.add_parser(
        "cleanup",
        help="delete the demo prefixes (needs --confirm)",
        description="Delete every object under the landing and manifests prefixes. Without --confirm it only "
        "says what it would delete.",
        formatter_class=_HelpFormatter,
    )
    _common(clean, prefix_help="landing prefix to delete")
    clean.add_argument("--manifests-prefix", default=DEFAULT_MANIFESTS_PREFIX, help="manifests prefix to delete")
    clean.add_argument("--extra-prefix", action="append", default=[], help="another prefix to delete (repeatable)")
    clean.add_argument("--delete-bucket", action="store_true", help="also delete the bucket once it is empty")
    clean.add_argument("--confirm", action="store_true", help="really delete")
    return parser


def _config_from(args: argparse.Namespace) -> ProducerConfig:
    return ProducerConfig(
        bucket=args.bucket or "",
        prefix=args.prefix,
        endpoint_url=args.endpoint_url,
        region=args.region,
        rate=args.rate,
        events=args.events,
        duration_seconds=args.duration,
        batch_size=args.batch_size,
        batch_interval_seconds=args.batch_interval,
        gzip=args.gzip,
        seed=args.seed,
        start_time=args.start_time,
        users=args.users,
        click_probability=args.p_click,
        add_to_cart_probability=args.p_add_to_cart,
        purchase_probability=args.p_purchase,
        dup_rate=args.dup_rate,
        synthetic_dup_rate=args.synthetic_dup_rate,
        late_rate=args.late_rate,
        malformed_rate=args.malformed_rate,
        invalid_rate=args.invalid_rate,
        manifest_path=args.manifest,
        manifests_prefix=args.manifests_prefix,
        max_attempts=args.max_attempts,
        retry_mode=args.retry_mode,
        batch_retries=args.batch_retries,
        batch_retry_backoff_seconds=args.batch_retry_backoff,
        progress=args.progress,
    )


def _run(args: argparse.Namespace) -> int:
    from producer.runner import ProducerError, run

    config = _config_from(args)
    try:
        manifest = run(config)
    except ProducerError as error:
        log.error("%s", error)
        return EXIT_FAILED
    counts = manifest.counts
    print(
        f"run {manifest.run_id} ({manifest.status}): {counts['lines_sent']} lines in {counts['objects']} objects "
        f"-> {manifest.landing['uri']}"
    )
    print(
        "  "
        + ", ".join(f"{k} {v}" for k, v in counts.items() if k not in ("lines_sent", "objects", "expected_quarantine"))
    )
    if counts["expected_quarantine"]:
        print("  expected quarantine: " + json.dumps(counts["expected_quarantine"]))
    print(f"manifest: {manifest.local_path}")
    print(f"          {manifest.manifest_uri}")
    return EXIT_INTERRUPTED if manifest.status == "interrupted" else EXIT_OK


def _client(args: argparse.Namespace):
    from producer.writer import make_s3_client

    if not args.bucket:
        raise ConfigError(f"no bucket: pass --bucket or set {BUCKET_ENV}")
    return make_s3_client(args.endpoint_url, args.region)


def _setup(args: argparse.Namespace) -> int:
    from producer.aws import setup_bucket

    client = _client(args)
    for line in setup_bucket(
        client,
        args.bucket,
        region=args.region or client.meta.region_name,
        landing_prefix=args.prefix,
        expiration_days=args.landing_expiration_days,
        kms_key_id=args.kms_key_id,
        tls_only=args.tls_only_policy,
    ):
        print(line)
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from producer.aws import verify_landing
    from producer.manifest import load_manifest

    manifest = load_manifest(args.manifest) if args.manifest else None
    report = verify_landing(
        _client(args),
        args.bucket,
        args.prefix,
        newest=args.newest,
        sample_lines=args.sample,
        manifest=manifest,
        strict=args.strict,
    )
    for line in report.lines():
        print(line)
    return EXIT_OK if report.ok else EXIT_FAILED


def _cleanup(args: argparse.Namespace) -> int:
    from producer.aws import cleanup

    prefixes = [args.prefix, args.manifests_prefix, *args.extra_prefix]
    for line in cleanup(_client(args), args.bucket, prefixes, confirm=args.confirm, delete_bucket=args.delete_bucket):
        print(line)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    from botocore.exceptions import BotoCoreError, ClientError

    from producer.aws import AwsCommandError, ConfirmationRequired

    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (args_list[0] not in COMMANDS and args_list[0] not in ("-h", "--help")):
        args_list.insert(0, "run")
    args = build_parser().parse_args(args_list)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        # botocore logs every credential lookup at INFO; moto's server logs every request.
        for noisy in ("botocore", "boto3", "urllib3", "werkzeug"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    handlers = {"run": _run, "setup-aws": _setup, "verify": _verify, "cleanup": _cleanup}
    try:
        return handlers[args.command](args)
    except (ConfigError, ConfirmationRequired) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except AwsCommandError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except (ClientError, BotoCoreError) as error:
        print(f"error: S3 request failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        return EXIT_INTERRUPTED
