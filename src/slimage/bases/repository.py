"""A Debian repository client: signed InRelease, verified Packages indexes, verified .debs.

Trust flows from the keyring only: InRelease must pass `gpgv` against
debian-archive-keyring (or the keyring given), and we read the text gpgv says it verified,
never the cleartext around it. Every Packages index and every .deb is then checked against
the SHA256 in that signed text. Parsed indexes are cached by their hash, so a warm build
does not re-parse 50 MB of text.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import lzma
import marshal
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from slimage.bases import fetch
from slimage.bases.control import iter_paragraphs, parse_paragraph
from slimage.bases.errors import HashMismatchError, RepositoryError, SignatureError
from slimage.bases.version import compare_versions

DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
DEFAULT_SUITE = "bookworm"
SNAPSHOT_BASE = "http://snapshot.debian.org/archive"
DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
ARCHITECTURES = ("amd64", "arm64")

_FIELDS = (
    "Package",
    "Version",
    "Architecture",
    "Depends",
    "Pre-Depends",
    "Provides",
    "Essential",
    "Filename",
    "Size",
    "SHA256",
    "Multi-Arch",
    "Priority",
    "Section",
    "Source",
    "Installed-Size",
    "Conflicts",
    "Breaks",
)
_INDEX_FORMAT = 4  # bump when the cached tuple layout changes


def snapshot_url(archive: str, timestamp: str) -> str:
    """snapshot.debian.org's URL for ARCHIVE ('debian', 'debian-security') at TIMESTAMP
    (YYYYMMDDTHHMMSSZ), the form apt's `snapshot:` option uses."""
    ts = timestamp.strip()
    if len(ts) != 16 or ts[8] != "T" or not ts.endswith("Z") or not ts[:8].isdigit():
        from slimage.errors import UsageError

        raise UsageError(f"snapshot timestamp {timestamp!r}: expected YYYYMMDDTHHMMSSZ")
    return f"{SNAPSHOT_BASE}/{archive}/{ts}"


@dataclass(frozen=True)
class Source:
    """One `deb URL SUITE COMPONENTS` line."""

    url: str
    suite: str
    components: tuple[str, ...] = ("main",)
    snapshot: bool = False

    def to_dict(self) -> dict[str, object]:
        return {"url": self.url, "suite": self.suite, "components": list(self.components)}

    def __str__(self) -> str:
        return f"{self.url} {self.suite} {' '.join(self.components)}"


def default_sources(
    suite: str = DEFAULT_SUITE,
    *,
    mirror: str | None = None,
    security_mirror: str | None = None,
    snapshot: str | None = None,
    updates: bool = True,
    security: bool = True,
) -> list[Source]:
    """SUITE, SUITE-updates and SUITE-security, as a stock Debian install has them."""
    snap = bool(snapshot)
    if snapshot:
        base = snapshot_url("debian", snapshot)
        sec = snapshot_url("debian-security", snapshot)
    else:
        base = (mirror or DEFAULT_MIRROR).rstrip("/")
        sec = (security_mirror or DEFAULT_SECURITY_MIRROR).rstrip("/")
    sources = [Source(base, suite, snapshot=snap)]
    if updates and suite not in ("sid", "unstable"):
        sources.append(Source(base, f"{suite}-updates", snapshot=snap))
    if security and suite not in ("sid", "unstable") and (mirror is None or security_mirror):
        sources.append(Source(sec, f"{suite}-security", snapshot=snap))
    return sources


@dataclass(slots=True)
class PackageRecord:
    """One stanza of a Packages index, with the mirror it came from."""

    name: str
    version: str
    architecture: str
    depends: str = ""
    pre_depends: str = ""
    provides: str = ""
    essential: bool = False
    filename: str = ""
    size: int = 0
    sha256: str = ""
    multi_arch: str = ""
    priority: str = ""
    section: str = ""
    source: str = ""
    installed_size: int = 0
    base_url: str = ""
    suite: str = ""
    conflicts: str = ""  # Conflicts and Breaks, joined: both forbid co-installation

    @property
    def url(self) -> str:
        return f"{self.base_url}/{self.filename}"

    @property
    def source_name(self) -> str:
        return (self.source or self.name).split(" ", 1)[0]

    def __str__(self) -> str:
        return f"{self.name} {self.version} ({self.architecture})"


@dataclass
class Release:
    source: Source
    fields: dict[str, str]
    sha256: dict[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def by_hash(self) -> bool:
        return self.fields.get("Acquire-By-Hash", "").lower() == "yes"


def verify_inrelease(data: bytes, keyring: str | Path, *, what: str) -> bytes:
    """Run gpgv on a clearsigned InRelease; returns the signed text gpgv vouches for."""
    gpgv = shutil.which("gpgv")
    if gpgv is None:
        raise SignatureError("gpgv is not installed; cannot verify the repository signature")
    if not Path(keyring).exists():
        raise SignatureError(f"keyring {keyring} not found (install debian-archive-keyring)")
    with tempfile.TemporaryDirectory(prefix="slimage-gpgv-") as tmp:
        signed = Path(tmp) / "InRelease"
        out = Path(tmp) / "verified"
        signed.write_bytes(data)
        res = subprocess.run(
            [gpgv, "--quiet", "--keyring", str(keyring), "--output", str(out), str(signed)],
            capture_output=True,
            text=True,
        )
        if res.returncode != 0 or not out.exists():
            detail = " ".join(
                line.replace("gpgv: ", "") for line in res.stderr.splitlines() if line.strip()
            )
            raise SignatureError(
                f"{what}: signature does not verify with {keyring}; refused ({detail[:200]})"
            )
        return out.read_bytes()


def _parse_release(text: bytes, source: Source) -> Release:
    fields = parse_paragraph(text.decode("utf-8", "replace"))
    rel = Release(source, fields)
    for line in fields.get("SHA256", "").splitlines():
        parts = line.split()
        if len(parts) == 3:
            rel.sha256[parts[2]] = (parts[0], int(parts[1]))
    if not rel.sha256:
        raise RepositoryError(f"{source}: InRelease lists no SHA256 checksums")
    return rel


def _check_valid_until(rel: Release) -> None:
    """Replay protection: an expired Release is refused unless it comes from a snapshot."""
    until = rel.fields.get("Valid-Until")
    if not until or rel.source.snapshot:
        return
    try:
        when = email.utils.parsedate_to_datetime(until)
    except (TypeError, ValueError):
        return
    if when < _dt.datetime.now(_dt.UTC):
        raise SignatureError(f"{rel.source}: InRelease expired on {until}; refused (stale mirror?)")


class Repository:
    """Packages from a list of sources for one architecture (plus `all`)."""

    def __init__(
        self,
        sources: Iterable[Source],
        arch: str = "amd64",
        *,
        keyring: str | Path = DEFAULT_KEYRING,
        cache_dir: Path | None = None,
        offline: bool = False,
    ):
        if arch not in ARCHITECTURES:
            from slimage.errors import UsageError

            raise UsageError(
                f"architecture {arch!r} not supported (use one of {', '.join(ARCHITECTURES)})"
            )
        self.sources = list(sources)
        self.arch = arch
        self.keyring = str(keyring)
        self.cache_dir = Path(cache_dir) if cache_dir else fetch.default_cache_dir()
        self.offline = offline
        self._index: PackageIndex | None = None

    # -- metadata ------------------------------------------------------------------
    def _lists(self) -> Path:
        return self.cache_dir / "lists"

    def _release_cache(self, source: Source) -> Path:
        key = f"{source.url}/dists/{source.suite}".split("://", 1)[-1].replace("/", "_")
        return self._lists() / f"{key}_InRelease"

    def release(self, source: Source) -> Release:
        url = f"{source.url}/dists/{source.suite}/InRelease"
        cached = self._release_cache(source)
        if self.offline:
            if not cached.exists():
                raise RepositoryError(f"{url}: not in the cache and --offline was given")
            data = cached.read_bytes()
        else:
            data = fetch.get_bytes(url, limit=16 << 20)
        text = verify_inrelease(data, self.keyring, what=url)
        rel = _parse_release(text, source)
        if not self.offline:
            _check_valid_until(rel)
            fetch.atomic_write(cached, data)
        return rel

    def _packages_file(self, rel: Release, component: str) -> tuple[str, str, int]:
        stem = f"{component}/binary-{self.arch}/Packages"
        for ext in (".xz", ".gz", ""):
            if stem + ext in rel.sha256:
                digest, size = rel.sha256[stem + ext]
                return stem + ext, digest, size
        raise RepositoryError(
            f"{rel.source.url} {rel.source.suite}: no {stem} for {self.arch} in InRelease "
            f"(architectures: {rel.fields.get('Architectures', '?')})"
        )

    def _fetch_packages(self, rel: Release, component: str) -> list[tuple]:
        path, digest, size = self._packages_file(rel, component)
        parsed = self._lists() / f"{digest}.idx{_INDEX_FORMAT}"
        if parsed.exists():
            try:
                rows: list[tuple] = marshal.loads(parsed.read_bytes())
                return rows
            except (EOFError, ValueError, TypeError):
                parsed.unlink(missing_ok=True)
        raw_path = self._lists() / f"{digest}{Path(path).suffix if '.' in Path(path).name else ''}"
        if not raw_path.exists():
            if self.offline:
                raise RepositoryError(f"{path}: not in the cache and --offline was given")
            base = f"{rel.source.url}/dists/{rel.source.suite}"
            dirname = path.rsplit("/", 1)[0]
            url = f"{base}/{dirname}/by-hash/SHA256/{digest}" if rel.by_hash else f"{base}/{path}"
            try:
                fetch.download_verified(url, raw_path, digest, size)
            except RepositoryError as exc:
                if not rel.by_hash or isinstance(exc, HashMismatchError):
                    raise
                fetch.download_verified(f"{base}/{path}", raw_path, digest, size)
        elif fetch.file_sha256(raw_path) != digest:
            raw_path.unlink()
            raise HashMismatchError(f"cached {path} is corrupt; removed, run again")
        data = raw_path.read_bytes()
        if path.endswith(".xz"):
            data = lzma.decompress(data)
        elif path.endswith(".gz"):
            data = zlib.decompress(data, 47)
        rows = []
        for p in iter_paragraphs(data, _FIELDS):
            if "Package" not in p or "Version" not in p:
                continue
            rows.append(
                (
                    p["Package"],
                    p["Version"],
                    p.get("Architecture", ""),
                    p.get("Depends", ""),
                    p.get("Pre-Depends", ""),
                    p.get("Provides", ""),
                    p.get("Essential", "") == "yes",
                    p.get("Filename", ""),
                    int(p.get("Size", "0") or 0),
                    p.get("SHA256", ""),
                    p.get("Multi-Arch", ""),
                    p.get("Priority", ""),
                    p.get("Section", ""),
                    p.get("Source", ""),
                    int(p.get("Installed-Size", "0") or 0),
                    tuple(parse_provides(p.get("Provides", ""))),
                    ", ".join(x for x in (p.get("Conflicts", ""), p.get("Breaks", "")) if x),
                )
            )
        fetch.atomic_write(parsed, marshal.dumps(rows))
        return rows

    def index(self) -> PackageIndex:
        if self._index is None:
            index = PackageIndex(self.arch)
            for source in self.sources:
                rel = self.release(source)
                for component in source.components:
                    index.add_rows(self._fetch_packages(rel, component), source.url, source.suite)
            self._index = index
        return self._index


class PackageIndex:
    """Every candidate version of every package, and who Provides what.

    Built from the cached index rows without making an object per stanza (an index has
    ~64k): `packages` maps a name to its raw rows, and records are made for the few
    names the resolver actually asks about."""

    def __init__(self, arch: str):
        self.arch = arch
        # name -> [(row, base_url, suite)] until first asked, then [PackageRecord]
        self.packages: dict[str, list] = {}
        # virtual name -> [(provider name, provider version, provided version)]
        self._provides: dict[str, list[tuple[str, str, str]]] = {}
        self._made: set[str] = set()

    def add_rows(self, rows: list[tuple], base_url: str, suite: str) -> None:
        ok = (self.arch, "all")
        packages = self.packages
        provides = self._provides
        for row in rows:
            if row[2] not in ok:
                continue
            name = row[0]
            entry = (row, base_url, suite)
            got = packages.get(name)
            if got is None:
                packages[name] = [entry]
            else:
                got.append(entry)
            for virtual, pversion in row[15]:
                provides.setdefault(virtual, []).append((name, row[1], pversion))

    def add(self, rec: PackageRecord) -> None:
        row = (
            rec.name,
            rec.version,
            rec.architecture,
            rec.depends,
            rec.pre_depends,
            rec.provides,
            rec.essential,
            rec.filename,
            rec.size,
            rec.sha256,
            rec.multi_arch,
            rec.priority,
            rec.section,
            rec.source,
            rec.installed_size,
            tuple(parse_provides(rec.provides)),
            rec.conflicts,
        )
        self._made.discard(rec.name)
        self.add_rows([row], rec.base_url, rec.suite)

    def candidates(self, name: str) -> list[PackageRecord]:
        """Versions of NAME, best (highest) first."""
        items = self.packages.get(name)
        if not items:
            return []
        if name not in self._made:
            records: list[PackageRecord] = []
            seen: set[tuple[str, str]] = set()
            for row, base_url, suite in items:
                if (row[1], row[2]) in seen:
                    continue  # the same version in two suites: the first source wins
                seen.add((row[1], row[2]))
                rec = PackageRecord(*row[:15])
                rec.base_url, rec.suite, rec.conflicts = base_url, suite, row[16]
                records.append(rec)
            if len(records) > 1:
                records.sort(key=_VersionKey, reverse=True)
            self.packages[name] = records
            self._made.add(name)
        return self.packages[name]

    def providers(self, virtual: str) -> list[tuple[PackageRecord, str]]:
        """(record, provided version) for each package that Provides VIRTUAL."""
        out: list[tuple[PackageRecord, str]] = []
        for name, version, pversion in self._provides.get(virtual, []):
            rec = next((r for r in self.candidates(name) if r.version == version), None)
            if rec is not None:
                out.append((rec, pversion))
        return out

    def has_provider(self, virtual: str) -> bool:
        return virtual in self._provides

    def __contains__(self, name: str) -> bool:
        return name in self.packages or name in self._provides

    def __len__(self) -> int:
        return sum(len(v) for v in self.packages.values())


def parse_provides(text: str) -> list[tuple[str, str]]:
    """`a (= 1), b` -> [(a, 1), (b, '')]"""
    out: list[tuple[str, str]] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, rest = item.partition("(")
        version = rest.rstrip(") ").lstrip("= ").strip() if rest else ""
        out.append((name.strip().split(":")[0], version))
    return out


class _VersionKey:
    __slots__ = ("v",)

    def __init__(self, rec: PackageRecord):
        self.v = rec.version

    def __lt__(self, other: _VersionKey) -> bool:
        return compare_versions(self.v, other.v) < 0
