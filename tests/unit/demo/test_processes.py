"""Child processes of the demo: readiness, their own logs and environment, a clean stop with no orphans."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from dualbus.demo.errors import DemoError
from dualbus.demo.guardian import DONE, guard
from dualbus.demo.processes import ProcessGroup

PY = sys.executable
IGNORES_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
    " print('ready', flush=True); time.sleep(60)"
)
SPAWNS_GRANDCHILD = (
    "import subprocess, sys, time;"
    " child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
    " print('grandchild', child.pid, flush=True); time.sleep(60)"
)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_wait_for_reads_the_childs_log(tmp_path: Path) -> None:
    """A child is ready once its log shows the pattern, and the log file is named after it."""
    group = ProcessGroup(tmp_path / "logs")
    try:
        child = group.start("echo", [PY, "-c", "print('Endpoint=sb://127.0.0.1:1', flush=True)"], {})
        found = child.wait_for(r"^(Endpoint=\S+)$", timeout=30)
        assert found.group(1) == "Endpoint=sb://127.0.0.1:1"
        assert (tmp_path / "logs" / "echo.log").exists()
    finally:
        group.stop_all(grace=1)


def test_a_child_that_exits_before_ready_is_an_error(tmp_path: Path) -> None:
    """Waiting for a child that died raises DemoError naming its exit code and its log."""
    group = ProcessGroup(tmp_path)
    try:
        child = group.start("broken", [PY, "-c", "raise SystemExit(3)"], {})
        with pytest.raises(DemoError, match="exited with code 3"):
            child.wait_for("never", timeout=30)
    finally:
        group.stop_all(grace=1)


def test_children_get_exactly_the_given_environment(tmp_path: Path) -> None:
    """A child sees the variables it was given and none of the parent's."""
    group = ProcessGroup(tmp_path)
    script = "import os; print(sorted(k for k in os.environ if k.startswith('DEMO_')), flush=True)"
    try:
        child = group.start("env", [PY, "-c", script], {"DEMO_ONE": "1"})
        assert child.wait(timeout=30) == 0
        assert "['DEMO_ONE']" in child.log_text()
    finally:
        group.stop_all(grace=1)


def test_stop_all_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    """A child that ignores SIGTERM is killed once the grace period is over."""
    group = ProcessGroup(tmp_path)
    child = group.start("stubborn", [PY, "-c", IGNORES_SIGTERM], {})
    child.wait_for("ready", timeout=30)
    started = time.monotonic()
    codes = group.stop_all(grace=1.0)
    assert codes["stubborn"] == -signal.SIGKILL
    assert 1.0 <= time.monotonic() - started < 10
    assert _gone(child.pid)


def test_stop_all_leaves_no_grandchild(tmp_path: Path) -> None:
    """What a child started itself is stopped with it: the signal goes to its whole process group."""
    group = ProcessGroup(tmp_path)
    child = group.start("parent", [PY, "-c", SPAWNS_GRANDCHILD], {})
    grandchild = int(child.wait_for(r"grandchild (\d+)", timeout=30).group(1))
    codes = group.stop_all(grace=5.0)
    assert codes["parent"] == -signal.SIGTERM
    deadline = time.monotonic() + 5
    while not _gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(grandchild)


def test_stopping_twice_is_harmless(tmp_path: Path) -> None:
    """Stopping a group whose children already exited reports their exit codes again."""
    group = ProcessGroup(tmp_path)
    child = group.start("quick", [PY, "-c", "pass"], {})
    child.wait(timeout=30)
    assert group.stop_all(grace=1) == {"quick": 0}
    assert group.stop_all(grace=1) == {"quick": 0}


def test_later_stages_stop_first(tmp_path: Path) -> None:
    """Clients (a later stage) get SIGTERM and exit before the services they use are signalled."""
    script = (
        "import signal, sys, time\n"
        "def on_term(*_):\n"
        "    print('stopped', time.monotonic(), flush=True); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, on_term); print('ready', flush=True); time.sleep(60)\n"
    )
    group = ProcessGroup(tmp_path)
    service = group.start("service", [PY, "-c", script], {}, stage=0)
    client = group.start("client", [PY, "-c", script], {}, stage=1)
    service.wait_for("ready", timeout=30)
    client.wait_for("ready", timeout=30)
    assert group.stop_all(grace=5) == {"service": 0, "client": 0}
    stopped = {
        child.name: float(child.wait_for(r"stopped (\S+)", timeout=5).group(1)) for child in (service, client)
    }
    assert stopped["client"] < stopped["service"]


def _wait_gone(pids: list[int], within: float) -> bool:
    deadline = time.monotonic() + within
    while not all(_gone(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


DEMO_THAT_DIES = """
import sys, time
from pathlib import Path
from dualbus.demo.processes import ProcessGroup
group = ProcessGroup(Path(sys.argv[1]))
done = group.start("done", [sys.executable, "-c", "pass"], {})
done.wait(timeout=30)
group.exited()  # its group is gone: the guardian forgets it
child = group.start("child", [sys.executable, "-c", sys.argv[2]], {})
grandchild = child.wait_for(r"grandchild (\\d+)", timeout=30).group(1)
print(done.pid, child.pid, grandchild, flush=True)
time.sleep(60)
"""


def test_children_are_stopped_when_the_demo_is_killed_outright(tmp_path: Path) -> None:
    """SIGKILL gives the demo no chance to stop its children: its guardian stops them, grandchildren too, and
    leaves alone the group of a child that had finished (its number could belong to someone else by then)."""
    demo = subprocess.Popen(  # noqa: S603 - this interpreter running the test's own script
        [PY, "-c", DEMO_THAT_DIES, str(tmp_path), SPAWNS_GRANDCHILD], stdout=subprocess.PIPE, text=True
    )
    pids: list[int] = []
    try:
        assert demo.stdout is not None
        pids = [int(pid) for pid in demo.stdout.readline().split()]
        finished, child, grandchild = pids
        assert not _gone(child)
        assert not _gone(grandchild)
        demo.send_signal(signal.SIGKILL)
        demo.wait(timeout=10)
        assert _wait_gone([child, grandchild], within=20)
        told = (tmp_path / "guardian.log").read_text()
        assert f"stopping process groups [{child}]" in told
        assert str(finished) not in told
    finally:
        demo.kill()
        demo.wait()
        if demo.stdout is not None:
            demo.stdout.close()
        for pid in pids[1:]:
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()


def test_a_demo_that_stops_its_children_lets_its_guardian_go(tmp_path: Path) -> None:
    """One guardian per group, started with its first child; told that all is done, it stops nothing."""
    group = ProcessGroup(tmp_path)
    child = group.start("once", [PY, "-c", "print('ran', flush=True)"], {})
    child.wait(timeout=30)
    guardians = [p for p in psutil.Process().children() if "guardian.py" in " ".join(p.cmdline())]
    assert len(guardians) == 1
    group.stop_all(grace=1)
    assert not guardians[0].is_running()  # stop_all waited for it
    assert (tmp_path / "guardian.log").read_text() == "the demo stopped its children itself; nothing to do\n"


def test_the_guardian_stops_the_groups_it_was_told_of_unless_told_all_is_done() -> None:
    """End of input without "done" stops every group still named; "done" stops none; "-" forgets one; no
    group number of 1 or less is ever taken."""
    sleepers = [
        subprocess.Popen([PY, "-c", "import time; time.sleep(60)"], start_new_session=True)  # noqa: S603
        for _ in range(3)
    ]
    kept, forgotten, stopped = sleepers
    try:
        assert guard([f"+{kept.pid}\n", DONE]) == set()
        named = [f"+{forgotten.pid}\n", f"+{stopped.pid}\n", f"-{forgotten.pid}\n", "+1\n", "+0\n"]
        # The stopped sleeper stays this test's zombie until reaped, so it looks alive for the whole grace.
        assert guard(named, grace=0.5) == {stopped.pid}
        assert stopped.wait(timeout=10) == -signal.SIGTERM
        assert kept.poll() is None
        assert forgotten.poll() is None
    finally:
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.wait()
