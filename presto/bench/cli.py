"""`python -m presto.bench`: options, the run of the chosen cases, the table and JSON."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from presto.bench.cases import (
    BenchConfig,
    prepare_menu,
    run_cold_case,
    run_gzip_case,
    run_long_tail_case,
    run_memory_case,
    run_mixed_case,
    run_pooler_case,
    run_warm,
    run_write_case,
)
from presto.bench.load import wrk_available
from presto.bench.refusals import run_refusal_case
from presto.bench.report import Row, check_targets, format_table, write_json

ALL_CASES = "abcdefghijkl"
# Case f: the menu cache's budget while memory is measured; --quick fills a smaller one
# with a smaller menu, since filling it costs one cold request per response and worker.
CACHE_BUDGET = 8 * 1024 * 1024
QUICK_CACHE_BUDGET = 2 * 1024 * 1024


def build_parser() -> argparse.ArgumentParser:
    """The harness's options."""
    parser = argparse.ArgumentParser(
        prog="python -m presto.bench",
        description="Benchmark presto's menu call beside a bare aiohttp ceiling and gunicorn.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="short runs and small menus: well under a minute"
    )
    parser.add_argument(
        "--duration", type=float, help="seconds of load per run (default: 10, quick: 1)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        help="measured runs of each server compared side by side (cases a-c, g-i), taken "
        "in turns; the table shows each one's median round (default: 3, quick: 1)",
    )
    parser.add_argument("--connections", type=int, default=64, help="concurrent connections")
    parser.add_argument(
        "--cases",
        default=",".join(ALL_CASES),
        help="comma-separated cases to run, of " + ",".join(ALL_CASES),
    )
    parser.add_argument(
        "--workers", default="1,2", help="comma-separated worker counts for cases a, b and c"
    )
    parser.add_argument(
        "--load-generator",
        choices=["auto", "wrk", "aiohttp"],
        default="auto",
        help="auto: wrk if installed, else the aiohttp client",
    )
    parser.add_argument(
        "--database-url",
        help="database to benchmark on; its presto tables are dropped and reloaded "
        "(default: a temporary SQLite file)",
    )
    parser.add_argument(
        "--menu",
        choices=["demo", "generated"],
        default="demo",
        help="menu of cases a-c: the demo burger bar, or a generated 2,000-item menu",
    )
    parser.add_argument(
        "--json", type=Path, help="where to write the results (default: bench-results/<time>.json)"
    )
    return parser


def comma_list(text: str) -> list[str]:
    """`"a, b"` -> `["a", "b"]`."""
    return [part.strip() for part in text.split(",") if part.strip()]


def machine_description() -> str:
    """CPU model and count, kernel and Python: the conditions numbers depend on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cpus = os.cpu_count() or 0
    return (
        f"{model or platform.processor() or 'unknown CPU'}, {cpus} CPUs, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def load_description(config: BenchConfig) -> str:
    """Which load generator ran, with how many connections and for how long."""
    generator = config.generator
    if generator == "auto":
        generator = "wrk" if wrk_available() else "aiohttp"
    if generator == "wrk":
        version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
        name = version.split(" Copyright")[0].strip() or "wrk"
    else:
        name = "aiohttp client (fallback; one Python process, saturates before fast servers)"
    return (
        f"{name}, {config.connections} connections, {config.duration:g} s per run "
        f"after {config.warmup:g} s warm-up; servers compared take {config.rounds} turn(s), "
        "median shown"
    )


def run(config: BenchConfig) -> tuple[dict[str, Any], list[Row]]:
    """Run the chosen cases, in order; servers are stopped even on error or Ctrl-C."""
    rows: list[Row] = []
    body = b""
    if config.cases & {"a", "b", "c", "i"}:
        body = prepare_menu(config)
    if config.cases & {"a", "b", "c"}:
        rows += run_warm(config, body)
    if "i" in config.cases:
        rows += run_gzip_case(config, body)
    if "d" in config.cases:
        rows += run_cold_case(config)
    if "e" in config.cases:
        rows += run_mixed_case(config)
    if "f" in config.cases:
        rows += run_memory_case(config)
    if config.cases & {"g", "h"}:
        rows += run_long_tail_case(config)
    if "j" in config.cases:
        rows += run_write_case(config)
    if "k" in config.cases:
        rows += run_refusal_case(config.database_url, config.work_dir, config.duration)
    if "l" in config.cases:
        rows += run_pooler_case(config)
    meta = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_description(),
        "load": load_description(config),
        "database": sa.make_url(config.database_url).get_backend_name(),
        "menu": f"{config.menu}, GET /restaurant/1/item = {len(body):,} bytes"
        if body
        else config.menu,
        "cases": sorted(config.cases),
        "workers": list(config.workers),
        "duration": config.duration,
        "connections": config.connections,
        "quick": config.cold_repeats < 9,
    }
    return meta, rows


def stop_on_sigterm(signum: int, _frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C does, so every `finally` stops its server."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse options, run, print the table and write the JSON file."""
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    cases = frozenset(comma_list(args.cases))
    if not cases or not cases <= set(ALL_CASES):
        raise SystemExit(f"--cases: choose among {', '.join(ALL_CASES)}")
    workers = tuple(int(count) for count in comma_list(args.workers))
    if not workers or min(workers) < 1:
        raise SystemExit("--workers: positive worker counts, e.g. 1,2")
    started = datetime.datetime.now()
    json_path = args.json or Path("bench-results") / f"{started:%Y%m%d-%H%M%S}.json"
    with tempfile.TemporaryDirectory(prefix="presto-bench-") as work_dir:
        config = BenchConfig(
            cases=cases,
            workers=workers,
            duration=args.duration or (1.0 if args.quick else 10.0),
            warmup=1.0 if args.quick else 2.0,
            connections=args.connections,
            generator=args.load_generator,
            rounds=args.rounds or (1 if args.quick else 3),
            database_url=args.database_url or f"sqlite:///{Path(work_dir) / 'bench.db'}",
            menu=args.menu,
            generated_items=2000,
            cold_sizes=(200, 500) if args.quick else (500, 2000),
            cold_repeats=3 if args.quick else 9,
            cache_budget=QUICK_CACHE_BUDGET if args.quick else CACHE_BUDGET,
            memory_restaurants=1 if args.quick else 3,
            memory_items=500 if args.quick else 1000,
            catalog_restaurants=50 if args.quick else 5000,
            small_cache_bytes=256 * 1024 if args.quick else 4 * 1024 * 1024,
            write_repeats=3 if args.quick else 20,
            work_dir=Path(work_dir),
        )
        try:
            meta, rows = run(config)
        except KeyboardInterrupt:
            print("\ninterrupted: every server started was stopped", file=sys.stderr)
            return 130
    targets = check_targets(rows, list(workers))
    print(format_table(meta, rows, targets))
    write_json(json_path, meta, rows, targets)
    print(f"\nJSON: {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
