"""Each lint rule fires where it should and stays quiet where the Dockerfile is right.

Every case is a pair written to differ only in the thing the rule is about, so a rule
that fires on everything (or nothing) fails one side of its pair.
"""

from __future__ import annotations

import pytest

from slimage.dockerfile.config import LintConfig
from slimage.dockerfile.lint import lint_text
from slimage.dockerfile.rules import RULES

# rule id -> (Dockerfile where it must fire, near-identical one where it must not)
CASES: dict[str, tuple[str, str]] = {
    "SL101": (
        "FROM debian:12\nRUN echo a\nRUN echo b\n",
        "FROM debian:12\nRUN echo a\nRUN --network=none echo b\n",
    ),
    "SL102": (
        "FROM debian:12\nRUN apt-get update\nRUN apt-get install -y --no-install-recommends jq\n",
        "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends jq"
        " && rm -rf /var/lib/apt/lists/*\n",
    ),
    "SL103": (
        "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends jq\n",
        "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends jq \\\n"
        "    && rm -rf /var/lib/apt/lists/*\n",
    ),
    "SL104": (
        "FROM debian:12\nRUN apt-get update && apt-get install -y jq && rm -rf /var/lib/apt/lists/*\n",
        "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends jq"
        " && rm -rf /var/lib/apt/lists/*\n",
    ),
    "SL105": (
        "FROM alpine:3.20\nRUN apk add curl\n",
        "FROM alpine:3.20\nRUN apk add --no-cache curl\n",
    ),
    "SL106": (
        "FROM python:3.12-slim\nRUN pip install flask\n",
        "FROM python:3.12-slim\nRUN pip install --no-cache-dir flask\n",
    ),
    "SL107": (
        "FROM node:20-slim\nWORKDIR /app\nCOPY package.json .\nRUN npm ci\n",
        "FROM node:20-slim\nWORKDIR /app\nCOPY package.json .\nRUN npm ci && npm cache clean --force\n",
    ),
    "SL108": (
        "FROM node:20-slim\nRUN yarn install --frozen-lockfile\n",
        "FROM node:20-slim\nRUN yarn install --frozen-lockfile && yarn cache clean\n",
    ),
    "SL109": (
        "FROM fedora:40\nRUN dnf install -y jq\n",
        "FROM fedora:40\nRUN dnf install -y jq && dnf clean all\n",
    ),
    "SL110": (
        "FROM debian:12\nCOPY big.tar /tmp/big.tar\nRUN tar -xf /tmp/big.tar -C /opt\n"
        "RUN rm -f /tmp/big.tar\n",
        "FROM debian:12\nCOPY big.tar /tmp/big.tar\nRUN tar -xf /tmp/big.tar -C /opt\n"
        "RUN rm -f /tmp/other.tar\n",
    ),
    "SL111": (
        "FROM debian:12\nCOPY app /opt/app\nRUN chown -R 1000:1000 /opt/app\n",
        "FROM debian:12\nCOPY --chown=1000:1000 app /opt/app\nRUN chown -R 1000:1000 /srv/data\n",
    ),
    "SL112": (
        "FROM node:20-slim\nWORKDIR /app\nCOPY . .\nRUN npm ci --omit=dev\n",
        "FROM node:20-slim\nWORKDIR /app\nCOPY package.json package-lock.json ./\n"
        "RUN npm ci --omit=dev\nCOPY . .\n",
    ),
    "SL113": (
        "FROM debian:12-slim\nRUN apt-get update && apt-get install -y --no-install-recommends gcc"
        " && rm -rf /var/lib/apt/lists/*\nCOPY main.c .\nRUN gcc -o /app main.c\n",
        "FROM debian:12-slim AS build\nRUN apt-get update && apt-get install -y gcc\n"
        "COPY main.c .\nRUN gcc -o /app main.c\nFROM debian:12-slim\nCOPY --from=build /app /app\n",
    ),
    "SL114": (
        "FROM node:20\nCOPY index.js .\n",
        "FROM node:20-slim\nCOPY index.js .\n",
    ),
    "SL201": (
        "FROM debian\n",
        "FROM debian:12\n",
    ),
    "SL202": (
        "FROM debian:latest\n",
        "FROM debian:12@sha256:" + "a" * 64 + "\n",
    ),
    "SL203": (
        "FROM debian:12\nADD conf /etc/conf\n",
        "FROM debian:12\nADD rootfs.tar.gz /\n",
    ),
    "SL204": (
        "FROM debian:12\nADD https://example.invalid/tool /usr/local/bin/tool\n",
        "FROM debian:12\nCOPY tool /usr/local/bin/tool\n",
    ),
    "SL205": (
        "FROM debian:12\nRUN apt-get update && apt-get -y upgrade\n",
        "FROM debian:12\nRUN apt-get update && apt-get -y install --no-install-recommends jq\n",
    ),
    "SL206": (
        "FROM debian:12\nWORKDIR app\n",
        "FROM debian:12\nWORKDIR /app\n",
    ),
    "SL207": (
        "FROM debian:12\nRUN curl -fsSL https://example.invalid/x | tar -xz\n",
        'FROM debian:12\nSHELL ["/bin/bash", "-o", "pipefail", "-c"]\n'
        "RUN curl -fsSL https://example.invalid/x | tar -xz\n",
    ),
    "SL301": (
        "FROM debian:12\nUSER app\nUSER root\n",
        "FROM debian:12\nUSER root\nUSER app\n",
    ),
    "SL302": (
        'FROM debian:12\nCMD ["bash"]\n',
        'FROM debian:12\nUSER 10001\nCMD ["bash"]\n',
    ),
    "SL303": (
        "FROM debian:12\nCMD bash -l\n",
        'FROM debian:12\nCMD ["bash", "-l"]\n',
    ),
    "SL304": (
        'FROM node:20-slim\nCMD ["npm", "start"]\n',
        'FROM node:20-slim\nCMD ["node", "index.js"]\n',
    ),
    "SL305": (
        "FROM debian:12\nENV DB_PASSWORD=hunter2\n",
        "FROM debian:12\nENV DB_PASSWORD_FILE=/run/secrets/db\n",
    ),
    "SL306": (
        "FROM debian:12\nRUN sudo make install\n",
        "FROM debian:12\nRUN make install\n",
    ),
    "SL401": (
        'FROM debian:12\nCMD ["a"]\nCMD ["b"]\n',
        'FROM debian:12 AS one\nCMD ["a"]\nFROM debian:12\nCMD ["b"]\n',
    ),
    "SL402": (
        'FROM debian:12\nENTRYPOINT ["a"]\nENTRYPOINT ["b"]\n',
        'FROM debian:12\nENTRYPOINT ["a"]\nCMD ["b"]\n',
    ),
    "SL403": (
        "FROM debian:12 AS build\nRUN touch /x\nFROM debian:12\nCOPY --from=biuld /x /x\n",
        "FROM debian:12 AS build\nRUN touch /x\nFROM debian:12\nCOPY --from=build /x /x\n",
    ),
    "SL404": (
        "FROM debian:12 AS a\nFROM debian:12 AS a\n",
        "FROM debian:12 AS a\nFROM debian:12 AS b\n",
    ),
    "SL405": (
        "FROM debian:12 AS a\nCOPY --from=a /x /x\n",
        "FROM debian:12 AS a\nFROM debian:12 AS b\nCOPY --from=a /x /x\n",
    ),
    "SL407": (
        "FROM debian:12\nRUN echo a \\\n\n    b\n",
        "FROM debian:12\nRUN echo a \\\n    b\n",
    ),
    "SL406": (
        "FROM debian:12\nMAINTAINER me\n",
        'FROM debian:12\nLABEL org.opencontainers.image.authors="me"\n',
    ),
}


def _ids(text: str, config: LintConfig | None = None) -> set[str]:
    return {f.rule for f in lint_text(text, config=config)}


def test_every_rule_has_a_case() -> None:
    # SL208 needs config, tested below; DL rules are tested in test_lint_parity.py.
    missing = {r for r in RULES if r.startswith("SL")} - set(CASES) - {"SL208"}
    assert not missing, f"rules without a test case: {sorted(missing)}"


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_rule_fires_and_stays_quiet(rule_id: str) -> None:
    bad, good = CASES[rule_id]
    assert rule_id in _ids(bad), f"{rule_id} should fire on:\n{bad}"
    assert rule_id not in _ids(good), f"{rule_id} should not fire on:\n{good}"


def test_rule_metadata_is_complete() -> None:
    for rule in RULES.values():
        assert (rule.id.startswith("SL") and len(rule.id) == 5) or rule.id == rule.hadolint
        assert rule.why and rule.fix and rule.summary, rule.id
        assert rule.hadolint is None or rule.hadolint.startswith("DL")


def test_trusted_registries() -> None:
    text = "FROM quay.io/org/app:1\nFROM gcr.io/distroless/static:nonroot\n"
    assert "SL208" not in _ids(text)  # no policy configured
    cfg = LintConfig(trusted_registries=("gcr.io",))
    findings = [f for f in lint_text(text, config=cfg) if f.rule == "SL208"]
    assert [f.line for f in findings] == [1]
    hub = LintConfig(trusted_registries=("docker.io",))
    assert "SL208" not in _ids("FROM debian:12\n", hub)
    assert "SL208" in _ids("FROM debian:12\n", LintConfig(trusted_registries=("quay.io",)))


def test_caches_in_builder_stages_are_not_reported() -> None:
    # The build stage's apt lists and pip cache never reach the final image.
    text = (
        "FROM python:3.12 AS build\n"
        "RUN apt-get update && apt-get install -y gcc\n"
        "RUN pip install --prefix=/install flask\n"
        "FROM python:3.12-slim\n"
        "COPY --from=build /install /usr/local\n"
        "USER 10001\n"
        'CMD ["python3", "-m", "flask", "run"]\n'
    )
    ids = _ids(text)
    assert not ids & {"SL101", "SL103", "SL104", "SL106", "SL113"}, ids


def test_stage_chain_ships() -> None:
    # The final stage is built FROM `base`, so the cache left in `base` ships.
    text = (
        "FROM debian:12-slim AS base\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends jq\n"
        "FROM base\nUSER 1000\n"
    )
    findings = [f for f in lint_text(text) if f.rule == "SL103"]
    assert [f.line for f in findings] == [2]


def test_user_inherited_from_parent_stage() -> None:
    text = 'FROM debian:12-slim AS base\nUSER app\nFROM base\nCMD ["x"]\n'
    assert not _ids(text) & {"SL301", "SL302"}


def test_distroless_nonroot_base_is_not_root() -> None:
    assert "SL302" not in _ids("FROM gcr.io/distroless/static-debian12:nonroot\nCOPY app /app\n")


def test_pipefail_set_in_script() -> None:
    text = "FROM debian:12\nRUN set -o pipefail && curl -fsSL x | tar -xz\n"
    assert "SL207" not in _ids(text)


def test_pip_no_cache_env() -> None:
    text = "FROM python:3.12-slim\nENV PIP_NO_CACHE_DIR=1\nRUN pip install flask\n"
    assert "SL106" not in _ids(text)


def test_cache_mount_keeps_cache_out() -> None:
    text = (
        "FROM python:3.12-slim\nRUN --mount=type=cache,target=/root/.cache/pip pip install flask\n"
    )
    assert "SL106" not in _ids(text)


def test_heredoc_run_is_linted_as_a_script() -> None:
    text = "FROM debian:12\nRUN <<EOF\nset -e\nsudo apt-get update\nEOF\n"
    findings = {f.rule: f for f in lint_text(text)}
    assert "SL306" in findings and findings["SL306"].line == 2
    assert "SL103" in findings


def test_python_heredoc_is_not_shell() -> None:
    text = "FROM debian:12\nRUN python3 <<EOF\nimport sudo\nprint('a | b')\nEOF\n"
    assert not _ids(text) & {"SL306", "SL207"}


def test_words_inside_quotes_are_not_commands() -> None:
    text = "FROM debian:12\nRUN echo 'sudo apt-get upgrade | tee' > /notes\n"
    assert not _ids(text) & {"SL306", "SL205", "SL207"}


def test_exec_form_sh_c_is_parsed() -> None:
    text = 'FROM debian:12\nRUN ["/bin/sh", "-c", "sudo ls"]\n'
    assert "SL306" in _ids(text)


def test_copy_from_image_reference_is_fine() -> None:
    text = "FROM debian:12\nCOPY --from=nginx:1.27 /etc/nginx/nginx.conf /etc/\n"
    assert "SL403" not in _ids(text)


def test_copy_from_later_stage() -> None:
    text = "FROM debian:12 AS a\nCOPY --from=b /x /x\nFROM debian:12 AS b\n"
    findings = [f for f in lint_text(text) if f.rule == "SL403"]
    assert findings and "later" in findings[0].message


def test_global_arg_base_expanded() -> None:
    assert "SL202" in _ids("ARG TAG=latest\nFROM debian:${TAG}\n")
    assert "SL202" not in _ids("ARG TAG=12\nFROM debian:${TAG}\n")


def test_findings_are_sorted_and_located() -> None:
    text = "FROM debian\nRUN echo a\nRUN echo b\nCMD bash\n"
    findings = lint_text(text, path="x/Dockerfile")
    assert [f.line for f in findings] == sorted(f.line for f in findings)
    assert all(f.file == "x/Dockerfile" for f in findings)
    by_rule = {f.rule: f for f in findings}
    assert by_rule["SL101"].line == 3
    assert by_rule["SL303"].line == 4
    assert by_rule["SL201"].hadolint == "DL3006"


def test_windows_base_is_not_a_posix_shell() -> None:
    text = (
        "# escape=`\nFROM mcr.microsoft.com/windows/servercore:ltsc2022\n"
        "RUN powershell -Command Get-ChildItem | Select-Object Name\n"
        "CMD sudo.exe | more\n"
    )
    assert not _ids(text) & {"SL207", "SL306"}


def test_base_from_required_build_arg_still_lints() -> None:
    # BuildKit needs --build-arg BASE=... to build this; linting it must still work.
    ids = _ids("ARG BASE\nFROM ${BASE}\nRUN echo a\nRUN echo b\n")
    assert "SL101" in ids and "SL201" not in ids
