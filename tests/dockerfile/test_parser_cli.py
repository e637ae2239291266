"""`slimage parse`: JSON shape, tree output, and one-line errors for bad Dockerfiles."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from slimage.cli.main import main
from tests.dockerfile.conftest import BUILDKIT_CASES

GOOD = """\
# syntax=docker/dockerfile:1
ARG BASE=node:20-slim
FROM ${BASE} AS build
RUN --mount=type=cache,target=/root/.npm <<EOT
npm ci
EOT
COPY --from=build /app /app
ONBUILD RUN echo hi
CMD ["node", "server.js"]
"""


def run_cli(tmp_path: Path, text: str, *extra: str) -> tuple[int, str, str, str]:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "slimage.cli.main", "parse", str(path), *extra],
        capture_output=True,
        text=True,
    )
    return proc.returncode, proc.stdout, proc.stderr, str(path)


def test_parse_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(GOOD)
    assert main(["parse", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["cmd"] for d in data] == ["arg", "from", "run", "copy", "onbuild", "cmd"]
    frm, run, copy, onbuild, cmd = data[1:]
    assert frm["value"] == ["${BASE}", "AS", "build"]
    assert run["flags"] == ["--mount=type=cache,target=/root/.npm"]
    assert run["value"] == ["<<EOT"]
    assert run["heredocs"] == [{"name": "EOT", "content": "npm ci\n", "expand": True}]
    assert (run["start_line"], run["end_line"]) == (4, 6)
    assert copy["flags"] == ["--from=build"]
    assert onbuild["sub_cmd"] == "run" and onbuild["value"] == ["echo hi"]
    assert cmd["json"] is True and cmd["original"] == 'CMD ["node", "server.js"]'


def test_parse_tree_is_buildkit_format(capsys: pytest.CaptureFixture[str]) -> None:
    case = BUILDKIT_CASES / "testfiles" / "health"
    assert main(["parse", "--no-validate", str(case / "Dockerfile")]) == 0
    assert capsys.readouterr().out == (case / "result").read_text()


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("FROM a\nRUNN echo hi\n", ":2:1:", "unknown instruction: RUNN"),
        ("FROM a\nRUN <<EOF\necho hi\n", ":2:5:", "unterminated heredoc"),
        ("FROM a\nCOPY --chmodd=755 a /b\n", ":2:6:", "unknown flag: --chmodd"),
        ("FROM a\nCMD [1, 2]\n", ":2:5:", "arrays must be comprised of strings only"),
        ("", "", "file with no instructions"),
    ],
)
def test_bad_dockerfile_is_one_line_and_exit_1(
    tmp_path: Path, text: str, where: str, message: str
) -> None:
    rc, out, err, path = run_cli(tmp_path, text)
    assert rc == 1
    assert out == ""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"slimage: error: {path}{where}")
    assert message in lines[0]


def test_missing_file(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "slimage.cli.main", "parse", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and "no such file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_no_validate_accepts_what_only_buildkits_parser_accepts(tmp_path: Path) -> None:
    rc, out, err, _ = run_cli(tmp_path, "FROM a\nCOPY --user=me a b\n", "--no-validate")
    assert rc == 0, err
    assert out == '(from "a")\n(copy ["--user=me"] "a" "b")\n'


def test_empty_continuation_warning_goes_to_stderr(tmp_path: Path) -> None:
    rc, out, err, _ = run_cli(tmp_path, "FROM a\nRUN a \\\n\n  b\n")
    assert rc == 0
    assert out == '(from "a")\n(run "a   b")\n'
    assert "Empty continuation line" in err
