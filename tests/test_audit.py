"""The audit trail (issue 7, item 5): loads, report issuance, sign-ins, uploads and downloads
recorded with time and user in `<db>.audit.jsonl`; never a patient or pharmacy pseudonym, in
the trail or in the server's log."""

from __future__ import annotations

import base64
import datetime as dt
import getpass
import hashlib
import json
import multiprocessing
import os
from pathlib import Path

import pytest
import requests

from bench.served import start_server_env
from etl.base import audit
from etl.cli import main as cli_main
from tests.browser import stop_process, warehouse_copy
from tests.conftest import CANONICAL_HEADER, write_delimited
from tests.test_auth import (
    ANALYST,
    ID_SHAPE,
    REVIEWER,
    _download,
    add_user,
    body_of,
    callback,
    known_ids,
    page_body,
    server_callbacks,
    sign_in,
)


def events(db: Path) -> list[dict]:
    return [json.loads(line) for line in audit.audit_path(db).read_text().splitlines()]


def _append_many(db: str, worker: int, n: int) -> None:
    for i in range(n):
        audit.record(db, "download", user=f"worker{worker}", component=f"c{i}", bytes=i)


def test_lines_from_several_processes_never_mix(tmp_path):
    db = tmp_path / "w.duckdb"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_many, args=(str(db), w, 300)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    lines = events(db)  # every line is whole JSON
    assert len(lines) == 1200
    for w in range(4):
        mine = [e for e in lines if e["user"] == f"worker{w}"]
        assert [e["bytes"] for e in mine] == list(range(300))  # each process's order kept
    assert (tmp_path / "w.audit.jsonl").stat().st_mode & 0o777 == 0o600
    first = lines[0]
    assert first["event"] == "download"
    assert dt.datetime.fromisoformat(first["time"].replace("Z", "+00:00")).tzinfo is not None
    # Only the closed list of details: anything else is a programming error.
    with pytest.raises(ValueError):
        audit.record(db, "download", patient_id="P1")
    with pytest.raises(ValueError):
        audit.record(db, "something_else")


def test_command_line_loads_and_reports_are_audited(cli, db, tmp_path):
    rows = [
        ["PSECRET00000001", "PHSECRET01", "03/03/2025", "5521950", "1", "23,24"],
        ["PSECRET00000002", "PHSECRET01", "04/03/2025", "5521976", "1", "23,24"],
        ["PSECRET00000001", "PHSECRET01", "10/03/2025", "5521984", "1", "15,71"],
    ]
    good = write_delimited(tmp_path / "march.csv", CANONICAL_HEADER, rows)
    # A file without its header row: its first row of data is read as the header, so the
    # refusal message quotes pseudonyms. The trail keeps a reason word, never the message.
    headless = write_delimited(tmp_path / "headless.csv", rows[0], rows[1:])
    status, _, err = cli("--db", db, "load", good, headless)
    assert status == 1 and "PSECRET00000001" in err + _  # (the message shows the header found)
    status, out, _ = cli("--db", db, "report", "--month", "2025-03", "--format", "html",
                         "--lang", "en", "--output", tmp_path / "pack.html")  # fmt: skip
    assert status == 0
    trail = events(db)
    assert [e["event"] for e in trail] == ["load", "load_refused", "report_issued"]
    load, refused, issued = trail
    user = getpass.getuser()
    assert {e["user"] for e in trail} == {user}
    assert load["file"] == "march.csv"
    assert load["sha256"] == hashlib.sha256(good.read_bytes()).hexdigest()
    assert (load["rows_read"], load["rows_new"], load["rows_rejected"], load["load_id"]) == (
        3, 3, 0, 1,
    )  # fmt: skip
    assert refused["file"] == "headless.csv"
    assert refused["sha256"] == hashlib.sha256(headless.read_bytes()).hexdigest()
    assert refused["reason"] == "required_column_missing"
    status, out, _ = cli("--db", db, "reports", "--format", "json")
    archived = json.loads(out)[0]
    assert (issued["report_id"], issued["month"], issued["format"], issued["lang"]) == (
        1, "2025-03", "html", "en",
    )  # fmt: skip
    assert issued["suppressed"] is True
    assert issued["content_sha256"] == archived["content_sha256"]
    text = audit.audit_path(db).read_text()
    assert "SECRET" not in text
    # `benzo-monitor audit`: JSON, CSV and the table, the latest N.
    status, out, _ = cli("--db", db, "audit", "--format", "json")
    assert status == 0 and json.loads(out) == trail
    status, out, _ = cli("--db", db, "audit", "--format", "json", "--limit", "1")
    assert json.loads(out) == [issued]
    status, out, _ = cli("--db", db, "audit", "--format", "csv")
    lines = out.splitlines()
    assert lines[0] == "time,event,user,details" and len(lines) == 4
    assert lines[2].split(",")[1:3] == ["load_refused", user]
    assert "reason=required_column_missing" in lines[2]
    status, out, _ = cli("--db", db, "audit")
    assert status == 0 and "report_issued" in out
    # A line cut short (a full disk) is skipped, and said.
    with audit.audit_path(db).open("a") as fh:
        fh.write('{"time": "2025-')
    status, out, err = cli("--db", db, "audit", "--format", "json")
    assert json.loads(out) == trail and "1 unreadable line(s) skipped" in err


def test_a_dashboard_session_is_audited_without_pseudonyms(tmp_path):
    db = warehouse_copy(tmp_path)
    assert add_user(db, ANALYST[0], "analyst", ANALYST[1]) == 0
    assert add_user(db, REVIEWER[0], "reviewer", REVIEWER[1]) == 0
    process, url = start_server_env(db, {})
    log = max(tmp_path.glob("warehouse.serve.*.log"), key=lambda p: p.stat().st_mtime)
    try:
        # A load on the command line while the dashboard runs.
        cli_rows = [["PCLILOADED000001", "PHCLILOAD1", "04/03/2025", "5521976", "1", "23,24"]]
        cli_file = write_delimited(tmp_path / "cli-march.csv", CANONICAL_HEADER, cli_rows)
        assert cli_main(["--db", str(db), "load", str(cli_file), "--no-progress"]) == 0
        analyst = sign_in(url, *ANALYST)
        # An upload of new lines (with pseudonyms of their own).
        export = (
            b"patient_id;pharmacy_id;delivery_date;cnk\r\n"
            b"PUPLOADED0000001;PHUPLOAD01;03/03/2025;5521950\r\n"
            b"PUPLOADED0000002;PHUPLOAD01;05/03/2025;5521976\r\n"
        )
        upload = next(
            d for d in server_callbacks(analyst, url) if d["inputs"][0]["id"] == "data-upload"
        )
        body = body_of(upload)
        body["inputs"][0]["value"] = "data:text/csv;base64," + base64.b64encode(export).decode()
        body["state"][0]["value"] = "march-extra.csv"
        answer = callback(analyst, url, body)
        assert answer.status_code == 200 and "data-upload-preview" in answer.text
        # The preview (a dry run) loaded nothing; the confirm button loads the file.
        confirm = next(
            d for d in server_callbacks(analyst, url)
            if d["inputs"][0]["id"] == "data-upload-confirm"
        )  # fmt: skip
        sent = body_of(confirm)
        sent["inputs"][0]["value"] = 1
        states = {(s["id"], s["property"]): s for s in sent["state"]}
        states[("data-upload", "contents")]["value"] = body["inputs"][0]["value"]
        states[("data-upload", "filename")]["value"] = "march-extra.csv"
        pending = answer.json()["response"]["data-upload-pending"]["data"]
        states[("data-upload-pending", "data")]["value"] = pending
        answer = callback(analyst, url, sent)
        assert answer.status_code == 200 and "data-upload-summary" in answer.text
        # Browsing the findings (pseudonyms on screen) and downloading them, then packs.
        for path in ("/compliance", "/data", "/regions"):
            assert callback(analyst, url, page_body(path, "?lang=en")).status_code == 200
        search = "?lang=en&month=2025-03"
        _download(analyst, url, "compliance-download.data", "compliance-export-button", search)
        _download(analyst, url, "state-download.data", "state-download-xlsx-button", search)
        _download(analyst, url, "state-pack-download.data", "state-pack-html-button", search)
        # A reviewer: a wrong password, then in; a refused upload; a download.
        bad = requests.Session()
        page = bad.get(url + "/login").text
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        bad.post(url + "/login", data={"username": REVIEWER[0], "password": "wrong password",
                 "csrf_token": token}, headers={"Origin": url})  # fmt: skip
        reviewer = sign_in(url, *REVIEWER)
        assert callback(reviewer, url, body).status_code == 403
        _download(reviewer, url, "compliance-download.data", "compliance-export-button", search)
        token = reviewer.cookies.get("_csrf_token")
        out = reviewer.post(url + "/logout", data={"csrf_token": token}, headers={"Origin": url})
        assert out.status_code == 200  # (the sign-in page, after the redirect)
        assert requests.get(url + "/_dash-layout").status_code == 401
    finally:
        stop_process(process)
    trail = events(db)
    assert [(e["event"], e["user"]) for e in trail[:3]] == [
        ("user_added", getpass.getuser()), ("user_added", getpass.getuser()),
        ("load", getpass.getuser()),
    ]  # fmt: skip
    assert trail[2]["sha256"] == hashlib.sha256(cli_file.read_bytes()).hexdigest()
    trail = trail[3:]
    seen = [(e["event"], e["user"]) for e in trail]
    # The upload, then the loader's event, by the signed-in user.
    assert seen[:3] == [("login", "ana"), ("upload", "ana"), ("load", "ana")]
    assert seen.count(("download", "ana")) == 3
    assert ("login_failed", "rev") in seen and ("login", "rev") in seen
    assert ("access_denied", "rev") in seen and ("download", "rev") in seen
    assert ("logout", "rev") in seen and ("access_denied", None) in seen
    uploaded = next(e for e in trail if e["event"] == "upload")
    loaded = next(e for e in trail if e["event"] == "load" and e["user"] == "ana")
    digest = hashlib.sha256(export).hexdigest()
    assert uploaded["sha256"] == loaded["sha256"] == digest
    assert (uploaded["file"], uploaded["bytes"], loaded["rows_new"]) == (
        "march-extra.csv", len(export), 2,
    )  # fmt: skip
    denied = next(e for e in trail if e["event"] == "access_denied" and e["user"] == "rev")
    assert (denied["reason"], denied["role"], denied["status"]) == ("role", "reviewer", 403)
    downloads = {
        e["component"]: e for e in trail if e["event"] == "download" and e["user"] == "ana"
    }
    assert downloads["state-download"]["format"] == "xlsx"
    assert downloads["state-pack-download"]["format"] == "html"
    assert downloads["state-pack-download"]["month"] == "2025-03"
    assert all(e["ip"] == "127.0.0.1" for e in trail if e["event"] != "load")  # (the loader's)
    # Not one patient or pharmacy pseudonym of the warehouse (uploaded ones included), in the
    # trail or in the server's log.
    ids = known_ids(db)
    assert {"PUPLOADED0000001", "PHUPLOAD01", "PCLILOADED000001", "PHCLILOAD1"} <= ids
    assert len(ids) > 1000
    for text in (audit.audit_path(db).read_text(), log.read_text(errors="replace")):
        assert not ID_SHAPE.search(text)
        assert not [i for i in ids if i in text]
    assert os.path.getsize(log) > 1000  # (the log did record the requests)
