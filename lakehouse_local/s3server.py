"""Embedded S3 endpoint for local runs and tests: moto's server mode on 127.0.0.1 and a free port.

boto3 reaches it over real HTTP, exactly as it would reach MinIO, LocalStack or AWS. Start it
*before* the local SparkSession so Spark's Python workers inherit ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)

# Dummy credentials: the embedded endpoint accepts any, and they keep boto3 from looking further.
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedS3:
    """A running moto S3 server; ``endpoint_url`` is what boto3's ``endpoint_url`` wants."""

    def __init__(self, port: int | None = None) -> None:
        from moto.server import ThreadedMotoServer

        self.port = port or free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._saved_env: dict[str, str | None] = {}

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, export_env: bool = True) -> EmbeddedS3:
        # One access-log line per request would drown the pipeline's own output.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server.start()
        log.info("embedded S3 endpoint listening on %s", self.endpoint_url)
        if export_env:
            env = dict(LOCAL_CREDENTIALS, AWS_ENDPOINT_URL=self.endpoint_url)
            for key, value in env.items():
                self._saved_env[key] = os.environ.get(key)
                os.environ[key] = value
        return self

    def stop(self) -> None:
        self._server.stop()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"],
        )
