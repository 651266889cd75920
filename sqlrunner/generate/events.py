"""A deterministic generator of realistic Snowplow web events, with the cases that break models.

Visitors (cookies) arrive over time and come back for further sessions; a
session is page views followed by page pings every ``heartbeat`` seconds, with
some structured and link-click events in between. Rates (``EventRates``) add
the awkward cases a data model must survive: natural and synthetic duplicates,
stray pings before any page view, late arrivals, skewed device clocks (some
reset to around 1970), logins mid-session and on shared devices, unusable
events and ties on ``dvce_created_tstamp``.

``GeneratorConfig.shape`` picks how far each batch reaches back: ``default``, or
``spanning`` (regular visitors over the whole span and events collected days late in
every batch; see ``Spanning``).

Events come out in arrival order as 128-value tuples in the column order of
:mod:`sqlrunner.generate.columns`, split into ``batches`` consecutive loads,
each with its own ``etl_tstamp``. The same configuration always gives the
same events.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlrunner.generate.columns import COLUMN_INDEX, COLUMNS

EPOCH = datetime(1970, 1, 1)
MS_PER_DAY = 86_400_000


@dataclass(frozen=True)
class EventRates:
    """How often each awkward case happens; every rate is a probability in [0, 1]."""

    natural_duplicate: float = 0.02  # per event: the same event sent or processed again
    synthetic_duplicate: float = 0.005  # per event: reuses another event's event_id
    stray_pings: float = 0.03  # per session: starts with pings before any page view
    late_event: float = 0.01  # per event: arrives minutes to days after it happened
    clock_skew: float = 0.05  # per cookie: device clock off by hours or days
    clock_near_1970: float = 0.003  # per cookie: device clock reset to around 1970-01-01
    login: float = 0.3  # per cookie: a user logs in at some point
    shared_device: float = 0.1  # per cookie with logins: a second user logs in later
    logout: float = 0.25  # per logged-in session: the user logs out at its end
    empty_user_id: float = 0.02  # per cookie: sends '' instead of NULL when anonymous
    unusable: float = 0.01  # per event: no cookie, empty cookie, no session index or no dvce time
    dvce_tie: float = 0.02  # per event: same dvce_created_tstamp as the previous event
    collector_tie: float = 0.5  # per dvce tie: same collector_tstamp too
    uppercase_ids: float = 0.03  # per cookie: event ids in upper case (as iOS sends them)
    null_dvce_sent: float = 0.05  # per cookie: tracker without dvce_sent_tstamp
    geo_change: float = 0.05  # per session: location and app change mid-session
    return_visit: float = 0.45  # per session: the cookie comes back for another session


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate: how many events, from which seed, in how many loads."""

    events: int = 1000
    seed: int = 1
    batches: int = 1
    start: datetime = datetime(2024, 3, 1)
    days: float = 7.0  # nominal span of collector times
    heartbeat: int = 10  # page ping interval of the simulated tracker, seconds
    min_visit_length: int = 5  # seconds before the first ping
    rates: EventRates = field(default_factory=EventRates)
    shape: str = "default"  # or "spanning": every batch reaches far back (see SHAPES)

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"shape {self.shape!r}: expected one of {', '.join(SHAPES)}")


@dataclass(frozen=True)
class Spanning:
    """The ``spanning`` shape: most events come from regular visitors, present from the
    start, who come back over the whole span (each visit a burst of longer sessions), and
    a few events reach the collector hours to days after they happened (an offline
    tracker's queue), so that every batch touches cookies with long histories and
    sessions that earlier batches modelled. The other visitors are the default shape's."""

    regular_share: float = 0.9  # of the events: from regular visitors, the rest as default
    visits: float = 2.5  # visits (bursts of sessions) per regular over the nominal span
    burst_return: float = 0.5  # per regular session: another one 30 to 40 minutes later
    pages: float = 6.0  # a regular session's mean page views beyond the first (default 2)
    late_share: float = 0.004  # per event: collected 1 hour to a third of the span later
    events_per_session: float = 30.0  # a regular session's mean, duplicates included


# The shapes of the stream. ``default``: visitors arrive over time and about half come
# back, within days (a 1% batch of 1M events touches about 1,000 cookies holding 1.3% of
# the history). ``spanning`` (see ``Spanning``): a 1% batch of 1M events touches about
# 400 cookies, nine in ten seen before, holding several percent of the history.
SHAPES = ("default", "spanning")
SPANNING = Spanning()


@dataclass(frozen=True)
class Batch:
    """One load: its ``etl_tstamp`` and its events in arrival order."""

    index: int
    etl_tstamp: datetime
    rows: list[tuple]


def generate_events(config: GeneratorConfig) -> Iterator[tuple]:
    """Yield ``config.events`` events (128-value tuples) in arrival order."""
    yield from _Simulation(config).run()


def generate_batches(config: GeneratorConfig) -> Iterator[Batch]:
    """Yield the event stream split into ``config.batches`` consecutive loads."""
    etl = _I["etl_tstamp"]
    rows: list[tuple] = []
    index = 0
    for row in generate_events(config):
        if rows and row[etl] != rows[-1][etl]:
            yield Batch(index, rows[-1][etl], rows)
            rows = []
            index += 1
        rows.append(row)
    if rows:
        yield Batch(index, rows[-1][etl], rows)


def batch_of(position: int, config: GeneratorConfig) -> int:
    """The batch (0-based) of the event at ``position`` in the stream."""
    return position * config.batches // max(config.events, 1)


def etl_tstamp_of(batch: int, config: GeneratorConfig) -> datetime:
    """The ``etl_tstamp`` of a batch: after the nominal end of its collector times."""
    span = timedelta(days=config.days)
    return config.start + span * (batch + 1) / config.batches + timedelta(minutes=30)


def as_dict(row: tuple) -> dict:
    """A row as ``{column: value}``."""
    return dict(zip(COLUMNS, row, strict=True))


# ---------------------------------------------------------------------------
# Reference data of the simulated site and its visitors

_I = COLUMN_INDEX
# positions of the fields set on every event (the others come from templates)
(_EVENT, _EVENT_ID, _TXN_ID, _USER_ID, _COLLECTOR, _DVCE_CREATED, _DVCE_SENT, _DERIVED,
 _EVENT_VENDOR, _EVENT_NAME, _EVENT_FORMAT, _EVENT_VERSION, _FINGERPRINT) = (
    _I[name] for name in (
        "event", "event_id", "txn_id", "user_id", "collector_tstamp", "dvce_created_tstamp",
        "dvce_sent_tstamp", "derived_tstamp", "event_vendor", "event_name", "event_format",
        "event_version", "event_fingerprint"))
_PING_OFFSETS = tuple(_I[n] for n in ("pp_xoffset_min", "pp_xoffset_max", "pp_yoffset_min",
                                      "pp_yoffset_max"))
_STRUCT_FIELDS = tuple(_I[n] for n in ("se_category", "se_action", "se_label", "se_property",
                                       "se_value"))
_GEO_FIELDS = tuple(_I[n] for n in ("geo_country", "geo_region", "geo_region_name", "geo_city",
                                    "geo_zipcode", "geo_latitude", "geo_longitude",
                                    "geo_timezone"))
_MKT_FIELDS = tuple(_I[n] for n in ("mkt_medium", "mkt_source", "mkt_term", "mkt_content",
                                    "mkt_campaign"))


_PAGES = (
    ("/", "Home"),
    ("/products", "Products"),
    ("/products/tracker", "Tracker"),
    ("/products/pipeline", "Pipeline"),
    ("/pricing", "Pricing"),
    ("/blog", "Blog"),
    ("/blog/data-modeling", "Data modeling in SQL"),
    ("/blog/identity-stitching", "Identity stitching"),
    ("/blog/sessionization", "Sessionization"),
    ("/docs", "Documentation"),
    ("/docs/setup", "Setup"),
    ("/docs/sql-runner", "SQL Runner"),
    ("/about", "About us"),
    ("/contact", "Contact"),
    ("/login", "Log in"),
    ("/account", "Your account"),
)
_HOSTS = ("www.example.com", "www.example.com", "www.example.com", "shop.example.com")
_APPS = ("site", "site", "site", "shop")

# (country, region, region name, city, zipcode, latitude, longitude, timezone)
_GEOS = (
    ("GB", "ENG", "England", "London", "EC1A", 51.5142, -0.0931, "Europe/London"),
    ("GB", "SCT", "Scotland", "Edinburgh", "EH1", 55.9521, -3.1965, "Europe/London"),
    ("US", "CA", "California", "San Francisco", "94103", 37.7758, -122.4128,
     "America/Los_Angeles"),
    ("US", "NY", "New York", "New York", "10001", 40.7484, -73.9967, "America/New_York"),
    ("US", "TX", "Texas", "Austin", "78701", 30.2711, -97.7437, "America/Chicago"),
    ("DE", "BE", "Land Berlin", "Berlin", "10115", 52.5323, 13.3846, "Europe/Berlin"),
    ("FR", "IDF", "Ile-de-France", "Paris", "75001", 48.8638, 2.3363, "Europe/Paris"),
    ("NL", "NH", "North Holland", "Amsterdam", "1012", 52.3731, 4.8922, "Europe/Amsterdam"),
    ("JP", "13", "Tokyo", "Tokyo", "100-0001", 35.6850, 139.7514, "Asia/Tokyo"),
    ("AU", "NSW", "New South Wales", "Sydney", "2000", -33.8678, 151.2073, "Australia/Sydney"),
    ("BR", "SP", "Sao Paulo", "Sao Paulo", "01000", -23.5475, -46.6361, "America/Sao_Paulo"),
    ("IN", "KA", "Karnataka", "Bengaluru", "560001", 12.9719, 77.5937, "Asia/Kolkata"),
    (None, None, None, None, None, None, None, None),
)

# (useragent, br_name, br_family, br_version, br_type, br_renderengine,
#  os_name, os_family, os_manufacturer, dvce_type, dvce_ismobile, width, height)
_DEVICES = (
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0.0.0 Safari/537.36", "Chrome 120", "Chrome", "120.0.0.0", "Browser",
     "WEBKIT", "Windows 10", "Windows", "Microsoft Corporation", "Computer", False, 1920, 1080),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.2 Safari/605.1.15", "Safari 17", "Safari", "17.2", "Browser", "WEBKIT",
     "Mac OS X", "Mac OS X", "Apple Inc.", "Computer", False, 2560, 1440),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", "Firefox 121",
     "Firefox", "121.0", "Browser", "GECKO", "Linux", "Linux", "Other", "Computer", False,
     1680, 1050),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
     "like Gecko) Version/17.2 Mobile/15E148 Safari/604.1", "Mobile Safari", "Safari", "17.2",
     "Browser (mobile)", "WEBKIT", "iOS 17 (iPhone)", "iOS", "Apple Inc.", "Mobile", True,
     390, 844),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0.0.0 Mobile Safari/537.36", "Chrome Mobile", "Chrome", "120.0.0.0",
     "Browser (mobile)", "WEBKIT", "Android 14", "Android", "Google Inc.", "Mobile", True,
     412, 915),
    ("Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.2 Mobile/15E148 Safari/604.1", "Mobile Safari", "Safari", "17.2",
     "Browser (mobile)", "WEBKIT", "iOS 17 (iPad)", "iOS", "Apple Inc.", "Tablet", True,
     820, 1180),
)
_LANGS = ("en-GB", "en-US", "de-DE", "fr-FR", "nl-NL", "ja-JP", "pt-BR")

# (refr_medium, refr_source, refr_urlhost, refr_urlpath, search terms?)
_REFERRERS = (
    (None, None, None, None, False),
    (None, None, None, None, False),
    ("search", "Google", "www.google.com", "/search", True),
    ("search", "Bing", "www.bing.com", "/search", True),
    ("social", "Facebook", "www.facebook.com", "/", False),
    ("social", "Twitter", "t.co", "/x7Yz", False),
    ("unknown", None, "blog.example.org", "/2024/03/events", False),
    ("email", "Gmail", "mail.google.com", "/mail/u/0/", False),
)
_TERMS = ("snowplow", "event data modeling", "sql runner", "web analytics", "identity stitching")
# (mkt_medium, mkt_source, mkt_term, mkt_content, mkt_campaign)
_CAMPAIGNS = (
    ("cpc", "google", "event analytics", "ad-1", "spring_sale"),
    ("email", "newsletter", None, "header-link", "march_digest"),
    ("social", "facebook", None, "carousel", "brand_awareness"),
    ("display", "partner-network", None, "banner-300x250", "retargeting"),
)
_STRUCT_ACTIONS = (
    ("video", "play", "intro", None, None),
    ("video", "pause", "intro", "00:42", 42.0),
    ("form", "submit", "newsletter", None, None),
    ("cart", "add", "sku-123", "tracker-pro", 2.0),
    ("search", "query", "sql runner", None, None),
)

_VERSIONS = {
    "name_tracker": "cf",
    "v_tracker": "js-3.17.0",
    "v_collector": "ssc-2.10.0-kinesis",
    "v_etl": "snowplow-enrich-kinesis-3.9.0",
    "platform": "web",
}

_EVENT_SCHEMAS = {
    "page_view": ("page_view", "com.snowplowanalytics.snowplow", "page_view", "1-0-0"),
    "page_ping": ("page_ping", "com.snowplowanalytics.snowplow", "page_ping", "1-0-0"),
    "struct": ("struct", "com.google.analytics", "event", "1-0-0"),
    "link_click": ("unstruct", "com.snowplowanalytics.snowplow", "link_click", "1-0-1"),
}


@dataclass
class _Cookie:
    domain_userid: str
    network_userid: str
    template: list  # the cookie's constant columns
    clock_offset_ms: int
    clock_near_1970: bool
    uppercase_ids: bool
    sends_dvce_sent: bool
    anonymous_user_id: str | None  # None, or '' for trackers that send an empty user_id
    users: list[str]  # users who may log in on this device, in order
    current_user: str | None = None
    logins: int = 0
    sessions: int = 0
    regular: bool = False  # the spanning shape's regular visitor


@dataclass
class _Page:
    host: str
    path: str
    title: str
    query: str | None
    url: str


class _Random(random.Random):
    """``random.Random`` with cheaper integer draws (the generator's own, still deterministic)."""

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))

    def randrange(self, n: int) -> int:  # type: ignore[override]
        return int(self.random() * n)

    def choice(self, seq):  # type: ignore[override]
        return seq[int(self.random() * len(seq))]


class _Simulation:
    """Runs the visitors' sessions on a clock and emits their events in arrival order."""

    def __init__(self, config: GeneratorConfig) -> None:
        self.config = config
        self.rates = config.rates
        self.rng = _Random(config.seed)
        self.start_ms = int((config.start - EPOCH).total_seconds() * 1000)
        self.span_ms = max(int(config.days * MS_PER_DAY), 1)
        # events per new cookie, with its return visits, is about 20
        self.cookie_interval_ms = self.span_ms * 20 / max(config.events, 1)
        self.heap: list = []  # (time, sequence, kind, payload)
        self.sequence = 0
        self.recent_ids: list[tuple[str, int]] = []  # (event_id, collector ms) for synthetic dups
        self.users = 0
        self.etl_tstamps = [etl_tstamp_of(b, config) for b in range(max(config.batches, 1))]
        self.spanning = config.shape == "spanning"
        if self.spanning:
            shape = SPANNING
            self.cookie_interval_ms /= max(1.0 - shape.regular_share, 1e-6)
            self.regular_gap_ms = self.span_ms / shape.visits
            burst = 1.0 / (1.0 - shape.burst_return)
            self.regulars = max(1, round(shape.regular_share * config.events / (
                shape.visits * burst * shape.events_per_session)))
            self.late_range = (3_600_000, max(self.span_ms / 3, 3_600_001))

    # -- identifiers -------------------------------------------------------

    def _uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"

    def _push(self, time_ms: float, kind: str, payload: object) -> None:
        self.sequence += 1
        heapq.heappush(self.heap, (time_ms, self.sequence, kind, payload))

    # -- the main loop -----------------------------------------------------

    def run(self) -> Iterator[tuple]:
        total = self.config.events
        if total <= 0:
            return
        if self.spanning:
            # the regular visitors exist from the start, each at its own pace
            for _ in range(self.regulars):
                cookie = self._new_cookie()
                cookie.regular = True
                self._push(self.start_ms + self.rng.expovariate(1.0 / self.regular_gap_ms),
                           "session", cookie)
        self._push(self.start_ms, "new_cookie", None)
        emitted = 0
        etl = _I["etl_tstamp"]
        while emitted < total:
            time_ms, _, kind, payload = heapq.heappop(self.heap)
            if kind == "new_cookie":
                self._start_session(self._new_cookie(), time_ms)
                gap = self.rng.expovariate(1.0 / self.cookie_interval_ms)
                self._push(time_ms + gap, "new_cookie", None)
            elif kind == "session":
                self._start_session(payload, time_ms)
            else:
                row = payload
                row[etl] = self.etl_tstamps[batch_of(emitted, self.config)]
                emitted += 1
                yield tuple(row)

    # -- visitors ----------------------------------------------------------

    def _new_cookie(self) -> _Cookie:
        rng, rates = self.rng, self.rates
        device = rng.choice(_DEVICES)
        template: list = [None] * len(COLUMNS)
        for name, value in _VERSIONS.items():
            template[_I[name]] = value
        (template[_I["useragent"]], template[_I["br_name"]], template[_I["br_family"]],
         template[_I["br_version"]], template[_I["br_type"]], template[_I["br_renderengine"]],
         template[_I["os_name"]], template[_I["os_family"]], template[_I["os_manufacturer"]],
         template[_I["dvce_type"]], template[_I["dvce_ismobile"]],
         template[_I["dvce_screenwidth"]], template[_I["dvce_screenheight"]]) = device
        template[_I["br_lang"]] = rng.choice(_LANGS)
        template[_I["br_cookies"]] = True
        template[_I["br_features_pdf"]] = rng.random() < 0.8
        template[_I["br_features_java"]] = False
        template[_I["br_colordepth"]] = "24"
        template[_I["doc_charset"]] = "UTF-8"
        template[_I["user_fingerprint"]] = str(rng.getrandbits(31))
        template[_I["user_ipaddress"]] = (
            f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.x")
        domain_userid = self._uuid()
        template[_I["domain_userid"]] = domain_userid
        network_userid = self._uuid()
        template[_I["network_userid"]] = network_userid

        offset = 0
        near_1970 = rng.random() < rates.clock_near_1970
        if not near_1970 and rng.random() < rates.clock_skew:
            offset = int(rng.choice((-1, 1)) * rng.uniform(3_600_000, 5 * MS_PER_DAY))
        users: list[str] = []
        if rng.random() < rates.login:
            users.append(self._new_user())
            if rng.random() < rates.shared_device:
                users.append(self._new_user())
        return _Cookie(
            domain_userid=domain_userid, network_userid=network_userid, template=template,
            clock_offset_ms=offset, clock_near_1970=near_1970,
            uppercase_ids=rng.random() < rates.uppercase_ids,
            sends_dvce_sent=rng.random() >= rates.null_dvce_sent,
            anonymous_user_id="" if rng.random() < rates.empty_user_id else None,
            users=users)

    def _new_user(self) -> str:
        self.users += 1
        if self.rng.random() < 0.5:
            return f"user{self.users:07d}@example.com"
        return f"U{self.users:09d}"

    # -- sessions ----------------------------------------------------------

    def _start_session(self, cookie: _Cookie, start_ms: float) -> None:
        rng, rates, config = self.rng, self.rates, self.config
        cookie.sessions += 1
        start_ms = int(start_ms)
        if cookie.clock_near_1970 and cookie.sessions == 1:
            # the device clock was reset: its first session starts just before 1970
            cookie.clock_offset_ms = -start_ms - rng.randint(0, 120_000)
        template = list(cookie.template)
        template[_I["domain_sessionidx"]] = cookie.sessions
        template[_I["domain_sessionid"]] = self._uuid()
        _set_place(template, _GEOS[rng.randrange(len(_GEOS))], rng.choice(_APPS))
        template[_I["br_viewwidth"]] = max(320, (template[_I["dvce_screenwidth"]] or 1024) - 16)
        template[_I["br_viewheight"]] = max(480, (template[_I["dvce_screenheight"]] or 768) - 120)
        template[_I["doc_width"]] = template[_I["br_viewwidth"]]
        template[_I["doc_height"]] = rng.randint(900, 6000)

        # who is logged in during this session, and from which page view
        login_at = None
        if cookie.users and rng.random() < 0.5 and (
                cookie.current_user is None or len(cookie.users) > 1):
            # a login (or, on a shared device, the other user's) at one of the page views
            login_at = rng.randint(0, 4)

        # the session's timeline: (true ms, kind, page, page view number)
        pages = self._plan_pages(template, rng, SPANNING.pages if cookie.regular else 2.0)
        events: list[tuple[int, str, _Page, int]] = []
        t = start_ms
        heartbeat_ms = config.heartbeat * 1000
        if rng.random() < rates.stray_pings:
            # a tab restored after the previous session ended: pings without a page view
            page = self._page(rng)
            for _ in range(rng.randint(1, 3)):
                events.append((t, "page_ping", page, -1))
                t += heartbeat_ms + rng.randint(0, 400)
        for number, page in enumerate(pages):
            events.append((t, "page_view", page, number))
            pings = 0 if rng.random() < 0.3 else min(int(rng.expovariate(1 / 4.0)) + 1, 60)
            t_ping = t + config.min_visit_length * 1000 + rng.randint(0, 300)
            for _ in range(pings):
                if rng.random() < 0.08:
                    kind = "struct" if rng.random() < 0.6 else "link_click"
                    events.append((t_ping - rng.randint(100, 4000), kind, page, number))
                events.append((t_ping, "page_ping", page, number))
                t_ping += heartbeat_ms + rng.randint(-150, 150)
            if rng.random() < 0.1:
                events.append((t + rng.randint(500, 4000), "struct", page, number))
            t = max(t_ping, t + rng.randint(2000, 30_000)) + rng.randint(500, 20_000)

        events.sort(key=lambda e: e[0])
        page_templates = [self._page_template(template, page, pages[number - 1] if number > 0
                                              else None) for number, page in enumerate(pages)]
        stray_template = (self._page_template(template, events[0][2], None)
                          if events[0][3] < 0 else None)
        geo_change_at = (rng.randint(1, len(events)) if rng.random() < rates.geo_change
                         else len(events))
        moved = (_GEOS[rng.randrange(len(_GEOS))], rng.choice(_APPS))
        previous_dvce = previous_collector = None
        for position, (true_ms, kind, _, number) in enumerate(events):
            if login_at is not None and number >= login_at:
                cookie.current_user = self._next_user(cookie)
                login_at = None
            page_template = page_templates[number] if number >= 0 else stray_template
            row = self._event_row(cookie, page_template, true_ms, kind)
            if position >= geo_change_at:
                _set_place(row, *moved)
            if previous_dvce is not None and rng.random() < rates.dvce_tie:
                row[_DVCE_CREATED] = previous_dvce
                if rng.random() < rates.collector_tie:
                    row[_COLLECTOR] = previous_collector
                _fix_derived(row)
            previous_dvce = row[_DVCE_CREATED]
            previous_collector = row[_COLLECTOR]
            self._emit(cookie, row)
        if cookie.current_user is not None and rng.random() < rates.logout:
            cookie.current_user = None
        if cookie.regular:
            # back within the hour (the same sitting), else some time later in the span
            gap_ms = (rng.randint(0, 600_000) if rng.random() < SPANNING.burst_return
                      else int(rng.expovariate(1.0 / self.regular_gap_ms)))
            self._push(t + 1_800_000 + gap_ms, "session", cookie)
        elif rng.random() < rates.return_visit:
            gap = rng.lognormvariate(11.5, 1.5)  # median 27 hours (in seconds)
            self._push(t + 1_800_000 + int(gap * 1000) % (30 * MS_PER_DAY), "session", cookie)

    def _next_user(self, cookie: _Cookie) -> str:
        """Who logs in: on a shared device, the users take turns."""
        cookie.logins += 1
        return cookie.users[(cookie.logins - 1) % len(cookie.users)]

    def _page(self, rng: random.Random) -> _Page:
        host = rng.choice(_HOSTS)
        path, title = rng.choice(_PAGES)
        query = None
        if rng.random() < 0.1:
            query = f"ref={rng.randint(1, 99)}"
        url = f"https://{host}{path}" + (f"?{query}" if query else "")
        return _Page(host, path, title, query, url)

    def _plan_pages(self, template: list, rng: random.Random, pages: float) -> list[_Page]:
        count = 1 + min(int(rng.expovariate(1 / pages)), 30)
        pages = [self._page(rng) for _ in range(count)]
        # the landing page: an external referrer, perhaps a campaign
        referrer = rng.choice(_REFERRERS)
        landing = pages[0]
        (template[_I["refr_medium"]], template[_I["refr_source"]], template[_I["refr_urlhost"]],
         template[_I["refr_urlpath"]], searched) = referrer
        template[_I["refr_term"]] = rng.choice(_TERMS) if searched else None
        if referrer[2] is not None:
            template[_I["refr_urlscheme"]] = "https"
            template[_I["refr_urlport"]] = 443
            template[_I["page_referrer"]] = f"https://{referrer[2]}{referrer[3]}"
        else:
            template[_I["refr_urlscheme"]] = template[_I["refr_urlport"]] = None
            template[_I["page_referrer"]] = None
        if rng.random() < 0.25:
            campaign = rng.choice(_CAMPAIGNS)
            (template[_I["mkt_medium"]], template[_I["mkt_source"]], template[_I["mkt_term"]],
             template[_I["mkt_content"]], template[_I["mkt_campaign"]]) = campaign
            landing.query = f"utm_source={campaign[1]}&utm_medium={campaign[0]}"
            landing.url = f"https://{landing.host}{landing.path}?{landing.query}"
        else:
            for name in ("mkt_medium", "mkt_source", "mkt_term", "mkt_content", "mkt_campaign"):
                template[_I[name]] = None
        return pages

    # -- events ------------------------------------------------------------

    @staticmethod
    def _page_template(template: list, page: _Page, previous: _Page | None) -> list:
        """The session's template with a page view's page and, after the first, its referrer."""
        row = list(template)
        row[_I["page_url"]] = page.url
        row[_I["page_title"]] = page.title
        row[_I["page_urlscheme"]] = "https"
        row[_I["page_urlhost"]] = page.host
        row[_I["page_urlport"]] = 443
        row[_I["page_urlpath"]] = page.path
        row[_I["page_urlquery"]] = page.query
        if previous is not None:
            row[_I["page_referrer"]] = previous.url
            row[_I["refr_urlscheme"]] = "https"
            row[_I["refr_urlhost"]] = previous.host
            row[_I["refr_urlport"]] = 443
            row[_I["refr_urlpath"]] = previous.path
            row[_I["refr_medium"]] = "internal"
            row[_I["refr_source"]] = row[_I["refr_term"]] = None
            for position in _MKT_FIELDS:
                row[position] = None
        return row

    def _event_row(self, cookie: _Cookie, page_template: list, true_ms: int, kind: str) -> list:
        rng = self.rng
        row = list(page_template)
        (row[_EVENT], row[_EVENT_VENDOR], row[_EVENT_NAME], row[_EVENT_VERSION]) = (
            _EVENT_SCHEMAS[kind])
        row[_EVENT_FORMAT] = "jsonschema"
        event_id = self._uuid()
        row[_EVENT_ID] = event_id.upper() if cookie.uppercase_ids else event_id
        row[_TXN_ID] = rng.randrange(1_000_000)
        row[_FINGERPRINT] = f"{rng.getrandbits(128):032x}"
        row[_USER_ID] = cookie.current_user or cookie.anonymous_user_id
        if kind == "page_ping":
            y = rng.randint(0, 2000)
            for position, value in zip(_PING_OFFSETS, (0, rng.randint(0, 40), y,
                                                       y + rng.randint(0, 3000)), strict=True):
                row[position] = value
        elif kind == "struct":
            for position, value in zip(_STRUCT_FIELDS, rng.choice(_STRUCT_ACTIONS), strict=True):
                row[position] = value

        # the clocks: collector on arrival, device with its offset
        latency = rng.randint(20, 1500)
        collector_ms = true_ms + latency
        if rng.random() < self.rates.late_event:
            collector_ms += int(rng.lognormvariate(13.0, 1.8)) % (4 * MS_PER_DAY)
        if self.spanning and rng.random() < SPANNING.late_share:
            # sent from a queue long after: into a session an earlier batch modelled
            low, high = self.late_range
            collector_ms += int(math.exp(rng.uniform(math.log(low), math.log(high))))
        dvce_ms = true_ms + cookie.clock_offset_ms
        row[_COLLECTOR] = _ts(collector_ms)
        row[_DVCE_CREATED] = _ts(dvce_ms)
        if cookie.sends_dvce_sent:
            row[_DVCE_SENT] = _ts(dvce_ms + collector_ms - true_ms - rng.randint(0, 20))
        _fix_derived(row)
        return row

    def _emit(self, cookie: _Cookie, row: list) -> None:
        rng, rates = self.rng, self.rates
        collector = row[_COLLECTOR]
        arrival = _ms(collector)
        if rng.random() < rates.synthetic_duplicate and self.recent_ids:
            # another event's id on this event's payload (a badly seeded id generator)
            event_id, original_collector = rng.choice(self.recent_ids)
            if original_collector != arrival:
                row[_EVENT_ID] = event_id
        if rng.random() < rates.unusable:
            _make_unusable(row, rng)
        self._push(arrival, "event", row)
        if len(self.recent_ids) < 512:
            self.recent_ids.append((row[_EVENT_ID], arrival))
        else:
            self.recent_ids[rng.randrange(512)] = (row[_EVENT_ID], arrival)
        if rng.random() < rates.natural_duplicate:
            copy = list(row)
            if rng.random() < 0.5:
                # the tracker sent it again: collected and sent later, same payload
                resend_ms = rng.randint(500, 7_200_000)
                copy[_COLLECTOR] = collector + timedelta(milliseconds=resend_ms)
                if copy[_DVCE_SENT] is not None:
                    copy[_DVCE_SENT] += timedelta(milliseconds=resend_ms)
                self._push(arrival + resend_ms, "event", copy)
            else:
                # the pipeline processed it again: identical, loaded hours later
                self._push(arrival + rng.randint(60_000, 2 * MS_PER_DAY), "event", copy)


def _set_place(row: list, geo: tuple, app_id: str) -> None:
    for position, value in zip(_GEO_FIELDS, geo, strict=True):
        row[position] = value
    row[_I["os_timezone"]] = geo[7] or "Etc/UTC"
    row[_I["app_id"]] = app_id


def _fix_derived(row: list) -> None:
    """derived_tstamp = collector_tstamp - (dvce_sent_tstamp - dvce_created_tstamp)."""
    sent, created = row[_DVCE_SENT], row[_DVCE_CREATED]
    if sent is not None and created is not None:
        row[_DERIVED] = row[_COLLECTOR] - (sent - created)
    else:
        row[_DERIVED] = row[_COLLECTOR]


def _make_unusable(row: list, rng: random.Random) -> None:
    case = rng.randrange(4)
    if case == 0:
        row[_I["domain_userid"]] = None
    elif case == 1:
        row[_I["domain_userid"]] = ""
    elif case == 2:
        row[_I["domain_sessionidx"]] = None
    else:
        row[_I["dvce_created_tstamp"]] = None


def _ts(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def _ms(ts: datetime) -> int:
    return (ts - EPOCH) // timedelta(milliseconds=1)
