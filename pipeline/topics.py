"""The ``topics`` subcommand: create every topic the pipeline uses, with the right partitions."""

from __future__ import annotations

import argparse
from typing import Any

from pipeline.settings import Settings


def topic_plan(s: Settings) -> dict[str, tuple[int, dict[str, str]]]:
    """name -> (partitions, config). The changelog is compacted; summaries keep one total order."""
    n = s.kafka_partitions
    return {
        s.topic_requests: (n, {}),
        s.topic_deadletter: (n, {}),
        s.topic_alerts: (n, {}),
        s.topic_feedback: (n, {}),
        s.topic_aggregates: (n, {}),
        s.topic_scores: (n, {}),
        s.topic_summaries: (1, {}),
        s.topic_state: (n, {"cleanup.policy": "compact"}),
    }


def ensure_topics(s: Settings) -> list[str]:
    """Create the missing topics; return the names created. Existing topics are left alone."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(**s.kafka_client_kwargs())
    try:
        existing = set(admin.list_topics())
        created = []
        for name, (parts, config) in topic_plan(s).items():
            if name in existing:
                continue
            try:
                admin.create_topics([NewTopic(name, parts, 1, topic_configs=config)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()


def run(args: argparse.Namespace, settings: Settings) -> int:
    created = ensure_topics(settings)
    for name, (parts, _) in topic_plan(settings).items():
        print(f"{name:32} partitions={parts} {'created' if name in created else 'exists'}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("topics", help="create the Kafka topics (idempotent)")
    p.set_defaults(func=run)
