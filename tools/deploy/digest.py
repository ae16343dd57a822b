"""Reading `pulumi preview --json` for the gate: the whole digest of this stack's preview, or a clear refusal.

The digest (pulumi/pulumi pkg/display/json.go `PreviewDigest`, filled by pkg/backend/display/json.go
`ShowPreviewDigest`) always holds the root Stack's step (display.go `isRootStack` is shown whatever the flags) and,
once the engine's SummaryEvent arrived, `changeSummary`. A document without them is a fragment, an empty object or
another tool's JSON: the gate would find nothing to refuse in it, so it refuses to judge it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tools.deploy.gate_model import GateInputError
from tools.offline.engine import PROJECT
from tools.offline.engine_urns import ROOT_STACK, parse

DIGEST_KEYS = frozenset({"config", "steps", "diagnostics", "duration", "changeSummary", "maybeCorrupt"})


def _event_line(line: str) -> bool:
    """A line of the engine's event stream (`apitype.EngineEvent`: sequence, timestamp and one payload)."""
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return False
    return isinstance(event, dict) and bool({"sequence", "timestamp", "type"} & set(event))


def load_preview(text: str, source: str) -> dict[str, Any]:
    """The preview digest; CLI output that leaked onto stdout before it (dependency installs) is skipped."""
    if not text.strip():
        raise GateInputError(f"{source} is empty: the preview stopped before it printed its JSON (see its messages)")
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > 1 and _event_line(lines[0]):
        raise GateInputError(
            f"{source} is a stream of engine events, one per line (PULUMI_ENABLE_STREAMING_JSON_PREVIEW is set): "
            "unset it; the gate reads the single document `pulumi preview --json` prints"
        )
    # The digest is printed indented (json.MarshalIndent): it starts with a line holding only "{".
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n" and text[i + 1 : i + 2] == "{"]
    doc: Any = None
    for start in starts:
        try:
            candidate = json.loads(text[start:])
        except json.JSONDecodeError:
            continue
        if isinstance(candidate, dict) and (start == 0 or DIGEST_KEYS & set(candidate)):
            doc = candidate
            break
    if doc is None:
        raise GateInputError(f"{source} is not the JSON of `pulumi preview --json`")
    if not isinstance(doc.get("steps", []), list) or not (DIGEST_KEYS & set(doc) or not doc):
        raise GateInputError(f"{source}: no `steps` list: not the output of `pulumi preview --json`")
    return dict(doc)


def check_whole(doc: Mapping[str, Any], stack: str, source: str) -> str:
    """The stack the digest previews; GateInputError unless it is one whole digest of this project's `stack`."""
    steps = doc.get("steps") or []
    missing: list[str] = []
    stacks: set[str] = set()
    projects: set[str] = set()
    root = False
    for i, step in enumerate(steps):
        urn = step.get("urn") if isinstance(step, Mapping) else None
        try:
            parsed = parse(str(urn))
        except ValueError:
            raise GateInputError(f"{source}: step {i} has no valid URN ({urn!r}): not a preview digest") from None
        stacks.add(parsed.stack)
        projects.add(parsed.project)
        root = root or (parsed.type == ROOT_STACK and not parsed.parent_types)
    if not root:
        missing.append("no root Stack step (every preview shows it: display.go isRootStack)")
    if not isinstance(doc.get("changeSummary"), Mapping):
        missing.append("no changeSummary (written when the preview ends: the engine's SummaryEvent)")
    if missing:
        raise GateInputError(
            f"{source} is not a whole preview digest: {'; '.join(missing)}. Give the gate the whole output of "
            "`pulumi preview --json` (make gate STACK=<stack>)"
        )
    if projects != {PROJECT}:
        raise GateInputError(
            f"{source} previews project {', '.join(sorted(projects))}, not {PROJECT}: not this program's preview"
        )
    if len(stacks) != 1:
        raise GateInputError(f"{source} mixes the URNs of stacks {', '.join(sorted(stacks))}: not one preview")
    (found,) = stacks
    if stack and found != stack:
        raise GateInputError(
            f"{source} is a preview of stack {found}, but the gate was run with --stack {stack}: judging it would "
            f"name {stack}'s commands beside {found}'s resources. Preview {stack} itself (make gate STACK={stack})"
        )
    return found
