"""Installing the local stack's software: Java and Maven checks, Kafka's and HDFS's jars from
Maven Central, MariaDB and (only when asked for) PostgreSQL 15 from Debian's packages.

Everything is idempotent and cheap when already done, because ``sluice local up`` calls it
every time: each set of jars carries a stamp naming the hash of the pom it was resolved from
(coordinator/local/pom.xml for Kafka, hdfs-pom.xml for HDFS), so editing a pom (an upgrade)
resolves again and nothing else does.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from coordinator.errors import SluiceError
from coordinator.local.procs import exclusive_lock

log = logging.getLogger(__name__)

POM = Path(__file__).with_name("pom.xml")
HDFS_POM = Path(__file__).with_name("hdfs-pom.xml")
LOG4J2_CONFIG = Path(__file__).with_name("log4j2.yaml")
HDFS_LOG4J_CONFIG = Path(__file__).with_name("hdfs-log4j.properties")
MIN_JAVA = 17  # Kafka 4 brokers need Java 17.
DEBIAN_JAVA_PACKAGES = ["openjdk-17-jre-headless", "maven"]
DEBIAN_MARIADB_PACKAGES = ["mariadb-server", "mariadb-client"]
# Only `up --with-postgres` (and `install --with-postgres`) asks for these.
DEBIAN_POSTGRES_PACKAGES = ["postgresql-15", "postgresql-client-15"]
# Debian keeps each major version's server programs here, off PATH.
POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
# Only `make bench` (bench.sysbench_lag) needs sysbench: `install` (tests, demo) never asks.
DEBIAN_SYSBENCH_PACKAGES = ["sysbench"]
# Debian installs the server binaries in sbin, which is not on a normal user's PATH.
_SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin"


def which(program: str) -> str | None:
    return shutil.which(program, path=f"{os.environ.get('PATH', '')}:{_SBIN_PATH}")


@dataclass(frozen=True)
class JarSet:
    """Jars resolved by Maven from one of our poms into ``<cache>/<folder>/libs``, with a stamp
    naming the pom's hash: editing the pom (an upgrade) resolves again, nothing else does."""

    what: str
    folder: str
    pom: Path

    def libs(self, cache_dir: Path) -> Path:
        return cache_dir / self.folder / "libs"

    def stamp(self, cache_dir: Path) -> Path:
        return cache_dir / self.folder / "libs.stamp"

    def pom_hash(self) -> str:
        return hashlib.sha256(self.pom.read_bytes()).hexdigest()

    def installed(self, cache_dir: Path) -> bool:
        stamp = self.stamp(cache_dir)
        return stamp.is_file() and stamp.read_text().strip() == self.pom_hash()


KAFKA_JARS = JarSet("Kafka", "kafka", POM)
HDFS_JARS = JarSet("HDFS (hadoop-client-minicluster)", "hdfs", HDFS_POM)


def kafka_libs_dir(cache_dir: Path) -> Path:
    return KAFKA_JARS.libs(cache_dir)


def hdfs_libs_dir(cache_dir: Path) -> Path:
    return HDFS_JARS.libs(cache_dir)


def kafka_jars_installed(cache_dir: Path) -> bool:
    return KAFKA_JARS.installed(cache_dir)


def mariadb_installed() -> bool:
    return which("mariadbd") is not None and which("mariadb-install-db") is not None


def postgres_program(name: str) -> str | None:
    """PostgreSQL 15's ``initdb`` or ``postgres``: Debian's, else whichever is on PATH."""
    debian = POSTGRES_BIN / name
    if os.access(debian, os.X_OK):
        return str(debian)
    return which(name)


def postgres_installed() -> bool:
    return postgres_program("initdb") is not None and postgres_program("postgres") is not None


def is_installed(cache_dir: Path, hdfs: bool = False, postgres: bool = False) -> bool:
    """Whether everything ``up`` needs is there; the HDFS jars only when ``hdfs``, PostgreSQL
    only when ``postgres``."""
    return (
        kafka_jars_installed(cache_dir)
        and (not hdfs or HDFS_JARS.installed(cache_dir))
        and mariadb_installed()
        and (not postgres or postgres_installed())
        and which("java") is not None
    )


def install(cache_dir: Path, hdfs: bool = True, postgres: bool = False) -> None:
    """Make sure Java 17+, Maven, Kafka's jars, MariaDB, (with ``hdfs``) the HDFS jars and
    (with ``postgres``) PostgreSQL 15 are there; install what is not."""
    ensure_java_and_maven()
    resolve_kafka_jars(cache_dir)
    if hdfs:
        resolve_jars(HDFS_JARS, cache_dir)
    ensure_mariadb()
    if postgres:
        ensure_postgres()


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
    return resolve_jars(KAFKA_JARS, cache_dir)


def resolve_jars(jars: JarSet, cache_dir: Path) -> Path:
    """Resolve the runtime dependencies of ``jars.pom`` into ``<cache>/<folder>/libs``. Maven
    writes into a fresh folder that replaces the old one only once complete, so an interrupted
    download never leaves a half set of jars behind."""
    libs = jars.libs(cache_dir)
    if jars.installed(cache_dir):
        return libs
    with exclusive_lock(libs.parent / ".lock"):
        if jars.installed(cache_dir):  # another process did it while we waited
            return libs
        mvn = which("mvn")
        if mvn is None:
            raise SluiceError("Maven (mvn) is not installed; run `sluice local install`")
        staging = libs.with_name(f"libs.tmp{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        log.info("resolving %s jars with Maven into %s", jars.what, libs)
        cmd = [
            mvn,
            "-q",
            "-B",
            f"-Dmaven.repo.local={cache_dir / 'm2'}",
            "-f",
            str(jars.pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            output = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
            raise SluiceError(
                f"Maven could not resolve {jars.what}'s jars from {jars.pom} "
                f"(exit {result.returncode}); is Maven Central reachable?\n{output}"
            )
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        jars.stamp(cache_dir).write_text(jars.pom_hash() + "\n")
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


def ensure_postgres() -> None:
    if postgres_installed():
        return
    _apt_install(DEBIAN_POSTGRES_PACKAGES, "PostgreSQL 15 is not installed")
    if not postgres_installed():
        raise SluiceError(
            f"installing PostgreSQL did not put initdb and postgres in {POSTGRES_BIN} or on PATH"
        )
    # As with MariaDB: with an init system, Debian's package also starts its own cluster
    # (15/main) on 5432; `sluice local up --with-postgres` then says the port is taken.
    log.info(
        "PostgreSQL installed; if Debian's cluster took port 5432, stop it "
        "(pg_ctlcluster 15 main stop) or use --postgres-port"
    )


def ensure_sysbench() -> str:
    """The sysbench program, installed from Debian's package when missing (as MariaDB is).
    Called by the sysbench benchmark only, so tests and the demo never need it."""
    path = which("sysbench")
    if path is not None:
        return path
    _apt_install(DEBIAN_SYSBENCH_PACKAGES, "sysbench is not installed")
    path = which("sysbench")
    if path is None:
        raise SluiceError("installing Debian's sysbench package did not put sysbench on PATH")
    return path


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
