"""The model's version-neutral vocabulary: stored 1.6 spellings still read, 1.6 maps both ways."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from voltbus_ocpp.model.authorisation import AuthEntry
from voltbus_ocpp.model.results import AuthStatus, Outcome
from voltbus_ocpp.model.tokens import IdToken
from voltbus_ocpp.protocol.v16 import convert
from voltbus_ocpp.protocol.v16.config_store import ConfigStore
from voltbus_ocpp.store import AuthTable, Store


@pytest.mark.parametrize(("stored", "status"), [
    ("Accepted", AuthStatus.ACCEPTED), ("ConcurrentTx", AuthStatus.CONCURRENT_TX),
    ("Blocked", AuthStatus.BLOCKED), ("accepted", AuthStatus.ACCEPTED),
])
def test_cache_rows_written_in_the_16_spelling_still_read(stored: str,
                                                         status: AuthStatus) -> None:
    store = Store(":memory:")
    store.db.execute("INSERT INTO auth (kind, id_tag, status, expiry, parent) "
                     "VALUES ('cache', 'TAG', ?, NULL, 'P')", (stored,))
    assert AuthTable(store, "cache")[IdToken("TAG")] == AuthEntry(status, None, "P")


def test_cache_rows_are_written_in_the_neutral_spelling() -> None:
    store = Store(":memory:")
    expiry = datetime(2027, 1, 1, tzinfo=UTC)
    AuthTable(store, "list")[IdToken("TAG")] = AuthEntry(AuthStatus.CONCURRENT_TX, expiry)
    row = store.db.execute("SELECT status, expiry FROM auth").fetchone()
    assert row == ("concurrent_tx", expiry.isoformat())
    assert AuthTable(store, "list")[IdToken("TAG")].status is AuthStatus.CONCURRENT_TX


def test_every_neutral_answer_has_a_16_spelling() -> None:
    assert {convert.outcome(o) for o in Outcome} >= {"Accepted", "Rejected", "Scheduled",
                                                     "NotSupported", "Unlocked"}
    for status in AuthStatus:
        assert convert.auth_status(convert.AUTH_STATUSES[status]) is status
    assert AuthStatus.CONCURRENT_TX.label == "ConcurrentTx"


def test_16_keys_map_onto_the_typed_configuration() -> None:
    cfg = ConfigStore(None, overrides={"MeterValueSampleInterval": "20",
                                       "StopTransactionOnEVSideDisconnect": "false",
                                       "MeterValuesSampledData": "Voltage,Current.Import"},
                      time_scale=0.5)
    assert cfg.sample_interval_s == 10.0
    assert cfg.stop_on_ev_disconnect is False
    assert [m.value for m in cfg.sampled_measurands] == ["voltage_v", "current_import_a"]
    changed: list[str] = []
    cfg.on_change(changed.append)
    assert cfg.change("LightIntensity", "40") == "Accepted"
    assert (changed, cfg.light_intensity_pct) == (["light_intensity_pct"], 40)
