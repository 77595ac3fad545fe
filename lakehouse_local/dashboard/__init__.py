"""A local dashboard over the Gold tables, ``ops.pipeline_metrics`` and the quarantine.

``python -m lakehouse_local.dashboard --lakehouse .lakehouse/demo/lakehouse --port 8050`` serves one
HTML page (inline SVG charts, nothing fetched from elsewhere) that reads the local Delta tables
with delta-rs on every request: DAU and conversion trend, funnel, events per minute by action,
traffic split, pipeline freshness per layer and quarantine counts by reason; ``/users`` shows the Gold
model's sessions, new and returning users, session lengths, entry page types and users' attribute history.

* :mod:`.data`: the tables reduced to plain values (one :class:`~.data.Snapshot` per request);
* :mod:`.render`: the HTML page and its SVG charts; :mod:`.model_data` and :mod:`.users_page`: the same for
  ``/users``;
* :mod:`.server`: the HTTP server (``/``, ``/api/summary.json``, ``/healthz``).
"""

from lakehouse_local.dashboard.data import Snapshot, load_snapshot
from lakehouse_local.dashboard.render import render_page
from lakehouse_local.dashboard.server import DashboardServer

__all__ = ["DashboardServer", "Snapshot", "load_snapshot", "render_page"]
