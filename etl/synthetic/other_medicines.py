"""Lines of other medicines: the bulk of a real export that the loader must read and set aside.

A pool of other CNKs (never one of the programme's codes) with French and Dutch labels and
prices; how many lines fall on each day and billing month is drawn up front, and the rows are
made piece by piece so that millions of lines never sit in memory at once.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import polars as pl

from etl.base.codes import PROGRAMME_CNKS
from etl.synthetic.calibration import (
    EPOCH,
    LAG_P,
    N_PHARMACIES,
    N_PRESCRIBERS,
    Calendar,
    month_index,
)
from etl.synthetic.styles import Style

OTHER_CNK_POOL = 5000
CHUNK_ROWS = 250_000

_MOLECULES = (
    ("Paracétamol", "Paracetamol"), ("Ibuprofène", "Ibuprofen"), ("Amoxicilline", "Amoxicilline"),
    ("Oméprazole", "Omeprazol"), ("Pantoprazole", "Pantoprazol"), ("Metformine", "Metformine"),
    ("Lévothyroxine", "Levothyroxine"), ("Diclofénac", "Diclofenac"),
    ("Simvastatine", "Simvastatine"), ("Atorvastatine", "Atorvastatine"),
    ("Rosuvastatine", "Rosuvastatine"), ("Bisoprolol", "Bisoprolol"), ("Amlodipine", "Amlodipine"),
    ("Lisinopril", "Lisinopril"), ("Cétirizine", "Cetirizine"), ("Loratadine", "Loratadine"),
    ("Alprazolam", "Alprazolam"), ("Lorazépam", "Lorazepam"), ("Zolpidem", "Zolpidem"),
    ("Sertraline", "Sertraline"), ("Escitalopram", "Escitalopram"), ("Trazodone", "Trazodon"),
    ("Mirtazapine", "Mirtazapine"), ("Tramadol", "Tramadol"), ("Codéine", "Codeïne"),
    ("Salbutamol", "Salbutamol"), ("Prednisolone", "Prednisolon"), ("Clopidogrel", "Clopidogrel"),
    ("Apixaban", "Apixaban"), ("Furosémide", "Furosemide"), ("Dompéridone", "Domperidon"),
    ("Métoclopramide", "Metoclopramide"), ("Lopéramide", "Loperamide"),
    ("Acide acétylsalicylique", "Acetylsalicylzuur"), ("Caféine", "Cafeïne"),
    ("Vitamine D3", "Vitamine D3"), ("Magnésium", "Magnesium"),
)  # fmt: skip
_MAKERS = ("EG", "Sandoz", "Teva", "Mylan", "Apotex", "Krka", "Viatris", "Aurobindo", "Zentiva")
_FORMS = (
    ("comprimés", "tabletten"), ("comprimés pelliculés", "filmomhulde tabletten"),
    ("gélules", "capsules"), ("sirop", "siroop"), ("crème", "crème"), ("pommade", "zalf"),
    ("solution buvable", "drank"), ("suppositoires", "zetpillen"), ("sachets", "zakjes"),
    ("gouttes", "druppels"),
)  # fmt: skip
_STRENGTHS = ("5 mg", "10 mg", "20 mg", "40 mg", "100 mg", "250 mg", "500 mg", "1 g")
_PACKS = (10, 20, 28, 30, 56, 60, 98, 100)
_GENERIC = (
    ("Médicament générique", "Geneesmiddel"),
    ("Préparation magistrale", "Magistrale bereiding"),
    ("Matériel de soins – pansements", "Verzorgingsmateriaal – verbanden"),
    ('Sirop "toux sèche"', 'Hoestsiroop "droge hoest"'),
)


def _other_products(rng) -> dict:
    """A pool of other CNKs (7 digits, none of the 8 programme codes) with labels and prices."""
    taken = {int(c) for c in PROGRAMME_CNKS}
    codes: list[int] = []
    seen: set[int] = set()
    while len(codes) < OTHER_CNK_POOL:
        for v in rng.integers(1, 5_000_000, OTHER_CNK_POOL).tolist():
            if v not in seen and v not in taken and len(codes) < OTHER_CNK_POOL:
                seen.add(v)
                codes.append(v)
    mol = rng.integers(len(_MOLECULES), size=OTHER_CNK_POOL)
    maker = rng.integers(len(_MAKERS), size=OTHER_CNK_POOL)
    form = rng.integers(len(_FORMS), size=OTHER_CNK_POOL)
    strength = rng.integers(len(_STRENGTHS), size=OTHER_CNK_POOL)
    pack = rng.integers(len(_PACKS), size=OTHER_CNK_POOL)
    generic = rng.random(OTHER_CNK_POOL) < 0.04
    gen_kind = rng.integers(len(_GENERIC), size=OTHER_CNK_POOL)
    labels = {"fr": [], "nl": []}
    for i in range(OTHER_CNK_POOL):
        for lang, li in (("fr", 0), ("nl", 1)):
            if generic[i]:
                labels[lang].append(_GENERIC[gen_kind[i]][li])
            else:
                labels[lang].append(
                    f"{_MOLECULES[mol[i]][li]} {_MAKERS[maker[i]]} {_STRENGTHS[strength[i]]}, "
                    f"{_PACKS[pack[i]]} {_FORMS[form[i]][li]}"
                )
    rank = rng.permutation(OTHER_CNK_POOL)
    popularity = 1.0 / (rank + 10.0) ** 0.9
    price = np.clip(np.rint(np.exp(rng.normal(np.log(1200), 0.9, OTHER_CNK_POOL))), 50, 50000)
    return {
        "cnk": pl.Series([f"{c:07d}" for c in codes], dtype=pl.String),
        "label_fr": pl.Series(labels["fr"], dtype=pl.String),
        "label_nl": pl.Series(labels["nl"], dtype=pl.String),
        "p": popularity / popularity.sum(),
        "price": price.astype(np.int64),
    }


class OtherLines:
    """Lines of other medicines: counts per (billing month, day) up front, rows chunk by chunk."""

    def __init__(
        self,
        rng,
        n: int,
        cal: Calendar,
        start: int,
        end: int,
        end_month: int,
        patients: dict,
        pharmacies: dict,
        prescriber_ids: list[str],
        style: Style,
    ):
        self.rng = rng
        self.n = n
        self.by_month: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if n <= 0:
            return
        ords = np.arange(start, end + 1)
        weekday = (ords - 1) % 7
        working = cal.working[ords - cal.base]
        w = np.where(working, np.where(weekday == 5, 0.6, 1.0), 0.04)
        months = np.array([month_index(int(d)) for d in ords])
        n_lags = len(LAG_P)
        # a (day, lag) whose billing month falls after end_month is not billed yet: no line
        billed = (months[:, None] + np.arange(n_lags)[None, :]) <= end_month
        cell_p = (w[:, None] * np.array(LAG_P)[None, :] * billed).ravel()
        counts = rng.multinomial(n, cell_p / cell_p.sum()).reshape(len(ords), n_lags)
        for lag in range(n_lags):
            bms = months + lag
            for bm in np.unique(bms):
                sel = (bms == bm) & (counts[:, lag] > 0)
                if not sel.any():
                    continue
                days, cnt = ords[sel], counts[sel, lag]
                if bm in self.by_month:
                    d0, c0 = self.by_month[int(bm)]
                    merged: dict[int, int] = defaultdict(int)
                    for d, c in zip(
                        np.concatenate([d0, days]).tolist(),
                        np.concatenate([c0, cnt]).tolist(),
                        strict=True,
                    ):
                        merged[d] += c
                    keys = sorted(merged)
                    days, cnt = np.array(keys), np.array([merged[k] for k in keys])
                self.by_month[int(bm)] = (days, cnt)
        self.products = _other_products(rng)
        self.label = self.products["label_nl" if style.label_language == "nl" else "label_fr"]
        self.patients = patients
        self.n_patients = len(patients["id"])
        self.pharmacy_id = pl.Series(pharmacies["id"], dtype=pl.String)
        self.pharmacy_postcode = pl.Series(pharmacies["postcode"], dtype=pl.String)
        self.pharmacy_p = pharmacies["all_activity"]
        self.prescriber_id = pl.Series(prescriber_ids, dtype=pl.String)

    def rows_in(self, bm: int) -> int:
        """How many lines are billed in billing month `bm`."""
        return int(self.by_month[bm][1].sum()) if bm in self.by_month else 0

    def pieces(self, bm: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """The month's (days, counts) cut into chunks of at most CHUNK_ROWS rows, in day order."""
        if bm not in self.by_month:
            return []
        out, cur_d, cur_c, cur_n = [], [], [], 0
        for d, c in zip(*(a.tolist() for a in self.by_month[bm]), strict=True):
            while c > 0:
                take = min(c, CHUNK_ROWS - cur_n)
                cur_d.append(d)
                cur_c.append(take)
                cur_n += take
                c -= take
                if cur_n == CHUNK_ROWS:
                    out.append((np.array(cur_d), np.array(cur_c)))
                    cur_d, cur_c, cur_n = [], [], 0
        if cur_n:
            out.append((np.array(cur_d), np.array(cur_c)))
        return out

    def make(self, bm: int, days: np.ndarray, counts: np.ndarray) -> pl.DataFrame:
        """The typed rows of one piece (see `pieces`): `counts[i]` lines on `days[i]`."""
        rng = self.rng
        n = int(counts.sum())
        day = np.repeat(days, counts)
        product = rng.choice(OTHER_CNK_POOL, size=n, p=self.products["p"])
        patient = rng.integers(0, self.n_patients, size=n)
        pharmacy = rng.choice(N_PHARMACIES, size=n, p=self.pharmacy_p)
        qty = rng.choice(np.array([1, 2, 3], dtype=np.int32), size=n, p=(0.9, 0.08, 0.02))
        prescriber = rng.integers(0, N_PRESCRIBERS, size=n)
        tie = rng.random(n)
        pat = self.patients
        return pl.DataFrame(
            {
                "patient_id": pat["id"].gather(patient),
                "pharmacy_id": self.pharmacy_id.gather(pharmacy),
                "delivery_date": pl.Series((day - EPOCH).astype(np.int32)).cast(pl.Date),
                "date_text": pl.Series([None] * n, dtype=pl.String),
                "cnk": self.products["cnk"].gather(product),
                "quantity": pl.Series(qty, dtype=pl.Int32),
                "cents": pl.Series(self.products["price"][product] * qty, dtype=pl.Int64),
                "bm": pl.Series(np.full(n, bm, dtype=np.int32)),
                "insurer_code": pat["insurer"].gather(patient),
                "birth_year": pl.Series(pat["birth"][patient], dtype=pl.Int32),
                "sex": pat["sex"].gather(patient),
                "postcode": self.pharmacy_postcode.gather(pharmacy),
                "prescriber_id": self.prescriber_id.gather(prescriber),
                "label": self.label.gather(product),
                "tie": pl.Series(tie, dtype=pl.Float64),
            }
        )
