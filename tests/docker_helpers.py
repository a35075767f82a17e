"""The Dockerfile and .dockerignore as data, and the image's Python outside Docker.

The Dockerfile is parsed by the ``dockerfile`` package, which wraps BuildKit's
own parser (Docker's), so line continuations, exec-form JSON and flags are read
as ``docker build`` reads them.

`runtime_venv` re-creates the runtime stage's Python environment without
Docker: a clean virtual environment (no system site-packages) in which pip
installs the camactor wheel with ``--no-deps``, as the image does. The wheel's
runtime dependencies come from the test environment (``.venv``) to keep the
test fast and offline, but only those the wheel's ``Requires-Dist`` pulls in,
transitively: each of their installed files is linked into the new
environment, and ``pip check`` then proves that the wheel's requirements are
met. Test-only packages and camactor's editable install stay out.
"""

from __future__ import annotations

import dataclasses
import email
import importlib.metadata
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import dockerfile
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]

__all__ = [
    "ROOT",
    "Stage",
    "build_wheel",
    "context_files",
    "is_ignored",
    "read_dockerignore",
    "read_stages",
    "runtime_venv",
]


@dataclasses.dataclass(frozen=True)
class Stage:
    """One ``FROM`` stage of a Dockerfile."""

    base: str
    name: str | None
    commands: tuple[dockerfile.Command, ...]

    def all(self, instruction: str) -> list[dockerfile.Command]:
        """Every ``instruction`` of the stage, in order."""
        return [c for c in self.commands if c.cmd == instruction.upper()]

    def last(self, instruction: str) -> dockerfile.Command | None:
        """The ``instruction`` in force at the end of the stage, if any."""
        found = self.all(instruction)
        return found[-1] if found else None

    def index(self, command: dockerfile.Command) -> int:
        """Position of ``command`` in the stage."""
        return self.commands.index(command)

    def env(self) -> dict[str, str]:
        """The ``ENV`` variables of the stage (``ENV K=V ...``)."""
        values: dict[str, str] = {}
        for command in self.all("ENV"):
            pairs = command.value
            assert len(pairs) % 2 == 0, command.original
            values.update(zip(pairs[::2], pairs[1::2], strict=True))
        return values

    def exec_form(self, instruction: str) -> list[str]:
        """The argv of an exec-form (JSON array) instruction; fails otherwise."""
        command = self.last(instruction)
        assert command is not None, f"no {instruction} in the stage"
        assert command.json, f"{command.original!r} is not in exec (JSON) form"
        return list(command.value)

    def context_copies(self) -> list[tuple[list[str], str]]:
        """``(sources, destination)`` of the COPYs from the build context."""
        copies = []
        for command in self.all("COPY"):
            if any(flag.startswith("--from=") for flag in command.flags):
                continue
            *sources, destination = command.value
            copies.append((sources, destination))
        return copies

    def image_files(self) -> dict[str, Path]:
        """Files the stage copies from the context: image path -> source file."""
        files = {}
        for sources, destination in self.context_copies():
            if len(sources) == 1 and destination.startswith("/"):
                source = ROOT / sources[0]
                if source.is_file() and not destination.endswith("/"):
                    files[destination] = source
        return files


def read_stages(path: Path) -> list[Stage]:
    """The stages of a Dockerfile, parsed by BuildKit's parser."""
    stages: list[Stage] = []
    current: list[dockerfile.Command] = []
    for command in dockerfile.parse_file(str(path)):
        if command.cmd == "FROM":
            current = [command]
            words = command.value
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name, ()))
        else:
            current.append(command)
        assert stages, f"{path}: {command.original!r} before any FROM"
        stages[-1] = dataclasses.replace(stages[-1], commands=tuple(current))
    return stages


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match with ``**``) as a regex."""
    assert "[" not in pattern, f"character classes are not supported: {pattern}"
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def read_dockerignore(path: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """``(is_exception, regex)`` of each pattern of a .dockerignore, in order."""
    rules = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = str(PurePosixPath("/" + line.lstrip("!").strip()))[1:]
        rules.append((negated, _pattern_regex(pattern)))
    return rules


def is_ignored(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker leaves ``relative`` out of the build context.

    As Docker's pattern matcher: the last rule that matches the path or one of
    its parent directories decides.
    """
    parts = PurePosixPath(relative).parts
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for negated, regex in rules:
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            ignored = not negated
    return ignored


def context_files(
    root: Path, rules: list[tuple[bool, re.Pattern[str]]]
) -> Iterator[str]:
    """The files of the build context at ``root``, relative and POSIX."""
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and not is_ignored(relative, rules):
            yield relative


def build_wheel(stage: Stage, out: Path, work: Path) -> Path:
    """Builds the wheel as the build ``stage`` does, from what it copies.

    The stage's COPYs from the context (less what .dockerignore leaves out) are
    replayed into ``work``, so a source the Dockerfile forgets to copy breaks
    this build too. pip builds without build isolation, with the test
    environment's setuptools, so that no network is needed.
    """
    rules = read_dockerignore(ROOT / ".dockerignore")
    for sources, destination in stage.context_copies():
        target = work / destination
        for source in sources:
            path = ROOT / source
            if path.is_dir():
                for relative in context_files(path, []):
                    full = f"{source.rstrip('/')}/{relative}"
                    if not is_ignored(full, rules):
                        (target / relative).parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(path / relative, target / relative)
            else:
                assert not is_ignored(source, rules), f"{source} is dockerignored"
                dest = target / path.name if destination.endswith("/") else target
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest)
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    built = subprocess.run(
        [*pip, "-q", "--wheel-dir", str(out), str(work)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, f"the wheel does not build:\n{built.stderr}"
    wheels = list(out.glob("camactor-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def _requirements(metadata: email.message.Message | importlib.metadata.PackageMetadata):
    return [Requirement(text) for text in metadata.get_all("Requires-Dist") or []]


def _closure(wheel: Path) -> list[importlib.metadata.Distribution]:
    """The installed distributions the wheel's runtime requirements pull in."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(archive.read(name))
    pending = [(req, "") for req in _requirements(metadata)]
    found: dict[str, importlib.metadata.Distribution] = {}
    while pending:
        requirement, extra = pending.pop()
        marker = requirement.marker
        if marker is not None and not marker.evaluate({"extra": extra}):
            continue
        key = canonicalize_name(requirement.name)
        assert key != "camactor", "camactor must not depend on itself"
        try:
            distribution = importlib.metadata.distribution(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            raise AssertionError(
                f"{requirement} (a runtime requirement of {wheel.name}) is not "
                "installed in the test environment; run `make install`."
            ) from None
        extras = sorted(requirement.extras)
        if key not in found:
            found[key] = distribution
            extras = ["", *extras]
        for wanted in extras:
            pending += [(req, wanted) for req in _requirements(distribution.metadata)]
    return list(found.values())


def runtime_venv(wheel: Path, venv: Path) -> Path:
    """A clean environment with the wheel and its runtime closure only.

    Returns
    -------
    site_packages
        The environment's site-packages directory.
    """
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True
    )
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    installed = subprocess.run(
        [*pip, "install", "-q", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr
    site = Path(
        sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)})
    )
    assert site.is_dir(), site
    for distribution in _closure(wheel):
        assert distribution.files is not None, f"{distribution.name}: no RECORD"
        base = Path(distribution.locate_file(""))
        tops = {
            file.parts[0]
            for file in distribution.files
            if file.parts[0] != ".." and not file.parts[0].endswith(".pth")
        }
        for top in tops - {"__pycache__"}:
            if not (site / top).exists():
                (site / top).symlink_to(base / top)
    check = subprocess.run([*pip, "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    return site
