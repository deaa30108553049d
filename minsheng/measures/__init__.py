"""The measures of accountability (考核): what each rate, count and time means over a ticket's timeline.

Pure rules, like `triage` and `timelimits`: no database, no web. `catalogue` names every measure,
`periods` parses the periods they are reported over, `timeline` turns one ticket's timeline into the exact
counters it contributes to the daily facts, `values` turns summed counters into the measures' values and a
composite score. `minsheng.services.measures` keeps the facts in the database and answers the pages.
docs/METRICS.md gives every definition and its source.
"""
