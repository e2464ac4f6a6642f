"""voltbus energy manager: site fuse guard, PV surplus and tariff-aware charge modes."""
