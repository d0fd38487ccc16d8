"""What an attacker or an unlucky operator tried, kept as tests: sessions that end, a throttle that
holds, bounded and hostile input, safe CSV, headers, redirects, a database that goes away."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.builders import Journey, journeys_for
from tests.web_helpers import PASSWORD, api_token, csrf_of, log_in, make_client, make_user
from voronka.cli import app
from voronka.config import Settings
from voronka.crm import logins
from voronka.crm.accounts import default_account, find_pipeline
from voronka.crm.auth import add_user, deactivate_user, set_password
from voronka.crm.leads import add_lead_form
from voronka.errors import InvalidValue
from voronka.models import ApiToken, Deal, LeadForm, LoginThrottle, LossReason, Role, Source, Stage, User
from voronka.web import create_app


def _owner(session: Session) -> str:
    journeys_for(session, [Journey("2026-03-01 10:00", manager="Анна", source="Сайт")])
    return make_user(session, "Owner", Role.OWNER)


def _user(session: Session, email: str) -> User:
    return session.scalars(select(User).where(User.email == email)).one()


def test_a_cookie_saved_before_logout_opens_nothing_after(session: Session, engine: Engine, tmp_path: Path) -> None:
    email = _owner(session)
    client = make_client(engine, tmp_path)
    csrf = log_in(client, email)
    saved = dict(client.cookies)
    assert client.get("/settings").status_code == 200
    client.post("/logout", data={"csrf": csrf})
    thief = make_client(engine, tmp_path)
    thief.cookies.update(saved)
    for path in ("/", "/settings", "/kanban", "/deals"):
        answer = thief.get(path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login")


@pytest.mark.parametrize("end", ["password", "deactivate"])
def test_a_new_password_or_deactivation_ends_every_session(
    session: Session, engine: Engine, tmp_path: Path, end: str
) -> None:
    email = _owner(session)
    client = make_client(engine, tmp_path)
    log_in(client, email)
    assert client.get("/settings").status_code == 200
    if end == "password":
        set_password(session=session, user=_user(session, email), password="another-long-secret-9")
    else:
        deactivate_user(session=session, user=_user(session, email))
    session.commit()
    assert client.get("/settings", follow_redirects=False).status_code == 303


def test_no_secret_is_ever_put_in_the_cookie(session: Session, engine: Engine, tmp_path: Path) -> None:
    email = _owner(session)
    client = make_client(engine, tmp_path)
    csrf = log_in(client, email)
    answer = client.post("/settings/tokens", data={"csrf": csrf, "name": "ci"})
    token = answer.text.split('id="new-token">')[1].split("<")[0]
    assert token.startswith("vk_")
    cookie = client.cookies["voronka_session"]
    payload = base64.b64decode(cookie.split(".")[0] + "==").decode()
    assert token not in payload
    assert "user_id" not in json.loads(payload)


def test_cookies_are_secure_over_https(session: Session, engine: Engine, tmp_path: Path) -> None:
    email = _owner(session)
    settings = Settings(database_url="sqlite://", secrets_path=tmp_path / "s.json", secret_key="k")
    secure = TestClient(create_app(settings, engine), base_url="https://testserver")
    page = secure.get("/login")
    assert "secure" in page.headers["set-cookie"].lower()
    plain = make_client(engine, tmp_path)
    assert "secure" not in plain.get("/login").headers["set-cookie"].lower()
    assert email


class Clock:
    """The throttle's clock, moved by the test: no test waits for a wait.

    With ``step`` it moves by that much at every reading. A step back makes every request's time
    earlier than that of the request served before it, which is what parallel requests do when
    each reads the time before another's write lands."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, step: dt.timedelta = dt.timedelta()) -> None:
        self.now, self.step, self.lock = logins.utcnow(), step, threading.Lock()
        monkeypatch.setattr(logins, "utcnow", self.read)

    def read(self) -> dt.datetime:
        with self.lock:
            now, self.now = self.now, self.now + self.step
            return now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def _in_parallel(calls: list[Callable[[], int]]) -> list[int]:
    """Each call in its own thread, all released at once."""
    answers: list[int] = []
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], int]) -> None:
        start.wait()
        answers.append(call())

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def _login(client: TestClient, csrf: str, email: str, password: str, address: str | None = None) -> int:
    form = {"email": email, "password": password, "csrf": csrf, "next": "/"}
    headers = {"X-Forwarded-For": address} if address else {}
    return client.post("/login", data=form, headers=headers, follow_redirects=False).status_code


def test_parallel_wrong_passwords_check_exactly_the_free_attempts(
    session: Session, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The attempts all come at one moment: on a slow machine a second may otherwise pass while the
    # 30 requests are served, and the first wait (1 s) would rightly let one more through.
    Clock(monkeypatch)
    email = _owner(session)
    client = make_client(engine, tmp_path)
    csrf = csrf_of(client.get("/login").text)
    answers = _in_parallel([lambda: _login(client, csrf, email, "wrong-password-xx")] * 30)
    assert answers.count(401) == logins.FREE_PER_EMAIL  # checked against the password
    assert answers.count(429) == 30 - logins.FREE_PER_EMAIL  # refused before any check


def test_parallel_wrong_passwords_for_many_emails_check_the_address_free_attempts(
    session: Session, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """30 e-mails guessed at once from one address: exactly the address's 20 free attempts are
    checked (a refusal by the address does not use up the e-mail's), the rest wait — whatever order
    their clocks were read in."""
    Clock(monkeypatch, step=-dt.timedelta(milliseconds=1))
    _owner(session)
    client = make_client(engine, tmp_path)
    csrf = csrf_of(client.get("/login").text)
    calls = [lambda n=n: _login(client, csrf, f"user{n}@example.com", "wrong-password-xx") for n in range(30)]
    answers = _in_parallel(calls)  # type: ignore[arg-type]
    assert answers.count(401) == logins.FREE_PER_ADDRESS
    assert answers.count(429) == 30 - logins.FREE_PER_ADDRESS
    # none of the 30 e-mails lost a free attempt to a refusal it did not cause
    counted = session.scalar(select(func.sum(LoginThrottle.attempts)).where(LoginThrottle.key.startswith("email:")))
    assert counted == logins.FREE_PER_ADDRESS


def test_simultaneous_right_passwords_from_one_address_all_get_in_and_do_not_count(
    session: Session, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five people of one office log in at the same moment, three times each: none is refused, and
    their successes leave the office's failed attempts as they were."""
    Clock(monkeypatch, step=-dt.timedelta(milliseconds=1))
    _owner(session)
    emails = [make_user(session, f"Manager {n}", Role.MANAGER) for n in range(5)]
    clients = [make_client(engine, tmp_path) for _ in range(15)]
    tokens = [csrf_of(c.get("/login").text) for c in clients]
    calls = [lambda n=n: _login(clients[n], tokens[n], emails[n % 5], PASSWORD) for n in range(15)]
    assert _in_parallel(calls) == [303] * 15  # type: ignore[arg-type]
    address = session.scalars(select(LoginThrottle).where(LoginThrottle.key.startswith("address:"))).one()
    assert address.attempts == 0
    # After 40 more right logins, the office still has all its free attempts for mistakes.
    client = clients[0]
    for n in range(40):
        client.cookies.clear()  # the next person at the office, logged out
        assert _login(client, csrf_of(client.get("/login").text), emails[n % 5], PASSWORD) == 303
    client.cookies.clear()
    csrf = csrf_of(client.get("/login").text)
    wrong = [_login(client, csrf, f"typo{n}@example.com", "wrong-password-xx") for n in range(21)]
    assert wrong == [401] * logins.FREE_PER_ADDRESS + [429]


def test_rotating_x_forwarded_for_does_not_reset_the_count_and_the_wait_is_told(
    session: Session, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(monkeypatch)
    email = _owner(session)
    client = make_client(engine, tmp_path)
    csrf = csrf_of(client.get("/login").text)

    def attempt(password: str, n: int) -> int:
        return _login(client, csrf, email, password, address=f"10.0.0.{n}")

    assert [attempt("wrong-password-xx", n) for n in range(5)] == [401] * 5
    assert [attempt("wrong-password-xx", n) for n in range(5, 10)] == [429] * 5
    refused = client.post("/login", data={"email": email, "password": PASSWORD, "csrf": csrf})
    assert refused.status_code == 429  # not yet: the wait after the fifth failure
    assert "try again in 1 s" in refused.text
    assert refused.headers["retry-after"] == "1"
    clock.advance(1)
    assert attempt("wrong-password-xx", 11) == 401  # the sixth failure: the next wait is twice as long
    clock.advance(1)
    refused = client.post("/login", data={"email": email, "password": PASSWORD, "csrf": csrf})
    assert "try again in 1 s" in refused.text  # 2 s after the sixth failure, one of them gone
    for _ in range(6):  # each failure after its wait: 2, 4 … 64 s
        clock.advance(int(refused.headers["retry-after"]))
        assert attempt("wrong-password-xx", 12) == 401
        refused = client.post("/login", data={"email": email, "password": PASSWORD, "csrf": csrf})
    assert refused.headers["retry-after"] == "128"
    assert "try again in 3 min" in refused.text
    clock.advance(128)
    assert attempt(PASSWORD, 13) == 303  # a wait, not a lock: the right password gets in


@pytest.mark.parametrize(
    ("email", "password"),
    [("a@", "long-enough-pass-1"), ("@b", "long-enough-pass-1"), ("anna@example.com", "short-1"),
     ("anna@example.com", "qwertyuiop1"), ("anna@example.com", "1234567890"), ("anna@example.com", "anna@example.com")],
)  # fmt: skip
def test_weak_passwords_and_broken_addresses_are_refused(session: Session, email: str, password: str) -> None:
    with pytest.raises(InvalidValue):
        add_user(session=session, account=default_account(session=session), name="Anna", email=email, password=password)


@pytest.fixture
def lead_url(session: Session) -> str:
    journeys_for(session, [])
    account = default_account(session=session)
    _, token = add_lead_form(session=session, account=account, pipeline=find_pipeline(session=session, account=account),
                             name="Сайт")  # fmt: skip
    session.commit()
    return f"/api/v1/webhooks/leads/{token}"


def test_the_public_lead_webhook_bounds_what_it_stores(
    session: Session, engine: Engine, tmp_path: Path, lead_url: str
) -> None:
    client = make_client(engine, tmp_path)
    huge = client.post(lead_url, json={"name": "A", "comment": "x" * 20_000_000})
    assert huge.status_code == 413
    assert huge.headers["content-type"].startswith("application/problem+json")
    keys = client.post(lead_url, json={"name": "A", **{f"k{n}": "v" for n in range(100_000)}})
    assert keys.status_code == 413
    many = client.post(lead_url, json={"name": "A", **{f"k{n}": "v" for n in range(60)}})
    assert many.status_code == 422
    long_value = client.post(lead_url, json={"name": "A", "comment": "x" * 5_000})
    assert long_value.status_code == 422
    assert session.scalar(select(func.count()).select_from(Deal)) == 0


@pytest.mark.parametrize(
    "lead",
    [{"name": "Я" * 10_000}, {"email": "a" * 10_000 + "@example.com"}, {"name": "A", "utm_source": "s" * 10_000}],
    ids=["name", "email", "utm_source"],
)
def test_the_lead_webhook_refuses_values_longer_than_their_columns_on_both_databases(
    session: Session, engine: Engine, tmp_path: Path, lead_url: str, lead: dict[str, str]
) -> None:
    """PostgreSQL refused them and SQLite kept them whole (every distinct utm_source a new source,
    listed on every page): the library checks them, so both refuse alike."""
    client = make_client(engine, tmp_path)
    for answer in (client.post(lead_url, json=lead), client.post(lead_url, data=lead)):
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
    assert session.scalar(select(func.count()).select_from(Deal)) == 0
    assert session.scalar(select(func.count()).select_from(Source).where(func.length(Source.name) > 200)) == 0
    fits = client.post(lead_url, json={"name": "Я" * 200, "email": "a" * 300 + "@example.com"})
    assert fits.status_code == 200, fits.text  # at the bound: kept (the title cut to its 300)


def test_owner_forms_refuse_names_longer_than_their_columns_on_both_databases(
    session: Session, engine: Engine, tmp_path: Path
) -> None:
    email = _owner(session)
    client = make_client(engine, tmp_path)
    csrf = log_in(client, email)
    pipeline = find_pipeline(session=session, account=default_account(session=session))
    long = "Я" * 10_000
    forms = {
        "/settings/users": {"name": long, "email": "new@example.com", "password": "another-long-secret-9"},
        "/settings/tokens": {"name": long},
        "/settings/forms": {"name": long, "pipeline_id": str(pipeline.id)},
        "/settings/forms#source": {"name": "Форма", "pipeline_id": str(pipeline.id), "source": long},
        "/settings/reasons": {"name": long},
        "/settings/sources": {"name": long},
        "/settings/spend": {"source": long, "month": "2026-03", "amount": "1000"},
        f"/settings/pipelines/{pipeline.id}/stages": {"name": long},
    }
    for path, form in forms.items():
        answer = client.post(path.split("#")[0], data={**form, "csrf": csrf}, follow_redirects=False)
        assert answer.status_code == 422, (path, answer.status_code)
    for model in (User, Source, LossReason, ApiToken, LeadForm, Stage):
        longest = session.scalar(select(func.max(func.length(model.name))))
        assert longest is None or longest <= 200, model


@pytest.mark.parametrize(
    "body",
    [
        '{"name": "A", "amount": "1e400"}',
        '{"name": "A", "amount": "' + "9" * 30 + '"}',
        '{"name": "A", "amount": "inf"}',
        '{"name": "A\\ud800"}',
        '{"name": "A\\u0000B", "phone": "1"}',
        "[" * 50_000 + "]" * 50_000,
    ],
    ids=["1e400", "thirty nines", "inf", "lone surrogate", "NUL", "deep nesting"],
)
def test_hostile_values_get_a_4xx_with_a_message(engine: Engine, tmp_path: Path, lead_url: str, body: str) -> None:
    client = make_client(engine, tmp_path)
    answer = client.post(lead_url, content=body.encode(), headers={"content-type": "application/json"})
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.json()["detail"]


def test_hostile_query_and_api_values(session: Session, engine: Engine, tmp_path: Path) -> None:
    email = _owner(session)
    token = api_token(session, email)
    client = make_client(engine, tmp_path)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/funnel", params={"by": "field:\x00"}, headers=headers).status_code in (400, 422)
    for amount in ("1e400", "9" * 30, "inf", "-5"):
        answer = client.post("/api/v1/deals", json={"title": "x", "amount": amount}, headers=headers)
        assert answer.status_code == 422, (amount, answer.text)
    csrf = log_in(client, email)
    for value in ("1e400", "inf", "nan", "abc"):
        answer = client.get("/reports/whatif", params={"step_2": value})
        assert answer.status_code == 422, value
        plan = client.post(
            "/settings/spend", data={"csrf": csrf, "source": "Сайт", "month": "2026-03", "amount": value}
        )
        assert plan.status_code == 422, value


def test_unknown_managers_are_not_created_by_naming_them(session: Session, engine: Engine, tmp_path: Path) -> None:
    _owner(session)
    head = api_token(session, make_user(session, "Head", Role.HEAD))
    client = make_client(engine, tmp_path)
    deal_id = session.scalar(select(Deal.id))
    users_before = session.scalar(select(func.count()).select_from(User))
    answer = client.patch(f"/api/v1/deals/{deal_id}", json={"manager": "Новый Человек"},
                          headers={"Authorization": f"Bearer {head}"})  # fmt: skip
    assert answer.status_code == 422
    assert session.scalar(select(func.count()).select_from(User)) == users_before


def test_a_managers_kanban_filter_lists_only_them(session: Session, engine: Engine, tmp_path: Path) -> None:
    _owner(session)
    email = make_user(session, "Анна", Role.MANAGER)
    make_user(session, "Олег", Role.MANAGER)
    client = make_client(engine, tmp_path)
    log_in(client, email)
    page = client.get("/kanban").text
    assert "Олег" not in page


def test_security_headers_and_no_foreign_redirects(session: Session, engine: Engine, tmp_path: Path) -> None:
    email = _owner(session)
    client = make_client(engine, tmp_path)
    csrf = log_in(client, email)
    for path in ("/login", "/", "/kanban", "/api/v1/openapi.json"):
        headers = client.get(path).headers
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        policy = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy
        assert "script-src 'self';" in policy
        assert headers["referrer-policy"]
    deal_id = session.scalar(select(Deal.id))
    moved = client.post(f"/deals/{deal_id}/win", data={"csrf": csrf}, headers={"Referer": "https://evil.example/"},
                        follow_redirects=False)  # fmt: skip
    assert moved.headers["location"] == f"/deals/{deal_id}"
    for target in ("//evil.example", "https://evil.example", "/\\evil.example"):
        answer = client.get("/lang/en", params={"next": target}, follow_redirects=False)
        assert answer.headers["location"] == "/"


def test_a_workbook_download_leaves_no_file_behind(
    session: Session, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    email = _owner(session)
    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    client = make_client(engine, tmp_path)
    log_in(client, email)
    answer = client.get("/reports/stats.xlsx")
    assert answer.status_code == 200
    assert answer.content[:2] == b"PK"
    assert list(spool.iterdir()) == []


def test_a_database_that_does_not_answer_gets_503_and_retry_after(tmp_path: Path) -> None:
    gone = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    settings = Settings(database_url="sqlite://", secrets_path=tmp_path / "s.json", secret_key="k")
    client = TestClient(create_app(settings, gone), raise_server_exceptions=False)
    api = client.get("/api/v1/funnel", headers={"Authorization": "Bearer vk_x"})
    assert api.status_code == 503
    assert api.headers["retry-after"]
    assert api.headers["content-type"].startswith("application/problem+json")
    page = client.get("/", headers={"Cookie": "voronka_session=x"}, follow_redirects=False)
    assert page.status_code in (303, 503)
    lead = client.post("/api/v1/webhooks/leads/abc", json={"name": "A"})
    assert lead.status_code == 503


def test_csv_cells_that_would_be_formulas_are_text(db_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(app, ["--db", db_url, "init", "--stages", "Lead,Won"])
    rows = "id,created_at,stage,source\n" + "".join(
        f"d{n},2026-03-0{n + 1} 10:00,Lead,{value}\n"
        for n, value in enumerate(['"=HYPERLINK(""http://x"",""y"")"', "+1+2", "-2+3", "@SUM(1,1)"])
    )
    source = tmp_path / "deals.csv"
    source.write_text(rows, encoding="utf-8")
    assert runner.invoke(app, ["--db", db_url, "import", "deals", str(source)]).exit_code == 0
    funnel = runner.invoke(app, ["--db", db_url, "funnel", "--by", "source", "--format", "csv"]).stdout
    stats = runner.invoke(app, ["--db", db_url, "stats", "--by", "source", "--format", "csv",
                                "--from", "2026-03-01", "--to", "2026-04-01"]).stdout  # fmt: skip
    for text in (funnel, stats):
        for line in text.splitlines()[1:]:
            first = line.lstrip('"')
            assert not first.startswith(("=", "+", "@")), line
            assert not (first.startswith("-") and not first[1:2].isdigit()), line
    assert "'=HYPERLINK" in funnel
