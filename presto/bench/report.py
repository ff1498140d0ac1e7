"""The results: rows of one table, the targets checked against them, text and JSON.

Every row is one measurement with its ratio to the reference of its comparison (the
ceiling for warm reads, orjson from plain dicts for the cold path). Ratios are of
throughput, so above 1 is faster than the reference and below 1 slower.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson


@dataclass
class Row:
    """One line of the table."""

    case: str
    label: str
    workers: int | None = None
    requests_per_second: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int | None = None
    # The label of the row this one is compared with, and the throughput ratio to it.
    reference: str | None = None
    ratio: float | None = None
    notes: str = ""
    details: dict[str, Any] = field(default_factory=dict)


class LoadMeasures(Protocol):
    """What a run under load measured: its throughput, latencies and errors."""

    @property
    def requests_per_second(self) -> float: ...
    @property
    def p50_ms(self) -> float: ...
    @property
    def p99_ms(self) -> float: ...
    @property
    def errors(self) -> int: ...


def measured_row(case: str, label: str, measured: LoadMeasures, **others: Any) -> Row:
    """The row of a run under load: its throughput, latencies and errors, and `others`."""
    return Row(
        case,
        label,
        requests_per_second=measured.requests_per_second,
        p50_ms=measured.p50_ms,
        p99_ms=measured.p99_ms,
        errors=measured.errors,
        **others,
    )


@dataclass(frozen=True)
class Target:
    """A goal from the requirements, checked against the rows; None: not measured."""

    goal: str
    passed: bool | None
    measured: str


def find(rows: list[Row], case: str, workers: int | None = None, **details: Any) -> Row | None:
    """The first row of `case` (at `workers`) whose details hold `details`."""
    for row in rows:
        if row.case != case or (workers is not None and row.workers != workers):
            continue
        if all(row.details.get(key) == value for key, value in details.items()):
            return row
    return None


def check_targets(rows: list[Row], workers: list[int]) -> list[Target]:
    """The targets, each passed, failed, or not measured in this run."""
    targets = _warm_targets(rows, workers)
    targets += _cold_targets(rows)
    targets += _mixed_targets(rows)
    targets += _memory_targets(rows)
    targets += _catalog_targets(rows)
    targets += _gzip_targets(rows)
    targets += _refusal_targets(rows)
    return targets


def _warm_targets(rows: list[Row], workers: list[int]) -> list[Target]:
    """The warm path against the ceiling and gunicorn at each worker count, and scaling."""
    targets = []
    for count in workers:
        presto, ceiling = find(rows, "a", count), find(rows, "b", count)
        gunicorn = find(rows, "c", count)
        targets.append(
            _ratio_target(f"warm >= 0.8x ceiling, {count} worker(s)", presto, ceiling, 0.8)
        )
        targets.append(
            _ratio_target(f"warm >= 5x gunicorn, {count} worker(s)", presto, gunicorn, 5.0)
        )
        if presto and ceiling and presto.p99_ms is not None and ceiling.p99_ms is not None:
            times = presto.p99_ms / ceiling.p99_ms if ceiling.p99_ms else float("inf")
            targets.append(
                Target(
                    f"warm p99 <= 2x ceiling p99, {count} worker(s)",
                    times <= 2.0,
                    f"{presto.p99_ms:.2f} ms vs {ceiling.p99_ms:.2f} ms: {times:.2f}x",
                )
            )
        else:
            targets.append(Target(f"warm p99 <= 2x ceiling p99, {count} worker(s)", None, "n/a"))
    if len(workers) > 1:
        one, most = find(rows, "a", min(workers)), find(rows, "a", max(workers))
        goal = f"{max(workers)} workers >= 1.6x {min(workers)} worker"
        targets.append(_ratio_target(goal, most, one, 1.6))
    return targets


def _cold_targets(rows: list[Row]) -> list[Target]:
    """Cold renders against orjson, and a statement count that does not grow."""
    targets = []
    cold = [row for row in rows if row.case == "d" and "statements" in row.details]
    for row in cold:
        items = row.details["items"]
        if row.ratio:
            times = 1 / row.ratio
            targets.append(
                Target(
                    f"cold {items} items within 3x of orjson from dicts",
                    times <= 3.0,
                    f"{times:.1f}x the reference's time",
                )
            )
    if cold:
        counts = [row.details["statements"] for row in cold]
        sizes = ", ".join(
            f"{row.details['items']} items: {row.details['statements']}" for row in cold
        )
        targets.append(
            Target("statements constant across menu sizes", len(set(counts)) == 1, sizes)
        )
    return targets


def _mixed_targets(rows: list[Row]) -> list[Target]:
    """The mixed load: no stale read and no error."""
    mixed = find(rows, "e")
    if mixed is None:
        return []
    if "stale_reads" not in mixed.details:
        return [Target("mixed load: 0 stale reads and 0 errors", None, mixed.notes)]
    stale, errors = mixed.details["stale_reads"], mixed.errors
    return [
        Target(
            "mixed load: 0 stale reads and 0 errors",
            stale == 0 and errors == 0,
            f"{stale} stale reads, {errors} errors",
        )
    ]


def _memory_targets(rows: list[Row]) -> list[Target]:
    """A full cache's memory against its budget."""
    full = next((row for row in rows if row.case == "f" and "growth_mib" in row.details), None)
    if full is None or not full.details["growth_mib"]:
        return []
    budget_mib = full.details["cache_bytes"] / (1024 * 1024)
    worst = max(full.details["growth_mib"])
    return [
        Target(
            "RSS per worker with the cache full - baseline <= budget + 25%",
            worst <= budget_mib * 1.25,
            f"+{worst:.1f} MiB at most vs {budget_mib * 1.25:.1f} MiB ({budget_mib:g} MiB budget)",
        )
    ]


def _refusal_targets(rows: list[Row]) -> list[Target]:
    """Case k: what a client apart from each flood of new query strings sees."""
    targets = []
    floods = (row for row in rows if row.case == "k" and "probe_reads" in row.details)
    for flood in (row for row in floods if not row.details.get("reference")):
        name = "flood of " + flood.label.split(" connections of ")[-1].split(",")[0]
        cached = flood.details["probe_cached_p99_ms"]
        uncached = flood.details["probe_uncached_p99_ms"]
        statuses = flood.details["probe_uncached_statuses"]
        answered = set(statuses) <= {"200", "503"} and not flood.details["probe_failures"]
        failed = flood.details["probe_failures"]
        targets += [
            Target(f"{name}: probe's cached menu p99 <= 100 ms", cached <= 100, f"{cached:.1f} ms"),
            Target(
                f"{name}: probe's uncached read p99 <= 1 s, each a 200 or a 503 with Retry-After",
                uncached <= 1000 and answered,
                f"{uncached:.0f} ms; statuses {statuses}, {failed} failed",
            ),
        ]
    return targets


def _gzip_targets(rows: list[Row]) -> list[Target]:
    """Case i: the warm gzip path against the ceiling on the same bytes, and the saving."""
    gzip_rows = [row for row in rows if row.case == "i"]
    if len(gzip_rows) != 2:
        return []
    presto, ceiling = gzip_rows
    identity, packed = presto.details["identity_bytes"], presto.details["body_bytes"]
    return [
        _ratio_target("warm gzip >= 0.8x ceiling on the same bytes", presto, ceiling, 0.8),
        Target(
            "menu on the wire >= 20x smaller with gzip",
            packed * 20 <= identity,
            f"{identity:,} -> {packed:,} bytes: {identity / packed:.1f}x",
        ),
    ]


def _catalog_targets(rows: list[Row]) -> list[Target]:
    """Cases g and h: the catalog's read rate and p99 against the single menu's."""
    targets = []
    for case, least in (("g", 0.5), ("h", 0.25)):
        single = find(rows, case, catalog=False)
        for row in (row for row in rows if row.case == case and row.details.get("catalog")):
            targets.append(
                _ratio_target(f"{row.label} >= {least}x single menu", row, single, least)
            )
            if case == "g" and single and single.p99_ms and row.p99_ms is not None:
                times = row.p99_ms / single.p99_ms
                targets.append(
                    Target(
                        f"{row.label}: p99 <= 4x single menu p99",
                        times <= 4.0,
                        f"{row.p99_ms:.2f} ms vs {single.p99_ms:.2f} ms: {times:.2f}x",
                    )
                )
    return targets


def _ratio_target(goal: str, row: Row | None, reference: Row | None, least: float) -> Target:
    if row is None or reference is None or not reference.requests_per_second:
        return Target(goal, None, "n/a")
    ratio = (row.requests_per_second or 0.0) / reference.requests_per_second
    return Target(goal, ratio >= least, f"{ratio:.2f}x")


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def format_table(meta: dict[str, Any], rows: list[Row], targets: list[Target]) -> str:
    """The table as text, with the run's conditions above and the targets below."""
    header = [
        "case",
        "what",
        "workers",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "ratio",
        "vs",
        "notes",
    ]
    lines = [
        [
            row.case,
            row.label,
            _number(row.workers),
            _number(row.requests_per_second),
            _number(row.p50_ms, 2),
            _number(row.p99_ms, 2),
            _number(row.errors),
            "-" if row.ratio is None else f"{row.ratio:.2f}x",
            row.reference or "-",
            row.notes,
        ]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    right = {2, 3, 4, 5, 6, 7}

    def render(cells: list[str]) -> str:
        padded = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    out = [f"presto benchmark, {meta['date']}", *(f"  {line}" for line in meta_lines(meta)), ""]
    out += [render(header), render(["-" * width for width in widths])]
    out += [render(line) for line in lines]
    out += ["", "Targets (printed, never asserted):"]
    for target in targets:
        verdict = {True: "pass", False: "FAIL", None: "n/a "}[target.passed]
        out.append(f"  {verdict}  {target.goal}: {target.measured}")
    return "\n".join(out)


def meta_lines(meta: dict[str, Any]) -> list[str]:
    """The conditions of the run, one per line."""
    return [
        f"machine: {meta['machine']}",
        f"load: {meta['load']}",
        f"database: {meta['database']}; menu: {meta['menu']}",
    ]


def write_json(path: Path, meta: dict[str, Any], rows: list[Row], targets: list[Target]) -> None:
    """The same results as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "meta": meta,
        "rows": [asdict(row) for row in rows],
        "targets": [asdict(target) for target in targets],
    }
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
