"""The background worker: fires due timers (warnings, overdue marks, escalations) and delivers the outbox."""

from minsheng.worker.run import EmbeddedWorker, RunStats, run_loop, run_once

__all__ = ["EmbeddedWorker", "RunStats", "run_loop", "run_once"]
