"""Configuration key values, persisted; GetConfiguration and ChangeConfiguration semantics."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from voltbus_ocpp.protocol.v16.config_keys import KEYS, Key
from voltbus_ocpp.store import Store

log = logging.getLogger(__name__)


class ConfigStore:
    """Typed key values with the spec's defaults, stored in the station's database."""

    def __init__(self, store: Store | None, *, overrides: dict[str, str] | None = None,
                 time_scale: float = 1.0) -> None:
        self.store = store
        self.time_scale = time_scale
        self.values: dict[str, str] = {k.name: k.default for k in KEYS.values()}
        self.values.update(overrides or {})
        if store is not None:
            for key, value in store.db.execute("SELECT key, value FROM config"):
                if key in KEYS and not KEYS[key].readonly:
                    self.values[key] = value
        self.listeners: list[Callable[[str, str], None]] = []

    def get_str(self, key: str) -> str:
        """The value as text."""
        return self.values[key]

    def get_int(self, key: str) -> int:
        """An integer key."""
        return int(self.values[key])

    def get_seconds(self, key: str) -> float:
        """A duration key in seconds, times the time scale (tests run OCPP time faster)."""
        return int(self.values[key]) * self.time_scale

    def get_bool(self, key: str) -> bool:
        """A boolean key."""
        return self.values[key].lower() == "true"

    def get_list(self, key: str) -> list[str]:
        """A comma-separated list key."""
        return [i.strip() for i in self.values[key].split(",") if i.strip()]

    def change(self, key: str, value: str) -> str:
        """ChangeConfiguration: Accepted, Rejected, RebootRequired or NotSupported."""
        spec: Key | None = KEYS.get(key)
        if spec is None:
            return "NotSupported"
        if spec.readonly:
            return "Rejected"
        problem = spec.check(value) or self._check_list(key, value)
        if problem is not None:
            log.warning("ChangeConfiguration %s rejected: %s", key, problem)
            return "Rejected"
        if spec.name == "SecurityProfile" and int(value) < self.get_int("SecurityProfile"):
            return "Rejected"  # security whitepaper: the profile may only be raised
        if spec.kind.value == "boolean":
            value = value.lower()
        self.set(key, value)
        return "RebootRequired" if spec.reboot else "Accepted"

    def _check_list(self, key: str, value: str) -> str | None:
        """The limits a CSL value has beyond its items: <key>MaxLength, phase rotation ids."""
        items = [i.strip() for i in value.split(",") if i.strip()]
        limit_key = f"{key}MaxLength"
        if limit_key in self.values and len(items) > int(self.values[limit_key]):
            return f"{len(items)} items, {limit_key} is {self.values[limit_key]}"
        if key == "ConnectorPhaseRotation":
            ids = [int(i.split(".", 1)[0]) for i in items]
            if len(set(ids)) != len(ids):
                return "a connector is listed twice"
            connectors = self.get_int("NumberOfConnectors")
            if any(n > connectors for n in ids):
                return f"connector ids go from 0 (grid) to {connectors}"
        return None

    def set(self, key: str, value: str) -> None:
        """Store a value and tell the listeners."""
        self.values[key] = value
        if self.store is not None:
            self.store.db.execute("INSERT OR REPLACE INTO config VALUES (?, ?)", (key, value))
        for listener in self.listeners:
            listener(key, value)

    def listing(self, keys: Iterable[str] | None) -> tuple[list[dict[str, object]], list[str]]:
        """GetConfiguration: (known keys with readonly/value, unknown key names)."""
        wanted = list(keys) if keys else list(KEYS)
        known: list[dict[str, object]] = []
        unknown: list[str] = []
        for name in wanted:
            spec = KEYS.get(name)
            if spec is None:
                unknown.append(name)
                continue
            entry: dict[str, object] = {"key": name, "readonly": spec.readonly}
            if not spec.secret:
                entry["value"] = self.values[name]
            known.append(entry)
        return known, unknown
