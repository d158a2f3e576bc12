"""Beyond loopback the workbench needs the admin key (the gateway's rule): refused without it at start-up, and
every request without it answered 401 without echoing what was sent."""

from __future__ import annotations

import base64
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from searchtune.cli.main import app
from searchtune.workbench.app import create_app
from searchtune.keys import hash_key
from searchtune.workbench.auth import is_loopback
from searchtune.workbench.configs import SearchTargets
from searchtune.workbench.judgments import JudgmentList
from searchtune.workbench.state import Workbench


def test_non_loopback_host_needs_an_admin_key(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("SEARCHTUNE_WORKBENCH_ADMIN_KEY", raising=False)
    result = CliRunner().invoke(app, ["workbench", "--index", "x", "--judgments", "l", "--host", "0.0.0.0",
                                      "--store", str(tmp_path)])
    assert result.exit_code == 1 and "--admin-key" in result.output and "Traceback" not in result.output
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")


def test_every_request_needs_the_key(tmp_path: Path) -> None:
    judgments = JudgmentList("auth-list", str(tmp_path))
    judgments.create()
    bench = Workbench(SearchTargets("http://127.0.0.1:9", "idx"), judgments)
    client = TestClient(create_app(bench, [hash_key("s3cret-key")]))
    for path in ("/healthz", "/lists", "/lists/qrels.txt", "/static/workbench.js"):
        refused = client.get(path)
        assert refused.status_code == 401 and "Basic" in refused.headers["www-authenticate"]
    wrong = client.post("/api/grades", headers={"X-Searchtune-Admin-Key": "guess"},
                        json={"grades": [{"query_id": "q", "doc_id": "d", "grade": 1}]})
    assert wrong.status_code == 401 and "guess" not in wrong.text
    assert judgments.qrels() == {}
    ok = client.post("/api/grades", headers={"X-Searchtune-Admin-Key": "s3cret-key"},
                     json={"grades": [{"query_id": "q", "doc_id": "d", "grade": 1}]})
    assert ok.status_code == 200 and ok.json()["version"] == 1
    basic = base64.b64encode(b"rater:s3cret-key").decode()
    page = client.get("/lists", headers={"Authorization": f"Basic {basic}"})
    assert page.status_code == 200 and "auth-list" in page.text
