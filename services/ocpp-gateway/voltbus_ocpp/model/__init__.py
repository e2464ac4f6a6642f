"""The charge point's behaviour as pure Python: events in, effects out; no I/O, no ocpp import."""
