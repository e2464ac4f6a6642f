"""voltbus."""

import ocpp.messages

# Validate OCPP frames inline, not in the default thread pool: a frame of a few hundred bytes
# validates faster than the hop to a worker thread and back (the hop, and the GIL handover it
# causes, was most of a round trip's cost at scale: bench/bench_scale.py). Schema validation
# itself stays on for every frame in and out.
ocpp.messages.ASYNC_VALIDATION = False
