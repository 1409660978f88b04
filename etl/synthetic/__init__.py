"""Seeded synthetic billing exports, with their ground truth (`generate.generate`).

Modules, in the order the data flows: `calibration` (the pilot's figures, the decree's
parameters, working days), `population` (identifiers, pharmacies, patients), `simulation`
(programmes and breaches), `billing` (lines, corrections, broken lines), `other_medicines`,
`styles` and `writers` (the files), `oracle` (the reference reading of SPEC §4-§8 behind the
manifest and the tests), and `generate` (the steps, end to end).
"""
