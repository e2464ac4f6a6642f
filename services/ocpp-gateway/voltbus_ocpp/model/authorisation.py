"""Who may charge: the local authorisation list, the authorisation cache and the offline policy.

OCPP 1.6 section 3.5 (2.0.1 C12-C15 say the same): with local pre-authorisation an accepted tag
from the list or cache starts at once; offline, known accepted tags may charge when allowed, and
unknown ones when that is allowed too. The local list wins over the cache (1.6 3.5.3).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from voltbus_ocpp.model.config import ChargePointConfig
from voltbus_ocpp.model.results import AuthStatus
from voltbus_ocpp.model.tokens import IdToken


@dataclass(frozen=True)
class AuthEntry:
    """What is known about an id token, as kept in the local list or cache."""

    status: AuthStatus
    expiry: datetime | None = None
    parent_id_tag: str | None = None

    def valid(self, now: datetime) -> bool:
        """Accepted and not expired."""
        return self.status is AuthStatus.ACCEPTED and (self.expiry is None or self.expiry > now)


class Decision(Enum):
    """What to do with a presented idTag."""

    ACCEPT = "accept"
    REJECT = "reject"
    ASK = "ask"  # send Authorize to the central system


class Authoriser:
    """Decides locally when it may, and learns from the central system's answers. Entries are
    per id token, value and type (2.0.1 C13/C14: a Central token and a card with the same
    characters are different entries)."""

    def __init__(self, config: ChargePointConfig, *, local_list: MutableMapping[IdToken, AuthEntry],
                 cache: MutableMapping[IdToken, AuthEntry]) -> None:
        self.config = config
        self.local_list = local_list
        self.cache = cache

    def known(self, id_tag: IdToken) -> AuthEntry | None:
        """The local list's entry, else the cache's (when each is enabled)."""
        if self.config.local_list_enabled and id_tag in self.local_list:
            return self.local_list[id_tag]
        if self.config.auth_cache_enabled and id_tag in self.cache:
            return self.cache[id_tag]
        return None

    def decide(self, id_tag: IdToken, *, online: bool, now: datetime) -> Decision:
        """Accept or reject locally, or ask the central system."""
        entry = self.known(id_tag)
        if online:
            if entry is not None and entry.valid(now) and self.config.local_pre_authorize:
                return Decision.ACCEPT
            return Decision.ASK
        return self.offline(id_tag, now)

    def offline(self, id_tag: IdToken, now: datetime) -> Decision:
        """The decision when the central system cannot be asked."""
        entry = self.known(id_tag)
        if entry is not None:
            if entry.valid(now) and self.config.local_authorize_offline:
                return Decision.ACCEPT
            return Decision.REJECT
        if self.config.offline_tx_for_unknown_id:
            return Decision.ACCEPT
        return Decision.REJECT

    def learn(self, id_tag: IdToken, entry: AuthEntry) -> None:
        """Cache the central system's answer (not for tags on the local list, 1.6 3.5.3)."""
        if not self.config.auth_cache_enabled or id_tag.free:
            return
        if self.config.local_list_enabled and id_tag in self.local_list:
            return
        self.cache[id_tag] = entry
