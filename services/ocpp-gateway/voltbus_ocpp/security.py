"""The security profile the station connects with, its migration, and the security events
(OCPP 1.6 security whitepaper edition 2, chapters 2 and 4). Version-neutral: the protocol
adapter reads and sets the profile; the link asks `route()` how to connect.

Profiles: 0 = as configured (VOLTBUS_CSMS_URL as given, Basic auth when a key is set, the
client certificate when one is configured: what voltbus did before profiles acted); 1 = ws://
with HTTP Basic auth (an AuthorizationKey is required); 2 = wss:// with the server certificate
checked against the installed CentralSystemRootCertificates (or VOLTBUS_CSMS_CA_FILE) and Basic
auth; 3 = wss:// with the charge point certificate (from CertificateSigned, or
VOLTBUS_CSMS_CLIENT_CERT_FILE) and no Basic auth.

A raised profile is "pending" until a connection with it is accepted; after
FALLBACK_ATTEMPTS failed attempts the previous profile is restored (and kept), so a central
system that cannot yet speak the new profile does not lock the station out.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from websockets.exceptions import InvalidStatus

from voltbus_ocpp.certificates import (
    CENTRAL_SYSTEM_ROOT,
    CertificateError,
    CertificateStore,
    crl_issuers,
    load_chain,
    load_crls,
)
from voltbus_ocpp.messages import SignCertificateRequest
from voltbus_ocpp.offline_queue import OfflineQueue
from voltbus_ocpp.records import FirmwareStatusRecord, SecurityEventRecord
from voltbus_ocpp.settings import GatewaySettings
from voltbus_ocpp.store import Store

if TYPE_CHECKING:
    from cryptography import x509

log = logging.getLogger(__name__)

FALLBACK_ATTEMPTS = 3

# The whitepaper's security events (appendix 1), and whether each is critical (A04.FR.02: a
# critical one SHALL be sent to the central system). voltbus sends every one it records, queued
# in the durable outbox like transaction messages so none is lost offline.
SECURITY_EVENTS: dict[str, bool] = {
    "FirmwareUpdated": True, "FailedToAuthenticateAtCentralSystem": False,
    "CentralSystemFailedToAuthenticate": False, "SettingSystemTime": True,
    "StartupOfTheDevice": True, "ResetOrReboot": True, "SecurityLogWasCleared": True,
    "ReconfigurationOfSecurityParameters": False, "MemoryExhaustion": True,
    "InvalidMessages": False, "AttemptedReplayAttacks": False, "TamperDetectionActivated": True,
    "InvalidFirmwareSignature": False, "InvalidFirmwareSigningCertificate": False,
    "InvalidCentralSystemCertificate": False, "InvalidChargePointCertificate": False,
    "InvalidTLSVersion": False, "InvalidTLSCipherSuite": False,
}

_LOG_SCHEMA = """CREATE TABLE IF NOT EXISTS security_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, type TEXT NOT NULL, tech_info TEXT)"""
SECURITY_LOG_MAX = 5000


class RouteProblem(OSError):
    """The station cannot connect with its security profile (what is missing)."""


@dataclass(frozen=True)
class Route:
    """How to connect: the central system's URL (without the station id), the TLS context,
    and whether HTTP Basic auth is sent (None: when a key is set, profile 0)."""

    profile: int
    url: str
    ssl: ssl.SSLContext | None
    basic_auth: bool | None
    problem: str | None = None


def _with_scheme(url: str, scheme: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((scheme, *parts[1:]))


def profile_from_settings(settings: GatewaySettings, *, key: bool) -> int:
    """The profile a station's settings amount to, before the central system set one: 3 with
    wss://, a CA and a client certificate; 2 with wss://, a CA and an AuthorizationKey (key);
    1 with ws:// and a key; else 0 (as configured)."""
    wss = settings.csms_url.startswith("wss://")
    if wss and settings.csms_ca_file is not None:
        if settings.csms_client_cert_file is not None:
            return 3
        if key:
            return 2
    elif not wss and key:
        return 1
    return 0


class SecurityProfiles:
    """The station's security profile: the route to connect by, prerequisites, migration."""

    STATE, PREVIOUS, FAILURES = "security_profile_state", "security_profile_previous", \
        "security_profile_failures"

    def __init__(self, settings: GatewaySettings, store: Store, certs: CertificateStore, *,
                 profile: Callable[[], int], set_profile: Callable[[int], None],
                 auth_key: Callable[[], str | None]) -> None:
        self.settings = settings
        self.store = store
        self.certs = certs
        self.profile = profile
        self.set_profile = set_profile
        self.auth_key = auth_key

    # --- connecting ------------------------------------------------------------------------

    def tls_url(self) -> str:
        """The wss:// address: VOLTBUS_CSMS_TLS_URL, else VOLTBUS_CSMS_URL as wss://."""
        if self.settings.csms_tls_url:
            return self.settings.csms_tls_url
        return _with_scheme(self.settings.csms_url, "wss")

    def _ca_files(self) -> list[str]:
        files = [str(p) for p in self.certs.root_files(CENTRAL_SYSTEM_ROOT)]
        if self.settings.csms_ca_file is not None:
            files.append(str(self.settings.csms_ca_file))
        return files

    def configured_roots(self) -> list[x509.Certificate]:
        """The certificates of VOLTBUS_CSMS_CA_FILE (they count as installed roots)."""
        if self.settings.csms_ca_file is None:
            return []
        try:
            return load_chain(self.settings.csms_ca_file.read_text())
        except (OSError, CertificateError) as exc:
            log.warning("VOLTBUS_CSMS_CA_FILE cannot be read: %s", exc)
            return []

    def _client_cert(self) -> tuple[str, str | None] | None:
        if self.certs.has_client_certificate():
            return str(self.certs.cert_file), str(self.certs.key_file)
        if self.settings.csms_client_cert_file is not None:
            key = self.settings.csms_client_key_file
            return str(self.settings.csms_client_cert_file), str(key) if key else None
        return None

    def _context(self, *, client: bool) -> ssl.SSLContext:
        cafiles = self._ca_files()
        # with roots installed or configured, only they are trusted (not the system's CAs)
        context = ssl.create_default_context(cafile=cafiles[0] if cafiles else None)
        for cafile in cafiles[1:]:
            context.load_verify_locations(cafile=cafile)
        context.minimum_version = ssl.TLSVersion.TLSv1_2  # whitepaper: TLS 1.2 or above
        if self.certs.fallback_pending() or any(
                r.issuer != r.subject for r in self.certs.roots(CENTRAL_SYSTEM_ROOT)):
            # a root that replaced another (AdditionalRootCertificateCheck) is signed by it:
            # it is the trust anchor itself, not a link to the old one
            context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        self._revocation(context)
        found = self._client_cert() if client else None
        if found is not None:
            context.load_cert_chain(*found)
        return context

    def _revocation(self, context: ssl.SSLContext) -> None:
        """With VOLTBUS_CRL_FILE holding a CRL of a trusted central-system root, the server
        certificate is checked against it in the handshake (a revoked one fails like any bad
        certificate: InvalidCentralSystemCertificate); an unreadable file stops the connection
        (CertificateError), never passes as "nothing revoked"."""
        crl_file = self.settings.crl_file
        if crl_file is None:
            return
        roots = [*self.certs.roots(CENTRAL_SYSTEM_ROOT), *self.configured_roots()]
        if not crl_issuers(load_crls(crl_file), roots):
            return  # no CRL of these roots: nothing to check the server against
        context.load_verify_locations(cafile=str(crl_file))
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF

    def route(self) -> Route:
        """How to connect with the profile in force now."""
        profile = self.profile()
        s = self.settings
        if profile == 0:
            secure = s.csms_url.startswith("wss://")
            return Route(0, s.csms_url, self._context(client=True) if secure else None, None)
        problem = self.missing(profile)
        if profile == 1:
            return Route(1, _with_scheme(s.csms_url, "ws"), None, True, problem)
        try:
            context = self._context(client=profile == 3)
        except (OSError, ssl.SSLError, ValueError) as exc:
            return Route(profile, self.tls_url(), None, profile == 2,
                         f"the TLS files cannot be loaded: {exc}")
        return Route(profile, self.tls_url(), context, profile == 2, problem)

    def missing(self, profile: int) -> str | None:
        """What profile needs that the station lacks (whitepaper: before a profile is taken,
        its key or certificates must be installed), or None."""
        if profile in (1, 2) and not self.auth_key():
            return "no AuthorizationKey is set"
        if profile in (2, 3) and not self._ca_files():
            return "no CentralSystemRootCertificate is installed"
        if profile == 3 and self._client_cert() is None:
            return "no charge point certificate is installed"
        return None

    # --- migration ---------------------------------------------------------------------------

    def change(self, new: int) -> str:
        """ChangeConfiguration SecurityProfile: Rejected for a lower profile (A00.FR.005) or
        when its prerequisites are missing; Accepted otherwise (the caller reconnects)."""
        current = self.profile()
        if new < current:
            log.warning("SecurityProfile %d -> %d refused: a profile is never lowered over OCPP",
                        current, new)
            return "Rejected"
        if new == current:
            return "Accepted"
        problem = self.missing(new)
        if problem:
            log.warning("SecurityProfile %d -> %d rejected: %s", current, new, problem)
            return "Rejected"
        with self.store.transaction():
            if self.store.meta(self.STATE, "") != "pending":
                self.store.set_meta(self.PREVIOUS, str(current))
            self.store.set_meta(self.STATE, "pending")
            self.store.set_meta(self.FAILURES, "0")
            self.set_profile(new)
        log.warning("SecurityProfile %d -> %d: reconnecting with it (back to %d if it cannot "
                    "connect %d times)", current, new, current, FALLBACK_ATTEMPTS)
        return "Accepted"

    @property
    def pending(self) -> bool:
        """A raised profile was not yet accepted by the central system."""
        return self.store.meta(self.STATE, "") == "pending"

    def connected(self) -> None:
        """A connection with the profile in force was accepted: it is the station's now."""
        if self.pending:
            with self.store.transaction():
                for key in (self.STATE, self.PREVIOUS, self.FAILURES):
                    self.store.delete_meta(key)
            log.info("SecurityProfile %d accepted by the central system", self.profile())

    def failed(self) -> bool:
        """A connection attempt failed; True when it made the station fall back."""
        if not self.pending:
            return False
        failures = int(self.store.meta(self.FAILURES, "0") or 0) + 1
        if failures < FALLBACK_ATTEMPTS:
            self.store.set_meta(self.FAILURES, str(failures))
            return False
        previous = int(self.store.meta(self.PREVIOUS, "0") or 0)
        log.error("SecurityProfile %d could not connect %d times: back to profile %d",
                  self.profile(), failures, previous)
        with self.store.transaction():
            for key in (self.STATE, self.PREVIOUS, self.FAILURES):
                self.store.delete_meta(key)
            self.set_profile(previous)
        return True


class SecurityEvents:
    """Security events: each is kept in the security log (GetLog SecurityLog) and queued in the
    durable outbox as a SecurityEventNotification. An event about a failing connection is
    queued once per outage, not once per attempt."""

    def __init__(self, store: Store, queue: OfflineQueue, *,
                 clock: Callable[[], datetime], queued: Callable[[], None]) -> None:
        self.store = store
        self.queue = queue
        self.clock = clock
        self.queued = queued  # the messenger is told a durable message was stored
        self._once: set[str] = set()
        store.db.execute(_LOG_SCHEMA)

    def record(self, kind: str, tech_info: str | None = None, *, once: bool = False) -> None:
        """Log a security event and queue its notification (once per outage if once)."""
        if kind not in SECURITY_EVENTS:
            raise ValueError(f"unknown security event {kind!r}")
        if once:
            if kind in self._once:
                return
            self._once.add(kind)
        ts = self.clock()
        info = tech_info[:255] if tech_info else None
        log.warning("security event %s%s", kind, f": {info}" if info else "")
        with self.store.transaction():
            self.store.db.execute("INSERT INTO security_log (ts, type, tech_info) VALUES "
                                  "(?, ?, ?)", (ts.isoformat(), kind, info))
            self.store.db.execute("DELETE FROM security_log WHERE seq <= (SELECT max(seq) FROM "
                                  "security_log) - ?", (SECURITY_LOG_MAX,))
            self.queue.put(SecurityEventRecord(kind, ts, info), None)
        self.queued()

    def link_up(self) -> None:
        """A connection was accepted: a later failure is news again."""
        self._once.clear()

    def log_text(self, start: datetime | None = None, stop: datetime | None = None) -> str:
        """The security log as text lines (for GetLog SecurityLog)."""
        lines = []
        for ts, kind, info in self.store.db.execute(
                "SELECT ts, type, tech_info FROM security_log ORDER BY seq"):
            at = datetime.fromisoformat(ts)
            if (start and at < start) or (stop and at > stop):
                continue
            lines.append(f"{ts} {kind}{' ' + info if info else ''}")
        return "\n".join(lines) + "\n"


CLOCK_JUMP_S = 2.0  # a wall-clock change beyond this, against the monotonic clock, is news


class StationSecurity:
    """One station's certificates, security profile and security events, and the link's
    callbacks that feed them."""

    def __init__(self, settings: GatewaySettings, station: str, store: Store,
                 queue: OfflineQueue, *, clock: Callable[[], datetime],
                 queued: Callable[[], None], profile: Callable[[], int],
                 set_profile: Callable[[int], None], auth_key: Callable[[], str | None],
                 organization: Callable[[], str] = lambda: "") -> None:
        self.station = station
        self.organization = organization  # CpoName, the CSR's O
        self.clock = clock
        self.store = store
        self.certs = CertificateStore(settings.station_dir(station) / "certs")
        self.events = SecurityEvents(store, queue, clock=clock, queued=queued)
        self.profiles = SecurityProfiles(settings, store, self.certs, profile=profile,
                                         set_profile=set_profile, auth_key=auth_key)
        # GetLog's upload and SignedUpdateFirmware's job: (status, request id) of each, and
        # their tasks (a new request cancels the one running: AcceptedCanceled)
        self.jobs: dict[str, Any] = {"log": ("Idle", None), "firmware": ("Idle", None),
                                     "tasks": {}}

    SIGNED_INSTALLED = "signed_firmware_installed"  # meta: the request id, until Installed

    def firmware_status(self, status: str, request_id: int | None) -> None:
        """A signed firmware job's final status, queued in the outbox (not lost offline)."""
        self.events.queue.put(FirmwareStatusRecord(status, request_id, signed=True), None)
        self.events.queued()

    def signed_firmware_installed(self, request_id: int) -> None:
        """A signed firmware's install hook succeeded: Installed follows the restart."""
        self.store.set_meta(self.SIGNED_INSTALLED, str(request_id))

    def after_boot(self, firmware_version: str) -> list[Any]:
        """What follows an accepted BootNotification: after a signed install,
        SignedFirmwareStatusNotification Installed (its request id, queued in the outbox) and
        the FirmwareUpdated event (the version now running); at profile 3, a SignCertificate
        when the charge point certificate is near its end."""
        out: list[Any] = []
        found = self.store.meta(self.SIGNED_INSTALLED, "")
        if found:
            request_id = int(found)
            # through the outbox, in the commit that clears the flag: neither lost when the
            # link drops (or the process dies) before it is answered, nor sent twice
            with self.store.transaction():
                self.store.delete_meta(self.SIGNED_INSTALLED)
                self.events.queue.put(FirmwareStatusRecord("Installed", request_id, signed=True),
                                      None)
                self.events.record("FirmwareUpdated", firmware_version)
            self.jobs["firmware"] = ("Installed", request_id)
        if self.profiles.profile() == 3 and self.certs.due_for_renewal():
            # the whitepaper's renewal by the charge point: a new key and CSR before the
            # certificate expires (the old one is used until CertificateSigned)
            log.warning("%s: the charge point certificate is near its end: asking for a new one",
                        self.station)
            out.append(SignCertificateRequest(self.certs.make_csr(self.station,
                                                                  self.organization())))
        return out

    def route(self) -> Route:
        """How the link connects now."""
        return self.profiles.route()

    def _over_tls(self) -> bool:
        return self.profiles.profile() >= 2 or (
            self.profiles.profile() == 0 and self.profiles.settings.csms_url.startswith("wss://"))

    def connected(self) -> None:
        """The link's connection was accepted. A new CentralSystemRootCertificate that just
        verified the server (AdditionalRootCertificateCheck) is kept, the fallback removed."""
        self.profiles.connected()
        self.events.link_up()
        if self.certs.fallback_pending() and self._over_tls():
            self.certs.drop_fallback()
            self.events.record("ReconfigurationOfSecurityParameters",
                               "the new CentralSystemRootCertificate verified the central "
                               "system: the previous one is removed")

    def failed(self, exc: BaseException) -> None:
        """A connection attempt failed: the security events it stands for, and the fallback
        of a new profile that cannot connect."""
        if isinstance(exc, InvalidStatus) and exc.response.status_code in (401, 403):
            self.events.record("FailedToAuthenticateAtCentralSystem",
                               f"HTTP {exc.response.status_code}", once=True)
        elif isinstance(exc, ssl.SSLCertVerificationError):
            self.events.record("InvalidCentralSystemCertificate",
                               str(exc.verify_message or exc), once=True)
            if self.certs.fallback_pending():  # AdditionalRootCertificateCheck's fallback
                log.error("%s: the new CentralSystemRootCertificate does not verify the "
                          "central system: back to the previous one", self.station)
                self.certs.restore_fallback()
                self.events.record("ReconfigurationOfSecurityParameters",
                                   "the new CentralSystemRootCertificate could not verify the "
                                   "central system: back to the previous one")
        elif isinstance(exc, ssl.SSLError) and "VERSION" in str(exc.reason or "").upper():
            self.events.record("InvalidTLSVersion", str(exc), once=True)
        elif isinstance(exc, ssl.SSLError) and "CIPHER" in str(exc.reason or "").upper():
            self.events.record("InvalidTLSCipherSuite", str(exc), once=True)
        before = self.profiles.profile()
        if self.profiles.failed():
            self.events.record("ReconfigurationOfSecurityParameters",
                               f"SecurityProfile {before} could not connect: back to "
                               f"{self.profiles.profile()}")

    async def watch_clock(self, period_s: float = 1.0,
                          on_jump: Callable[[], None] | None = None) -> None:
        """SettingSystemTime whenever the wall clock moves against the monotonic clock (NTP
        or a person set the time); on_jump then (the station's timers look again)."""
        wall, mono = self.clock(), time.monotonic()
        while True:
            await asyncio.sleep(period_s)
            now_wall, now_mono = self.clock(), time.monotonic()
            jump = (now_wall - wall).total_seconds() - (now_mono - mono)
            if abs(jump) > CLOCK_JUMP_S:
                self.events.record("SettingSystemTime", f"the clock moved by {jump:+.0f} s")
                if on_jump is not None:
                    on_jump()
            wall, mono = now_wall, now_mono
