"""The loopback receivers of the notify delivery tests, reused by the worker's delivery tests."""

from tests.integration.notify.test_notify_delivery import http_receiver, smtp_receiver

__all__ = ["http_receiver", "smtp_receiver"]
