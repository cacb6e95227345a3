"""Human output with rich: the model catalogue, a job's summary, sizes."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

STATUS_STYLE = {
    "queued": "dim", "submitted": "cyan", "running": "blue", "storing": "magenta",
    "succeeded": "bold green", "failed": "bold red",
}


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


def print_job(console: Console, job: dict[str, Any]) -> None:
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="dim", no_wrap=True)
    summary.add_column(overflow="fold")
    status = status_text(job.get("status", "?"))
    if job.get("progress") is not None and job.get("status") not in ("succeeded", "failed"):
        status.append(f"  {job['progress']}%")
    rows: list[tuple[str, Any]] = [
        ("job", Text(job.get("id", "?"), style="bold")),
        ("status", status),
        ("model", job.get("model")),
        ("provider", job.get("provider")),
        ("provider task", job.get("provider_task_id")),
        ("client reference", job.get("client_reference")),
        ("created", job.get("created_at")),
        ("updated", job.get("updated_at")),
    ]
    error = job.get("error")
    if error:
        rows.append(("error", Text(f"{error.get('code')}: {error.get('message')}", style="red")))
    for index, output in enumerate(job.get("outputs") or []):
        size = human_bytes(output.get("bytes") or 0)
        rows.append((f"output {index}", Text(f"{output.get('s3_uri', '?')}\n{size}, {output.get('content_type', '?')}"
                                            f", sha256 {output.get('sha256', '?')}")))
    for name, value in rows:
        if value is not None:
            summary.add_row(name, value)
    console.print(summary)
    events = job.get("events") or []
    if events:
        table = Table(title="events", title_justify="left", show_edge=False)
        table.add_column("at", no_wrap=True)
        table.add_column("status")
        table.add_column("source")
        table.add_column("detail")
        for event in events:
            detail = ", ".join(f"{k}={v}" for k, v in event.items() if k not in ("at", "status", "source"))
            table.add_row(event.get("at", ""), status_text(event.get("status", "?")), event.get("source", ""), detail)
        console.print(table)
