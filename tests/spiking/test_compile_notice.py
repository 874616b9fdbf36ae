"""The compile notice: said when building a network outlasts its delay, with how long it took; silent
otherwise. The notice's timer is real, so the tests wait on its state, never on a fixed sleep."""

from __future__ import annotations

import logging
import time

from neuromod.spiking._codegen import CompileNotice


def _wait_until(cond, timeout_s: float = 30.0) -> bool:
    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def test_notice_is_logged_after_its_delay_with_the_time(caplog, capsys) -> None:
    with caplog.at_level(logging.INFO, logger="neuromod.spiking"):
        notice = CompileNotice(
            "the test network", first_time="about a minute", cache="/c", echo=True, after_s=0.0
        )
        assert _wait_until(lambda: notice.shown)
        notice.done()
        notice.done()  # idempotent
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "brian2 is compiling the test network" in messages[0]
    assert "about a minute the first time" in messages[0] and "/c" in messages[0]
    assert messages[1].startswith("neuromod: compiled in ")
    assert capsys.readouterr().err == ""  # the logger shows it: not said twice


def test_notice_is_echoed_where_no_logger_shows_it(capsys) -> None:
    notice = CompileNotice(
        "the test network", first_time="about a minute", cache="/c", echo=True, after_s=0.0
    )
    assert _wait_until(lambda: notice.shown)
    notice.done()
    err = capsys.readouterr().err
    assert "brian2 is compiling the test network" in err and "neuromod: compiled in" in err


def test_notice_is_silent_when_the_build_is_quick(caplog, capsys) -> None:
    with caplog.at_level(logging.INFO, logger="neuromod.spiking"):
        notice = CompileNotice("the test network", first_time="x", cache="d", echo=True, after_s=60.0)
        notice.done()
    assert not notice.shown and caplog.records == []
    assert capsys.readouterr().err == ""
