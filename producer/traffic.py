"""The storefront traffic model: who acts, in which session, on which page, and what they do next.

* Users come from a fixed pool; each keeps the same device, country, user agent and IP (sent only as
  an HMAC-SHA-256 ``ip_hash``) in every run, because their attributes derive from the user number,
  not from the run's seed.
* A session is a journey through the site that starts on a landing page chosen by its marketing
  source (with the matching external referrer) and moves through the funnel
  view → click → add_to_cart → purchase with configurable probabilities; later events carry the
  previous page as referrer. A journey ends by leaving the site, or after
  ``SESSION_TIMEOUT_MINUTES`` of inactivity (the user's next event then opens a new session).
* Every random choice comes from the run's ``random.Random``, so a seed reproduces the traffic.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import random
from dataclasses import dataclass
from math import log as _log
from typing import Any

from lakehouse import privacy
from lakehouse.rules import SESSION_TIMEOUT_MINUTES
from producer.clock import format_timestamp

log = logging.getLogger(__name__)


SCHEMA_VERSION = 1
SITE = "https://shop.example.com"
SESSION_TIMEOUT_SECONDS = SESSION_TIMEOUT_MINUTES * 60
# Mean time between two events of one session; with the rate it sets how many sessions run at once.
# Shorter than real think time and capped, so that even a short demo run shows whole journeys.
MEAN_SECONDS_BETWEEN_SESSION_EVENTS = 5.0
MAX_CONCURRENT_SESSIONS = 1000
# Client-side delay between the action and the producer receiving it, for on-time events.
MEAN_CLIENT_DELAY_SECONDS = 0.8
MAX_CLIENT_DELAY_SECONDS = 30.0

DEVICES = ("mobile", "desktop", "tablet", "other")
DEVICE_WEIGHTS = (56, 34, 8, 2)
USER_AGENTS = {
    "mobile": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
    ),
    "desktop": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    ),
    "tablet": (
        "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    ),
    "other": (
        "Mozilla/5.0 (SMART-TV; Linux; Tizen 7.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/5.0 Chrome/94.0 TV Safari/537.36",
        None,
    ),
}
COUNTRIES = ("US", "GB", "DE", "FR", "IN", "BR", "CA", "AU", "JP", "ES", "IT", "NL", "MX", "SE", "PL")
COUNTRY_WEIGHTS = (30, 10, 9, 7, 8, 6, 5, 4, 4, 4, 4, 3, 3, 2, 1)

# Marketing source of a session (None is direct traffic) and the external referrers it arrives from.
SOURCES = ("organic", "paid_search", "social", "email", "referral", None)
SOURCE_WEIGHTS = (34, 18, 14, 10, 6, 18)
_SOURCE_CUM_WEIGHTS = tuple(itertools.accumulate(SOURCE_WEIGHTS))
EXTERNAL_REFERRERS: dict[str | None, tuple[str | None, ...]] = {
    "organic": ("https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/"),
    "paid_search": ("https://www.google.com/", "https://www.bing.com/"),
    "social": ("https://t.co/", "https://www.facebook.com/", "https://www.instagram.com/", "https://www.reddit.com/"),
    "email": (None,),
    "referral": ("https://blog.example.org/gift-guide", "https://news.example.net/best-deals"),
    None: (None,),
}

CATEGORY_PAGES = tuple(
    f"/category/{c}" for c in ("shoes", "bags", "jackets", "shirts", "accessories", "sale", "kids", "sports")
)
# Product popularity follows a long tail, as on real storefronts.
PRODUCT_PAGES = tuple(f"/products/sku-{1000 + i}" for i in range(400))
_PRODUCT_CUM_WEIGHTS = tuple(itertools.accumulate(1.0 / (i + 1) ** 0.9 for i in range(len(PRODUCT_PAGES))))
# Where a browsing view goes next: (kind, weight).
_BROWSE_KINDS = ("home", "category", "product", "search", "cart")
_BROWSE_CUM_WEIGHTS = tuple(itertools.accumulate((8, 30, 47, 10, 5)))

# After these actions the journey goes on with this probability (otherwise the user leaves).
CONTINUE_AFTER_VIEW = 0.65
CONTINUE_AFTER_ABANDONED_CART = 0.5
CONTINUE_AFTER_PURCHASE = 0.3


def ip_hash(ip: str, key: bytes) -> str:
    """Keyed hash of a client IP (:func:`lakehouse.privacy.keyed_hash`): Silver hashes addresses it finds in
    text the same way, so the two can be joined."""
    return privacy.keyed_hash(ip, key)


_UUID_VERSION_MASK = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_VERSION_4 = (0x4000 << 64) | (0x8000 << 48)


def random_uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng`` (``uuid4`` would ignore the seed).

    Same text as ``str(uuid.UUID(int=bits, version=4))``, at a third of the cost.
    """
    h = f"{(rng.getrandbits(128) & _UUID_VERSION_MASK) | _UUID_VERSION_4:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    device_type: str
    country: str
    user_agent: str | None
    ip_hash: str


class _Session:
    __slots__ = (
        "session_id",
        "user",
        "user_index",
        "source",
        "last_time",
        "next_action",
        "next_page",
        "next_referrer",
        "position",
    )

    def __init__(self, session_id: str, user: User, user_index: int, source: str | None) -> None:
        self.session_id = session_id
        self.user = user
        self.user_index = user_index
        self.source = source
        self.last_time = float("-inf")
        # The journey's next step, decided when the previous event happened; None ends the session.
        self.next_action: str | None = None
        self.next_page = ""
        self.next_referrer: str | None = None
        # Index in the model's list of active sessions.
        self.position = -1


class TrafficModel:
    """Generates on-time storefront events one at a time; see the module docstring for the model."""

    def __init__(
        self,
        rng: random.Random,
        *,
        users: int,
        rate: float,
        click_probability: float,
        add_to_cart_probability: float,
        purchase_probability: float,
        key: bytes | None = None,
    ) -> None:
        self._rng = rng
        self._users = users
        self._key = key if key is not None else privacy.hmac_key()
        self._p_click = click_probability
        self._p_add_to_cart = add_to_cart_probability
        self._p_purchase = purchase_probability
        self._user_cache: dict[int, User] = {}
        self._active: list[_Session] = []
        self._active_by_user: dict[int, _Session] = {}
        # Never more than half the users at once, so users come back in later sessions.
        self._target_active = max(
            1, min(max(1, users // 2), MAX_CONCURRENT_SESSIONS, round(rate * MEAN_SECONDS_BETWEEN_SESSION_EVENTS))
        )
        self.sessions_started = 0

    # -- users ---------------------------------------------------------------------------------

    def user(self, index: int) -> User:
        """User number ``index``: the same attributes in every run, whatever the seed."""
        found = self._user_cache.get(index)
        if found is None:
            rng = random.Random(f"clickstream-user:{index}")
            device = rng.choices(DEVICES, DEVICE_WEIGHTS)[0]
            country = rng.choices(COUNTRIES, COUNTRY_WEIGHTS)[0]
            agent = rng.choice(USER_AGENTS[device])
            ip = f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            found = User(f"u-{index:06d}", device, country, agent, ip_hash(ip, self._key))
            self._user_cache[index] = found
        return found

    # -- sessions ------------------------------------------------------------------------------

    def _start_session(self, user_index: int) -> _Session:
        rng = self._rng
        source = SOURCES[bisect.bisect(_SOURCE_CUM_WEIGHTS, rng.random() * _SOURCE_CUM_WEIGHTS[-1])]
        session = _Session(random_uuid(rng), self.user(user_index), user_index, source)
        session.next_action = "view"
        session.next_page = self._landing_page(source)
        referrers = EXTERNAL_REFERRERS[source]
        session.next_referrer = referrers[int(rng.random() * len(referrers))]
        session.position = len(self._active)
        self._active.append(session)
        self._active_by_user[user_index] = session
        self.sessions_started += 1
        return session

    def _end_session(self, session: _Session) -> None:
        active = self._active
        # Swap-remove: the order of active sessions carries no meaning.
        last = active.pop()
        if last is not session:
            active[session.position] = last
            last.position = session.position
        del self._active_by_user[session.user_index]

    def _pick_session(self, event_time: float) -> _Session:
        rng = self._rng
        if len(self._active) < self._target_active:
            for _ in range(3):
                index = int(rng.random() * self._users)
                if index not in self._active_by_user:
                    return self._start_session(index)
        # int(random() * n) rather than randrange(n): the same spread at a fraction of the cost.
        session = self._active[int(rng.random() * len(self._active))]
        if event_time - session.last_time > SESSION_TIMEOUT_SECONDS and session.last_time != float("-inf"):
            # The user was inactive for longer than the timeout: that session is over, this is a new one.
            self._end_session(session)
            session = self._start_session(session.user_index)
        return session

    # -- pages ---------------------------------------------------------------------------------

    def _product_page(self) -> str:
        return PRODUCT_PAGES[bisect.bisect(_PRODUCT_CUM_WEIGHTS, self._rng.random() * _PRODUCT_CUM_WEIGHTS[-1])]

    def _landing_page(self, source: str | None) -> str:
        rng = self._rng
        if source in ("paid_search", "email"):
            return (
                self._product_page() if rng.random() < 0.7 else CATEGORY_PAGES[int(rng.random() * len(CATEGORY_PAGES))]
            )
        if source is None:
            return "/" if rng.random() < 0.7 else self._product_page()
        return self._browse_page()

    def _browse_page(self) -> str:
        kind = _BROWSE_KINDS[bisect.bisect(_BROWSE_CUM_WEIGHTS, self._rng.random() * _BROWSE_CUM_WEIGHTS[-1])]
        if kind == "product":
            return self._product_page()
        if kind == "category":
            return CATEGORY_PAGES[int(self._rng.random() * len(CATEGORY_PAGES))]
        return {"home": "/", "search": "/search", "cart": "/cart"}[kind]

    def _plan_next(self, session: _Session, action: str, page: str, referrer: str | None) -> None:
        """Decide the step after ``action`` on ``page``: the funnel probabilities live here."""
        rng = self._rng
        here = SITE + page
        if action == "view":
            if rng.random() < self._p_click:
                session.next_action, session.next_page, session.next_referrer = "click", page, referrer
                return
            if rng.random() < CONTINUE_AFTER_VIEW:
                session.next_action, session.next_page, session.next_referrer = "view", self._browse_page(), here
                return
        elif action == "click":
            if rng.random() < self._p_add_to_cart:
                target = page if page.startswith("/products/") else self._product_page()
                session.next_action, session.next_page = "add_to_cart", target
                session.next_referrer = referrer if target == page else here
                return
            # The click followed a link to a product.
            session.next_action, session.next_page, session.next_referrer = "view", self._product_page(), here
            return
        elif action == "add_to_cart":
            if rng.random() < self._p_purchase:
                session.next_action, session.next_page, session.next_referrer = "purchase", "/checkout", SITE + "/cart"
                return
            if rng.random() < CONTINUE_AFTER_ABANDONED_CART:
                session.next_action, session.next_page, session.next_referrer = "view", self._browse_page(), here
                return
        elif rng.random() < CONTINUE_AFTER_PURCHASE:
            session.next_action, session.next_page, session.next_referrer = "view", "/", here
            return
        session.next_action = None

    # -- events --------------------------------------------------------------------------------

    def _event(
        self,
        event_id: str,
        event_time: float,
        ingest_time: float,
        user: User,
        session_id: str,
        action: str,
        page: str,
        referrer: str | None,
        source: str | None,
    ) -> dict[str, Any]:
        return {
            "event_id": event_id,
            "schema_version": SCHEMA_VERSION,
            "event_time": format_timestamp(event_time),
            "ingest_time": format_timestamp(ingest_time),
            "user_id": user.user_id,
            "session_id": session_id,
            "action": action,
            "page": page,
            "referrer": referrer,
            "device_type": user.device_type,
            "country": user.country,
            "ip_hash": user.ip_hash,
            "user_agent": user.user_agent,
            "source": source,
        }

    def next_event(self, ingest_time: float) -> dict[str, Any]:
        """The next on-time event, received by the producer at ``ingest_time`` (epoch seconds)."""
        rng = self._rng
        # Exponential client delay (what rng.expovariate draws, without the call), capped.
        delay = min(-_log(1.0 - rng.random()) * MEAN_CLIENT_DELAY_SECONDS, MAX_CLIENT_DELAY_SECONDS)
        event_time = ingest_time - delay
        session = self._pick_session(event_time)
        # Client clocks and buffering never reorder one session's events in this model.
        if event_time < session.last_time:
            event_time = session.last_time
        action, page, referrer = session.next_action or "view", session.next_page, session.next_referrer
        session.last_time = event_time
        self._plan_next(session, action, page, referrer)
        if session.next_action is None:
            self._end_session(session)
        user = session.user
        # Built inline rather than through _event: this runs once per event.
        return {
            "event_id": random_uuid(rng),
            "schema_version": SCHEMA_VERSION,
            "event_time": format_timestamp(event_time),
            "ingest_time": format_timestamp(ingest_time),
            "user_id": user.user_id,
            "session_id": session.session_id,
            "action": action,
            "page": page,
            "referrer": referrer,
            "device_type": user.device_type,
            "country": user.country,
            "ip_hash": user.ip_hash,
            "user_agent": user.user_agent,
            "source": session.source,
        }

    def offline_event(self, ingest_time: float, lateness_seconds: float) -> dict[str, Any]:
        """An event a client buffered while offline and sends ``lateness_seconds`` after it happened.

        It belongs to a past session of its own, so the live sessions' timelines stay intact.
        """
        rng = self._rng
        user = self.user(rng.randrange(self._users))
        action = rng.choices(("view", "click", "add_to_cart", "purchase"), (60, 25, 10, 5))[0]
        if action == "purchase":
            page, referrer = "/checkout", SITE + "/cart"
        elif action == "view":
            page, referrer = self._browse_page(), None
        else:
            page, referrer = self._product_page(), None
        source = rng.choices(SOURCES, SOURCE_WEIGHTS)[0]
        return self._event(
            random_uuid(rng),
            ingest_time - lateness_seconds,
            ingest_time,
            user,
            random_uuid(rng),
            action,
            page,
            referrer,
            source,
        )
