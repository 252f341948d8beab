"""The detector signal vocabulary: what each signal means, how severe it is, which queue reviews it.

The one place the vocabulary lives. The flag schema, the priority formula, queue routing, the README
and the OpenAPI description all read it from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import models


class Signal(models.TextChoices):
    TEMPLATED_PROMPTS = "templated_prompts", "Templated prompts"
    ACCOUNT_CLUSTER = "account_cluster", "Coordinated account cluster"
    VOLUME_ANOMALY = "volume_anomaly", "Volume anomaly"
    CAPABILITY_SWEEP = "capability_sweep", "Capability sweep"
    REASONING_EXTRACTION = "reasoning_extraction", "Reasoning extraction"
    OUTPUT_HARVESTING = "output_harvesting", "Output harvesting"


class Queue(models.TextChoices):
    EXTRACTION = "extraction", "Model extraction"
    ACCOUNTS = "accounts", "Fake and coordinated accounts"
    VOLUME = "volume", "Volume and rate abuse"


@dataclass(frozen=True)
class SignalInfo:
    severity: float  # 0–1, used by the priority formula
    queue: Queue
    meaning: str


SIGNALS: dict[Signal, SignalInfo] = {
    Signal.REASONING_EXTRACTION: SignalInfo(
        1.0, Queue.EXTRACTION, "Prompts built to elicit step-by-step reasoning traces at scale."),
    Signal.OUTPUT_HARVESTING: SignalInfo(
        0.9, Queue.EXTRACTION, "Systematic collection of outputs across a task distribution."),
    Signal.CAPABILITY_SWEEP: SignalInfo(
        0.8, Queue.EXTRACTION, "Prompts that sweep a benchmark-like grid of capabilities."),
    Signal.TEMPLATED_PROMPTS: SignalInfo(
        0.7, Queue.EXTRACTION, "Many prompts filled from one template with varying slots."),
    Signal.ACCOUNT_CLUSTER: SignalInfo(
        0.6, Queue.ACCOUNTS, "The account belongs to a cluster of coordinated or fake accounts."),
    Signal.VOLUME_ANOMALY: SignalInfo(
        0.4, Queue.VOLUME, "Request volume far above the account's peers."),
}


def queue_for(signals: list[str]) -> Queue:
    """A case is reviewed in the queue of its most severe signal (the reference for worst_signal_sql, which
    grouping uses; tests hold the two equal)."""
    worst = max(signals, key=lambda slug: SIGNALS[Signal(slug)].severity)
    return SIGNALS[Signal(worst)].queue


def worst_signal_sql(signals: str, value: Callable[[SignalInfo], str]) -> str:
    """SQL for ``value(info)`` of the most severe of ``signals`` (a text[] expression), chosen as queue_for
    chooses (ties: the first slug in sorted order); NULL when a signal is outside the vocabulary. Built from the
    vocabulary itself, for grouping's case update: one CASE over its few signals, no subquery per case."""
    ranked = sorted(SIGNALS.items(), key=lambda item: (-item[1].severity, item[0].value))
    known = "{" + ",".join(signal.value for signal, _ in ranked) + "}"
    whens = " ".join(f"WHEN '{signal.value}' = ANY({signals}) THEN {value(info)}" for signal, info in ranked)
    return f"(CASE WHEN NOT {signals} <@ '{known}'::text[] THEN NULL {whens} END)"


def describe() -> str:
    """The vocabulary as Markdown, for the OpenAPI description."""
    return "\n".join(
        f"- `{signal.value}` (severity {info.severity:.1f}, queue `{info.queue.value}`): {info.meaning}"
        for signal, info in SIGNALS.items()
    )
