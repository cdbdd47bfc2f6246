"""Input checks of the CLI, worker and job parsing that need no server (issue 14)."""

from __future__ import annotations

import json
import socket

import pytest
from confluent_kafka import KafkaError

from coordinator.errors import ConfigError
from coordinator.http_listen import check_port, listen_http
from coordinator.job import JobConfigError, parse_job
from coordinator.job.jsonc import parse_jsonc
from coordinator.plan import safe_name
from coordinator.worker.jobs import ApiError
from coordinator.worker.rest import Api, _Handler, _parse_body
from coordinator.worker.runtime import Worker

JOB = {
    "job": {
        "content": [
            {
                "reader": {
                    "name": "streamreader",
                    "parameter": {
                        "column": [{"name": "id", "type": "int", "value": 1}],
                        "sliceRecordCount": [10],
                    },
                },
                "writer": {"name": "streamwriter", "parameter": {}},
            }
        ]
    }
}


def job_text(name: str | None = None, setting: dict | None = None) -> str:
    doc = json.loads(json.dumps(JOB))
    if name is not None:
        doc["job"]["name"] = name
    if setting is not None:
        doc["job"]["setting"] = setting
    return json.dumps(doc)


def test_nesting_deeper_than_the_limit_is_one_line_with_its_position():
    with pytest.raises(JobConfigError) as e:
        parse_jsonc('{"a":\n ' + "[" * 10_000 + "]" * 10_000 + "}", "deep.json")
    assert (
        str(e.value)
        == "deep.json:2:65: invalid JSON: nested deeper than 64 levels of objects and lists"
    )
    assert parse_jsonc("[" * 64 + "]" * 64) is not None  # the limit itself is fine


@pytest.mark.parametrize("name", ["a/b", "my job", "ü", "x" * 101])
def test_job_names_that_would_be_rewritten_are_refused(name):
    with pytest.raises(JobConfigError) as e:
        parse_job(job_text(name))
    assert str(e.value).startswith("<job>: job.name: ")


def test_safe_job_names_keep_their_topics():
    for name in ("a_b", "a.b-c", "x" * 100, "mysql_to_mysql"):
        assert parse_job(job_text(name)).name == name
        assert safe_name(name) == name  # so the topics of earlier runs stay the same


def test_a_job_file_name_that_cannot_be_a_topic_name_is_refused(tmp_path):
    with pytest.raises(JobConfigError) as e:
        parse_job(job_text(), origin=str(tmp_path / "my job.json"))
    assert "named after its file: 'my job'" in str(e.value)
    assert parse_job(job_text(), origin=str(tmp_path / "my_job.json")).name == "my_job"


@pytest.mark.parametrize(
    ("setting", "path"),
    [
        ({"speed": {"channel": 10_000}}, "job.setting.speed.channel"),
        ({"speed": {"readerChannel": 129}}, "job.setting.speed.readerChannel"),
        ({"speed": {"writerChannel": 129}}, "job.setting.speed.writerChannel"),
        ({"kafka": {"partitions": 5000}}, "job.setting.kafka.partitions"),
    ],
)
def test_channel_and_partition_counts_have_a_maximum(setting, path):
    with pytest.raises(JobConfigError) as e:
        parse_job(job_text(setting=setting))
    assert str(e.value).startswith(f"<job>: {path}: expected at most ")
    assert parse_job(job_text(setting={"speed": {"channel": 128}})).setting.speed.channel == 128


@pytest.mark.parametrize("port", [-1, 65536, 70000])
def test_ports_out_of_range(port):
    with pytest.raises(
        ConfigError, match=rf"^--rest-port {port}: not a TCP port; expected 0\.\.65535"
    ):
        check_port(port, "--rest-port")


def test_port_in_use_names_the_flag():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"^--metrics-port {port}: .*already in use"):
            listen_http("127.0.0.1", port, _Handler, "--metrics-port")


def test_rest_body_nested_too_deeply_is_a_400():
    with pytest.raises(ApiError) as e:
        _parse_body(b"[" * 10_000 + b"]" * 10_000)
    assert e.value.status == 400 and e.value.field == "body"
    assert "nested deeper than 64" in str(e.value)


def test_health_is_not_up_while_the_group_join_fails():
    w = Worker("g", "127.0.0.1:1", rest_port=None, session_timeout_ms=10_000)
    api = Api(w.bootstrap, w.group, w.health)
    assert api.handle("GET", "/health", None)[1]["status"] == "JOINING"
    w.on_group_error(KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED))
    code, body = api.handle("GET", "/health", None)
    assert (code, body["status"]) == (503, "DOWN") and body["error"]
    w._on_assign(None, [])  # joined (even with no slot): the error is over
    assert api.handle("GET", "/health", None) == (200, w.health())
    assert w.health()["status"] == "UP"


def test_a_session_timeout_the_broker_refuses_stops_the_worker():
    w = Worker("g", "127.0.0.1:1", rest_port=None, session_timeout_ms=100)
    with pytest.raises(ConfigError, match=r"^--session-timeout-ms 100: the broker refuses"):
        w.on_group_error(KafkaError(KafkaError.INVALID_SESSION_TIMEOUT))
