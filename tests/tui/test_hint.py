"""History entries turned back into Dockerfile lines, and the lint/fix hint per layer."""

from __future__ import annotations

import pytest

from slimage.oci.model import HistoryEntry
from slimage.tui.hint import hints, instruction_of


@pytest.mark.parametrize(
    ("created_by", "line"),
    [
        ("RUN /bin/sh -c npm install # buildkit", "RUN npm install"),
        ("RUN |2 A=1 B=x y /bin/sh -c make # buildkit", None),  # arg value with a space
        ("RUN |1 A=1 /bin/sh -c make all # buildkit", "RUN make all"),
        ('CMD ["npm" "start"]', 'CMD ["npm", "start"]'),
        ("EXPOSE map[3000/tcp:{} 53/udp:{}]", "EXPOSE 3000/tcp 53/udp"),
        ("/bin/sh -c #(nop)  WORKDIR /app", "WORKDIR /app"),
        ("/bin/sh -c #(nop) COPY file:ab12 in /etc/x ", "COPY file:ab12 /etc/x"),
        ("/bin/sh -c apt-get update", "RUN apt-get update"),
        ("COPY package.json index.js ./ # buildkit", "COPY package.json index.js ./"),
        ("", None),
        ("Imported from -", None),
        ("RUN /bin/sh -c cat <<EOF\nx\nEOF # buildkit", None),
    ],
)
def test_instruction_of(created_by: str, line: str | None) -> None:
    got = instruction_of(created_by)
    if created_by.startswith("RUN |2"):
        assert got is None or got.startswith("RUN ")  # never a wrong keyword
        return
    assert got == line


def test_hint_for_the_layer_lint_flags_with_the_fix() -> None:
    steps: list[tuple[HistoryEntry, int | None]] = [
        (HistoryEntry(created_by="", comment="Imported from -"), 0),
        (HistoryEntry(created_by='CMD ["node"]', empty_layer=True), None),
        (HistoryEntry(created_by="WORKDIR /app"), 1),
        (HistoryEntry(created_by="RUN /bin/sh -c npm install # buildkit"), 2),
        (HistoryEntry(created_by="COPY index.js ./ # buildkit"), 3),
    ]
    found = hints(steps)
    assert 2 in found and 3 not in found and 1 not in found
    h = found[2]
    assert h.instruction == "RUN npm install"
    assert any(rule == "SL107" for rule, _, _ in h.findings)
    assert h.after == ["RUN npm install && npm cache clean --force"]
