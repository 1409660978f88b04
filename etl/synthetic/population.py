"""Who the synthetic lines are about: pseudonymous identifiers, pharmacies and their postcodes,
and patients' demographics, drawn from the figures of `calibration`."""

from __future__ import annotations

import numpy as np

from etl.synthetic.calibration import (
    BRUSSELS_POSTCODES,
    FEMALE_SHARE,
    INSURERS,
    N_PARTICIPATING,
    N_PHARMACIES,
    REGION_P,
)


def hex_ids(rng, n: int, prefix: str, width: int, exclude: set[str] | None = None) -> list[str]:
    """n distinct pseudonyms: prefix + `width` upper-case hex digits (never 11 digits)."""
    out: list[str] = []
    seen: set[str] = set(exclude or ())
    while len(out) < n:
        vals = rng.integers(0, 2**63, size=n - len(out), dtype=np.int64)
        for v in vals.tolist():
            text = f"{prefix}{v % (16**width):0{width}X}"
            if text not in seen:
                seen.add(text)
                out.append(text)
    return out


def _postcodes(rng, n: int) -> list[str]:
    flanders = np.concatenate([np.arange(1500, 4000, 10), np.arange(8000, 10000, 10)])
    wallonia = np.concatenate([np.arange(1300, 1500, 10), np.arange(4000, 8000, 10)])
    region = rng.choice(3, size=n, p=REGION_P)
    codes = np.where(
        region == 0,
        rng.choice(np.array(BRUSSELS_POSTCODES), size=n),
        np.where(region == 1, rng.choice(flanders, size=n), rng.choice(wallonia, size=n)),
    )
    return [str(c) for c in codes.tolist()]


def pharmacies(rng) -> dict:
    """Every pharmacy: id, postcode, and two activity shares (the first N_PARTICIPATING ones
    in the programme, all of them for other medicines)."""
    ids = hex_ids(rng, N_PHARMACIES, "PH", 10)
    postcodes = _postcodes(rng, N_PHARMACIES)
    act = rng.gamma(0.9, 1.0, N_PARTICIPATING)
    all_act = rng.gamma(2.0, 1.0, N_PHARMACIES)
    return {
        "id": ids,
        "postcode": postcodes,
        "activity": act / act.sum(),
        "all_activity": all_act / all_act.sum(),
    }


def demographics(rng, n: int) -> dict[str, np.ndarray]:
    """Birth year, sex (F/M) and insurer code of n patients."""
    birth = 1930 + np.rint(74 * rng.beta(1.8, 2.6, n)).astype(np.int32)
    sex = np.where(rng.random(n) < FEMALE_SHARE, "F", "M")
    insurer = rng.choice(np.array(list(INSURERS)), size=n, p=np.array(list(INSURERS.values())))
    return {"birth": birth, "sex": sex, "insurer": insurer}
