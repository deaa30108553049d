"""Triage intelligence: category classifier, kind/urgency/transfer signals, jurisdiction, routing, repeats,
clusters (issue 3)."""
