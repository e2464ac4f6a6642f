"""Several Pis on one site: Mosquitto's own bridge from a Pi's broker to the site broker.

Each Pi keeps its broker (its services, Home Assistant and the page go on working when the site
network is down); its broker bridges its stations' topics to the site broker, where one energy
manager sees every station. The bridge is Mosquitto's (`connection` ... in the Pi broker's
config), generated here from the topic contract, so a new channel is bridged without editing a
list by hand:

- state a Pi's services write (hardware, gateway, recorder, api) goes `out` only: the Pi is
  the authority, and a reconnecting bridge never brings an older retained copy back in;
- what the energy manager writes (`energy/{c}/limit/set`, `mode`, `cost`; the site's
  `energy/site` and `service/energy/status`) comes `in` only;
- commands anyone may send (`ocpp/{c}/command`, `energy/{c}/mode/set`, `sim/...`; never
  retained) go `both` ways: Home Assistant on either broker reaches the gateway and the energy
  manager. Mosquitto does not send a message back over the bridge it came from.

The bridge's own link state (`BRIDGE_STATE`, `{root}/{stations}/bridge/state`, `1`/`0`) is no
bridged topic: Mosquitto's bridge notifications publish it on both brokers themselves, at once
on the Pi's broker when the link drops, and as the bridge's Will on the site broker (so a Pi
broker that crashes or is cut off is `0` there too). The Pi's gateway and the site's energy
manager follow it (docs/energy.md, "When the link drops").

`render_site_acl` is the other half: the ACL block of the bridge's user on the site broker (it
may write only what its own stations' services write and its link state, and read what comes
in).
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from voltbus_common.channels import (
    API,
    BRIDGE_STATE,
    CHANNELS,
    COMMANDERS,
    ENERGY,
    ENERGY_SITE,
    GATEWAY,
    HARDWARE,
    RECORDER,
    SERVICE_REJECTED,
    SERVICE_STATUS,
    Channel,
)

Direction = Literal["in", "out", "both"]
_LOCAL = frozenset({HARDWARE, GATEWAY, RECORDER, API})
_PER_SERVICE = (SERVICE_STATUS, SERVICE_REJECTED)
BRIDGE_QOS = 1


def direction(channel: Channel) -> Direction:  # type: ignore[type-arg]
    """Which way a station channel crosses the bridge (see the module docstring)."""
    if channel.writers == frozenset({ENERGY}):
        return "in"
    if not channel.retain and channel.writers & COMMANDERS:
        return "both"
    return "out"


def bridge_topics(root: str, stations: list[str], site: str | None) -> list[tuple[str, str]]:
    """(filter, direction) for every channel of these stations, plus the site's own state."""
    topics: list[tuple[str, str]] = []
    for station in stations:
        for channel in CHANNELS:
            if channel is ENERGY_SITE or channel is BRIDGE_STATE:
                continue  # the site's, not a station's; the bridge's own, on both sides
            way = "out" if channel in _PER_SERVICE else direction(channel)
            topics.append((channel.filter(root, station=station), way))
    if site is not None and site not in stations:
        topics.append((ENERGY_SITE.topic(root, station=site), "in"))
        for channel in _PER_SERVICE:
            topics.append((channel.topic(root, station=site, service=ENERGY), "in"))
    return topics


def bridge_state_topic(root: str, stations: list[str]) -> str:
    """The bridge's link state topic: its stations, comma-separated, in the station level."""
    bad = [s for s in stations if "," in s]
    if bad or not stations:
        raise BridgeConfigError(f"station ids {bad} must not contain a comma")
    return BRIDGE_STATE.topic(root, station=",".join(stations))


@dataclass(frozen=True)
class BridgeConfig:
    """What a Pi's broker needs to bridge to the site broker."""

    name: str  # connection name and client id on the site broker: unique per Pi
    host: str
    port: int
    username: str
    password: str
    root: str
    stations: list[str]
    site: str | None = None  # the energy manager's site id: its site state comes in
    ca_file: Path | None = None  # TLS to the site broker, verified against this CA
    keepalive_s: int = 15


class BridgeConfigError(ValueError):
    """A bridge that would be insecure or cannot work; the message says what to set."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _one_line(name: str, value: str) -> str:
    if not value or any(c in value for c in "\r\n") or value != value.strip():
        raise BridgeConfigError(f"{name} must be one line without surrounding spaces")
    return value


def render_bridge(cfg: BridgeConfig, *, plain: bool = False) -> str:
    """The `connection` block for the Pi broker's config (it holds the password: mode 0600).

    Without a CA file the link is plain MQTT, and the password would cross the network in
    clear: refused for a site broker that is not on loopback unless `plain` is given.
    """
    if len(cfg.password) < 12:
        raise BridgeConfigError("the bridge password must have at least 12 characters "
                                "(VOLTBUS_BRIDGE_PASSWORD or VOLTBUS_BRIDGE_PASSWORD_FILE)")
    if cfg.ca_file is None and not plain and not _is_loopback(cfg.host):
        raise BridgeConfigError(
            f"the site broker {cfg.host} is not on loopback: give its CA "
            "(VOLTBUS_BRIDGE_CA_FILE, TLS, usually port 8883) or allow a plain link "
            "explicitly (VOLTBUS_BRIDGE_PLAIN=true / --plain)")
    if cfg.ca_file is not None and not cfg.ca_file.is_file():
        raise BridgeConfigError(f"VOLTBUS_BRIDGE_CA_FILE {cfg.ca_file}: no such file")
    name = _one_line("VOLTBUS_BRIDGE_NAME", cfg.name)
    if any(c in name for c in "/+# "):
        raise BridgeConfigError(f"VOLTBUS_BRIDGE_NAME {name!r} must not contain / + # or space")
    lines = [
        "# Generated by `voltbus bridge` from voltbus_common.channels; do not edit.",
        f"# Bridges stations {', '.join(cfg.stations)} to the site broker "
        f"{cfg.host}:{cfg.port}.",
        f"connection {name}",
        f"address {_one_line('host', cfg.host)}:{cfg.port}",
        f"remote_clientid {name}",
        f"remote_username {_one_line('VOLTBUS_BRIDGE_USERNAME', cfg.username)}",
        f"remote_password {_one_line('the bridge password', cfg.password)}",
        "bridge_protocol_version mqttv311",
        # the site broker knows it is a bridge: retained flags kept, nothing echoed back
        "try_private true",
        # a persistent session on both sides: what one side publishes while the link is
        # down is queued (QoS 1) and delivered when it is back
        "cleansession false",
        "local_cleansession false",
        f"keepalive_interval {cfg.keepalive_s}",
        "restart_timeout 2 30",
        "start_type automatic",
        # the link state (1/0, retained) in the contract's tree, on both brokers: on this one
        # at once when the link drops, on the site broker as the bridge's Will (a crash or a
        # cut) or before a clean stop
        "notifications true",
        "notifications_local_only false",
        f"notification_topic {bridge_state_topic(cfg.root, cfg.stations)}",
        # As the listener: Mosquitto 2.0.11 loses a unit of the QoS 1 window per queued QoS 0
        # message (docs/reliability.md); the bridge is one more client of the site broker.
        "max_inflight_messages 0",
    ]
    if cfg.ca_file is not None:
        lines += [f"bridge_cafile {cfg.ca_file}", "bridge_insecure false",
                  "bridge_tls_version tlsv1.2"]
    lines += [f"topic {f} {way} {BRIDGE_QOS}"
              for f, way in bridge_topics(cfg.root, cfg.stations, cfg.site)]
    return "\n".join(lines) + "\n"


def render_site_acl(username: str, root: str, stations: list[str], site: str | None) -> str:
    """The bridge user's ACL block for the site broker: it writes what goes out and reads
    what comes in, for its own stations only."""
    lines = [f"# bridge of {', '.join(stations)} (`voltbus bridge`)",
             f"user {_one_line('VOLTBUS_BRIDGE_USERNAME', username)}"]
    access = {"in": "read", "out": "write", "both": "readwrite"}
    lines += [f"topic {access[way]} {f}" for f, way in bridge_topics(root, stations, site)]
    # its link state (the bridge's notifications, its Will included; refused, Mosquitto 2.0.11
    # still connects the bridge but drops them, and the energy manager misses its drops)
    lines.append(f"topic write {bridge_state_topic(root, stations)}")
    return "\n".join(lines) + "\n"


# --- the site broker's side: one file per bridged Pi, read by mosquitto/init_broker.py ---------

_BRIDGE_USER = re.compile(r"^bridge-[A-Za-z0-9_.-]{1,40}$")
_HASH = re.compile(r"^\$7\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$")
_STATION = re.compile(r"^[^/+#, ]{1,48}$")


@dataclass(frozen=True)
class SiteBridgeUser:
    """What the site broker needs of one Pi's bridge: its user, the password's hash only (the
    site never holds the plain password) and the stations it speaks for. The ACL is made from
    these on every broker start, so a contract change reaches it and the file cannot grant more
    than its own stations' topics."""

    username: str
    password_hash: str
    stations: list[str]
    site: str | None

    def to_json(self) -> str:
        """The file `voltbus bridge --site-file` writes."""
        return json.dumps({"username": self.username, "password_hash": self.password_hash,
                           "stations": self.stations, "site": self.site}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> SiteBridgeUser:
        """Parse and check a site file; BridgeConfigError says what is wrong."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise BridgeConfigError(f"not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise BridgeConfigError("not a JSON object")
        user, digest = data.get("username"), data.get("password_hash")
        stations, site = data.get("stations"), data.get("site")
        if not isinstance(user, str) or not _BRIDGE_USER.match(user):
            raise BridgeConfigError("username must be bridge-<name> (letters, digits, _ . -)")
        if not isinstance(digest, str) or not _HASH.match(digest):
            raise BridgeConfigError("password_hash is not a Mosquitto $7$ hash")
        if (not isinstance(stations, list) or not stations
                or not all(isinstance(s, str) and _STATION.match(s) for s in stations)):
            raise BridgeConfigError("stations must be a list of station ids (no / + # , space)")
        if site is not None and (not isinstance(site, str) or not _STATION.match(site)):
            raise BridgeConfigError("site must be a site id (no / + # space) or null")
        return cls(user, digest, list(stations), site)


def check_username(username: str) -> str:
    """A bridge user is named bridge-<name>: it can never be taken for a voltbus service."""
    if not _BRIDGE_USER.match(username):
        raise BridgeConfigError(f"bridge username {username!r} must be bridge-<name> "
                                "(letters, digits, _ . -; at most 47 characters)")
    return username


def site_users(files: list[Path], root: str) -> tuple[list[str], str, list[str]]:
    """(password file lines, ACL text, problems) for the site broker from the bridge files.

    A bad file, or one claiming a station another bridge already has, is left out and named
    in problems: that bridge stays down, the broker and every other client go on."""
    entries: list[str] = []
    acl: list[str] = []
    problems: list[str] = []
    owner: dict[str, str] = {}
    for path in sorted(files):
        try:
            user = SiteBridgeUser.from_json(path.read_text())
        except (OSError, UnicodeDecodeError, BridgeConfigError) as exc:
            problems.append(f"{path.name}: {exc}")
            continue
        taken = [s for s in user.stations if s in owner]
        if user.username in owner.values() or taken:
            problems.append(f"{path.name}: {user.username} or stations {taken} already bridged "
                            "by another file")
            continue
        owner.update({s: user.username for s in user.stations})
        entries.append(f"{user.username}:{user.password_hash}")
        acl.append(render_site_acl(user.username, root, user.stations, user.site))
    return entries, "\n".join(acl), problems
