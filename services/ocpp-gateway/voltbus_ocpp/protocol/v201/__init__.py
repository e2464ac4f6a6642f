"""OCPP 2.0.1: the first functional blocks (boot, heartbeat, status, authorize, transactions)."""
