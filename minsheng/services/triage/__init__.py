"""Triage at intake (issue 3): classify, locate, route, find repeats and clusters, and auto-dispatch when sure.

One module per part; import from the modules (this package exports nothing):

- `settings`: `TriageConfig`, the tunable settings, and their admin overrides (``triage_settings``).
- `adapters`: what triage asks of the text classifier and the signal detector.
- `snapshot`: `OrgSnapshot`, the areas, categories, units, gazetteer and routing table triage reads.
- `analysis`: `Analysis`, what triage found out about one request, and why it is or is not auto-dispatched.
- `recent`: the recent tickets in memory (repeat index and cluster detector).
- `runtime`: `TriageRuntime`, the live state of one process, and the engine's triage hook.
- `sync`: how the runtime reads the tickets other processes take (`catch_up`, intake's look).
- `clusters`: cluster warnings, stored once per cluster and noted on the member tickets.
- `routing_admin`: the routing table (CRUD, CSV/XLSX import), named places, corrections from returns.
- `training`: model directories and retraining from closed tickets; `status`: what admins see of it.
- `jobs`: deferred triage (``MINSHENG_TRIAGE_MODE=deferred``).
- `sql`: helpers shared by the modules above.
- the runtime is built and started by the composition root, `minsheng.bootstrap`.

docs/TRIAGE.md describes how they work together.
"""
