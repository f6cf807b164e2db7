"""Reporting's composition root: it reads every event topic and publishes nothing."""

from __future__ import annotations

from contracts.runtime import Service, Settings, serve
from contracts.topics import EVENT_TOPICS
from reporting.api import create_api
from reporting.store import ReportingStore


def build(settings: Settings) -> Service:
    store = ReportingStore(settings.database_url)
    return Service(settings=settings, app=store, api=create_api(store),
                   consumes_from=EVENT_TOPICS)


def cli() -> None:
    serve(build(Settings.from_env("reporting")))


if __name__ == "__main__":
    cli()
