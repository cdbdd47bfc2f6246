"""Installing the local stack's software: Java and Maven checks, Kafka's jars from Maven
Central, MariaDB from Debian's packages.

Everything is idempotent and cheap when already done, because ``sluice local up`` calls it
every time: the Kafka jars carry a stamp naming the hash of the pom they were resolved from, so
editing coordinator/local/pom.xml (a Kafka upgrade) resolves again and nothing else does.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

from coordinator.errors import SluiceError
from coordinator.local.procs import exclusive_lock

log = logging.getLogger(__name__)

POM = Path(__file__).with_name("pom.xml")
LOG4J2_CONFIG = Path(__file__).with_name("log4j2.yaml")
MIN_JAVA = 17  # Kafka 4 brokers need Java 17.
DEBIAN_JAVA_PACKAGES = ["openjdk-17-jre-headless", "maven"]
DEBIAN_MARIADB_PACKAGES = ["mariadb-server", "mariadb-client"]
# Debian installs the server binaries in sbin, which is not on a normal user's PATH.
_SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin"


def which(program: str) -> str | None:
    return shutil.which(program, path=f"{os.environ.get('PATH', '')}:{_SBIN_PATH}")


def kafka_libs_dir(cache_dir: Path) -> Path:
    return cache_dir / "kafka" / "libs"


def _pom_hash() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def _stamp(cache_dir: Path) -> Path:
    return cache_dir / "kafka" / "libs.stamp"


def kafka_jars_installed(cache_dir: Path) -> bool:
    stamp = _stamp(cache_dir)
    return stamp.is_file() and stamp.read_text().strip() == _pom_hash()


def mariadb_installed() -> bool:
    return which("mariadbd") is not None and which("mariadb-install-db") is not None


def is_installed(cache_dir: Path) -> bool:
    return kafka_jars_installed(cache_dir) and mariadb_installed() and which("java") is not None


def install(cache_dir: Path) -> None:
    """Make sure Java 17+, Maven, Kafka's jars and MariaDB are there; install what is not."""
    ensure_java_and_maven()
    resolve_kafka_jars(cache_dir)
    ensure_mariadb()


def java_major_version(version_output: str) -> int | None:
    """The major version in ``java -version`` output: '17.0.15' -> 17, '1.8.0_392' -> 8."""
    m = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def ensure_java_and_maven() -> None:
    java, mvn = which("java"), which("mvn")
    major = None
    if java:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
        major = java_major_version(out.stderr + out.stdout)
    if java and major is not None and major >= MIN_JAVA and mvn:
        return
    problem = (
        "Java is not installed"
        if not java
        else f"Java {major or '?'} found at {java}, Kafka needs Java {MIN_JAVA}+"
        if major is None or major < MIN_JAVA
        else "Maven (mvn) is not installed"
    )
    _apt_install(DEBIAN_JAVA_PACKAGES, problem)
    if not (which("java") and which("mvn")):
        raise SluiceError(f"{problem}, and installing {DEBIAN_JAVA_PACKAGES} did not fix it")


def resolve_kafka_jars(cache_dir: Path) -> Path:
    """Resolve Kafka and its runtime dependencies from coordinator/local/pom.xml into
    ``<cache>/kafka/libs``. Maven writes into a fresh folder that replaces the old one only
    once complete, so an interrupted download never leaves a half set of jars behind."""
    libs = kafka_libs_dir(cache_dir)
    if kafka_jars_installed(cache_dir):
        return libs
    with exclusive_lock(cache_dir / "kafka" / ".lock"):
        if kafka_jars_installed(cache_dir):  # another process did it while we waited
            return libs
        mvn = which("mvn")
        if mvn is None:
            raise SluiceError("Maven (mvn) is not installed; run `sluice local install`")
        staging = libs.with_name(f"libs.tmp{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        log.info("resolving Kafka jars with Maven into %s", libs)
        cmd = [
            mvn,
            "-q",
            "-B",
            f"-Dmaven.repo.local={cache_dir / 'm2'}",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            output = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
            raise SluiceError(
                f"Maven could not resolve Kafka's jars from {POM} (exit {result.returncode}); "
                f"is Maven Central reachable?\n{output}"
            )
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        _stamp(cache_dir).write_text(_pom_hash() + "\n")
    return libs


def ensure_mariadb() -> None:
    if mariadb_installed():
        return
    _apt_install(DEBIAN_MARIADB_PACKAGES, "MariaDB is not installed")
    if not mariadb_installed():
        raise SluiceError("installing MariaDB did not put mariadbd and mariadb-install-db on PATH")
    # On a machine with an init system Debian's package also starts its own server on 3306;
    # `sluice local up` then says the port is taken and how to pick another.
    log.info("MariaDB installed; if its Debian service took port 3306, stop it or use --mysql-port")


def _apt_install(packages: list[str], problem: str) -> None:
    """Install Debian packages when we can (root, apt-get present), else say what to run."""
    command = f"apt-get update && apt-get install -y {' '.join(packages)}"
    if which("apt-get") is None:
        raise SluiceError(f"{problem}; install {', '.join(packages)} with your package manager")
    if os.geteuid() != 0:
        raise SluiceError(f"{problem}; as root, run: {command}")
    log.info("%s; running: %s", problem, command)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", *packages]):
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            output = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
            raise SluiceError(f"`{' '.join(cmd)}` failed (exit {result.returncode}):\n{output}")
