"""OCPP 1.6J: the protocol adapter (session), handlers, requests and pure conversions."""
