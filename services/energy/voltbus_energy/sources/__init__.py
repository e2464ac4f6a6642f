"""Grid-meter and PV sources: each behind the `Source` interface, each with a simulator."""
