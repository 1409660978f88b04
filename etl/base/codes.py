"""The programme's 8 fee codes (CNK), SPEC §2: the single source for the loader and the warehouse."""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("initiation", "reduction", "stabilisation", "follow_up")


@dataclass(frozen=True)
class FeeCode:
    cnk: str
    kind: str  # initiation | reduction | stabilisation | follow_up
    scheme: int | None  # 5, 7 or 10 for initiation interviews
    capsules: int | None  # 10, 20 or 30 for reduction steps
    coefficient: str  # "interview" or "preparation": which configured coefficient applies
    label_fr: str
    label_nl: str
    label_en: str


FEE_CODES: tuple[FeeCode, ...] = (
    FeeCode("5521950", "initiation", 5, None, "interview",
            "Entretien d'initiation, schéma à 5 paliers",
            "Opstartgesprek, schema met 5 stappen",
            "Initiation interview, 5-step scheme"),
    FeeCode("5521968", "initiation", 7, None, "interview",
            "Entretien d'initiation, schéma à 7 paliers",
            "Opstartgesprek, schema met 7 stappen",
            "Initiation interview, 7-step scheme"),
    FeeCode("5521976", "initiation", 10, None, "interview",
            "Entretien d'initiation, schéma à 10 paliers",
            "Opstartgesprek, schema met 10 stappen",
            "Initiation interview, 10-step scheme"),
    FeeCode("5521984", "reduction", None, 10, "preparation",
            "Palier de diminution, 10 gélules",
            "Afbouwstap, 10 capsules",
            "Reduction step, 10 capsules"),
    FeeCode("5521992", "reduction", None, 20, "preparation",
            "Palier de diminution, 20 gélules",
            "Afbouwstap, 20 capsules",
            "Reduction step, 20 capsules"),
    FeeCode("5522008", "reduction", None, 30, "preparation",
            "Palier de diminution, 30 gélules",
            "Afbouwstap, 30 capsules",
            "Reduction step, 30 capsules"),
    FeeCode("5522016", "stabilisation", None, None, "preparation",
            "Palier de stabilisation",
            "Stabilisatiestap",
            "Stabilisation step"),
    FeeCode("5522024", "follow_up", None, None, "interview",
            "Entretien de suivi",
            "Opvolggesprek",
            "Follow-up interview"),
)  # fmt: skip

PROGRAMME_CNKS: frozenset[str] = frozenset(code.cnk for code in FEE_CODES)
BY_CNK: dict[str, FeeCode] = {code.cnk: code for code in FEE_CODES}
INITIATION_CNK_BY_SCHEME: dict[int, str] = {
    code.scheme: code.cnk for code in FEE_CODES if code.kind == "initiation"
}
REDUCTION_CNK_BY_CAPSULES: dict[int, str] = {
    code.capsules: code.cnk for code in FEE_CODES if code.kind == "reduction"
}
STABILISATION_CNK = "5522016"
FOLLOW_UP_CNK = "5522024"
