"""Docker's size and duration wording (go-units), including its odd corners."""

from __future__ import annotations

import pytest

from slimage.units import human_duration, human_size, parse_rfc3339, rfc3339_local


@pytest.mark.parametrize(
    "size, text",
    [
        (0, "0B"),
        (362, "362B"),
        (999, "999B"),
        (1000, "1kB"),
        (1234, "1.23kB"),
        (219_597, "220kB"),  # docker history of the vanilla image's COPY layer
        (5_843_777, "5.84MB"),
        (198_900_354, "199MB"),
        (562_600_000, "563MB"),
        (999_999, "1e+03kB"),  # Go's %.3g switches to an exponent here, and so does Docker
        (1_500_000_000_000, "1.5TB"),
    ],
)
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0.4, "Less than a second"),
        (1, "1 second"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (120, "2 minutes"),
        (3599, "59 minutes"),
        (3600, "About an hour"),
        (5399, "About an hour"),
        (5400, "2 hours"),  # hours round half up
        (47 * 3600, "47 hours"),
        (48 * 3600, "2 days"),
        (14 * 86400, "2 weeks"),
        (60 * 86400, "2 months"),
        (730 * 86400, "2 years"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_rfc3339_with_nanoseconds() -> None:
    ts = parse_rfc3339("2026-11-27T19:02:14.831442568Z")
    assert ts is not None and int(ts) == 1795806134
    assert parse_rfc3339("2026-11-27T20:02:14+01:00") == parse_rfc3339("2026-11-27T19:02:14Z")
    assert parse_rfc3339("not a time") is None and parse_rfc3339(None) is None
    assert rfc3339_local(1795806134).startswith("2026-11-27T")
