"""`slimage fix` without an engine: exact rewrites, what must be left alone, formatting,
idempotence over the generated corpus, and refusal to write what it cannot parse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slimage.cli.main import main
from slimage.dockerfile.fix import fix_file, fix_text
from slimage.dockerfile.lint import lint_text
from slimage.dockerfile.parser import parse
from slimage.errors import DockerfileError

LINT_CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "lint"
FIXABLE = {"SL101", "SL103", "SL104", "SL106", "SL107", "SL111", "SL303"}


def fixed(text: str, **kw) -> str:
    return fix_text(text, **kw).fixed


def test_merge_keeps_comments_and_continuation_style() -> None:
    text = (
        "FROM debian:12\n"
        "RUN apt-get update \\\n"
        "  && apt-get install -y --no-install-recommends jq\n"
        "# second step\n"
        "\n"
        "RUN jq --version\n"
    )
    out = fixed(text)
    assert out == (
        "FROM debian:12\n"
        "RUN apt-get update \\\n"
        "  && apt-get install -y --no-install-recommends jq \\\n"
        "# second step\n"
        "  && jq --version \\\n"
        "  && apt-get clean && rm -rf /var/lib/apt/lists/*\n"
    )
    inst = parse(out).instructions[1]
    assert " ".join(inst.value[0].split()) == (
        "apt-get update && apt-get install -y --no-install-recommends jq && jq --version"
        " && apt-get clean && rm -rf /var/lib/apt/lists/*"
    )


def test_crlf_line_endings_are_kept() -> None:
    text = "FROM debian:12\r\nRUN echo a\r\nRUN echo b\r\nCMD echo hi\r\n"
    out = fixed(text)
    assert out == 'FROM debian:12\r\nRUN echo a && \\\r\n    echo b\r\nCMD ["echo", "hi"]\r\n'


@pytest.mark.parametrize(
    "text",
    [
        # different flags
        "FROM debian:12\nRUN echo a\nRUN --network=none echo b\n",
        # heredocs
        "FROM debian:12\nRUN <<EOF\necho a\nEOF\nRUN echo b\n",
        # state that leaks: cd, export, set, bare assignment, exit
        "FROM debian:12\nRUN cd /tmp\nRUN touch x\n",
        "FROM debian:12\nRUN export A=1\nRUN echo $A > /a\n",
        "FROM debian:12\nRUN set -e\nRUN false; true\n",
        "FROM debian:12\nRUN A=1\nRUN echo $A > /a\n",
        "FROM debian:12\nRUN test -f /x || exit 0\nRUN touch /y\n",
        # `a && b1; b2` / `a && b1 || b2` would run b2 even when `a` failed
        "FROM debian:12\nRUN echo a\nRUN false; true\n",
        "FROM debian:12\nRUN echo a\nRUN false || true\n",
        "FROM debian:12\nRUN echo a\nRUN if true; then echo b; fi\n",
        # a comment inside the first script would swallow the second
        "FROM debian:12\nRUN echo a # note\nRUN echo b\n",
        # background job, trailing separator, subshell
        "FROM debian:12\nRUN sleep 1 &\nRUN echo b\n",
        "FROM debian:12\nRUN echo a;\nRUN echo b\n",
        "FROM debian:12\nRUN (cd /tmp && touch x)\nRUN touch y\n",
        # exec form
        'FROM debian:12\nRUN ["echo", "a"]\nRUN echo b\n',
        # non-POSIX shell
        'FROM debian:12\nSHELL ["pwsh", "-c"]\nRUN echo a\nRUN echo b\n',
        # builder stage: its layers never ship
        "FROM debian:12 AS b\nRUN echo a\nRUN echo b\nFROM debian:12\nCOPY --from=b /etc/hostname /x\n",
    ],
)
def test_runs_that_must_not_be_merged(text: str) -> None:
    result = fix_text(text)
    assert "SL101" not in {a.rule for a in result.applied}, result.fixed


@pytest.mark.parametrize(
    "cmd",
    [
        "CMD node $APP",
        "CMD node app.js > /log",
        "CMD node app.js && echo done",
        "CMD node *.js",
        "CMD ~/bin/app",
        'CMD echo "$HOME"',
        "CMD A=1 node app.js",
        "CMD echo a\\ b",
        "CMD cd /app",
    ],
)
def test_shell_form_with_shell_features_is_kept(cmd: str) -> None:
    text = f"FROM debian:12\n{cmd}\n"
    assert fixed(text) == text


def test_first_run_may_use_any_operator() -> None:
    text = "FROM debian:12\nRUN false || echo a; echo b\nRUN echo c | tee /c\n"
    assert fixed(text) == (
        "FROM debian:12\nRUN false || echo a; echo b && \\\n    echo c | tee /c\n"
    )


def test_shell_form_to_exec_form() -> None:
    text = "FROM debian:12\ncmd python3 -m http.server 'a b' --bind=0.0.0.0\n"
    assert fixed(text).splitlines()[1] == (
        'cmd ["python3", "-m", "http.server", "a b", "--bind=0.0.0.0"]'
    )


def test_entrypoint_kept_when_cmd_would_become_its_arguments() -> None:
    text = 'FROM debian:12\nENTRYPOINT node app.js\nCMD ["--port", "80"]\n'
    assert "ENTRYPOINT node app.js" in fixed(text)


def test_copy_chown_rewrites_only_when_dest_is_new() -> None:
    base = "FROM debian:12\n{pre}COPY app /opt/app\nRUN chown -R 1000:1000 /opt/app\n"
    out = fixed(base.format(pre=""))
    assert "COPY --chown=1000:1000 app /opt/app\n" in out and "chown -R" not in out
    # WORKDIR made /opt/app already: chown -R also changes the directory itself.
    kept = base.format(pre="WORKDIR /opt/app\n")
    assert "RUN chown -R 1000:1000 /opt/app" in fixed(kept)
    # parent does not exist: BuildKit would create /srv/x with the new owner too
    text = "FROM debian:12\nCOPY app /srv/x/app\nRUN chown -R 1000:1000 /srv/x/app\n"
    assert "RUN chown" in fixed(text)
    # user only (COPY --chown=u would also set the group): kept
    text = "FROM debian:12\nCOPY app /opt/app\nRUN chown -R 1000 /opt/app\n"
    assert "RUN chown" in fixed(text)
    # chown of something else: kept
    text = "FROM debian:12\nCOPY app /opt/app\nRUN chown -R 1000:1000 /opt\n"
    assert "RUN chown" in fixed(text)


def test_copy_chown_without_recursive_needs_a_plain_file(tmp_path: Path) -> None:
    (tmp_path / "tool").write_text("x")
    (tmp_path / "dir").mkdir()
    text = "FROM debian:12\nCOPY {src} /usr/local/bin/tool\nRUN chown 1:1 /usr/local/bin/tool\n"
    out = fixed(text.format(src="tool"), context_dir=tmp_path)
    assert "COPY --chown=1:1 tool /usr/local/bin/tool" in out
    assert "RUN chown" in fixed(text.format(src="dir"), context_dir=tmp_path)
    assert "RUN chown" in fixed(text.format(src="tool"))  # no context: unknown, kept


def test_apt_cleanup_not_added_when_a_later_run_needs_the_lists() -> None:
    text = (
        "FROM debian:12\nRUN apt-get update && apt-get install -y --no-install-recommends a\n"
        "ENV X=1\nRUN apt-get install -y --no-install-recommends b\n"
    )
    assert "rm -rf /var/lib/apt/lists" not in fixed(text)


@pytest.mark.parametrize(
    "later",
    [
        "RUN apt-cache policy jq",
        "RUN apt-get download jq",
        "RUN apt-get -y build-dep jq",
        "FROM base\nRUN apt-get install -y --no-install-recommends b",
    ],
)
def test_apt_cleanup_kept_out_when_lists_are_read_later(later: str) -> None:
    text = (
        "FROM debian:12 AS base\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends a\n"
        f"USER 0\n{later}\n"
    )
    assert "rm -rf /var/lib/apt/lists" not in fixed(text)
    text2 = text.replace(later, "RUN apt-get purge -y a")
    assert "rm -rf /var/lib/apt/lists" in fixed(text2)


def test_pip_no_cache_dir_inserted_after_install() -> None:
    text = "FROM python:3.12-slim\nRUN python3 -m pip install -U pip && pip3 install flask==3.0\n"
    out = fixed(text)
    assert (
        "python3 -m pip install --no-cache-dir -U pip && pip3 install --no-cache-dir flask" in out
    )


def test_pragma_blocks_fix() -> None:
    text = "FROM debian:12\n# slimage ignore=SL303\nCMD node app.js\n"
    assert fixed(text) == text


def test_only_and_skip() -> None:
    text = "FROM debian:12\nRUN echo a\nRUN echo b\nCMD echo hi\n"
    assert fixed(text, only={"SL303"}).count("RUN") == 2
    assert "CMD echo hi" in fixed(text, skip={"SL303"})


def test_generated_corpus_fix_is_idempotent_and_reduces_findings() -> None:
    files = sorted(LINT_CORPUS.glob("*.Dockerfile"))
    assert len(files) >= 50
    total_changed = 0
    for path in files:
        text = path.read_text()
        result = fix_text(text, path=path.name)
        parse(result.fixed, path=path.name)  # still a valid Dockerfile
        again = fix_text(result.fixed, path=path.name)
        assert again.fixed == result.fixed, f"{path.name}: second run changed the file"
        before = [f for f in lint_text(text) if f.rule in FIXABLE]
        after = [f for f in lint_text(result.fixed) if f.rule in FIXABLE]
        assert len(after) <= len(before), path.name
        # Outside the edited instructions nothing moves: every original comment survives.
        for line in text.splitlines():
            if line.lstrip().startswith("#"):
                assert line in result.fixed.splitlines(), f"{path.name}: lost {line!r}"
        total_changed += result.changed
    assert total_changed >= len(files) // 2


# -- CLI and file safety ------------------------------------------------------------------


def test_cli_diff_write_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    df = tmp_path / "Dockerfile"
    original = "FROM debian:12\nRUN echo a\nRUN echo b\n"
    df.write_text(original)
    df.chmod(0o640)
    assert main(["fix", "--diff", str(df)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"--- a/{df}\n+++ b/{df}\n") and "+RUN echo a && \\" in out
    assert df.read_text() == original  # --diff never writes
    assert main(["fix", str(df)]) == 0
    assert capsys.readouterr().out == fix_text(original).fixed
    assert main(["fix", "--json", str(df)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["changed"] and data["fixes"][0]["rule"] == "SL101"
    assert main(["fix", "--write", str(df)]) == 0
    assert df.read_text() == fix_text(original).fixed
    assert df.stat().st_mode & 0o777 == 0o640
    assert not [p for p in tmp_path.iterdir() if p.name != "Dockerfile"]  # no temp left


def test_fix_never_writes_a_file_it_cannot_parse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    df = tmp_path / "Dockerfile"
    bad = "FROM debian:12\nRUN echo a\nRUN echo b\nRUN <<EOF\nnever closed\n"
    df.write_text(bad)
    with pytest.raises(DockerfileError):
        fix_file(df, write=True)
    assert main(["fix", "--write", str(df)]) == 1
    err = capsys.readouterr().err
    assert f"{df}:4:" in err and "unterminated heredoc" in err and "Traceback" not in err
    assert df.read_text() == bad


def test_no_trailing_newline_and_symlink(tmp_path: Path) -> None:
    assert fixed("FROM x:1\nRUN a\nRUN b") == "FROM x:1\nRUN a && \\\n    b"
    real = tmp_path / "real.Dockerfile"
    real.write_text("FROM x:1\nCMD node a.js\n")
    link = tmp_path / "Dockerfile"
    link.symlink_to(real.name)
    fix_file(link, write=True)
    assert link.is_symlink()
    assert real.read_text() == 'FROM x:1\nCMD ["node", "a.js"]\n'


def test_npm_cache_clean_only_for_root() -> None:
    text = "FROM node:20-slim\nWORKDIR /app\nCOPY package.json .\nRUN npm ci\n"
    assert fixed(text).endswith("RUN npm ci && npm cache clean --force\n")
    as_node = text.replace("RUN npm ci", "USER node\nRUN npm ci")
    assert fixed(as_node) == as_node  # ~/.npm is not /root/.npm: leave it
