"""OCPP 1.6J: handlers and pure conversions."""
