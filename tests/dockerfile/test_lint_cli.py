"""`slimage lint` end to end: pragmas, configuration, output formats, exit codes, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from slimage.cli.main import main
from slimage.dockerfile.config import ConfigError, find_config, load_config
from slimage.dockerfile.lint import lint_text

SHARED = (Path(__file__).resolve().parents[2] / ".." / "shared").resolve()
HELLO = SHARED / "scenario" / "hello-express" / "Dockerfile"
SCHEMA = Path(__file__).resolve().parents[1] / "data" / "sarif" / "sarif-schema-2.1.0.json"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def write(tmp_path: Path, text: str, name: str = "Dockerfile") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- the seed's lessons ---------------------------------------------------------------


def test_hello_express_reports_the_articles_lessons(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert HELLO.is_file(), f"scenario Dockerfile missing at {HELLO}"
    rc, out, _ = run(["lint", "--no-config", "--json", str(HELLO)], capsys)
    data = json.loads(out)
    rules = {f["rule"]: f for f in data["findings"]}
    # single stage on a full base
    assert "SL113" in rules and "npm install" in rules["SL113"]["message"]
    assert "SL114" in rules and "node:8" in rules["SL114"]["message"]
    # npm start
    assert rules["SL304"]["line"] == 6
    # running as root (no USER)
    assert "SL302" in rules and "root" in rules["SL302"]["message"]
    assert rc == 1 and data["failed"] is True


def test_fixed_variant_of_the_scenario_is_quieter() -> None:
    text = HELLO.read_text()
    bad = {f.rule for f in lint_text(text)}
    good = (
        "FROM node:8 AS build\nWORKDIR /app\nCOPY package.json index.js ./\n"
        "RUN npm install\n"
        "FROM gcr.io/distroless/nodejs18-debian12:nonroot\nCOPY --from=build /app /app\n"
        'CMD ["/app/index.js"]\n'
    )
    assert not {f.rule for f in lint_text(good)} & {"SL113", "SL114", "SL304", "SL302"}
    assert {"SL113", "SL114", "SL304", "SL302"} <= bad


# -- pragmas ----------------------------------------------------------------------------


def test_inline_pragma_covers_only_the_next_instruction() -> None:
    text = "FROM debian:12\nRUN echo a\n# slimage ignore=SL101\nRUN echo b\nRUN echo c\n"
    lines = [f.line for f in lint_text(text) if f.rule == "SL101"]
    assert lines == [5]


def test_inline_pragma_several_ids_and_hadolint_ids() -> None:
    text = (
        "FROM debian:12\n"
        "# slimage ignore=SL103, DL3015\n"
        "RUN apt-get update && apt-get install -y jq\n"
        "# hadolint ignore=DL3025\n"
        "CMD bash\n"
    )
    ids = {f.rule for f in lint_text(text)}
    assert not ids & {"SL103", "SL104", "SL303"}
    assert "SL114" in ids  # not suppressed


def test_file_wide_pragma() -> None:
    text = "FROM debian\nRUN echo a\nRUN echo b\n# slimage ignore-file=SL101,SL201\n"
    ids = {f.rule for f in lint_text(text)}
    assert not ids & {"SL101", "SL201"}
    assert "SL302" in ids
    text2 = "# hadolint global ignore=DL3006\nFROM debian\n"
    assert "SL201" not in {f.rule for f in lint_text(text2)}


# -- configuration ----------------------------------------------------------------------


def test_slimage_toml_found_upwards_and_applied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".slimage.toml").write_text(
        '[lint]\nignore = ["SL302", "DL3006"]\nfailure-threshold = "error"\n'
        '[lint.severity]\nSL101 = "error"\n'
    )
    df = write(tmp_path, "FROM debian\nRUN echo a\nRUN echo b\n", "svc/Dockerfile")
    rc, out, _ = run(["lint", "--json", str(df)], capsys)
    data = json.loads(out)
    rules = {f["rule"]: f for f in data["findings"]}
    assert "SL302" not in rules and "SL201" not in rules
    assert rules["SL101"]["severity"] == "error"
    assert data["failure_threshold"] == "error"
    assert rc == 1  # SL101 was raised to error
    rc, _, _ = run(["lint", "--json", "--ignore", "SL101", str(df)], capsys)
    assert rc == 0  # only warnings left, threshold is error


def test_pyproject_tool_slimage(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n[tool.slimage.lint]\ntrusted-registries = ["gcr.io"]\n'
    )
    found = find_config(tmp_path / "deep" / "er")
    assert found == tmp_path / "pyproject.toml"
    cfg = load_config(found)
    assert cfg.trusted_registries == ("gcr.io",)
    assert {f.rule for f in lint_text("FROM quay.io/a/b:1\n", config=cfg)} >= {"SL208"}


@pytest.mark.parametrize(
    "body, needle",
    [
        ('[lint]\nignore = ["SL999"]\n', "unknown rule id 'SL999'"),
        ('[lint]\nfailure-threshold = "fatal"\n', "failure-threshold"),
        ('[lint.severity]\nSL101 = "loud"\n', "severity.SL101"),
        ('[lint]\nignore = "SL101"\n', "must be a list"),
        ("[lint]\nbogus = 1\n", "unknown key"),
        ("[lint\n", "invalid TOML"),
    ],
)
def test_bad_config_is_a_clear_error(
    tmp_path: Path, body: str, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / ".slimage.toml"
    cfg.write_text(body)
    with pytest.raises(ConfigError) as exc:
        load_config(cfg)
    assert str(cfg) in str(exc.value) and needle in str(exc.value)
    df = write(tmp_path, "FROM debian:12\n")
    rc, _, err = run(["lint", str(df)], capsys)
    assert rc == 2 and needle in err and "Traceback" not in err


# -- formats and exit codes --------------------------------------------------------------


def test_threshold_controls_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    df = write(tmp_path, 'FROM debian:12-slim\nRUN echo a\nRUN echo b\nUSER 1\nCMD ["x"]\n')
    assert run(["lint", "--no-config", str(df)], capsys)[0] == 0  # SL101 is only info
    assert run(["lint", "--no-config", "-t", "info", str(df)], capsys)[0] == 1
    assert run(["lint", "--no-config", "-t", "none", "--json", str(HELLO)], capsys)[0] == 0


def test_tty_output_names_file_line_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    df = write(tmp_path, "FROM debian:latest\n")
    rc, out, _ = run(["lint", "--no-config", str(df)], capsys)
    assert f"{df}:1 SL202 (DL3007) warning:" in out
    assert "why:" in out and "fix:" in out
    assert rc == 1


def test_sarif_is_valid_against_the_official_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    good = write(tmp_path, HELLO.read_text(), "a/Dockerfile")
    bad = write(tmp_path, "FROM debian:12\nRUN <<EOF\necho\n", "b/Dockerfile")
    rc, out, err = run(["lint", "--no-config", "--format", "sarif", str(good), str(bad)], capsys)
    log = json.loads(out)
    jsonschema.validate(log, schema)  # raises with the failing path if invalid
    run0 = log["runs"][0]
    results = run0["results"]
    assert {r["ruleId"] for r in results} >= {"SL113", "SL114", "SL302", "SL304"}
    rule_ids = [r["id"] for r in run0["tool"]["driver"]["rules"]]
    for r in results:
        assert rule_ids[r["ruleIndex"]] == r["ruleId"]
        region = r["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1
    notes = run0["invocations"][0]["toolExecutionNotifications"]
    assert "unterminated heredoc" in notes[0]["message"]["text"]
    assert run0["invocations"][0]["executionSuccessful"] is False
    assert rc == 1 and "b/Dockerfile:2:" in err


def test_list_rules(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(["lint", "--list-rules", "--json"], capsys)
    table = json.loads(out)
    assert rc == 0 and len(table) >= 25
    assert {"SL101", "SL303", "SL403"} <= {r["id"] for r in table}


# -- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, line, needle",
    [
        ("FROM debian:12\nFROBNICATE x\n", 2, "unknown instruction"),
        ("FROM debian:12\nRUN <<EOF\necho hi\n", 2, "unterminated heredoc"),
        ("FROM debian:12\nCOPY --bogus=1 a b\n", 2, "bogus"),
        ('FROM debian:12\nCMD ["a", 1]\n', 2, "string"),
    ],
)
def test_malformed_dockerfile_one_line_error(
    tmp_path: Path, text: str, line: int, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(tmp_path, text, "bad/Dockerfile")
    good = write(tmp_path, "FROM debian\n", "good/Dockerfile")
    rc, out, err = run(["lint", "--no-config", str(bad), str(good)], capsys)
    assert rc == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{bad}:{line}:"), lines[0]
    assert needle in lines[0].lower() or needle in lines[0]
    assert f"{good}:1 SL201" in out  # the good file is still linted


def test_missing_file_and_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "slimage.cli.main", "lint", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert f"{tmp_path / 'nope'}: no such file" in proc.stderr


def test_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"FROM debian\n")))
    rc, out, _ = run(["lint", "--no-config", "--json", "-"], capsys)
    data = json.loads(out)
    assert data["findings"][0]["file"] == "<stdin>" and rc == 1


def test_tty_colour_when_asked() -> None:
    from slimage.dockerfile.lint import LintResult, render_text

    findings = lint_text("FROM debian:latest\n", path="Dockerfile")
    coloured = render_text([LintResult("Dockerfile", findings)], color=True)
    plain = render_text([LintResult("Dockerfile", findings)], color=False)
    assert "\x1b[" in coloured and "\x1b[" not in plain
    assert "Dockerfile:1 SL202 (DL3007) warning:" in plain


def test_build_arg_resolves_from(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    df = write(tmp_path, "ARG BASE\nFROM ${BASE}\nUSER 1\n")
    rc, out, _ = run(
        ["lint", "--no-config", "--json", "--build-arg", "BASE=node:latest", str(df)], capsys
    )
    rules = {f["rule"] for f in json.loads(out)["findings"]}
    assert {"SL202", "SL114"} <= rules
    rc, out, _ = run(["lint", "--no-config", "--json", str(df)], capsys)
    assert not {f["rule"] for f in json.loads(out)["findings"]} & {"SL202", "SL114"}
    rc, _, err = run(["lint", "--build-arg", "nope", str(df)], capsys)
    assert rc == 2 and "KEY=VALUE" in err
