"""What the browser tests of the local dashboard share: its DOM parsed with the standard library, Debian's
headless Chromium, the dashboard served on a free port, and Delta tables read independently of it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable
from pyarrow.fs import LocalFileSystem, SubTreeFileSystem

from lakehouse_local.dashboard import DashboardServer

BROWSER_TIMEOUT_S = 120


def find_chromium() -> str:
    """Debian's Chromium (``scripts/ensure_chromium.sh`` installs it before ``make test`` when it can)."""
    for candidate in ("chromium", "chromium-browser"):
        found = shutil.which(candidate)
        if found:
            return found
    where = "on this CI runner" if os.environ.get("CI") else "on this machine"
    pytest.fail(
        f"the dashboard browser test needs Chromium and none was found {where} (looked for 'chromium' and "
        "'chromium-browser' on PATH). Install it from your distribution (Debian/Ubuntu: "
        "'sudo apt-get install chromium'), or run scripts/ensure_chromium.sh as root, and retry.",
        pytrace=False,
    )



@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    @property
    def testid(self) -> str | None:
        return self.attrs.get("data-testid")

    def text(self) -> str:
        """The text content, whitespace collapsed."""
        parts: list[str] = []

        def walk(node: Element) -> None:
            for child in node.children:
                if isinstance(child, str):
                    parts.append(child)
                else:
                    walk(child)

        walk(self)
        return " ".join("".join(parts).split())

    def iter(self):
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def all(self, testid: str) -> list[Element]:
        return [e for e in self.iter() if e.testid == testid]

    def one(self, testid: str) -> Element:
        found = self.all(testid)
        assert len(found) == 1, f"expected one element with data-testid={testid!r}, found {len(found)}"
        return found[0]

    def tags(self, tag: str) -> list[Element]:
        return [e for e in self.iter() if e.tag == tag]


class _DomBuilder(HTMLParser):
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in self.VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def parse_dom(html: str) -> Element:
    builder = _DomBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def run_chromium(chromium: str, profile: Path, *args: str) -> str:
    """Run headless Chromium once with ``args``; returns its stdout. Fails the test on error or timeout."""
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--force-color-profile=srgb",
        f"--user-data-dir={profile}",
        *args,
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=BROWSER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"Chromium did not finish within {BROWSER_TIMEOUT_S} s: {' '.join(command)}")
    if process.returncode != 0:
        pytest.fail(f"Chromium exited with {process.returncode}: {' '.join(command)}\n{stderr[-3000:]}")
    return stdout


# -- the dashboard over the demo lakehouse -----------------------------------------------------------------------


def start_dashboard(lakehouse: str | Path) -> DashboardServer:
    """The dashboard on a free port of 127.0.0.1, in a thread, once it answers ``/healthz``."""
    server = DashboardServer(lakehouse, host="127.0.0.1", port=0, refresh_seconds=0).start()
    deadline = time.monotonic() + 15
    while True:
        try:
            with urllib.request.urlopen(server.url + "healthz", timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            pytest.fail(f"the dashboard at {server.url} did not answer within 15 s")
        time.sleep(0.1)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8")


def read_delta(root: Path, name: str) -> pa.Table:
    layer, table = name.split(".")
    location = str(root / layer / table)
    # pyarrow's local filesystem, as the project's delta_rs module does (delta-rs's own can abort at exit).
    return DeltaTable(location).to_pyarrow_table(filesystem=SubTreeFileSystem(location, LocalFileSystem()))
