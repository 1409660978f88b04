"""`benzo-monitor reference load FILE` and `reference list`: the product reference (SPEC §14)."""

from __future__ import annotations

import json

from rich.markup import escape

from etl.base.errors import UserError
from etl.base.warehouse import WarehouseError, connect
from etl.cli.terminal import emit, read_only
from etl.ingest.read import FileRefused
from etl.ingest.reference import decree_molecules, load_reference, reference_products


def run_reference(args, config) -> int:
    """`benzo-monitor reference load|list`."""
    if args.reference_command == "list":
        return _list(args, config)
    try:
        con = connect(args.db, config=config)
    except WarehouseError as exc:
        raise UserError(escape(str(exc))) from exc
    try:
        summary = load_reference(con, args.file)
    except FileRefused as exc:
        print(f"refused: {exc}")
        return 1
    finally:
        con.close()
    print(
        f"{summary.file_name}: {summary.rows:,} product(s) loaded ({summary.new:,} new, "
        f"{summary.replaced:,} replaced), of which {summary.bzra_products:,} BZRA "
        "(ATC N05BA, N05CD, N05CF)."
    )
    if summary.earlier_loads:
        print(
            f"{summary.earlier_loads:,} export(s) were loaded before this reference: their lines "
            "of these products without an ATC column were skipped as other medicines. Load "
            "those files again to keep them as BZRA deliveries (nothing is counted twice)."
        )
    return 0


def _list(args, config) -> int:
    con = read_only(args, config)
    try:
        molecules = decree_molecules(con)
        products = reference_products(con)
        n_all = con.execute("select count(*) from product_reference").fetchone()[0]
    finally:
        con.close()
    if args.format == "json":
        print(
            json.dumps(
                {"molecules": molecules, "products": products, "products_in_reference": n_all},
                default=str,
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0
    emit(
        molecules,
        "table",
        "The decree's molecules (annex I.2), with the products of the reference",
        ["molecule", "atc", "duration_of_action", "max_daily_dose_mg", "diazepam_factor",
         "products"],
    )  # fmt: skip
    emit(
        products,
        "table",
        f"BZRA and clonazepam products of the reference ({len(products):,} of {n_all:,})",
        ["cnk", "atc", "decree_molecule", "substance", "strength_mg", "units_per_pack",
         "file_name"],
    )  # fmt: skip
    return 0
