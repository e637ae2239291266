"""Typed views of instructions (command lines, COPY sources, key/values, healthcheck)
and RUN --mount specs."""

from __future__ import annotations

import pytest

from slimage.dockerfile import parse
from slimage.dockerfile.commands import (
    cmdline,
    healthcheck,
    key_values,
    prepends_shell,
    sources_and_dest,
)
from slimage.dockerfile.mounts import MountError, parse_mount, ram_in_bytes
from slimage.errors import DockerfileError


def insts(text: str):
    return parse("FROM a\n" + text).instructions[1:]


def test_cmdline_shell_and_exec() -> None:
    run, cmd, ent, hc = insts(
        'RUN echo a &&  echo b\nCMD ["x", "y z"]\nENTRYPOINT []\nHEALTHCHECK CMD curl -f x\n'
    )
    assert cmdline(run) == ["echo a &&  echo b"] and prepends_shell(run)
    assert cmdline(cmd) == ["x", "y z"] and not prepends_shell(cmd)
    assert cmdline(ent) == []
    assert cmdline(hc) == ["curl -f x"]


def test_sources_dest_and_heredoc_files() -> None:
    (copy,) = insts("COPY a b <<-EOF <<'RAW' /dst/\n\tline\n\tEOF\n$X\nRAW\n")
    sd = sources_and_dest(copy)
    assert sd.dest == "/dst/" and sd.sources == ["a", "b"]
    assert [(f.name, f.data, f.expand) for f in sd.inline] == [
        ("EOF", "line\n", True),
        ("RAW", "$X\n", False),
    ]
    (j,) = insts('COPY ["<<EOF", "/d"]\n')
    assert sources_and_dest(j).sources == ["<<EOF"]


def test_key_values_process_quotes_and_variables() -> None:
    env, label = insts('ENV A="x y" B=$A\\ z\nLABEL "k 1"=v\n')
    assert key_values(env, {"A": "1"}) == [("A", "x y"), ("B", "1 z")]
    assert key_values(label) == [("k 1", "v")]
    (legacy,) = insts("ENV PATH /opt/bin:$PATH\n")
    assert key_values(legacy, {"PATH": "/usr/bin"}) == [("PATH", "/opt/bin:/usr/bin")]


def test_healthcheck_config() -> None:
    full, none, exec_ = insts(
        "HEALTHCHECK --interval=1m30s --timeout=500ms --retries=3 CMD curl -f x || exit 1\n"
        "HEALTHCHECK NONE\n"
        'HEALTHCHECK --start-period=0s CMD ["/bin/check"]\n'
    )
    assert healthcheck(full) == {
        "Test": ["CMD-SHELL", "curl -f x || exit 1"],
        "Interval": 90_000_000_000,
        "Timeout": 500_000_000,
        "Retries": 3,
    }
    assert healthcheck(none) == {"Test": ["NONE"]}
    assert healthcheck(exec_) == {"Test": ["CMD", "/bin/check"]}


def test_parse_mount_defaults_and_types() -> None:
    m = parse_mount("type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0755,uid=1000")
    assert (m.type, m.target, m.cache_id, m.sharing, m.mode, m.uid, m.readonly) == (
        "cache",
        "/root/.cache",
        "pip",
        "locked",
        0o755,
        1000,
        False,
    )
    assert parse_mount("target=/src").readonly  # bind defaults to read-only
    assert not parse_mount("type=bind,target=/src,rw").readonly
    s = parse_mount("type=secret,id=npmrc,target=/root/.npmrc,required")
    assert s.required and s.readonly
    assert parse_mount("type=tmpfs,target=/t,size=64m").size_limit == 64 << 20
    assert parse_mount('type=bind,"source=a,b",target=/x').source == "a,b"


def test_parse_mount_expands_each_value() -> None:
    m = parse_mount("type=cache,target=$HOME/.cache", expand=lambda v: v.replace("$HOME", "/h"))
    assert m.target == "/h/.cache"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("type=volume,target=/x", 'unsupported mount type "volume"'),
        ("type=cache,target=/x,sharing=everyone", 'unsupported sharing value "everyone"'),
        ("type=bind,target=/x,mode=0644", 'mode not allowed for "bind" type mounts'),
        ("type=cache,target=/x,required", "unexpected key 'required' for mount type 'cache'"),
        ("type=secret,from=x,id=y", "secret mount should not have a from"),
        ("type=secret", "one of source, target required"),
        ("type=bind,target=/x,sharing=shared", "invalid cache sharing set for bind mount"),
        ("type=cache,target=/x,uid=-1", "invalid value -1 for uid"),
        ("type=cache,colour=blue", "unexpected key 'colour' in 'colour=blue'"),
        ("type=cache,target", "invalid field 'target' must be a key=value pair"),
        ("type=tmpfs,target=/t,size=huge", "invalid value for size: huge"),
    ],
)
def test_parse_mount_errors(spec: str, message: str) -> None:
    with pytest.raises(MountError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_mount(spec)


def test_bad_mount_is_refused_while_typing_with_its_location() -> None:
    with pytest.raises(DockerfileError) as info:
        parse("FROM a\nRUN --mount=type=nope,target=/x true\n", path="Df")
    assert str(info.value).startswith("Df:2:5: unsupported mount type")


def test_ram_in_bytes() -> None:
    assert ram_in_bytes("100") == 100
    assert ram_in_bytes("1.5GiB") == 3 << 29
    assert ram_in_bytes("2 kb") == 2048
    with pytest.raises(ValueError):
        ram_in_bytes("-1m")
