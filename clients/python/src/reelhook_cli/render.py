"""Human output with rich: the model catalogue, a job's summary and routing, the providers, sizes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from reelhook_client import Job, ProviderHealth

STATUS_STYLE = {
    "queued": "dim", "submitted": "cyan", "running": "blue", "storing": "magenta",
    "succeeded": "bold green", "failed": "bold red", "cancelled": "yellow",
}


def when(moment: datetime | None) -> str:
    """A time as the API writes it: UTC, milliseconds, Z."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def human_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover


SHORT_NAMES = {"reference_images": "images", "reference_videos": "videos", "first_frame": "first frame",
               "last_frame": "last frame", "source_video": "source video"}
MIN_INPUTS_WIDTH = 28  # narrower, and the catalogue is shown as one block per model


def _count(name: str, rule: dict[str, Any]) -> str:
    name = SHORT_NAMES.get(name, name)
    low, high = rule.get("min", 0), rule.get("max", 0)
    voice = " (+voice)" if rule.get("voice_url") else ""
    if low == high:
        text = name if high == 1 else f"{high} {name}"
    elif low == 0 and high == 1:
        text = f"optional {name}"
    else:
        text = f"{low}-{high} {name}"
    return text + voice


def inputs_summary(entry: dict[str, Any]) -> str:
    lines = []
    for mode in entry.get("modes") or []:
        inputs = mode.get("inputs") or {}
        what = ", ".join(_count(name, rule) for name, rule in inputs.items()) or "text only"
        lines.append(f"{mode.get('name', '?')}: {what}")
    for limit in entry.get("combined_limits") or []:
        names = " + ".join(SHORT_NAMES.get(f, f) for f in limit["fields"])
        lines.append(f"{names}: {limit['min']}-{limit['max']} in all")
    defaults = defaults_summary(entry)
    if defaults:
        lines.append(f"if omitted: {defaults}")
    return "\n".join(lines)


def defaults_summary(entry: dict[str, Any]) -> str:
    """What the provider does with each omitted field that has a known default (``audio on, resolution 720p``).

    The same omission means different things per provider (Freepik Veo has sound unless told
    otherwise, AIHubMax is silent), so the table says it rather than leaving it to the JSON.
    """
    parts = []
    for name, default in (entry.get("defaults") or {}).items():
        value = default.get("value") if isinstance(default, dict) else None
        if value is None:
            continue
        if isinstance(value, bool):
            shown = "on" if value else "off"
        else:
            shown = f'"{value}"' if isinstance(value, str) and " " in value else str(value)
        parts.append(f"{name} {shown}")
    return ", ".join(parts)


def _listing(values: list[Any] | None, default: Any = None, unit: str = "") -> str:
    if values is None:
        return "any"
    numbers = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    if len(numbers) == len(values) >= 3 and numbers == list(range(numbers[0], numbers[-1] + 1)):
        note = f" (default {default})" if default is not None else ""
        return f"{numbers[0]}-{numbers[-1]}{unit}{note}"
    return ", ".join(f"[b]{v}[/b]" if v == default and len(values) > 1 else str(v) for v in values) + unit


def _model_cells(entry: dict[str, Any]) -> dict[str, str]:
    return {
        "provider": entry.get("provider", "?"),
        "inputs": inputs_summary(entry),
        "durations": _listing(entry.get("durations"), entry.get("default_duration"), " s"),
        "aspect ratios": _listing(entry.get("aspect_ratios")),
        "resolutions": _listing(entry.get("resolutions")),
        "status via": entry.get("status_via", "?"),
    }


def print_models(console: Console, catalog: dict[str, Any]) -> None:
    """A table when the console is wide enough for one, else one block per model."""
    entries = catalog.get("models", [])
    cells = [_model_cells(entry) for entry in entries]
    fixed = {
        "id": max([len(entry.get("id", "?")) for entry in entries] + [2]),
        "provider": max([len(c["provider"]) for c in cells] + [8]),
        "status via": max([len(c["status via"]) for c in cells] + [10]),
        "durations": 11, "aspect ratios": 13, "resolutions": 15,
    }
    # Seven columns: two cells of padding each and eight borders.
    longest = max([len(line) for c in cells for line in c["inputs"].splitlines()] + [6])
    inputs_width = min(longest, console.width - sum(fixed.values()) - 2 * 7 - 8)
    if inputs_width >= MIN_INPUTS_WIDTH:
        table = Table(show_lines=True)
        for name in ("id", "provider", "inputs", "durations", "aspect ratios", "resolutions", "status via"):
            width = fixed.get(name, inputs_width)
            table.add_column(name, width=width, overflow="fold", style="bold" if name == "id" else "")
        for entry, row in zip(entries, cells, strict=True):
            table.add_row(entry.get("id", "?"), row["provider"], row["inputs"], row["durations"],
                          row["aspect ratios"], row["resolutions"], row["status via"])
        console.print(table)
        return
    for entry, row in zip(entries, cells, strict=True):
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(overflow="fold")
        for name, value in row.items():
            grid.add_row(name, value)
        console.print(Text(entry.get("id", "?"), style="bold"))
        console.print(grid)
        console.print()


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def print_job(console: Console, job: Job) -> None:
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="dim", no_wrap=True)
    summary.add_column(overflow="fold")
    status = status_text(job.status)
    if job.progress is not None and not job.done:
        status.append(f"  {job.progress}%")
    rows: list[tuple[str, Any]] = [
        ("job", Text(job.id, style="bold")),
        ("status", status),
        ("model", job.model),
        ("provider", job.provider),
        ("served by", f"{job.route.provider} {job.route.model}" if job.route else None),
        ("provider task", job.provider_task_id),
        ("client reference", job.client_reference),
        ("created", when(job.created_at)),
        ("updated", when(job.updated_at)),
        ("waiting for", job.waiting_for),
    ]
    if job.error:
        rows.append(("error", Text(f"{job.error.code}: {job.error.message}", style="red")))
    if job.cancellation:
        may_run = ", the provider's task may still run" if job.cancellation.provider_task_may_continue else ""
        rows.append(("cancelled", f"{when(job.cancellation.at)}{may_run}"))
    for index, output in enumerate(job.outputs):
        rows.append((f"output {index}", Text(f"{output.s3_uri}\n{human_bytes(output.bytes)}, {output.content_type}"
                                            f", sha256 {output.sha256}")))
    for warning in job.warnings or []:
        rows.append(("warning", Text(warning, style="yellow")))
    for name, value in rows:
        if value is not None:
            summary.add_row(name, value)
    console.print(summary)
    if job.events:
        table = Table(title="events", title_justify="left", show_edge=False)
        table.add_column("at", no_wrap=True)
        table.add_column("status")
        table.add_column("source")
        table.add_column("detail")
        for event in job.events:
            extra = {k: v for k, v in event.to_dict().items() if k not in ("at", "status", "source")}
            detail = ", ".join(f"{k}={v}" for k, v in extra.items())
            table.add_row(when(event.at), status_text(event.status), event.source or "", detail)
        console.print(table)
    if job.attempts:
        console.print(attempts_table(job, full=True))
    if job.routes_skipped:
        console.print(skipped_table(job))


OUTCOME_STYLE = {"succeeded": "green", "failed": "red", "rejected": "red", "refused": "yellow", "skipped": "yellow"}


def attempts_table(job: Job, *, full: bool = False) -> Table:
    """Every route the job tried, the current one last; ``full`` adds task ids and times."""
    table = Table(title="attempts", title_justify="left", show_edge=False)
    columns = ("provider", "model", "task", "outcome", "started", "ended", "reason") if full else (
        "provider", "model", "outcome", "reason")
    # Short words and, in the compact table, whole model ids stay on one line; the rest folds.
    whole = {"provider", "outcome"} if full else {"provider", "outcome", "model"}
    for name in columns:
        table.add_column(name, overflow="fold", no_wrap=name in whole)
    for attempt in job.attempts or []:
        outcome = Text(attempt.outcome or "", style=OUTCOME_STYLE.get(attempt.outcome or "", ""))
        if full:
            table.add_row(attempt.provider, attempt.model, attempt.task_id or "", outcome, when(attempt.started_at),
                          when(attempt.ended_at), attempt.reason or "")
        else:
            table.add_row(attempt.provider, attempt.model, outcome, attempt.reason or "")
    return table


def skipped_table(job: Job) -> Table:
    """The routes that could not take the job as given, with each objection."""
    table = Table(title="routes skipped", title_justify="left", show_edge=False)
    for name in ("provider", "model", "why"):
        table.add_column(name, overflow="fold", no_wrap=name != "why")
    for route in job.routes_skipped or []:
        why = "; ".join(f"{r.get('field', '?')}: {r.get('message', 'not accepted')}" for r in route.reasons)
        table.add_row(route.provider, route.model, why or "not accepted")
    return table


def routed(job: Job) -> bool:
    """Did routing decide anything worth showing: a logical model's route, a failover or a skipped route?"""
    moved = job.route is not None and job.route.model != job.model
    return moved or len(job.attempts or []) > 1 or bool(job.routes_skipped)


def routing_summary(job: Job) -> list[RenderableType]:
    """Which route served (or is serving) the job, its attempts and the routes skipped."""
    parts: list[RenderableType] = []
    if job.route is not None:
        verb = "served by" if job.succeeded else "route"
        parts.append(Text.assemble((f"{verb} ", "dim"), (job.route.provider, "bold"), f" {job.route.model}"))
    if job.attempts:
        parts.append(attempts_table(job))
    if job.routes_skipped:
        parts.append(skipped_table(job))
    return parts


def _job_detail(job: Job) -> str:
    if job.error:
        return job.error.code
    if job.status == "running" and job.progress is not None:
        return f"{job.progress}%"
    if job.waiting_for:
        return f"waiting for {job.waiting_for}"
    if job.outputs:
        return f"{len(job.outputs)} output(s), {human_bytes(sum(o.bytes for o in job.outputs))}"
    return ""


def print_jobs(console: Console, jobs: list[Job]) -> None:
    if not jobs:
        console.print("[dim]no jobs match[/dim]")
        return
    table = Table(show_edge=False)
    table.add_column("job", no_wrap=True, style="bold")
    table.add_column("status", no_wrap=True)
    table.add_column("model", overflow="fold")
    table.add_column("created", no_wrap=True)
    table.add_column("client reference", overflow="fold")
    table.add_column("detail", overflow="fold")
    for job in jobs:
        table.add_row(job.id, status_text(job.status), job.model, when(job.created_at), job.client_reference or "",
                      _job_detail(job))
    console.print(table)


def _circuit(provider: ProviderHealth) -> Text:
    circuit = provider.circuit
    style = {"closed": "green", "open": "bold red", "half_open": "yellow"}.get(circuit.state, "")
    text = Text(circuit.state, style=style)
    if circuit.consecutive_failures:
        plural = "" if circuit.consecutive_failures == 1 else "s"
        text.append(f" ({circuit.consecutive_failures} failure{plural} in a row)")
    if circuit.state == "open" and circuit.open_until:
        text.append(f" until {when(datetime.fromtimestamp(circuit.open_until, UTC))}")
    return text


def _number(value: float) -> str:
    return f"{value:g}"


def print_providers(console: Console, providers: list[ProviderHealth]) -> None:
    """Each provider's circuit, request budget and tasks in flight, one row each."""
    table = Table(show_edge=False)
    table.add_column("provider", style="bold", no_wrap=True)
    table.add_column("circuit", overflow="fold")
    table.add_column("requests/s", justify="right", no_wrap=True)
    table.add_column("burst", justify="right", no_wrap=True)
    table.add_column("booked ahead", justify="right", no_wrap=True)
    table.add_column("in flight", justify="right", no_wrap=True)
    for provider in providers:
        rate = provider.rate
        per_second = "unlimited" if rate.requests_per_second is None else _number(rate.requests_per_second)
        ahead = f"{_number(rate.booked_ahead_seconds)} s" if rate.booked_ahead_seconds is not None else ""
        tasks = provider.in_flight.tasks or 0
        cap = provider.in_flight.cap
        in_flight = f"{tasks} of {cap}" if cap else f"{tasks} (no cap)"
        table.add_row(provider.name, _circuit(provider), per_second, "" if rate.burst is None else str(rate.burst),
                      ahead, in_flight)
    console.print(table)
