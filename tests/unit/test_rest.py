"""The worker REST API's answers to bad input, without servers: every refusal is a 4xx with
a JSON body whose ``field`` names the JSON path or parameter at fault (issue 6)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest

from coordinator.worker.jobs import ApiError, tasks_topic, validate
from coordinator.worker.rest import Api, _mask, error_response, serve

# Nothing listens there: a request that reached Kafka would fail with 503, not the 4xx asserted.
API = Api("127.0.0.1:1", "g")

GOOD = {
    "job": {
        "content": [
            {
                "reader": {
                    "name": "mysqlreader",
                    "parameter": {
                        "username": "root",
                        "password": "secret",
                        "column": ["*"],
                        "connection": [
                            {"jdbcUrl": ["jdbc:mysql://127.0.0.1:3306/db"], "table": ["t"]}
                        ],
                    },
                },
                "writer": {
                    "name": "mysqlwriter",
                    "parameter": {
                        "username": "root",
                        "password": "secret",
                        "column": ["*"],
                        "connection": [
                            {"jdbcUrl": "jdbc:mysql://127.0.0.1:3306/db", "table": ["u"]}
                        ],
                    },
                },
            }
        ],
        "setting": {"speed": {"channel": 2}},
    }
}


def without_writer_connection() -> dict:
    bad = json.loads(json.dumps(GOOD))
    del bad["job"]["content"][0]["writer"]["parameter"]["connection"]
    return bad


def call(method: str, path: str, body: object = None) -> tuple[int, dict]:
    try:
        return API.handle(method, path, body)
    except Exception as e:  # noqa: BLE001 - the HTTP layer turns these into responses
        return error_response(e)


def test_validate_returns_the_cli_errors_with_the_field() -> None:
    code, body = call("PUT", "/validate", without_writer_connection())
    assert code == 400
    assert body["valid"] is False
    assert body["field"] == "job.content[0].writer.parameter.connection"
    assert body["errors"][0].startswith("job.content[0].writer.parameter.connection:")


def test_validate_accepts_a_good_job_in_either_shape() -> None:
    assert call("PUT", "/validate", GOOD)[0] == 200
    assert validate({"name": "x", "config": GOOD})["valid"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (without_writer_connection(), "job.content[0].writer.parameter.connection"),
        ({"job": {"content": "x"}}, "job.content"),
        ([1, 2], None),
    ],
)
def test_create_with_a_bad_job_is_400_naming_the_field(body: object, field: str | None) -> None:
    code, answer = call("POST", "/jobs", body)
    assert code == 400, answer
    assert answer["error"]
    if field is not None:
        assert answer["field"] == field


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"to_checkpint": 1}, "to_checkpint"),
        ({"to_checkpoint": "one"}, "to_checkpoint"),
        ({"to_offsets": 5}, "to_offsets"),
        ("checkpoint 1", "body"),
    ],
)
def test_replay_with_a_bad_body_is_400(body: object, field: str) -> None:
    code, answer = call("PUT", "/jobs/j/replay", body)
    assert (code, answer["field"]) == (400, field), answer


def test_unknown_routes() -> None:
    assert call("GET", "/nothing")[0] == 404
    assert call("POST", "/jobs/j/status")[0] == 405


def test_errors_map_to_statuses() -> None:
    assert error_response(ApiError("gone", 404, "name")) == (
        404,
        {"error": "gone", "field": "name"},
    )
    assert error_response(RuntimeError("bug"))[0] == 500


def test_passwords_are_masked() -> None:
    masked = _mask(GOOD)
    assert "secret" not in json.dumps(masked)
    assert masked["job"]["content"][0]["reader"]["parameter"]["username"] == "root"


def test_tasks_topic_name_is_kafka_safe() -> None:
    assert tasks_topic("team a/prod") == "sluice-tasks-team_a_prod"


def test_http_layer_answers_bad_json_with_400() -> None:
    worker = SimpleNamespace(bootstrap="127.0.0.1:1", group="g", health=lambda: {"status": "UP"})
    server = serve(worker, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with urllib.request.urlopen(base + "/health", timeout=10) as resp:
            assert json.loads(resp.read()) == {"status": "UP"}
        req = urllib.request.Request(base + "/validate", data=b"{not json", method="PUT")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=10)
        assert info.value.code == 400
        assert json.loads(info.value.read())["field"] == "body"
    finally:
        server.shutdown()
