"""A coding agent's history, generated: 8 projects of user, assistant and tool turns, with planted facts.

    from bench.agent_history import agent_history
    history = agent_history(tokens=1_000_000, facts=200, seed=2026)
    for turn in history.turns: memory.remember(turn.text, turn.session, turn.role, turn.title, said_at=turn.said_at)
    for fact in history.facts: memory.search(fact.query)   # fact.turn, fact.line: where it was said

What the turns hold, per project (each project is a session, named like the capture names them):
users ask for changes and report failures; the assistant explains, plans and writes code in the
project's own names; tools return real source code (the standard library's own modules, read as if
they were the project's files), test runs, git logs, grep results, build and service logs, and
README sections. Facts are the things agents look up later: API keys, commit hashes, UUIDs, ports,
versioned paths, snake_case flags, CamelCase classes, names with diacritics. Several facts share a
template across projects, services and environments (the staging and the production key of the
same service), so a query has to name what it wants; about a quarter of the queries are the value
itself (a hash, a key, a name), as when an agent meets it again and asks where it came from.

Deterministic for a seed on one Python installation (the source code is read from its stdlib).
Text tokens are estimated as the archive does (UTF-8 bytes / 4).
"""

from __future__ import annotations

import os
import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = ["Fact", "History", "Project", "Turn", "agent_history", "fact_locations"]


@dataclass(frozen=True)
class Turn:
    session: str
    role: str  # user, assistant, tool
    title: str | None
    text: str
    said_at: datetime


@dataclass(frozen=True)
class Fact:
    kind: str  # api_key, commit, uuid, port, path, flag, class, person
    project: str
    value: str
    line: str  # the line of the turn that holds it
    query: str  # what an agent would search for
    turn: int  # index into History.turns
    line_index: int  # 0-based line of that turn's text


@dataclass
class History:
    turns: list[Turn]
    facts: list[Fact]

    @property
    def characters(self) -> int:
        return sum(len(turn.text) for turn in self.turns)

    @property
    def tokens(self) -> int:
        return sum(-(-len(turn.text.encode("utf-8")) // 4) for turn in self.turns)


@dataclass(frozen=True)
class Project:
    name: str
    package: str
    services: tuple[str, ...]
    modules: tuple[str, ...]
    things: tuple[str, ...]  # what its code is about


PROJECTS = (
    Project(
        "atlas-billing", "atlas", ("ledger-api", "invoice-worker", "webhook-relay"),
        ("invoices", "ledger", "payments", "tax_rules", "webhooks"), ("invoice", "refund", "payout", "ledger entry"),
    ),
    Project(
        "orbit-etl", "orbit", ("ingest-gateway", "batch-scheduler", "parquet-writer"),
        ("extract", "transform", "loaders", "schedules", "schemas"), ("batch", "partition", "schema", "checkpoint"),
    ),
    Project(
        "kestrel-web", "kestrel", ("frontend-ssr", "session-store", "asset-cdn"),
        ("routes", "templates", "sessions", "auth", "middleware"), ("session", "cookie", "route", "template"),
    ),
    Project(
        "nimbus-cli", "nimbus", ("release-bot", "update-server", "telemetry-sink"),
        ("commands", "config", "updater", "plugins", "output"), ("command", "plugin", "profile", "update"),
    ),
    Project(
        "quill-docs", "quill", ("search-indexer", "preview-renderer", "docs-api"),
        ("parser", "renderer", "toc", "search", "themes"), ("page", "heading", "snippet", "index"),
    ),
    Project(
        "harbor-infra", "harbor", ("vault-proxy", "dns-updater", "backup-agent"),
        ("terraform", "ansible", "backups", "dns", "secrets"), ("volume", "snapshot", "record", "secret"),
    ),
    Project(
        "lumen-ml", "lumen", ("feature-store", "model-server", "eval-runner"),
        ("features", "training", "serving", "metrics", "datasets"), ("feature", "model", "embedding", "dataset"),
    ),
    Project(
        "ferro-engine", "ferro", ("physics-core", "asset-loader", "net-sync"),
        ("physics", "render", "assets", "netcode", "ecs"), ("entity", "collider", "mesh", "snapshot"),
    ),
)  # fmt: skip

ENVS = ("staging", "production", "dev", "qa", "eu-west", "us-east")
VENDORS = {  # vendor -> its key shape
    "Stripe": lambda r: r.choice(("sk_live_", "sk_test_")) + _token(r, string.ascii_letters + string.digits, 24),
    "AWS": lambda r: "AKIA" + _token(r, string.ascii_uppercase + string.digits, 16),
    "GitHub": lambda r: "ghp_" + _token(r, string.ascii_letters + string.digits, 36),
    "SendGrid": lambda r: "SG." + _token(r, string.ascii_letters + string.digits, 22),
    "OpenAI": lambda r: "sk-proj-" + _token(r, string.ascii_letters + string.digits, 32),
    "Datadog": lambda r: _token(r, "0123456789abcdef", 32),
    "Twilio": lambda r: "AC" + _token(r, "0123456789abcdef", 32),
    "Sentry": lambda r: _token(r, "0123456789abcdef", 32),
}
BUGS = ("race condition", "memory leak", "off-by-one", "deadlock", "timezone bug", "retry storm", "null dereference")
CUSTOMERS = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Tyrell", "Soylent")
PEOPLE = (
    "Zoë Brontë", "José Núñez", "Łukasz Wójcik", "Søren Kierkegård", "Anaïs Lefèvre", "Jürgen Groß",
    "Çağla Öztürk", "Dvořák Tomáš", "Mårten Ångström", "Iñaki Etxeberría", "Bjørn Ødegård", "Małgorzata Żak",
)  # fmt: skip
TOOLS = ("migrator", "reindexer", "snapshotter", "exporter", "compactor", "replayer")
FEATURES = ("retry backoff", "bulk export", "dark mode", "rate limiting", "prefetching", "async uploads", "audit log")
_WORD_TEXT = (
    "the a to of and in is it for that we this on with be should can as not when if then but so it's "
    "check update fix add remove move rename test build run deploy review merge rebase config value error "
    "request response timeout retry cache queue worker handler client server port key token path file line "
    "function class module method field option flag default version release branch commit log output"
)
WORDS = _WORD_TEXT.split()


def _token(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _uuid(rng: random.Random) -> str:
    h = _token(rng, "0123456789abcdef", 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{rng.choice('89ab')}{h[17:20]}-{h[20:]}"


def _snake(text: str) -> str:
    return text.replace(" ", "_").replace("-", "_")


def _camel(text: str) -> str:
    return "".join(part.title() for part in text.replace("-", " ").replace("_", " ").split())


# filler turns --------------------------------------------------------------------------------------


_STDLIB = sorted(Path(os.__file__).parent.glob("*.py"))


def _source(rng: random.Random, project: Project) -> tuple[str, str]:
    """(title, text): a real module's lines, read as if they were one of the project's files."""
    lines = rng.choice(_STDLIB).read_text(encoding="utf-8", errors="replace").split("\n")
    start = rng.randrange(max(1, len(lines) - 40))
    path = f"src/{project.package}/{rng.choice(project.modules)}/{rng.choice(project.things).replace(' ', '_')}.py"
    body = lines[start : start + rng.randint(20, 90)]
    return f"Read {path}", "\n".join(f"{start + n + 1:>5}\t{line}" for n, line in enumerate(body))


def _sentence(rng: random.Random, project: Project) -> str:
    thing, module, service = rng.choice(project.things), rng.choice(project.modules), rng.choice(project.services)
    templates = (
        f"I looked at {project.package}/{module} and the {thing} handling there retries without a cap.",
        f"The {service} logs show the {thing} request timing out after the {rng.choice(ENVS)} deploy.",
        f"Let's move the {thing} validation into {module} so the {service} handler stays small.",
        f"Tests for {_snake(thing)}_{rng.choice(('builder', 'parser', 'cache'))} pass locally but fail in CI.",
        f"I'll update {_camel(thing)}{rng.choice(('Service', 'Client', 'Repository'))} and rerun the suite.",
        f"The config key {project.package}.{module}.{rng.choice(('timeout', 'batch_size', 'port', 'retries'))} "
        f"defaults to {rng.choice((3, 30, 100, 8080, 512))}.",
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20))).capitalize() + ".",
    )
    return rng.choice(templates)


def _prose(rng: random.Random, project: Project, lines: int) -> str:
    return "\n".join(" ".join(_sentence(rng, project) for _ in range(rng.randint(1, 2))) for _ in range(lines))


def _test_run(rng: random.Random, project: Project) -> tuple[str, str]:
    out = [f"============ test session starts ============ platform linux -- Python 3.11.{rng.randint(2, 9)}"]
    for _ in range(rng.randint(5, 30)):
        module, thing = rng.choice(project.modules), _snake(rng.choice(project.things))
        status = rng.choice(("PASSED", "PASSED", "PASSED", "FAILED", "SKIPPED"))
        out.append(f"tests/{module}/test_{thing}.py::test_{thing}_{rng.choice(WORDS)} {status}")
    out.append(f"===== {rng.randint(1, 9)} failed, {rng.randint(20, 400)} passed in {rng.uniform(1, 90):.2f}s =====")
    return "Bash: pytest -q", "\n".join(out)


def _git_log(rng: random.Random, project: Project) -> tuple[str, str]:
    out = []
    for _ in range(rng.randint(2, 8)):
        out += [
            f"commit {_token(rng, '0123456789abcdef', 40)}",
            f"Author: {rng.choice(PEOPLE)} <dev@{project.package}.example>",
            f"Date:   2026-{rng.randint(1, 11):02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:00",
            "",
            f"    {_sentence(rng, project)}",
            "",
        ]
    return "Bash: git log", "\n".join(out)


def _service_log(rng: random.Random, project: Project) -> tuple[str, str]:
    from optical_memory.training.corpus import logs

    service = rng.choice(project.services)
    lines = [line.replace("[", f"[{service}:", 1) for line in logs(rng, "heldout")]
    return f"Bash: kubectl logs {service}", "\n".join(lines)


def _grep(rng: random.Random, project: Project) -> tuple[str, str]:
    word = rng.choice(project.things).split()[0]
    out = []
    for _ in range(rng.randint(3, 15)):
        path = f"src/{project.package}/{rng.choice(project.modules)}/{_snake(rng.choice(project.things))}.py"
        out.append(f"{path}:{rng.randint(1, 900)}:    {word} = {rng.choice(WORDS)}_{word}({rng.choice(WORDS)})")
    return f"Grep: {word}", "\n".join(out)


def _readme(rng: random.Random, project: Project) -> tuple[str, str]:
    service = rng.choice(project.services)
    out = [f"## {service}", "", _prose(rng, project, rng.randint(2, 5)), "", "```sh"]
    out += [f"{project.package} {rng.choice(WORDS)} --{rng.choice(WORDS)} {rng.choice(ENVS)}" for _ in range(3)]
    out += ["```", "", "| option | default | meaning |", "|---|---|---|"]
    out += [f"| {_snake(rng.choice(project.things))} | {rng.randint(0, 999)} | {_sentence(rng, project)} |"]
    return f"Read {project.package}/README.md", "\n".join(out)


TOOL_TURNS: tuple[Callable[[random.Random, Project], tuple[str, str]], ...] = (
    _source, _source, _source, _test_run, _git_log, _service_log, _grep, _readme,
)  # fmt: skip


def _exchange(rng: random.Random, project: Project) -> list[tuple[str, str | None, str]]:
    """One request of the user and the work it takes: (role, title, text) each."""
    turns: list[tuple[str, str | None, str]] = [("user", None, _prose(rng, project, rng.randint(1, 3)))]
    for _ in range(rng.randint(1, 4)):
        turns.append(("assistant", None, _prose(rng, project, rng.randint(1, 4))))
        title, text = rng.choice(TOOL_TURNS)(rng, project)
        turns.append(("tool", title, text))
    turns.append(("assistant", None, _prose(rng, project, rng.randint(2, 6))))
    return turns


# facts ---------------------------------------------------------------------------------------------


FactParts = tuple[tuple[str, ...], str, str, str, str]  # (what makes it unique, kind, value, line, query)


def _fact(rng: random.Random, project: Project) -> FactParts:
    """(what makes it unique, kind, value, line, descriptive query) of one fact about `project`."""
    service, env, package = rng.choice(project.services), rng.choice(ENVS), project.package
    kind = rng.choice(("api_key", "api_key", "commit", "uuid", "port", "path", "flag", "class", "person"))
    if kind == "api_key":
        vendor = rng.choice(sorted(VENDORS))
        value = VENDORS[vendor](rng)
        line = rng.choice(
            (
                f"The {env} {vendor} key for {service} is {value} (rotate it after the demo).",
                f"export {vendor.upper()}_{_snake(env).upper()}_API_KEY={value}  # {service}",
                f"Use {value} as the {vendor} API key when {service} runs in {env}.",
            )
        )
        query = rng.choice((f"{vendor} {env} key {service}", f"what is the {env} {vendor} API key for {service}"))
        return (kind, vendor, service, env), kind, value, line, query
    if kind == "commit":
        bug, module = rng.choice(BUGS), rng.choice(project.modules)
        sha = _token(rng, "0123456789abcdef", 40)
        value, line = rng.choice(
            (
                (sha, f"The fix for the {bug} in {package}/{module} landed in commit {sha}."),
                (sha[:12], f"Merged commit {sha[:12]}: fix {bug} in {module} ({service})."),
            )
        )
        return (kind, package, bug, module), kind, value, line, f"commit that fixed the {bug} in {module}"
    if kind == "uuid":
        customer, value = rng.choice(CUSTOMERS), _uuid(rng)
        line = rng.choice(
            (
                f"Tenant id for {customer} in {env}: {value}",
                f"{customer}'s {env} tenant id is {value}, use it for the {service} fixtures.",
            )
        )
        return (kind, customer, env), kind, value, line, f"{customer} tenant id {env}"
    return _setting_fact(rng, project, kind, service, env)


def _setting_fact(rng: random.Random, project: Project, kind: str, service: str, env: str) -> FactParts:
    """A fact about how a project runs: a port, a binary's path, a flag, a class, who is on call."""
    package = project.package
    if kind == "port":
        value = str(rng.randint(1025, 65000))
        line = rng.choice(
            (
                f"{service} listens on port {value} in {env}; the health check is /healthz.",
                f"The {env} port of {service} is {value}: point the client at {service}:{value} inside the mesh.",
            )
        )
        return (kind, service, env), kind, value, line, f"{service} port in {env}"
    if kind == "path":
        tool = rng.choice(TOOLS)
        value = f"/opt/{package}/releases/v{rng.randint(1, 4)}.{rng.randint(0, 30)}.{rng.randint(0, 12)}/bin/{tool}"
        line = f"The {tool} binary we ship is {value}; older releases stay beside it."
        return (kind, package, tool), kind, value, line, f"{package} {tool} binary path"
    if kind == "flag":
        feature = rng.choice(FEATURES)
        value = f"{package}_disable_{_snake(feature)}"
        line = f"The flag that turns off {feature} in {service} is `{value}` (default false)."
        return (kind, service, feature), kind, value, line, f"flag to turn off {feature} in {service}"
    if kind == "class":
        thing = rng.choice(project.things)
        value = _camel(thing) + rng.choice(("Retry", "Backoff", "Replay")) + rng.choice(("Coordinator", "Policy"))
        line = f"{value} is the class that handles {thing} retries in {service}."
        return (kind, service, thing), kind, value, line, f"class that handles {thing} retries in {service}"
    person = rng.choice(PEOPLE)
    line = rng.choice(
        (
            f"The on-call contact for {service} this week is {person}.",
            f"Ask {person} before touching {service} in {env}; they are its on-call contact.",
        )
    )
    return ("person", service), "person", person, line, f"on-call contact for {service}"


def _value_query(kind: str, value: str) -> str | None:
    """The value itself as a query (an agent meeting it again), where the value is distinctive.

    Not ports (common numbers) nor people (they also sign the git logs).
    """
    return None if kind in ("port", "person") else value


def agent_history(tokens: int = 1_000_000, facts: int = 200, seed: int = 2026) -> History:
    """About `tokens` text tokens of history over 8 projects, with `facts` planted facts and their queries."""
    rng = random.Random(seed)
    raw: list[tuple[Project, str, str | None, str]] = []
    size, project = 0, rng.choice(PROJECTS)
    while size < tokens * 4:
        if rng.random() < 0.25:  # an agent works on one project for a while, then switches
            project = rng.choice(PROJECTS)
        for role, title, text in _exchange(rng, project):
            raw.append((project, role, title, text))
            size += len(text.encode("utf-8"))
    texts = [text.split("\n") for _, _, _, text in raw]
    talk = [i for i, (_, role, _, _) in enumerate(raw) if role != "tool"]
    planted: list[tuple[int, str, str, str, str, str]] = []
    seen: set[tuple[str, ...]] = set()
    while len(planted) < facts:
        index = rng.choice(talk)
        key, kind, value, line, query = _fact(rng, raw[index][0])
        if key in seen or any(value == p[3] for p in planted):
            continue
        seen.add(key)
        if rng.random() < 0.25 and (by_value := _value_query(kind, value)) is not None:
            query = by_value
        texts[index].insert(rng.randint(0, len(texts[index])), line)
        planted.append((index, raw[index][0].name, kind, value, line, query))
    moment = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
    turns = []
    for (proj, role, title, _), lines in zip(raw, texts, strict=True):
        moment += timedelta(seconds=rng.randint(5, 600))
        turns.append(Turn(proj.name, role, title, "\n".join(lines), moment))
    out = [
        Fact(kind, name, value, line, query, index, texts[index].index(line))
        for index, name, kind, value, line, query in planted
    ]
    return History(turns, out)


def fact_locations(spans: list[tuple[str, int, int, bool]], line_index: int) -> list[tuple[str, int]]:
    """Where line `line_index` of a remembered text lies: (page id, line) of each piece of it.

    `spans` are the remember result's spans as (page_id, start, end, continues).
    """
    current, out, continued = -1, [], False
    for page_id, start, end, continues in spans:
        for number in range(start, end + 1):
            if not (number == start and continued):
                current += 1
            if current == line_index:
                out.append((page_id, number))
        continued = continues
    return out
