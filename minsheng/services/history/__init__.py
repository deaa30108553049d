"""A city's ticket history, imported (issue 16 §4): `minsheng import tickets FILE --mapping FILE`.

- `mapping`: the TOML mapping format (columns → ticket fields, values → our states, channels, ratings) and the
  ready-made mappings in ``mappings/`` (``message_board``, ``nyc311``).
- `reader`: streams the rows of a CSV or XLSX export.
- `rows`: one row → a `HistoricTicket` (pure), or a `RowError` with its reason.
- `org_lookup`: the unit and category a row names, found or created as the mapping says.
- `timeline`: the events the ticket engine would have written for the row's loop, at the historic times.
- `writer`: a batch in one transaction: claims (idempotency), tickets, assignments, events, measure facts.
- `importer`: `import_tickets(db, path, mapping, now, …) -> ImportResult`, and the row-level error report.

Imported tickets are ordinary tickets: the rates, rankings and exports count them, and closed ones with a
category are training data of the classifier (`services.triage.training.training_data`).
"""

from minsheng.services.history.importer import ImportResult, import_tickets, write_error_report
from minsheng.services.history.mapping import HistoryMapping, MappingError, builtin_mappings, load_mapping

__all__ = [
    "HistoryMapping",
    "ImportResult",
    "MappingError",
    "builtin_mappings",
    "import_tickets",
    "load_mapping",
    "write_error_report",
]
