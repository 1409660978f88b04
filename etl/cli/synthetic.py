"""`benzo-monitor generate`: a seeded synthetic national dataset."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from etl.base.errors import UserError
from etl.synthetic.generate import generate


def run_generate(args, config) -> int:
    """`benzo-monitor generate`: write the dataset and print what was written."""
    try:
        result = generate(
            args.output, seed=args.seed, start=args.start, end=args.end,
            weekly_starts=args.weekly_starts, file_format=args.file_format, style=args.style,
            other_lines=args.other_lines, split=args.split, config=config,
            bzra=args.bzra,
        )  # fmt: skip
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    console = Console(highlight=False)
    table = Table(title=f"Synthetic exports in {args.output}", show_lines=False)
    table.add_column("file")
    table.add_column("rows", justify="right")
    shown = (
        result.files if len(result.files) <= 14 else result.files[:6] + [None] + result.files[-6:]
    )
    for path in shown:
        if path is None:
            table.add_row("…", "")
        else:
            table.add_row(path.name, f"{result.file_rows[path.name]:,}")
    console.print(table)
    broken = ", ".join(f"{k} {v}" for k, v in sorted(result.broken_lines.items()))
    console.print(
        f"{len(result.files)} file(s) · {result.n_programmes:,} programmes · "
        f"{result.n_lines:,} programme lines · {result.n_other_lines:,} other lines · "
        f"broken lines: {broken}"
    )
    console.print(f"ground truth: {result.ground_truth} · manifest: {result.manifest}")
    if result.bzra:  # SPEC §14
        console.print(
            f"BZRA export: {result.bzra.export} ({result.bzra.n_lines:,} lines, "
            f"{result.bzra.n_carrying_pharmacies:,} pharmacies) · product reference: "
            f"{result.bzra.products} (load it first: benzo-monitor reference load FILE)"
        )
    if result.removed_stale:
        console.print(f"removed {len(result.removed_stale)} export file(s) of an earlier run")
    return 0
