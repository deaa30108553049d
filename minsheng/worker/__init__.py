"""The background worker as a process of its own (`minsheng worker run`): fires due timers (warnings, overdue
marks, escalations), delivers the outbox and, with deferred triage, takes triage jobs. Many may run against one
PostgreSQL: timers and jobs are claimed with SKIP LOCKED, each processed once."""
