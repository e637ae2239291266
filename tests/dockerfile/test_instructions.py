"""The typed instructions layer: bad flag values refused while typing, at FILE:LINE:COL,
and one stage view shared by lint and the builder's planner."""

from __future__ import annotations

from pathlib import Path

import pytest

from slimage.builder.planner import plan
from slimage.dockerfile import command_of, parse, parse_file
from slimage.dockerfile.commands import (
    AddCommand,
    CopyCommand,
    HealthcheckCommand,
    RunCommand,
)
from slimage.dockerfile.config import LintConfig
from slimage.dockerfile.lint import context
from slimage.errors import DockerfileError

REPO = Path(__file__).resolve().parents[2]
CONFORMANCE = REPO.parent / "shared" / "conformance" / "buildkit-parser"
CORPUS = REPO / "tests" / "corpus"
SHA = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("line", "where", "message"),
    [
        ("COPY --chmod=xyz a /b", "2:6", "invalid chmod parameter xyz"),
        ("COPY --chmod=0999 a /b", "2:6", "invalid chmod parameter 0999"),
        ("ADD --chmod=17777 a /b", "2:5", "invalid chmod parameter 17777"),
        ("RUN --mount=type=cache,target=/c,uid=abc true", "2:5", "invalid value abc for uid"),
        ("RUN --mount=type=cache,target=/c,mode=rwx true", "2:5", "invalid value rwx for mode"),
        ("RUN --mount=type=bind,target=/x,mode=0644 true", "2:5", 'mode not allowed for "bind"'),
        ("RUN --mount='type=bind,\"src=a\"b,target=/x' true", "2:5", "failed to parse csv"),
        (f"ADD --checksum=nosuchalgo:{'ab' * 32} https://x/y /y", "2:5", "unsupported digest"),
        ("ADD --checksum=sha256:xyz https://x/y /y", "2:5", "invalid checksum digest"),
        ("ADD --checksum=sha256 https://x/y /y", "2:5", "invalid checksum digest format"),
        (f"ADD --checksum={SHA} local.txt /y", "2:5", "non-HTTP(S) sources"),
        (f"ADD --checksum={SHA} https://x/a https://x/b /y/", "2:5", "multiple sources"),
        ("HEALTHCHECK --interval=5 CMD true", "2:13", 'time: invalid duration "5"'),
        ("HEALTHCHECK --timeout=1x CMD true", "2:13", 'time: invalid duration "1x"'),
        ("HEALTHCHECK --start-period=-1s CMD true", "2:13", "cannot be less than 1ms"),
        ("HEALTHCHECK --start-interval=1 CMD true", "2:13", 'invalid duration "1"'),
        ("HEALTHCHECK --start-interval=10us CMD true", "2:13", "cannot be less than 1ms"),
        ("HEALTHCHECK --retries=x CMD true", "2:13", "invalid value for --retries: x"),
        ("HEALTHCHECK --retries=-2 CMD true", "2:13", "--retries cannot be negative"),
        ("RUN --network=bridge true", "2:5", 'invalid network mode "bridge"'),
    ],
)
def test_bad_flag_values_are_refused_while_typing(line: str, where: str, message: str) -> None:
    with pytest.raises(DockerfileError) as info:
        parse(f"FROM a\n{line}\n", path="ctx/Dockerfile")
    text = str(info.value)
    assert text.startswith(f"ctx/Dockerfile:{where}: "), text
    assert message in text and "\n" not in text


def test_values_with_variables_are_checked_once_expanded_at_the_same_place() -> None:
    df = parse(
        "FROM a\nCOPY --chmod=$M a /b\n"
        "RUN --mount=type=cache,target=/c,uid=$U true\n"
        "ADD --checksum=$SUM https://x/y /y\n",
        path="Df",
    )
    copy, run, add = (command_of(i, df) for i in df.instructions[1:])
    assert isinstance(copy, CopyCommand) and isinstance(run, RunCommand)
    assert isinstance(add, AddCommand)
    assert copy.chmod_value(lambda v: v.replace("$M", "0750")) == 0o750
    assert run.mounts(lambda v: v.replace("$U", "1000"))[0].uid == 1000
    assert add.checksum_value(lambda v: v.replace("$SUM", SHA)) == ("sha256", "ab" * 32)
    for call, needle in (
        (lambda: copy.chmod_value(lambda v: "xyz"), "Df:2:6: invalid chmod parameter xyz"),
        (lambda: run.mounts(lambda v: v.replace("$U", "abc")), "Df:3:5: invalid value abc"),
        (lambda: add.checksum_value(lambda v: "md5:00"), "Df:4:5: unsupported digest"),
    ):
        with pytest.raises(DockerfileError) as info:
            call()
        assert str(info.value).startswith(needle)


def test_healthcheck_keeps_start_interval() -> None:
    df = parse(
        "FROM a\nHEALTHCHECK --interval=30s --start-period=1m --start-interval=2s "
        "--retries=3 CMD true\n"
    )
    (stage,) = plan(df).stages
    (health,) = stage.commands
    assert isinstance(health, HealthcheckCommand)
    assert health.config() == {
        "Test": ["CMD-SHELL", "true"],
        "Interval": 30_000_000_000,
        "StartPeriod": 60_000_000_000,
        "StartInterval": 2_000_000_000,
        "Retries": 3,
    }


def test_the_builder_types_every_instruction_it_runs() -> None:
    df = parse(
        "FROM a AS zero\nFROM a AS one\nRUN --mount=type=bind,from=zero,target=/z true\n"
        "COPY --from=0 x /y\nFROM b\nCOPY --from=one a /b\n"
    )
    pl = plan(df)
    assert [type(c).__name__ for c in pl.stages[1].commands] == ["RunCommand", "CopyCommand"]
    assert pl.stages[1].deps == {0} and pl.stages[2].deps == {1}
    assert pl.order == [0, 1, 2]
    with pytest.raises(DockerfileError, match=r"^Dockerfile:2:6: stage 'one' is not defined"):
        plan(parse("FROM a AS one\nCOPY --from=one x /y\n"))


def _corpus_files() -> list[Path]:
    files = sorted(CORPUS.glob("lint/*.Dockerfile"))
    files += sorted(CORPUS.glob("builds/*/Dockerfile"))
    files += sorted(p for p in CORPUS.glob("fix/*/*") if p.name.startswith("Dockerfile"))
    return files


BUILD_ARGS = {"TARGETARCH": "arm64", "TARGETPLATFORM": "linux/arm64", "BASE": "debian"}


def _agree(df_path: Path, text: str | None = None) -> bool:
    """Lint's stage view and the builder's plan of one file agree; False when the builder
    refuses the file (then the refusal must be located, like every DockerfileError)."""
    df = parse(text, path=str(df_path), strict=False) if text else parse_file(df_path, strict=False)
    lint_view = context(df, LintConfig(build_args=dict(BUILD_ARGS))).stages
    try:
        pl = plan(df, build_args=BUILD_ARGS)
    except DockerfileError as err:
        assert str(err).startswith(str(df_path)) and "\n" not in str(err)
        return False
    assert [(s.index, s.name, s.base, s.platform) for s in lint_view] == [
        (s.index, s.name, s.base, s.platform) for s in pl.stages
    ], df_path
    assert [s.from_inst for s in lint_view] == [s.from_inst for s in pl.stages]
    assert [s.instructions for s in lint_view] == [s.instructions for s in pl.stages]
    return True


def test_lint_and_the_builder_agree_on_stages_bases_and_platforms() -> None:
    files = _corpus_files()
    assert len(files) >= 60
    compared = sum(_agree(p) for p in files)
    assert compared >= 60, compared
    # The divergence this view once had: platform args expand in FROM for both.
    text = "FROM --platform=$BUILDPLATFORM alpine:3-$TARGETARCH AS b\nRUN true\nFROM b\n"
    assert _agree(Path("Dockerfile"), text)
    pl = plan(parse(text), build_args=BUILD_ARGS)
    assert pl.stages[0].base == "alpine:3-arm64"
    assert pl.stages[0].platform not in (None, "", "$BUILDPLATFORM")
    assert pl.stages[1].from_stage == 0


def test_conformance_files_agree_too() -> None:
    if not (CONFORMANCE / "testfiles").is_dir():
        pytest.skip(f"BuildKit's parser test files are not beside the project ({CONFORMANCE})")
    files = sorted((CONFORMANCE / "testfiles").glob("*/Dockerfile"))
    assert len(files) >= 30
    compared = sum(_agree(p) for p in files)
    assert compared >= len(files) // 2, compared
