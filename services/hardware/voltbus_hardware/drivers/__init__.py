"""Device drivers: one small module per device family, behind the protocols in base.py."""
