from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.annotations.timeparse import TimeFormatError, to_seconds, unit_from_header


@pytest.mark.parametrize(("cell", "seconds"), [
    (12.5, 12.5), (3, 3.0), ("12.5", 12.5), ("12,5", 12.5), (" 7 ", 7.0),
    ("01:23", 83.0), ("1:23.45", 83.45), ("01:23,5", 83.5), ("00:01:23.450", 83.45), ("1:00:00", 3600.0),
    (dt.time(0, 1, 23, 450000), 83.45), (dt.timedelta(minutes=1, seconds=2.5), 62.5),
    (dt.datetime(1899, 12, 30, 0, 0, 42), 42.0),
])
def test_accepted_forms(cell, seconds):
    assert to_seconds(cell) == pytest.approx(seconds)


def test_units_for_numbers():
    assert to_seconds(1500, unit="ms") == 1.5
    assert to_seconds(50, unit="frames", fps=25) == 2.0
    assert to_seconds("01:00", unit="ms") == 60.0  # a clock string is unambiguous whatever the unit
    with pytest.raises(TimeFormatError, match="annotation_fps"):
        to_seconds(50, unit="frames")


@pytest.mark.parametrize("cell", ["abc", "1:2:3:4", "", None, True, float("nan")])
def test_rejected_forms(cell):
    with pytest.raises(TimeFormatError):
        to_seconds(cell)


@pytest.mark.parametrize(("header", "unit"), [
    ("Début (ms)", "ms"), ("start_frame", "frames"), ("Durée (s)", "s"), ("Début", None), ("time images", "frames")])
def test_unit_from_header(header, unit):
    assert unit_from_header(header) == unit


@given(st.integers(min_value=0, max_value=10 * 3600 * 1000))
def test_clock_strings_round_trip_to_the_millisecond(ms):
    h, rest = divmod(ms, 3600 * 1000)
    m, rest = divmod(rest, 60 * 1000)
    s = rest / 1000
    assert to_seconds(f"{h:02d}:{m:02d}:{s:06.3f}") == pytest.approx(ms / 1000, abs=1e-9)
    assert to_seconds(f"{h * 60 + m}:{s:06.3f}".replace(".", ",")) == pytest.approx(ms / 1000, abs=1e-9)
