"""Explicit error hierarchy: every error the pipeline raises on purpose derives from one root."""

from __future__ import annotations


class DistillWatchError(Exception):
    """Root of every error DistillWatch raises deliberately."""


class ConfigError(DistillWatchError):
    """Settings are missing or inconsistent (a user mistake, reported without a traceback)."""


class InvalidEvent(DistillWatchError):
    """An input message violates the wire contract; it goes to the dead-letter topic.

    ``reason`` is a stable machine-readable code (e.g. ``missing_field``),
    ``field`` names the offending field when there is one.
    """

    __slots__ = ("reason", "field", "detail")

    def __init__(self, reason: str, field: str | None = None, detail: str = "") -> None:
        super().__init__(f"{reason}{':' + field if field else ''}{' ' + detail if detail else ''}")
        self.reason = reason
        self.field = field
        self.detail = detail


class QueryRefused(DistillWatchError):
    """An investigator query was refused (a write or several statements without permission)."""


class StoreUnavailable(DistillWatchError):
    """ClickHouse could not be reached; the caller retries with backoff."""
