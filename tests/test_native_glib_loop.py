"""The cffi GLib loop driver works on its own, without the Zoom SDK."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from appliance.drivers.zoom import mainloop
from appliance.drivers.zoom.mainloop import IdleCounter, Iteration, MainContext

try:
    mainloop.load_glib()
except mainloop.GLibUnavailable as exc:  # pragma: no cover - depends on the host
    pytest.skip(f"GLib is not installed: {exc}", allow_module_level=True)


@pytest.fixture
def context() -> Iterator[MainContext]:
    ctx = MainContext.new()
    yield ctx
    ctx.close()


def test_glib_is_bound_by_soname_once() -> None:
    path = mainloop.load_glib()
    assert "libglib-2.0.so" in path
    assert mainloop.load_glib() == path
    assert len(mainloop.mapped_glib_files()) == 1
    assert mainloop.glib_at_least(2, 40)


def test_iterate_with_time_limit_returns_after_it(context: MainContext) -> None:
    start = time.monotonic()
    result = context.iterate(0.2)
    elapsed = time.monotonic() - start
    assert result is Iteration.TIMED_OUT
    assert 0.15 <= elapsed < 2.0


def test_non_blocking_iterate_returns_at_once(context: MainContext) -> None:
    start = time.monotonic()
    assert context.iterate(0) is Iteration.IDLE
    assert time.monotonic() - start < 0.5
    assert not context.pending()


def test_idle_source_runs_on_the_context(context: MainContext) -> None:
    counter = IdleCounter()
    context.schedule_idle_bump(counter)
    context.schedule_idle_bump(counter)
    assert context.pending()
    deadline = time.monotonic() + 5
    while counter.value < 2 and time.monotonic() < deadline:
        context.iterate(0.5)
    assert counter.value == 2


def test_wakeup_from_another_thread_interrupts_a_blocking_iteration(
    context: MainContext,
) -> None:
    woke = threading.Event()

    def wake_soon() -> None:
        time.sleep(0.2)
        context.wakeup()
        woke.set()

    waker = threading.Thread(target=wake_soon)
    start = time.monotonic()
    waker.start()
    # No time limit: only the wakeup can end this iteration.
    result = context.iterate(None)
    elapsed = time.monotonic() - start
    waker.join(5)
    assert woke.is_set()
    assert result is Iteration.IDLE
    assert elapsed < 5


def test_wakeup_before_iterating_is_not_lost(context: MainContext) -> None:
    context.wakeup()
    start = time.monotonic()
    context.iterate(10)
    assert time.monotonic() - start < 5


def test_blocking_iteration_releases_the_gil(context: MainContext) -> None:
    ticks = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        context.iterate(0.3)
    finally:
        stop.set()
        spinner.join(5)
    assert ticks > 20


def test_closed_context_refuses_to_iterate() -> None:
    ctx = MainContext.new()
    ctx.close()
    ctx.close()
    ctx.wakeup()
    with pytest.raises(RuntimeError):
        ctx.iterate(0)


def test_default_context_is_shared_and_never_closed() -> None:
    ctx = MainContext.default()
    ctx.close()
    counter = IdleCounter()
    MainContext.default().schedule_idle_bump(counter)
    deadline = time.monotonic() + 5
    while counter.value < 1 and time.monotonic() < deadline:
        MainContext.default().iterate(0.5)
    assert counter.value == 1
