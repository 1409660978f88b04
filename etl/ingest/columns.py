"""Canonical columns of a billing export and the header aliases accepted for each (SPEC §3)."""

from __future__ import annotations

import json
import tomllib
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from etl.ingest.read import NotRegularFile, open_regular


@dataclass(frozen=True)
class Column:
    name: str
    required: bool
    aliases: tuple[str, ...]


COLUMNS: tuple[Column, ...] = (
    Column("patient_id", True,
           ("patient", "pseudo_patient", "patient_pseudonym", "id_patient", "patient_hash", "pseudo_id")),
    Column("pharmacy_id", True,
           ("pharmacy", "pharmacie", "id_pharmacie", "officine", "apotheek", "apotheek_id")),
    Column("delivery_date", True,
           ("date_delivrance", "date_de_delivrance", "afleverdatum", "datum_aflevering", "dispensing_date")),
    Column("cnk", True, ("code_cnk", "cnk_code")),
    Column("quantity", False, ("quantite", "qty", "aantal", "hoeveelheid", "nombre")),
    Column("amount_eur", False, ("amount", "montant", "montant_eur", "bedrag")),
    Column("billing_month", False,
           ("mois_facturation", "mois_de_facturation", "facturatiemaand", "periode_facturation")),
    Column("insurer_code", False,
           ("organisme_assureur", "oa", "mutualite", "verzekeringsinstelling", "vi", "mutualiteit")),
    Column("patient_birth_year", False,
           ("birth_year", "annee_naissance", "annee_de_naissance", "geboortejaar")),
    Column("patient_sex", False, ("sex", "sexe", "geslacht", "gender")),
    Column("pharmacy_postcode", False,
           ("postcode", "code_postal", "postal_code", "postcode_apotheek")),
    Column("prescriber_id", False, ("prescriber", "prescripteur", "voorschrijver")),
    Column("atc", False, ("code_atc", "atc_code", "atc7")),  # SPEC §14: BZRA lines
)  # fmt: skip

# A mapping file names a few headers: anything bigger is not one (and is not read whole).
MAX_MAPPING_BYTES = 1 << 20

CANONICAL = tuple(c.name for c in COLUMNS)
REQUIRED = tuple(c.name for c in COLUMNS if c.required)


class MappingError(ValueError):
    """A mapping file that cannot be used."""


class AmbiguousColumns(ValueError):
    """Two or more of a file's headers match one canonical column; the message names them,
    `columns` lists them without words ("patient_id: 'Patient' and 'patient id'")."""

    def __init__(self, message: str, columns: str = ""):
        super().__init__(message)
        self.columns = columns


def header_key(header: str) -> str:
    """Normalise a header for matching: no case, accents, spaces, `_`, `-` or `.`."""
    text = unicodedata.normalize("NFKD", str(header))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.replace("\ufeff", "").casefold()
    return "".join(ch for ch in text if ch not in " _-.\t\r\n")


def alias_table(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Normalised header -> canonical name, with a user mapping (header -> canonical) on top."""
    table: dict[str, str] = {}
    for col in COLUMNS:
        table[header_key(col.name)] = col.name
        for alias in col.aliases:
            table[header_key(alias)] = col.name
    for header, canonical in (extra or {}).items():
        table[header_key(header)] = canonical
    return table


def read_mapping(path: str | Path) -> dict[str, str]:
    """A user mapping file: TOML or JSON, `"their header" = "canonical_name"`.

    TOML may put the pairs at top level or under a `[columns]` table.
    """
    path = Path(path)
    try:
        with open_regular(path) as fh:
            raw = fh.read(MAX_MAPPING_BYTES + 1)
    except NotRegularFile as exc:
        raise MappingError(f"mapping file {path}: {exc}") from exc
    except OSError as exc:
        raise MappingError(f"mapping file {path} cannot be read: {exc.strerror}") from exc
    if len(raw) > MAX_MAPPING_BYTES:
        raise MappingError(
            f"mapping file {path} is larger than 1 MiB; a mapping names a few headers"
        )
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(raw.decode("utf-8-sig"))
        else:
            data = tomllib.loads(raw.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise MappingError(f"mapping file {path} is not valid TOML/JSON: {exc}") from exc
    except RecursionError as exc:  # e.g. thousands of nested [ - no mapping looks like that
        raise MappingError(f"mapping file {path} is not valid TOML/JSON: nested too deep") from exc
    if isinstance(data, dict) and isinstance(data.get("columns"), dict):
        data = data["columns"]
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise MappingError(
            f"mapping file {path} must map export headers to canonical names, "
            'e.g. `"Patient Nr" = "patient_id"`'
        )
    unknown = sorted({v for v in data.values() if v not in CANONICAL})
    if unknown:
        raise MappingError(
            f"mapping file {path} names unknown columns {', '.join(unknown)}; "
            f"canonical columns are: {', '.join(CANONICAL)}"
        )
    return dict(data)


def match_headers(headers: list[str], mapping: dict[str, str] | None = None) -> dict[str, str]:
    """canonical name -> the file's header that supplies it.

    A header named in the mapping file wins over headers matching by alias (that is how a
    mapping settles a choice). Two headers left for one canonical column (`Patient` and
    `Patient_pseudonym`) raise `AmbiguousColumns` naming them: taking the first would load
    names as pseudonyms, or an empty column, without a word (issue 19).
    """
    table = alias_table(mapping)
    mapped = {header_key(header) for header in (mapping or {})}
    candidates: dict[str, list[str]] = {}
    for header in headers:
        canonical = table.get(header_key(header))
        if canonical:
            candidates.setdefault(canonical, []).append(header)
    found: dict[str, str] = {}
    clashes = []
    for canonical, names in candidates.items():
        chosen = [name for name in names if header_key(name) in mapped] or names
        if len(chosen) > 1:
            shown = " and ".join(repr(name if len(name) <= 60 else name[:57] + "...")
                                 for name in chosen[:5])  # fmt: skip
            more = f" (and {len(chosen) - 5} more)" if len(chosen) > 5 else ""
            clashes.append(f"{canonical}: {shown}{more}")
        found[canonical] = chosen[0]
    if clashes:
        example = clashes[0].split(": ", 1)
        raise AmbiguousColumns(
            "more than one header matches the same column - "
            + "; ".join(clashes)
            + ". Name the header to use in a mapping file (--mapping FILE), e.g. "
            + f'"{candidates[example[0]][-1]}" = "{example[0]}", or remove the other column.',
            columns="; ".join(clashes),
        )
    return found


def describe_aliases(names: tuple[str, ...] = REQUIRED) -> str:
    """One line per canonical column with the headers accepted for it (for error messages)."""
    lines = []
    for col in COLUMNS:
        if col.name in names:
            lines.append(f"  {col.name}: {', '.join((col.name, *col.aliases))}")
    return "\n".join(lines)
