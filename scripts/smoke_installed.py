"""Smoke-test voronka as users install it: run with the Python of a fresh virtual environment into
which only the built wheel was installed (``.ci/run`` does this).

Checks that every data file of the source tree is inside the installed package, then drives the
installed console script: demo, funnel JSON, crm list, template list, stats with its workbook,
a large import (read by a second process), and ``voronka serve`` answering its login page, static
files, vendored scripts and API docs.
Prints one line per check and exits non-zero on the first failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

SOURCE = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else None


def check(label: str, condition: bool, detail: str = "") -> None:
    print(f"{'ok' if condition else 'FAILED'}: {label}{' — ' + detail if detail and not condition else ''}")
    if not condition:
        sys.exit(1)


def installed_package() -> Path:
    import voronka

    folder = Path(voronka.__file__).parent
    check("voronka is imported from site-packages, not from a checkout", "site-packages" in str(folder), str(folder))
    return folder


def data_files_shipped(folder: Path) -> None:
    if SOURCE is None:
        return
    wanted = sorted(
        p.relative_to(SOURCE).as_posix()
        for p in SOURCE.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    )
    missing = [name for name in wanted if not (folder / name).is_file()]
    check(f"all {len(wanted)} data files are installed", not missing, ", ".join(missing))


def voronka(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("voronka")
    result = subprocess.run([str(script), *args], cwd=cwd, capture_output=True, text=True, check=False)
    check("voronka " + " ".join(args), result.returncode == 0, result.stderr.strip()[-500:])
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def serve_answers(work: Path) -> None:
    port = free_port()
    script = Path(sys.executable).with_name("voronka")
    env = {**os.environ, "VORONKA_SECRET_KEY": "smoke", "VORONKA_SECRETS_PATH": str(work / "secrets.json")}
    server = subprocess.Popen(
        [str(script), "serve", "--port", str(port)], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                get(base + "/login")
                break
            except OSError:
                time.sleep(0.2)
        status, body = get(base + "/login")
        check("serve: the login page", status == 200 and b"<form" in body, f"HTTP {status}")
        assets = ("/static/voronka.css", "/static/voronka.js", "/static/favicon.svg", "/vendor/htmx.min.js",
                  "/vendor/swagger/swagger-ui-bundle.js", "/vendor/swagger/swagger-ui.css")  # fmt: skip
        for path in assets:
            status, body = get(base + path)
            check(f"serve: {path}", status == 200 and len(body) > 100, f"HTTP {status}")
        status, body = get(base + "/api/v1/openapi.json")
        check("serve: the OpenAPI document", status == 200 and "/api/v1/funnel" in json.loads(body)["paths"])
        status, body = get(base + "/api/v1/docs")
        local_only = b"cdn.jsdelivr" not in body and b"/vendor/swagger/swagger-ui-bundle.js" in body
        check("serve: the API docs page, its assets local", status == 200 and local_only, f"HTTP {status}")
        status, _ = get(base + "/api/v1/funnel")
        check("serve: the API refuses a caller without a token", status == 401, f"HTTP {status}")
    finally:
        server.terminate()
        server.wait(timeout=10)


def large_import(work: Path) -> None:
    """100,000 deals: read by the installed package's second process (``importers.reader``)."""
    rows = 100_000
    lines = ["id,created_at,stage,status,source,entered:Qualified"]
    lines += [
        f"d{n},2025-{n % 12 + 1:02d}-{n % 28 + 1:02d} 10:00,Qualified,open,Site,2025-12-30 11:00" for n in range(rows)
    ]
    (work / "big.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    voronka("--db", "big.db", "init", "--pipeline", "Big", "--stages", "Lead,Qualified,Won", cwd=work)
    result = voronka("--db", "big.db", "import", "deals", "big.csv", cwd=work)
    # Counts are written the reader's way (100,000 or 100 000): compare them without the separators.
    digits_only = re.sub(r"(?<=\d)[,\u00a0\u202f ](?=\d{3})", "", result.stdout)
    check("a large import creates every deal", f"{rows} created" in digits_only, result.stdout[-300:])


def main() -> None:
    folder = installed_package()
    data_files_shipped(folder)
    work = Path(tempfile.mkdtemp(prefix="voronka-smoke-"))
    try:
        voronka("demo", "--leads", "300", "--today", "2026-11-27", cwd=work)
        funnel = json.loads(voronka("funnel", "--format", "json", cwd=work).stdout)
        check("funnel JSON counts the demo's deals", 150 < funnel["deals"] <= 300, str(funnel)[:200])
        check("crm list names amoCRM", "amoCRM" in voronka("crm", "list", cwd=work).stdout)
        check(
            "template list names the furniture template",
            "manufacturing" in voronka("template", "list", cwd=work).stdout,
        )
        voronka("stats", "--xlsx", str(work / "stats.xlsx"), cwd=work)
        check("the workbook is written", (work / "stats.xlsx").stat().st_size > 10_000)
        voronka("audit", cwd=work)  # reads the database the demo migrated
        large_import(work)
        serve_answers(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("smoke test of the installed package passed")


if __name__ == "__main__":
    main()
