"""The pure rules of alerts, without a database: who wants which event, quiet hours, retries,
messages kept and shown in any language, the funnel picture."""

from __future__ import annotations

import datetime as dt
import struct
import zlib

from hypothesis import given
from hypothesis import strategies as st

from voronka.alerts.chart import funnel_png
from voronka.alerts.model import Event, QuietHours, parse_quiet, retry_delay, wants
from voronka.i18n import Message


def test_a_users_choice_wins_over_the_roles_and_the_roles_over_the_default() -> None:
    assert wants(Event.LEAD_ESCALATED, role="head", user_id=7, prefs={})
    assert not wants(Event.LEAD_ESCALATED, role="head", user_id=7, prefs={"role:head/lead_escalated": False})
    chosen = {"role:head/lead_escalated": False, "user:7/lead_escalated": True}
    assert wants(Event.LEAD_ESCALATED, role="head", user_id=7, prefs=chosen)
    assert not wants(Event.LEAD_ESCALATED, role="head", user_id=8, prefs=chosen)


def test_team_figures_never_go_to_a_manager_whatever_is_stored() -> None:
    assert not wants(Event.DIGEST_DAILY, role="manager", user_id=3, prefs={"user:3/digest_daily": True})
    assert not wants(Event.FINDING, role="viewer", user_id=3, prefs={"role:viewer/finding": True})
    assert wants(Event.TASK_OVERDUE, role="manager", user_id=3, prefs={})


def test_quiet_hours_across_midnight() -> None:
    quiet = parse_quiet("21:00", "09:00")
    assert quiet is not None
    assert quiet.holds(dt.datetime(2026, 3, 2, 22, 0))
    assert quiet.holds(dt.datetime(2026, 3, 3, 8, 59))
    assert not quiet.holds(dt.datetime(2026, 3, 3, 9, 0))
    assert quiet.release(dt.datetime(2026, 3, 2, 22, 0)) == dt.datetime(2026, 3, 3, 9, 0)
    assert quiet.release(dt.datetime(2026, 3, 3, 1, 0)) == dt.datetime(2026, 3, 3, 9, 0)
    assert parse_quiet(None, "09:00") is None


times = st.times().map(lambda t: t.replace(second=0, microsecond=0))


@given(start=times, end=times, moment=st.datetimes(dt.datetime(2020, 1, 1), dt.datetime(2030, 1, 1)))
def test_a_held_message_is_released_at_the_first_moment_quiet_hours_end(
    start: dt.time, end: dt.time, moment: dt.datetime
) -> None:
    if start == end:
        return
    quiet = QuietHours(start, end)
    release = quiet.release(moment)
    assert moment < release <= moment + dt.timedelta(days=1)
    assert not quiet.holds(release)
    assert release.time() == end


def test_retries_wait_longer_each_time_up_to_an_hour() -> None:
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert retry_delay(20) == dt.timedelta(hours=1)


def test_a_kept_message_reads_in_either_language() -> None:
    inner = Message("alerts.delivery", {"sent": 2, "held": 1, "retried": 0, "failed": 0})
    kept = Message.load(Message("alerts.pass", {"added": 3, "linked": 0, "delivery": inner}).dump())
    assert kept.render("en") == "3 new, 0 chats linked; 2 sent, 1 held for quiet hours, 0 to retry, 0 failed"
    assert kept.render("ru").startswith("новых 3, привязано чатов 0; отправлено 2")


def test_the_funnel_picture_is_a_png_with_a_bar_per_stage() -> None:
    png = funnel_png([100, 50, 10])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (480, 3 * 28 + 6)
    start = png.index(b"IDAT") + 4
    length = struct.unpack(">I", png[start - 8 : start - 4])[0]
    rows = zlib.decompress(png[start : start + length])
    stride = 1 + width * 3
    blue = bytes((79, 124, 255))

    def bar_length(row: int) -> int:
        pixels = rows[row * stride + 1 : (row + 1) * stride]
        return sum(pixels[i : i + 3] == blue for i in range(0, len(pixels), 3))

    assert [bar_length(6 + 28 * k) for k in range(3)] == [480, 240, 48]
