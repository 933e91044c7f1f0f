import errno
import json
import socket
import urllib.request

import optuna
import pytest

from study.results import server

from ..helpers import one_error_line
from ..workers import serve_dashboard

STORAGE = "sqlite:///dash.db"


@pytest.fixture
def dashboard(in_tmp):
    """`catdog-study dashboard` on a study made here; yields its base URL."""
    study = optuna.create_study(storage=STORAGE, study_name="shown-study")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    with serve_dashboard(in_tmp, STORAGE, "--artifact-dir", "artifacts") as url:
        yield url


def test_dashboard_answers_on_loopback_with_the_study(dashboard, in_tmp):
    with urllib.request.urlopen(dashboard + "/api/studies", timeout=10) as response:
        studies = json.load(response)["study_summaries"]
    assert [s["study_name"] for s in studies] == ["shown-study"]
    log = (in_tmp / "dashboard.log").read_text()
    assert f"optuna-dashboard for {STORAGE} on {dashboard}/" in log
    # No artifact folder: it is served without one, says so, and does not create it.
    assert "warning: no artifact folder artifacts: the dashboard shows no checkpoints" in log
    assert not (in_tmp / "artifacts").exists()


@pytest.fixture
def study_here(in_tmp):
    optuna.create_study(storage=STORAGE, study_name="shown-study")
    return in_tmp


def _one_error_line(result) -> str:
    error = one_error_line(result)
    # Nothing as if it had started: neither our line nor bottle's, nor the no-login warning.
    assert "optuna-dashboard for" not in result.output
    assert "Listening" not in result.output and "no login" not in result.output
    return error


def test_a_port_in_use_is_one_error_line(run_cli, study_here):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("dashboard", "--port", port, "--storage", STORAGE)
    assert _one_error_line(result) == (
        f"Error: cannot listen on 127.0.0.1:{port}: the port is already in use (another "
        "dashboard?); stop that, or choose another --port"
    )


def test_an_unknown_host_is_one_error_line(run_cli, study_here):
    result = run_cli("dashboard", "--host", "no-such-host.invalid", "--storage", STORAGE)
    assert _one_error_line(result) == (
        "Error: cannot listen on 'no-such-host.invalid': no such host; give --host an address "
        "of this machine, e.g. 127.0.0.1"
    )


def test_an_address_of_another_machine_is_one_error_line(run_cli, study_here):
    # 192.0.2.0/24 is TEST-NET-1 (RFC 5737): documentation only, never a local address.
    result = run_cli("dashboard", "--host", "192.0.2.7", "--port", 8080, "--storage", STORAGE)
    assert "192.0.2.7 is not an address of this machine" in _one_error_line(result)


def _anyone_may_listen_on(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except PermissionError:
            return False
        except OSError:  # in use: permitted, but that is not what the test is about
            return True
    return True


@pytest.mark.skipif(
    _anyone_may_listen_on(80),
    reason="this user may listen on port 80 here (root, or a low "
    "net.ipv4.ip_unprivileged_port_start)",
)
def test_a_port_this_user_may_not_use_is_one_error_line(run_cli, study_here):
    result = run_cli("dashboard", "--port", 80, "--storage", STORAGE)
    assert _one_error_line(result) == (
        "Error: cannot listen on 127.0.0.1:80: not permitted (ports below 1024 need root); "
        "choose another --port, e.g. 8080"
    )


@pytest.mark.parametrize(
    ("code", "port", "problem"),
    [
        (
            errno.EACCES,
            80,
            "not permitted (ports below 1024 need root); choose another --port, e.g. 8080",
        ),
        (errno.EPERM, 8080, "not permitted; choose another --port, e.g. 8080"),
        (
            errno.EADDRINUSE,
            8080,
            "the port is already in use (another dashboard?); stop that, or choose another --port",
        ),
        (
            errno.EADDRNOTAVAIL,
            8080,
            "127.0.0.1 is not an address of this machine; give --host one that is, e.g. 127.0.0.1",
        ),
        (errno.EAFNOSUPPORT, 8080, "the reason"),  # anything else: the system's reason
    ],
)
def test_every_bind_failure_is_a_one_line_error(monkeypatch, code, port, problem):
    def refuse(*args, **kwargs):
        raise OSError(code, "the reason")

    monkeypatch.setattr(server, "make_server", refuse)
    said = []
    with pytest.raises(server.DashboardServerError) as raised:
        server.serve(None, host="127.0.0.1", port=port, on_listening=said.append)
    assert str(raised.value) == f"cannot listen on 127.0.0.1:{port}: {problem}"
    assert said == []  # never told it was listening


def test_it_says_where_it_listens_only_once_bound_and_stops_on_ctrl_c(monkeypatch):
    said = []

    def interrupted(self, *args, **kwargs):
        said.append("served")
        raise KeyboardInterrupt

    monkeypatch.setattr(server.WSGIServer, "serve_forever", interrupted)
    server.serve(None, host="127.0.0.1", port=0, on_listening=said.append)
    assert len(said) == 2 and said[0].startswith("http://127.0.0.1:") and said[1] == "served"
    assert int(said[0].rsplit(":", 1)[1]) > 0  # the bound port, not the one asked for
    assert server.base_url("::1", 8080) == "http://[::1]:8080"
