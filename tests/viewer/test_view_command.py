"""`medtrinity view`: the line it prints, and one clear line for a folder that is no build or a busy port."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request

import pytest


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "medtrinity.cli", *args], capture_output=True, text=True, timeout=60, check=False
    )


def one_line_error(result: subprocess.CompletedProcess, *expected: str) -> None:
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medtrinity: error: "), result.stderr
    for text in expected:
        assert text in lines[0]


def test_folder_that_is_not_a_build(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    one_line_error(run("view", str(tmp_path)), "is not a build", "manifest.json")
    one_line_error(run("view", str(tmp_path / "missing")), "does not exist")
    one_line_error(run("report", str(tmp_path)), "is not a build")


def test_busy_port(large_build):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        one_line_error(run("view", str(large_build), "--port", str(port)), f"port {port} on 127.0.0.1 is in use")


def test_says_where_it_listens_and_serves(large_build):
    process = subprocess.Popen(
        [sys.executable, "-m", "medtrinity.cli", "view", str(large_build), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert "(read-only)" in line and "listening on 127.0.0.1, this machine only" in line
        url = line.split(" at ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "api/records?size=1", timeout=30) as response:
            assert response.status == 200
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize("port", ["-1", "70000"])
def test_port_out_of_range(large_build, port):
    one_line_error(run("view", str(large_build), "--port", port), "--port must be between 0 and 65535")
