"""`orca-platform:monitoring`: who is told when a clinic's server, backups or volume need a person, and when.

The rules themselves are data in orca_platform/monitoring/alerts.py; this is only what a stack may tune.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from .fields import Strict

DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")  # PromQL day_of_week(): 0 is Sunday
Day = Literal["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
WORKING_DAYS: tuple[Day, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
CLOCK = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
RECEIVER_NAME = r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,59}$"
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")


class EmailReceiver(Strict):
    name: Annotated[str, Field(pattern=RECEIVER_NAME)]
    address: str

    @field_validator("address")
    @classmethod
    def _email(cls, value: str) -> str:
        if not EMAIL.fullmatch(value):
            raise ValueError("must be an email address such as orca-ops@example.jp")
        return value


class WebhookReceiver(Strict):
    """An HTTPS endpoint (an on-call tool, a chat bridge). A URL that carries a token is a secret: see the README."""

    name: Annotated[str, Field(pattern=RECEIVER_NAME)]
    url: Annotated[str, Field(pattern=r"^https://[^\s]+$")]


class ActionGroup(Strict):
    # Azure shows it in SMS and emails; at most 12 characters.
    short_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,12}$")]
    emails: list[EmailReceiver] = Field(default_factory=list)
    webhooks: list[WebhookReceiver] = Field(default_factory=list)

    @model_validator(mode="after")
    def _someone(self) -> ActionGroup:
        if not self.emails and not self.webhooks:
            raise ValueError("list at least one of emails or webhooks: an alert nobody receives is not an alert")
        names = [r.name for r in self.emails] + [r.name for r in self.webhooks]
        if len(names) != len(set(names)):
            raise ValueError("receiver names must be unique across emails and webhooks")
        return self


class OpeningHours(Strict):
    """When a clinic's server being down is an emergency (the clinics' local time)."""

    days: Annotated[list[Day], Field(min_length=1)] = Field(default_factory=lambda: list(WORKING_DAYS))
    start: Annotated[str, Field(pattern=CLOCK)] = "08:00"
    end: Annotated[str, Field(pattern=CLOCK)] = "20:00"
    # Prometheus evaluates in UTC and PromQL has no time zones: the rules add this offset themselves.
    utc_offset: Annotated[str, Field(pattern=r"^[+-](0[0-9]|1[0-4]):[0-5][0-9]$")] = "+09:00"

    @model_validator(mode="after")
    def _order(self) -> OpeningHours:
        if self.start >= self.end:
            raise ValueError("start must be before end (opening hours that cross midnight are not modelled)")
        if len(set(self.days)) != len(self.days):
            raise ValueError("days must not repeat")
        return self

    @property
    def offset_seconds(self) -> int:
        sign = -1 if self.utc_offset.startswith("-") else 1
        hours, minutes = self.utc_offset[1:].split(":")
        return sign * (int(hours) * 3600 + int(minutes) * 60)

    @staticmethod
    def minute_of_day(clock: str) -> int:
        hours, minutes = clock.split(":")
        return int(hours) * 60 + int(minutes)


class Monitoring(Strict):
    action_group: ActionGroup
    opening_hours: OpeningHours = OpeningHours()
    # How long a clinic's server may be not ready, inside opening hours, before someone is paged.
    server_down_minutes: Annotated[int, Field(ge=1, le=120)] = 5
    # A dump or snapshot is overdue once its schedule's longest gap plus this has passed without a success.
    backup_slack_minutes: Annotated[int, Field(ge=15, le=1440)] = 120
    volume_full_percent: Annotated[int, Field(ge=50, le=99)] = 80
    # Share of a clinic's requests through the ingress answered 5xx, over 10 minutes.
    ingress_error_percent: Annotated[float, Field(gt=0, le=100)] = 5.0
