"""Wake-ups: which queue a next hop's task goes to, coalescing, and broker failures that must not reach smtpd."""

import os
from datetime import timedelta

import pytest
from django.utils import timezone
from kombu.exceptions import OperationalError

from sendconn.connectors.models import TransportServer
from sendconn.connectors.servers import local_server, register_transport_server
from sendconn.transport import wakeups

pytestmark = pytest.mark.django_db


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    wakeups.forget()
    clock = Clock()
    monkeypatch.setattr(wakeups.time, "monotonic", clock)
    yield clock
    wakeups.forget()


@pytest.fixture(autouse=True)
def marks(monkeypatch, tmp_path):
    """This test's own pending marks (the filesystem broker's kind)."""
    marks = wakeups.FileMarks(tmp_path / "wakeups")
    monkeypatch.setattr(wakeups, "pending_marks", lambda: marks)
    return marks


@pytest.fixture
def sent(monkeypatch):
    """(args, options) of every deliver_next_hop task sent."""
    calls = []
    monkeypatch.setattr(wakeups, "publish_wake_up", lambda args, **options: calls.append((args, options)))
    return calls


@pytest.fixture
def internet(make_connector):
    return make_connector("To internet", ["*"])


def test_one_task_per_next_hop_on_its_source_servers_queue(internet, sent):
    wakeups.wake_next_hops(
        [(internet.pk, "fabrikam.test"), (internet.pk, "fabrikam.test"), (internet.pk, "tailspin.test")]
    )

    assert sent == [
        ((internet.pk, "fabrikam.test"), {"queue": "server.ex01"}),
        ((internet.pk, "tailspin.test"), {"queue": "server.ex01"}),
    ]


def test_wake_ups_within_the_window_ride_on_one_scheduled_wake_up(internet, sent, clock):
    hop = (internet.pk, "fabrikam.test")
    wakeups.wake_next_hops([hop])
    wakeups.task_started(*hop)  # the task runs at once (so the pending mark doesn't hold the next one back)
    clock.now += 0.1
    wakeups.wake_next_hops([hop])  # too soon: scheduled for the end of the window
    clock.now += 0.1
    wakeups.wake_next_hops([hop])  # the scheduled one will see this row too
    assert [options.get("countdown") for _, options in sent] == [None, pytest.approx(wakeups.COALESCE_SECONDS - 0.1)]

    wakeups.task_started(*hop)
    clock.now += 2 * wakeups.COALESCE_SECONDS  # past the window that followed the scheduled one
    wakeups.wake_next_hops([hop])
    assert len(sent) == 3 and "countdown" not in sent[-1][1]


def test_a_worker_handing_its_next_hop_on_is_not_held_back(internet, sent):
    hop = (internet.pk, "fabrikam.test")
    wakeups.wake_next_hops([hop])
    wakeups.task_started(*hop)  # the task that now hands its next hop on
    wakeups.wake_next_hops([hop], coalesce=False)

    assert [options for _, options in sent] == [{"queue": "server.ex01"}] * 2


def test_a_source_server_seen_recently_is_preferred(make_connector, sent):
    ex01 = local_server()
    ex02 = register_transport_server("EX02", "ex02.contoso.test", "Default-First-Site-Name")
    TransportServer.objects.filter(pk=ex01.pk).update(last_seen_at=timezone.now() - timedelta(hours=1))
    connector = make_connector("Both", ["*"], source_transport_servers=[ex01, ex02])

    wakeups.wake_next_hops([(connector.pk, "fabrikam.test")])

    assert sent[0][1]["queue"] == "server.ex02"


def test_a_broker_failure_is_logged_not_raised_and_the_next_wake_up_tries_again(internet, monkeypatch, caplog):
    def broker_down(args, **options):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(wakeups, "publish_wake_up", broker_down)
    wakeups.wake_next_hops([(internet.pk, "fabrikam.test")])
    assert "Can't send the wake-up for next hop fabrikam.test" in caplog.text

    calls = []
    monkeypatch.setattr(wakeups, "publish_wake_up", lambda args, **options: calls.append(options))
    wakeups.wake_next_hops([(internet.pk, "fabrikam.test")])
    assert calls == [{"queue": "server.ex01"}]  # not held back by the failed one


def test_a_connector_without_source_servers_wakes_nobody(internet, sent, caplog):
    internet.source_transport_servers.clear()

    wakeups.wake_next_hops([(internet.pk, "fabrikam.test")])

    assert sent == []
    assert "has no source server" in caplog.text


def test_a_queued_wake_up_that_has_not_started_makes_others_unneeded(internet, sent, clock):
    hop = (internet.pk, "fabrikam.test")
    wakeups.wake_next_hops([hop])
    wakeups.forget()  # as if another process (smtpd, a worker) asked: no coalescing state in common
    wakeups.wake_next_hops([hop])
    assert len(sent) == 1

    wakeups.task_started(*hop)  # the task clears the mark before it claims anything
    wakeups.wake_next_hops([hop])
    assert len(sent) == 2


def test_a_pending_mark_left_by_a_lost_wake_up_expires(internet, sent, marks):
    hop = (internet.pk, "fabrikam.test")
    assert marks.add(hop) and not marks.add(hop)
    wakeups.wake_next_hops([hop])
    assert sent == []

    path = next(marks.directory.iterdir())
    old = path.stat().st_mtime - wakeups.PENDING_MARK_SECONDS - 1
    os.utime(path, (old, old))
    wakeups.wake_next_hops([hop])
    assert len(sent) == 1


@pytest.mark.services
def test_redis_marks_are_shared_and_expire():
    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/7"
    try:
        redis.Redis.from_url(url).ping()
    except redis.ConnectionError as error:
        pytest.skip(f"Redis is not answering on loopback: {error}")
    first, second = wakeups.RedisMarks(url), wakeups.RedisMarks(url)
    hop = (99, "fabrikam.test")
    first.discard(hop)

    assert first.add(hop) and not second.add(hop)
    second.discard(hop)
    assert first.add(hop)
    assert 0 < first.client.ttl(wakeups._mark_name(hop)) <= wakeups.PENDING_MARK_SECONDS
    first.discard(hop)


def test_a_request_skipped_for_another_process_wake_up_does_not_hold_back_the_next(internet, sent, marks, clock):
    hop = (internet.pk, "fabrikam.test")
    wakeups.wake_next_hops([hop])
    clock.now += 0.1
    marks.add(hop)  # meanwhile another process queued one (our first one started and cleared the mark before)
    wakeups.wake_next_hops([hop])  # scheduled for the window's end, but that process's wake-up covers it
    assert len(sent) == 1

    wakeups.task_started(*hop)  # that wake-up's task starts, claims, and may finish before our next row
    clock.now += 0.1
    wakeups.wake_next_hops([hop])
    assert len(sent) == 2 and "countdown" not in sent[-1][1]


def test_an_engine_holding_a_mark_keeps_wake_ups_back_until_it_drops_it(internet, sent, marks):
    hop = (internet.pk, "fabrikam.test")
    marks.hold(hop)  # a delivery engine looks at this next hop on its own for now
    wakeups.wake_next_hops([hop])
    assert sent == []
    marks.hold(hop)  # renewed, even though it exists
    marks.discard(hop)
    wakeups.wake_next_hops([hop])
    assert len(sent) == 1
