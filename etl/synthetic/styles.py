"""The styles of the synthetic exports: French, Dutch and ISO conventions.

A style fixes the headers, the delimiter, the date and decimal formats, the codes of sex, the
encoding and the language of the product labels; the writers and the generator read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

CANONICAL_ORDER = (
    "patient_id",
    "pharmacy_id",
    "delivery_date",
    "cnk",
    "quantity",
    "amount_eur",
    "billing_month",
    "insurer_code",
    "patient_birth_year",
    "patient_sex",
    "pharmacy_postcode",
    "prescriber_id",
    "label",
)


@dataclass(frozen=True)
class Style:
    """How one kind of export looks: headers, delimiter, dates, decimals, encoding, labels."""

    name: str
    headers: tuple[str, ...]  # in CANONICAL_ORDER
    delimiter: str
    date_format: str  # strftime
    excel_date_format: str
    decimal: str
    female: str
    male: str
    encoding: str  # python codec
    bom: bool
    line_terminator: str
    label_language: str  # fr | nl

    def billing_month(self, year: pl.Expr, month: pl.Expr) -> pl.Expr:
        """The billing month as text in this style, from zero-padded year and month texts."""
        if self.name == "fr":
            return pl.concat_str([month, pl.lit("/"), year])
        if self.name == "nl":
            return pl.concat_str([year, month])
        return pl.concat_str([year, pl.lit("-"), month])

    def bad_date(self, year: int) -> str:
        """An unreadable date in this style (31 February), for the broken lines."""
        if self.name == "fr":
            return f"31/02/{year}"
        if self.name == "nl":
            return f"31-02-{year}"
        return f"{year}-02-31"


STYLES: dict[str, Style] = {
    "fr": Style("fr", ("id_patient", "id_pharmacie", "date_de_délivrance", "code_cnk", "quantité",
                       "montant", "mois_facturation", "organisme_assureur", "année_naissance",
                       "sexe", "code_postal", "prescripteur", "libellé"),
                ";", "%d/%m/%Y", "dd/mm/yyyy", ",", "F", "H", "cp1252", False, "\r\n", "fr"),
    "nl": Style("nl", ("patient", "apotheek", "afleverdatum", "cnk", "aantal", "bedrag",
                       "facturatiemaand", "verzekeringsinstelling", "geboortejaar", "geslacht",
                       "postcode_apotheek", "voorschrijver", "omschrijving"),
                ";", "%d-%m-%Y", "dd-mm-yyyy", ",", "V", "M", "utf-8", True, "\n", "nl"),
    "iso": Style("iso", CANONICAL_ORDER, ",", "%Y-%m-%d", "yyyy-mm-dd", ".", "F", "M", "utf-8",
                 False, "\n", "fr"),
}  # fmt: skip
