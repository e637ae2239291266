"""hadolint's DL rules about instructions other than RUN, under their own DL ids.

Same contract as `hadolint_run`: hadolint's semantics, deliberate differences stated in
`differs`. The label-schema rules (DL3049-DL3058) only fire when the configuration gives
a `label-schema`, as in hadolint.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime

from slimage.dockerfile.model import Instruction
from slimage.dockerfile.rules.base import Hit, LintContext, Severity, hadolint_rule

S = Severity
_ARCHIVES = (
    ".tar",
    ".Z",
    ".bz2",
    ".gz",
    ".lz",
    ".lzma",
    ".tZ",
    ".tb2",
    ".tbz",
    ".tbz2",
    ".tgz",
    ".tlz",
    ".tpz",
    ".txz",
    ".xz",
)


def unquote(text: str) -> str:
    """hadolint's `dropQuotes`: strip surrounding quote characters."""
    return text.strip("\"'")


_register = hadolint_rule


def _all(ctx: LintContext, *cmds: str) -> Iterator[Instruction]:
    for inst in ctx.dockerfile.instructions:
        if inst.cmd in cmds:
            yield inst


def _from_parts(inst: Instruction) -> tuple[str, str | None]:
    """(image as written, stage name or None) of a FROM."""
    image = inst.value[0] if inst.value else ""
    alias = inst.value[2] if len(inst.value) >= 3 and inst.value[1].lower() == "as" else None
    return image, alias


def _tag_digest(image: str) -> tuple[str | None, str | None]:
    digest = None
    if "@" in image:
        image, digest = image.split("@", 1)
    slash = image.rfind("/")
    colon = image.rfind(":")
    tag = image[colon + 1 :] if colon > slash else None
    return tag, digest


@_register(
    "DL3000",
    "absolute-workdir",
    S.ERROR,
    "correctness",
    "Relative WORKDIR",
    "a relative WORKDIR depends on the WORKDIR of the base image",
    "use an absolute path",
)
def dl3000(ctx: LintContext) -> Iterator[Hit]:
    for inst in _all(ctx, "workdir"):
        path = unquote(inst.value[0]) if inst.value else ""
        if path.startswith(("$", "/")) or re.match(r"^[A-Za-z]:", path):
            continue
        yield Hit(inst, f"WORKDIR {path} is relative")


@_register(
    "DL3002",
    "last-user-root",
    S.WARNING,
    "security",
    "Last USER of a stage is root",
    "a process running as root in the container is root on the host's kernel",
    "switch to an unprivileged user at the end of the stage",
)
def dl3002(ctx: LintContext) -> Iterator[Hit]:
    for st in ctx.stages:
        last: Instruction | None = None
        for inst in st.instructions:
            if inst.cmd == "user" and inst.value:
                user = inst.value[0]
                root = user in ("root", "0") or user.startswith(("root:", "0:"))
                last = inst if root else None
        if last is not None:
            yield Hit(last, "the last USER of this stage is root")


@_register(
    "DL3006",
    "tag-image",
    S.WARNING,
    "cache",
    "FROM without an explicit tag",
    "an untagged base means :latest, which moves",
    "pin a version tag",
    differs="none; slimage's SL201 also resolves `FROM ${ARG}` through ARG defaults",
)
def dl3006(ctx: LintContext) -> Iterator[Hit]:
    aliases: set[str] = set()
    for inst in _all(ctx, "from"):
        image, alias = _from_parts(inst)
        tag, digest = _tag_digest(image)
        if image != "scratch" and digest is None and tag is None:
            if not image.startswith("$") and image not in aliases:
                yield Hit(inst, f"`{image}` has no tag")
        if alias:
            aliases.add(alias)


@_register(
    "DL3007",
    "no-latest",
    S.WARNING,
    "cache",
    "FROM image:latest",
    ":latest moves with every upstream push",
    "pin a version tag",
)
def dl3007(ctx: LintContext) -> Iterator[Hit]:
    for inst in _all(ctx, "from"):
        tag, digest = _tag_digest(_from_parts(inst)[0])
        if tag == "latest" and digest is None:
            yield Hit(inst, "FROM uses :latest")


@_register(
    "DL3011",
    "port-range",
    S.ERROR,
    "correctness",
    "EXPOSE of a port outside 0-65535",
    "such a port cannot exist; the value is a typo",
    "use a valid port number",
)
def dl3011(ctx: LintContext) -> Iterator[Hit]:
    for inst in _all(ctx, "expose"):
        for port in inst.value:
            nums = re.findall(r"\d+", port.split("/", 1)[0])
            if "$" not in port and any(int(n) > 65535 for n in nums):
                yield Hit(inst, f"port {port} is out of range")
                break


@_register(
    "DL3012",
    "one-healthcheck",
    S.ERROR,
    "correctness",
    "More than one HEALTHCHECK in a stage",
    "only the last HEALTHCHECK takes effect",
    "keep one HEALTHCHECK per stage",
)
def dl3012(ctx: LintContext) -> Iterator[Hit]:
    for st in ctx.stages:
        seen = False
        for inst in st.instructions:
            if inst.cmd == "healthcheck":
                if seen:
                    yield Hit(inst, "a second HEALTHCHECK in this stage")
                seen = True


@_register(
    "DL3020",
    "copy-not-add",
    S.ERROR,
    "cache",
    "ADD for local files and folders",
    "ADD silently unpacks archives and fetches URLs; for plain files COPY is explicit",
    "use COPY",
    differs="quotes around a source are removed before looking at it (hadolint does "
    "that too); `git@host:repo` sources and `ADD <<EOF` heredocs are not flagged, since "
    "ADD is the only way to add them",
)
def dl3020(ctx: LintContext) -> Iterator[Hit]:
    for inst in _all(ctx, "add"):
        if inst.heredocs or len(inst.value) < 2:
            continue
        for raw in inst.value[:-1]:
            src = unquote(raw)
            if src.endswith(_ARCHIVES) or src.startswith(("http://", "https://", "git@")):
                continue
            yield Hit(inst, f"ADD of local `{src}`: use COPY")
            break


@_register(
    "DL3021",
    "copy-dest-slash",
    S.ERROR,
    "correctness",
    "COPY of several sources to a destination without a trailing /",
    "the build fails: several sources need a directory as destination",
    "end the destination with /",
)
def dl3021(ctx: LintContext) -> Iterator[Hit]:
    for inst in _all(ctx, "copy"):
        if inst.heredocs or len(inst.value) <= 2:
            continue
        dest = unquote(inst.value[-1])
        if not dest.endswith("/"):
            yield Hit(inst, f"{len(inst.value) - 1} sources but `{dest}` is not a directory")


def _copy_from(inst: Instruction) -> str | None:
    return inst.flag("from")


@_register(
    "DL3022",
    "copy-from-alias",
    S.WARNING,
    "correctness",
    "COPY --from names no earlier stage",
    "BuildKit then pulls an image of that name",
    "name an earlier stage, or use a full image reference",
)
def dl3022(ctx: LintContext) -> Iterator[Hit]:
    names: set[str] = set()
    count = 0
    for inst in ctx.dockerfile.instructions:
        if inst.cmd == "from":
            alias = _from_parts(inst)[1]
            if alias:
                names.add(alias)
            count += 1
        elif inst.cmd == "copy":
            src = _copy_from(inst)
            if src is None or ":" in unquote(src) or src in names:
                continue
            if src.isdigit() and int(src) < count:
                continue
            yield Hit(inst, f"--from={src} is not an earlier stage")


@_register(
    "DL3023",
    "copy-from-own-stage",
    S.ERROR,
    "correctness",
    "COPY --from its own stage",
    "a stage cannot copy from itself",
    "copy from an earlier stage",
)
def dl3023(ctx: LintContext) -> Iterator[Hit]:
    alias: str | None = None
    for inst in ctx.dockerfile.instructions:
        if inst.cmd == "from":
            alias = _from_parts(inst)[1]
        elif inst.cmd == "copy" and alias is not None and _copy_from(inst) == alias:
            yield Hit(inst, f"--from={alias} is this stage")


@_register(
    "DL3024",
    "unique-stage-names",
    S.ERROR,
    "correctness",
    "Two stages with the same name",
    "BuildKit refuses the Dockerfile",
    "give every stage a unique name",
)
def dl3024(ctx: LintContext) -> Iterator[Hit]:
    seen: set[str] = set()
    for inst in _all(ctx, "from"):
        alias = _from_parts(inst)[1]
        if alias is None:
            continue
        if alias in seen:
            yield Hit(inst, f"stage name {alias} is used twice")
        seen.add(alias)


@_register(
    "DL3025",
    "json-cmd",
    S.WARNING,
    "security",
    "Shell form CMD, ENTRYPOINT or HEALTHCHECK",
    "the shell becomes PID 1 and does not forward signals",
    'use the JSON form: CMD ["prog", "arg"]',
)
def dl3025(ctx: LintContext) -> Iterator[Hit]:
    for inst in _all(ctx, "cmd", "entrypoint", "healthcheck"):
        if inst.cmd == "healthcheck":
            if inst.value and inst.value[0].upper() == "CMD" and not inst.json:
                yield Hit(inst, "HEALTHCHECK CMD in shell form")
        elif not inst.json:
            yield Hit(inst, f"{inst.cmd.upper()} in shell form")


def _registry_allowed(allowed: tuple[str, ...], registry: str) -> bool:
    for pattern in allowed:
        if pattern == "*":
            return True
        if pattern.startswith("*") and registry.endswith(pattern[1:]):
            return True
        if pattern.endswith("*") and registry.startswith(pattern[:-1]):
            return True
        if pattern == registry:
            return True
    return False


def _image_allowed(allowed: tuple[str, ...], aliases: set[str], image: str) -> bool:
    if not allowed or image in aliases:
        return True
    name = image.split("@", 1)[0]
    first, sep, _rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return _registry_allowed(allowed, first)
    stem = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
    return (
        stem == "scratch"
        or _registry_allowed(allowed, "docker.io")
        or _registry_allowed(allowed, "hub.docker.com")
    )


@_register(
    "DL3026",
    "allowed-registry",
    S.ERROR,
    "security",
    "Image from a registry outside `trusted-registries`",
    "your policy lists the registries you trust to serve images",
    "use an image from a trusted registry, or add the registry to the list",
)
def dl3026(ctx: LintContext) -> Iterator[Hit]:
    allowed = ctx.config.trusted_registries
    if not allowed:
        return
    aliases: set[str] = set()
    for inst in ctx.dockerfile.instructions:
        if inst.cmd == "from":
            image, alias = _from_parts(inst)
            stem = image.split("@", 1)[0]
            if ":" in stem.rsplit("/", 1)[-1]:
                stem = stem.rsplit(":", 1)[0]
            if not _image_allowed(allowed, aliases, image) and stem not in aliases:
                yield Hit(inst, f"`{image}` is not from a trusted registry")
            if alias:
                aliases.add(alias)
        elif inst.cmd == "copy":
            src = _copy_from(inst)
            if src is not None and not _image_allowed(allowed, aliases, src):
                yield Hit(inst, f"--from={src} is not from a trusted registry")


@_register(
    "DL3029",
    "no-platform-flag",
    S.WARNING,
    "correctness",
    "FROM --platform with a fixed platform",
    "a fixed platform breaks multi-platform builds",
    "remove --platform, or use $BUILDPLATFORM/$TARGETPLATFORM",
)
def dl3029(ctx: LintContext) -> Iterator[Hit]:
    for inst in _all(ctx, "from"):
        platform = inst.flag("platform")
        if platform is not None and not (
            "BUILDPLATFORM" in platform or "TARGETPLATFORM" in platform
        ):
            yield Hit(inst, f"--platform={platform}")


@_register(
    "DL3043",
    "onbuild-forbidden",
    S.ERROR,
    "correctness",
    "ONBUILD of ONBUILD, FROM or MAINTAINER",
    "the builder refuses these triggers",
    "remove the instruction from ONBUILD",
)
def dl3043(ctx: LintContext) -> Iterator[Hit]:
    for inst in _all(ctx, "onbuild"):
        if inst.child is not None and inst.child.cmd in ("onbuild", "from", "maintainer"):
            yield Hit(inst, f"ONBUILD {inst.child.cmd.upper()}")


def _env_pairs(inst: Instruction) -> list[tuple[str, str]]:
    vals = inst.value
    return [(vals[i], vals[i + 1]) for i in range(0, len(vals) - 1, 3)]


def _refers(name: str, text: str) -> bool:
    if "${" + name + "}" in text:
        return True
    return bool(re.search(r"\$" + re.escape(name) + r"(?![A-Za-z0-9_])", text))


@_register(
    "DL3044",
    "env-self-reference",
    S.ERROR,
    "correctness",
    "ENV refers to a variable defined in the same ENV",
    "the reference expands to the old value, not the one being set",
    "split the ENV in two",
)
def dl3044(ctx: LintContext) -> Iterator[Hit]:
    known: set[str] = set()
    for inst in ctx.dockerfile.instructions:
        if inst.cmd == "arg":
            known.update(w.partition("=")[0] for w in inst.value)
        elif inst.cmd == "env":
            pairs = _env_pairs(inst)
            for i, (name, _value) in enumerate(pairs):
                if name in known:
                    continue
                others = [v for j, (_n, v) in enumerate(pairs) if j != i]
                if any(_refers(name, v) for v in others):
                    yield Hit(inst, f"${name} is defined in this same ENV")
                    break
            known.update(n for n, _ in pairs)


@_register(
    "DL3045",
    "copy-relative-no-workdir",
    S.WARNING,
    "correctness",
    "COPY to a relative destination without WORKDIR",
    "the destination then depends on the base image's WORKDIR",
    "set WORKDIR first, or copy to an absolute path",
)
def dl3045(ctx: LintContext) -> Iterator[Hit]:
    workdir: dict[str, bool] = {}
    current = ""
    for inst in ctx.dockerfile.instructions:
        if inst.cmd == "from":
            image, alias = _from_parts(inst)
            parent = workdir.get(image, False)
            current = alias or image
            workdir[current] = parent
        elif inst.cmd == "workdir":
            workdir[current] = True
        elif inst.cmd == "copy" and inst.value:
            if workdir.get(current):
                continue
            dest = unquote(inst.value[-1])
            if dest.startswith(("/", "$")) or re.match(r"^[A-Za-z]:", dest):
                continue
            yield Hit(inst, f"COPY to relative `{dest}` without WORKDIR")


_LABEL_KEY = re.compile(r"[a-z0-9._/-]*")


@_register(
    "DL3048",
    "label-key",
    S.STYLE,
    "correctness",
    "Invalid LABEL key",
    "label keys should be lower-case reverse-DNS names outside Docker's namespaces",
    "use keys like `org.example.key`",
)
def dl3048(ctx: LintContext) -> Iterator[Hit]:
    for inst in _all(ctx, "label"):
        for key, _value in _env_pairs(inst):
            k = unquote(key)
            bad = (
                not k[:1].islower()
                or not (k[-1:].islower() or k[-1:].isdigit())
                or not _LABEL_KEY.fullmatch(k)
                or k.startswith(("com.docker.", "io.docker.", "org.dockerproject."))
                or ".." in k
                or "--" in k
            )
            if bad:
                yield Hit(inst, f"invalid label key `{k}`")
                break


def _labels(inst: Instruction) -> list[tuple[str, str]]:
    return [(unquote(k), unquote(v)) for k, v in _env_pairs(inst)]


@_register(
    "DL3049",
    "label-missing",
    S.INFO,
    "correctness",
    "A label required by the label schema is missing",
    "your policy requires these labels on every image",
    "add the label",
)
def dl3049(ctx: LintContext) -> Iterator[Hit]:
    schema = ctx.config.label_schema
    if not schema:
        return
    for st in ctx.stages:
        present = {
            k for inst in st.all_instructions() if inst.cmd == "label" for k, _ in _labels(inst)
        }
        used_later = any(
            s.parent is st or (inst.flag("from") == st.name and st.name)
            for s in ctx.stages
            for inst in s.instructions
            if inst.cmd == "copy"
        )
        if used_later and not st.final:
            continue
        for label in schema:
            if label not in present:
                yield Hit(st.from_inst, f"label `{label}` is missing")


@_register(
    "DL3050",
    "label-superfluous",
    S.INFO,
    "correctness",
    "Label not in the schema (strict-labels)",
    "with strict labels only the schema's labels are allowed",
    "remove the label or add it to the schema",
)
def dl3050(ctx: LintContext) -> Iterator[Hit]:
    if not ctx.config.strict_labels:
        return
    for inst in _all(ctx, "label"):
        if any(k not in ctx.config.label_schema for k, _ in _labels(inst)):
            yield Hit(inst, "superfluous label")


_SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?"
)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]*")
_SPDX = re.compile(r"[A-Za-z0-9.+-]+( (AND|OR|WITH) [A-Za-z0-9.+-]+)*")


def _rfc3339(value: str) -> bool:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return "T" in value or " " in value


_CHECKS: dict[str, tuple[str, Callable[[str], bool]]] = {
    "url": ("DL3052", lambda v: bool(_URL.fullmatch(v))),
    "rfc3339": ("DL3053", _rfc3339),
    "spdx": ("DL3054", lambda v: bool(_SPDX.fullmatch(v))),
    "hash": ("DL3055", lambda v: bool(re.fullmatch(r"[0-9a-f]{7}|[0-9a-f]{40}", v))),
    "semver": ("DL3056", lambda v: bool(_SEMVER.fullmatch(v))),
    "email": ("DL3058", lambda v: bool(_EMAIL.fullmatch(v))),
}


@_register(
    "DL3051",
    "label-empty",
    S.WARNING,
    "correctness",
    "A schema label is empty",
    "an empty required label carries no information",
    "give the label a value",
)
def dl3051(ctx: LintContext) -> Iterator[Hit]:
    schema = ctx.config.label_schema
    for inst in _all(ctx, "label"):
        for k, v in _labels(inst):
            if k in schema and not v:
                yield Hit(inst, f"label `{k}` is empty")


def _typed(code: str) -> Callable[[LintContext], Iterator[Hit]]:
    def check(ctx: LintContext) -> Iterator[Hit]:
        for inst in _all(ctx, "label"):
            for k, v in _labels(inst):
                kind = ctx.config.label_schema.get(k)
                entry = _CHECKS.get(kind or "")
                if entry and entry[0] == code and not entry[1](v):
                    yield Hit(inst, f"label `{k}` is not a valid {kind}")

    return check


for _kind, (_code, _fn) in _CHECKS.items():
    _register(
        _code,
        f"label-{_kind}",
        S.WARNING,
        "correctness",
        f"Schema label is not a valid {_kind}",
        "your label schema says this label holds that kind of value",
        f"give the label a valid {_kind} value",
    )(_typed(_code))


@_register(
    "DL3061",
    "from-first",
    S.ERROR,
    "correctness",
    "Instruction before the first FROM (other than ARG)",
    "the builder refuses the Dockerfile",
    "start with FROM (or ARG)",
)
def dl3061(ctx: LintContext) -> Iterator[Hit]:
    for inst in ctx.dockerfile.instructions:
        if inst.cmd == "from":
            return
        if inst.cmd != "arg":
            yield Hit(inst, f"{inst.cmd.upper()} before FROM")


@_register(
    "DL3063",
    "reserved-stage-name",
    S.WARNING,
    "correctness",
    "Stage named `scratch` or `context`",
    "these names are reserved and confuse COPY --from and FROM",
    "rename the stage",
)
def dl3063(ctx: LintContext) -> Iterator[Hit]:
    for inst in _all(ctx, "from"):
        alias = _from_parts(inst)[1]
        if alias in ("scratch", "context"):
            yield Hit(inst, f"stage name `{alias}` is reserved")


_SENSITIVE = frozenset(
    """ACCESS_TOKEN APPLICATION_KEY APP_SECRET AUTH_TOKEN AWS_ACCESS_KEY_ID
    AWS_SECRET_ACCESS_KEY BITTREX_API_KEY BITTREX_API_SECRET CF_PASSWORD CF_USERNAME
    CIRCLE_TOKEN CI_DEPLOY_PASSWORD CI_DEPLOY_USER DOCKERHUB_PASSWORD DOCKER_EMAIL
    DOCKER_PASSWORD DOCKER_USERNAME FACEBOOK_ACCESS_TOKEN FACEBOOK_APP_ID FACEBOOK_APP_SECRET
    FIREBASE_API_TOKEN FIREBASE_TOKEN FOSSA_API_KEY GH_ENTERPRISE_TOKEN GH_TOKEN
    GITHUB_ENTERPRISE_TOKEN GITHUB_TOKEN HEROKU_API_KEY HEROKU_API_USER NPM_AUTH_TOKEN
    NPM_TOKEN OKTA_AUTHN_GROUPID OKTA_CLIENT_ORGURL OKTA_CLIENT_TOKEN OKTA_OAUTH2_CLIENTID
    OKTA_OAUTH2_CLIENTSECRET OPENAI_API_KEY OS_PASSWORD OS_USERNAME POSTGRES_PASSWORD
    SLACK_TOKEN STRIPE_API_KEY STRIPE_DEVICE_NAME TRAVIS_OS_NAME TRAVIS_SECURE_ENV_VARS
    TRAVIS_SUDO VAULT_CLIENT_KEY VAULT_TOKEN""".split()
)
_SUSPICIOUS = ("api_key", "client_key", "password", "private", "secret", "token", "username")


def _sensitive(name: str) -> bool:
    return name.upper() in _SENSITIVE or any(s in name.lower() for s in _SUSPICIOUS)


@_register(
    "DL3064",
    "sensitive-arg-env",
    S.WARNING,
    "security",
    "ARG or ENV name suggests a secret",
    "ARG values stay in the image history and ENV values in its config",
    "use a build secret (`RUN --mount=type=secret`) or pass it at run time",
)
def dl3064(ctx: LintContext) -> Iterator[Hit]:
    for inst in ctx.dockerfile.instructions:
        target = inst.child if inst.cmd == "onbuild" and inst.child is not None else inst
        if target.cmd == "arg":
            names = [w.partition("=")[0] for w in target.value]
        elif target.cmd == "env":
            names = [n for n, _ in _env_pairs(target)]
        else:
            continue
        if any(_sensitive(n) for n in names):
            yield Hit(inst, "name suggests sensitive data")


@_register(
    "DL3065",
    "redundant-target-platform",
    S.WARNING,
    "correctness",
    "FROM --platform=$TARGETPLATFORM",
    "that is already the default",
    "remove the flag",
)
def dl3065(ctx: LintContext) -> Iterator[Hit]:
    for inst in _all(ctx, "from"):
        if inst.flag("platform") in ("$TARGETPLATFORM", "${TARGETPLATFORM}"):
            yield Hit(inst, "--platform=$TARGETPLATFORM is the default")


@_register(
    "DL3066",
    "numeric-user",
    S.INFO,
    "security",
    "USER by name, not numeric id",
    "a user name may not resolve on the host (or in Kubernetes' runAsNonRoot check)",
    "use a numeric uid (`USER 10001`)",
)
def dl3066(ctx: LintContext) -> Iterator[Hit]:
    args: set[str] = set()
    for inst in ctx.dockerfile.instructions:
        if inst.cmd == "arg":
            args.update(w.partition("=")[0] for w in inst.value)
        elif inst.cmd == "user" and inst.value:
            uid = inst.value[0].split(":", 1)[0]
            if uid.isdigit() or any(("${" + a + "}") in uid or ("$" + a) in uid for a in args):
                continue
            yield Hit(inst, f"USER {uid} is not numeric")


@_register(
    "DL3067",
    "copy-whole-filesystem",
    S.WARNING,
    "size",
    "COPY --from=<stage> / /",
    "copying a whole filesystem drags every file of the other stage along",
    "copy only the paths you need",
)
def dl3067(ctx: LintContext) -> Iterator[Hit]:
    for inst in _all(ctx, "copy"):
        if inst.flag("from") is None or len(inst.value) < 2:
            continue
        if unquote(inst.value[-1]) == "/" and any(unquote(s) == "/" for s in inst.value[:-1]):
            yield Hit(inst, "copies the whole filesystem of another stage")


@_register(
    "DL4000",
    "maintainer-deprecated",
    S.ERROR,
    "correctness",
    "MAINTAINER is deprecated",
    "MAINTAINER is ignored by modern tooling",
    'use `LABEL org.opencontainers.image.authors="..."`',
)
def dl4000(ctx: LintContext) -> Iterator[Hit]:
    for inst in _all(ctx, "maintainer"):
        yield Hit(inst, "MAINTAINER is deprecated")


def _multiple(ctx: LintContext, cmd: str) -> Iterator[Hit]:
    for st in ctx.stages:
        seen = False
        for inst in st.instructions:
            if inst.cmd == cmd:
                if seen:
                    yield Hit(inst, f"more than one {cmd.upper()} in this stage")
                seen = True


@_register(
    "DL4003",
    "one-cmd",
    S.WARNING,
    "correctness",
    "More than one CMD in a stage",
    "only the last CMD takes effect",
    "keep one CMD per stage",
)
def dl4003(ctx: LintContext) -> Iterator[Hit]:
    yield from _multiple(ctx, "cmd")


@_register(
    "DL4004",
    "one-entrypoint",
    S.ERROR,
    "correctness",
    "More than one ENTRYPOINT in a stage",
    "only the last ENTRYPOINT takes effect",
    "keep one ENTRYPOINT per stage",
)
def dl4004(ctx: LintContext) -> Iterator[Hit]:
    yield from _multiple(ctx, "entrypoint")
