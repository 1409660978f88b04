"""The words of the monthly report pack in French, Dutch and English, and how numbers and dates
are written in each language.

Metric and rule labels are not here: they come from the registry (sql/registry/). These are
the pack's own words (titles, headings, column names, the methodology summary), using the
words of SPEC §12 (programme de sevrage / afbouwprogramma, palier / stap, provisoire /
voorlopig, ...).
"""

from __future__ import annotations

import datetime as dt

LANGUAGES = ("fr", "nl", "en")

MONTHS = {
    "fr": (
        "janvier", "février", "mars", "avril", "mai", "juin",
        "juillet", "août", "septembre", "octobre", "novembre", "décembre",
    ),
    "nl": (
        "januari", "februari", "maart", "april", "mei", "juni",
        "juli", "augustus", "september", "oktober", "november", "december",
    ),
    "en": (
        "January", "February", "March", "April", "May", "June",
        "July", "August", "September", "October", "November", "December",
    ),
}  # fmt: skip

# key -> (en, fr, nl)
_WORDS: dict[str, tuple[str, str, str]] = {
    "title": (
        "Monthly state of play of the benzodiazepine withdrawal programme",
        "État des lieux mensuel du programme de sevrage des benzodiazépines",
        "Maandelijkse stand van zaken van het afbouwprogramma voor benzodiazepines",
    ),
    "subtitle": (
        "Royal Decree of 2 July 2025 — report to INAMI-RIZIV",
        "Arrêté royal du 2 juillet 2025 — rapport à l'INAMI",
        "Koninklijk besluit van 2 juli 2025 — rapport aan het RIZIV",
    ),
    # sections
    "cover": ("Cover", "Page de garde", "Voorblad"),
    "loads": ("Export files included", "Fichiers d'export inclus", "Opgenomen exportbestanden"),
    "state_of_play": (
        "Monthly state of play",
        "État des lieux mensuel",
        "Maandelijkse stand van zaken",
    ),
    "trend": (
        "Patients initiated per month since the pilot's start",
        "Patients ayant initié un programme, par mois depuis le début du projet pilote",
        "Opgestarte patiënten per maand sinds de start van het proefproject",
    ),
    "revisions": (
        "Revisions: first reported and now",
        "Révisions : premier rapport et situation actuelle",
        "Herzieningen: eerste rapportering en nu",
    ),
    "billing_delay": (
        "Initiations known after 1, 2 and 3 months of billing",
        "Initiations connues après 1, 2 et 3 mois de facturation",
        "Opstarten gekend na 1, 2 en 3 maanden facturatie",
    ),
    "cohorts": ("Cohort outcomes", "Résultats par cohorte", "Resultaten per cohorte"),
    "fees": (
        "Fees per fee code (CNK)",
        "Honoraires par code (CNK)",
        "Honoraria per code (CNK)",
    ),
    "compliance": (
        "Compliance with the decree",
        "Conformité à l'arrêté",
        "Naleving van het besluit",
    ),
    "configuration": (
        "Configuration in force",
        "Configuration en vigueur",
        "Geldende configuratie",
    ),
    "methodology": ("Methodology", "Méthodologie", "Methodologie"),
    # sheet names (at most 31 characters)
    "sheet_cover": ("Cover", "Page de garde", "Voorblad"),
    "sheet_loads": ("Export files", "Fichiers d'export", "Exportbestanden"),
    "sheet_state_of_play": ("State of play", "État des lieux", "Stand van zaken"),
    "sheet_trend": ("Trend", "Évolution", "Evolutie"),
    "sheet_revisions": ("Revisions", "Révisions", "Herzieningen"),
    "sheet_billing_delay": ("Billing delay", "Délai de facturation", "Facturatievertraging"),
    "sheet_cohorts": ("Cohorts", "Cohortes", "Cohortes"),
    "sheet_fees": ("Fees", "Honoraires", "Honoraria"),
    "sheet_compliance": ("Compliance", "Conformité", "Naleving"),
    "sheet_configuration": ("Configuration", "Configuration", "Configuratie"),
    "sheet_methodology": ("Methodology", "Méthodologie", "Methodologie"),
    # cover fields
    "period": ("Period", "Période", "Periode"),
    "as_of": ("As-of date", "Date de référence", "Peildatum"),
    "provisional_months": ("Provisional months", "Mois provisoires", "Voorlopige maanden"),
    "none": ("none", "aucun", "geen"),
    "disclosure": ("Disclosure control", "Contrôle de divulgation", "Statistische geheimhouding"),
    "suppressed_note": (
        "applied: counts from 1 to {m} are shown as {mask}; a rate whose denominator is "
        "below {t} is left empty; fees are not suppressed",
        "appliqué : les nombres de 1 à {m} sont affichés {mask} ; un taux dont le "
        "dénominateur est inférieur à {t} est laissé vide ; les honoraires ne sont pas masqués",
        "toegepast: aantallen van 1 tot {m} worden als {mask} getoond; een aandeel met een "
        "noemer onder {t} blijft leeg; honoraria worden niet gemaskeerd",
    ),
    "exact_note": (
        "not applied: exact figures, for internal use only",
        "non appliqué : chiffres exacts, à usage interne uniquement",
        "niet toegepast: exacte cijfers, enkel voor intern gebruik",
    ),
    "pack_id": ("Report pack", "Rapport", "Rapport"),
    "pack_number": (
        "no. {id}, issued on {issued}",
        "n° {id}, émis le {issued}",
        "nr. {id}, uitgegeven op {issued}",
    ),
    "content_sha256": (
        "Content fingerprint (SHA-256 of the tables)",
        "Empreinte du contenu (SHA-256 des tableaux)",
        "Vingerafdruk van de inhoud (SHA-256 van de tabellen)",
    ),
    "status_provisional": (
        "The month is provisional: late billing may still add events.",
        "Le mois est provisoire : une facturation tardive peut encore ajouter des événements.",
        "De maand is voorlopig: laattijdige facturatie kan nog gebeurtenissen toevoegen.",
    ),
    "status_final": (
        "The month is final.",
        "Le mois est définitif.",
        "De maand is definitief.",
    ),
    "contents": ("Contents", "Sommaire", "Inhoud"),
    # columns
    "indicator": ("Indicator", "Indicateur", "Indicator"),
    "code": ("Code", "Code", "Code"),
    "scheme": ("Scheme", "Schéma", "Schema"),
    "scheme_5": ("5-step scheme", "Schéma à 5 paliers", "Schema met 5 stappen"),
    "scheme_7": ("7-step scheme", "Schéma à 7 paliers", "Schema met 7 stappen"),
    "scheme_10": ("10-step scheme", "Schéma à 10 paliers", "Schema met 10 stappen"),
    "total": ("Total", "Total", "Totaal"),
    "unassigned": (
        "Unassigned events",
        "Événements non rattachés",
        "Niet-toegewezen gebeurtenissen",
    ),
    "month": ("Month", "Mois", "Maand"),
    "status": ("Status", "Statut", "Status"),
    "provisional": ("provisional", "provisoire", "voorlopig"),
    "final": ("final", "définitif", "definitief"),
    "first_reported": ("first reported", "premier rapport", "eerste rapportering"),
    "now": ("now", "actuel", "nu"),
    "difference": ("difference", "différence", "verschil"),
    "first_reported_from": ("First report", "Premier rapport", "Eerste rapportering"),
    "first_reported_as_of": (
        "First report as of",
        "Premier rapport à la date du",
        "Eerste rapportering op",
    ),
    "source_archive": (
        "archived pack no. {id}",
        "rapport archivé n° {id}",
        "gearchiveerd rapport nr. {id}",
    ),
    "source_ledger": ("up to load no. {id}", "jusqu'au chargement n° {id}", "tot lading nr. {id}"),
    "source_current": ("this report", "ce rapport", "dit rapport"),
    "initiation_month": ("Start month", "Mois de début", "Startmaand"),
    "cnk": ("CNK", "CNK", "CNK"),
    "service": ("Service", "Prestation", "Verstrekking"),
    "n_events": ("Events", "Événements", "Gebeurtenissen"),
    "n_unassigned_events": (
        "of which unassigned",
        "dont non rattachés",
        "waarvan niet-toegewezen",
    ),
    "fees_estimated_eur": (
        "Estimated fees (EUR)",
        "Honoraires estimés (EUR)",
        "Geschatte honoraria (EUR)",
    ),
    "amount_billed_eur": (
        "Amount billed (EUR)",
        "Montant facturé (EUR)",
        "Gefactureerd bedrag (EUR)",
    ),
    "rule": ("Rule", "Règle", "Regel"),
    "severity": ("Severity", "Gravité", "Ernst"),
    "error": ("error", "erreur", "fout"),
    "warning": ("warning", "avertissement", "waarschuwing"),
    "flagged_events": ("Flagged events", "Événements signalés", "Gesignaleerde gebeurtenissen"),
    "load_id": ("Load", "Chargement", "Lading"),
    "file_name": ("File", "Fichier", "Bestand"),
    "file_sha256": ("SHA-256", "SHA-256", "SHA-256"),
    "loaded_at": ("Loaded on", "Chargé le", "Geladen op"),
    "min_delivery_date": ("First delivery", "Première délivrance", "Eerste aflevering"),
    "max_delivery_date": ("Last delivery", "Dernière délivrance", "Laatste aflevering"),
    "rows_new": ("New lines", "Nouvelles lignes", "Nieuwe lijnen"),
    "setting": ("Setting", "Paramètre", "Parameter"),
    "value": ("Value", "Valeur", "Waarde"),
    "meaning": ("Meaning", "Signification", "Betekenis"),
    "n_billing_months": ("Months of billing", "Mois de facturation", "Maanden facturatie"),
    "billed_up_to": ("Billed up to", "Facturé jusqu'à", "Gefactureerd tot"),
    "first_month": ("From", "Du mois", "Van"),
    "last_month": ("To", "Au mois", "Tot"),
    "months_pooled": ("Months pooled", "Mois regroupés", "Samengevoegde maanden"),
    "n_initiations_known": ("Initiations known", "Initiations connues", "Gekende opstarten"),
    "n_initiations_with_billing_month": (
        "Final initiations (with a billing month)",
        "Initiations finales (avec mois de facturation)",
        "Definitieve opstarten (met facturatiemaand)",
    ),
    "no_billing_month": (
        "The exports have no billing month: this share cannot be computed.",
        "Les exports n'ont pas de mois de facturation : cette part ne peut pas être calculée.",
        "De exports hebben geen facturatiemaand: dit aandeel kan niet berekend worden.",
    ),
    "no_final_month": (
        "None of these months is final yet.",
        "Aucun de ces mois n'est encore définitif.",
        "Geen van deze maanden is al definitief.",
    ),
    "empty": ("Nothing to report.", "Rien à signaler.", "Niets te melden."),
    "generated_by": (
        "Generated by benzo-monitor. Full definitions: docs/methodology.md.",
        "Produit par benzo-monitor. Définitions complètes : docs/methodology.md.",
        "Gemaakt met benzo-monitor. Volledige definities: docs/methodology.md.",
    ),
}

# The methodology summary: one paragraph a tuple (en, fr, nl), with {placeholders} filled in
# from the configuration in force.
METHODOLOGY: tuple[tuple[str, str, str], ...] = (
    (
        "Every figure comes from the anonymised billing lines of the 8 fee codes (CNK) of the "
        "withdrawal programme, as loaded from the export files listed on the cover. Lines of one "
        "patient, pharmacy, delivery date and CNK are netted (corrections are negative lines); "
        "each unit of a positive net is one event: an initiation interview, a reduction step, "
        "a stabilisation step or a follow-up interview. Only events delivered on or before the "
        "as-of date count.",
        "Chaque chiffre provient des lignes de facturation anonymisées des 8 codes (CNK) du "
        "programme de sevrage, chargées depuis les fichiers d'export listés en page de garde. Les "
        "lignes d'un même patient, pharmacie, date de délivrance et CNK sont additionnées (les "
        "corrections sont des lignes négatives) ; chaque unité d'un solde positif est un "
        "événement : entretien d'initiation, palier de diminution, palier de stabilisation ou "
        "entretien de suivi. Seuls les événements délivrés au plus tard à la date de référence "
        "comptent.",
        "Elk cijfer komt uit de geanonimiseerde factuurlijnen van de 8 codes (CNK) van het "
        "afbouwprogramma, geladen uit de exportbestanden op het voorblad. Lijnen van eenzelfde "
        "patiënt, apotheek, afleverdatum en CNK worden opgeteld (correcties zijn negatieve "
        "lijnen); elke eenheid van een positief saldo is een gebeurtenis: een opstartgesprek, "
        "een afbouwstap, een stabilisatiestap of een opvolggesprek. Enkel gebeurtenissen "
        "afgeleverd op of voor de peildatum tellen mee.",
    ),
    (
        "Every initiation interview opens a withdrawal programme (5-, 7- or 10-step scheme, "
        "from its CNK); the patient's later events belong to it until their next initiation "
        "interview. Events before a patient's first initiation interview are unassigned. A "
        "programme is completed on the delivery of its last reduction step; it is stopped when "
        "the as-of date is more than {grace_days} days after the last day its steps cover (a "
        "stabilisation step covers {stabilisation_days} days); otherwise it is in progress.",
        "Chaque entretien d'initiation ouvre un programme de sevrage (schéma à 5, 7 ou 10 "
        "paliers, selon son CNK) ; les événements suivants du patient lui appartiennent jusqu'à "
        "son entretien d'initiation suivant. Les événements antérieurs au premier entretien "
        "d'initiation d'un patient sont non rattachés. Un programme est terminé à la délivrance "
        "de son dernier palier de diminution ; il est arrêté lorsque la date de référence "
        "dépasse de plus de {grace_days} jours le dernier jour couvert par ses paliers (un "
        "palier de stabilisation couvre {stabilisation_days} jours) ; sinon il est en cours.",
        "Elk opstartgesprek opent een afbouwprogramma (schema met 5, 7 of 10 stappen, volgens "
        "de CNK); de latere gebeurtenissen van de patiënt horen erbij tot het volgende "
        "opstartgesprek. Gebeurtenissen vóór het eerste opstartgesprek van een patiënt zijn "
        "niet-toegewezen. Een programma is afgerond bij de aflevering van de laatste afbouwstap; "
        "het is gestopt wanneer de peildatum meer dan {grace_days} dagen na de laatste gedekte "
        "dag van de stappen valt (een stabilisatiestap dekt {stabilisation_days} dagen); anders "
        "is het lopend.",
    ),
    (
        "A month is provisional while the as-of date is earlier than {provisional_days} days "
        "after its last day: billing reaches the tarification offices late, so recent months "
        "still grow. The revision table compares each of the last 12 months as first reported "
        "(the earliest archived report pack of that month, otherwise the data of the first load "
        "reaching the month's last working day, as of that load's last delivery date) with the "
        "figure now. A month's initiation is known after k months of billing when its line was "
        "billed in that month or in the k − 1 months after it; the share is pooled over the final "
        "months among the 12.",
        "Un mois est provisoire tant que la date de référence précède de moins de "
        "{provisional_days} jours la fin du mois : la facturation arrive tardivement aux offices "
        "de tarification, les mois récents augmentent encore. Le tableau des révisions compare "
        "chacun des 12 derniers mois tel qu'il a été rapporté la première fois (le premier "
        "rapport archivé de ce mois, sinon les données du premier chargement atteignant le "
        "dernier jour ouvrable du mois, à la date de sa dernière délivrance) au chiffre actuel. "
        "Une initiation d'un mois est connue après k mois de facturation lorsque sa ligne a été "
        "facturée ce mois-là ou dans les k − 1 mois suivants ; la part est calculée sur "
        "l'ensemble des mois définitifs parmi les 12.",
        "Een maand is voorlopig zolang de peildatum minder dan {provisional_days} dagen na het "
        "einde van de maand valt: de facturatie bereikt de tariferingsdiensten laat, recente "
        "maanden groeien nog. De tabel met herzieningen vergelijkt elk van de laatste 12 maanden "
        "zoals eerst gerapporteerd (het eerste gearchiveerde rapport van die maand, anders de "
        "gegevens van de eerste lading die de laatste werkdag van de maand bereikt, op de datum "
        "van haar laatste aflevering) met het cijfer nu. Een opstart van een maand is gekend na "
        "k maanden facturatie wanneer de lijn gefactureerd werd in die maand of in de k − 1 "
        "maanden erna; het aandeel wordt berekend over de definitieve maanden van de 12 samen.",
    ),
    (
        "Fees are estimated: fee of one event = round(P × coefficient, 2), with the key-letter "
        "value P valid on the delivery date, {interview_coefficient} for interviews and "
        "{preparation_coefficient} for preparations. Compliance counts are numbers of flagged "
        "events per rule of the decree; the pack shows no patient or pharmacy identifier.",
        "Les honoraires sont estimés : honoraire d'un événement = arrondi(P × coefficient, 2), "
        "avec la valeur de la lettre-clé P en vigueur à la date de délivrance, "
        "{interview_coefficient} pour les entretiens et {preparation_coefficient} pour les "
        "préparations. La conformité compte les événements signalés par règle de l'arrêté ; "
        "le rapport ne montre aucun identifiant de patient ni de pharmacie.",
        "Honoraria zijn geschat: honorarium van een gebeurtenis = afgerond(P × coëfficiënt, 2), "
        "met de waarde van de sleutelletter P geldig op de afleverdatum, "
        "{interview_coefficient} voor gesprekken en {preparation_coefficient} voor "
        "bereidingen. De naleving telt gesignaleerde gebeurtenissen per regel van het besluit; "
        "het rapport toont geen identificatie van patiënten of apotheken.",
    ),
    (
        "Disclosure control: counts from 1 to {threshold_minus_one} are shown as <{threshold}, "
        "a rate whose denominator is below {threshold} is left empty; a revision is hidden when "
        "either of its figures is, or when its size is from 1 to {threshold_minus_one}.",
        "Contrôle de divulgation : les nombres de 1 à {threshold_minus_one} sont affichés "
        "<{threshold}, un taux dont le dénominateur est inférieur à {threshold} est laissé vide ; "
        "une révision est masquée si l'un de ses chiffres l'est, ou si elle vaut de 1 à "
        "{threshold_minus_one} en valeur absolue.",
        "Statistische geheimhouding: aantallen van 1 tot {threshold_minus_one} worden als "
        "<{threshold} getoond, een aandeel met een noemer onder {threshold} blijft leeg; een "
        "herziening wordt verborgen als een van haar cijfers verborgen is, of als ze in absolute "
        "waarde van 1 tot {threshold_minus_one} bedraagt.",
    ),
)

# The meaning of each configuration setting (SPEC §11) in the pack's languages (the English
# text is that of etl/base/config.toml, as in docs/methodology.md).
SETTING_MEANINGS: dict[str, tuple[str, str]] = {  # name -> (fr, nl)
    "grace_days": (
        "Jours après le dernier jour couvert avant qu'un programme non terminé soit arrêté.",
        "Dagen na de laatste gedekte dag voordat een niet-afgerond programma gestopt is.",
    ),
    "stabilisation_days": (
        "Jours couverts par un palier de stabilisation.",
        "Dagen gedekt door een stabilisatiestap.",
    ),
    "max_programme_days": (
        "Un événement plus de ce nombre de jours après le début du programme est signalé (R07).",
        "Een gebeurtenis meer dan dit aantal dagen na de start van het programma wordt gesignaleerd (R07).",
    ),
    "early_delivery_working_days": (
        "Jours ouvrables avant la fin du palier précédent où le suivant peut être délivré (R08).",
        "Werkdagen voor het einde van de vorige stap waarop de volgende mag worden afgeleverd (R08).",
    ),
    "programme_start": (
        "Premier jour du projet pilote : les événements antérieurs sont signalés (R11).",
        "Eerste dag van het proefproject: eerdere gebeurtenissen worden gesignaleerd (R11).",
    ),
    "structural_start": (
        "Début de la phase structurelle (arrêté royal du 2 juillet 2025).",
        "Start van de structurele fase (koninklijk besluit van 2 juli 2025).",
    ),
    "provisional_days": (
        "Un mois est provisoire tant que la date de référence précède sa fin + ce nombre de jours.",
        "Een maand is voorlopig zolang de peildatum voor het einde + dit aantal dagen valt.",
    ),
    "suppression_threshold": (
        "Contrôle de divulgation : les nombres de 1 à ce seuil − 1 sont masqués.",
        "Statistische geheimhouding: aantallen van 1 tot deze drempel − 1 worden gemaskeerd.",
    ),
    "interview_coefficient": (
        "Coefficient de P pour les entretiens (hors TVA).",
        "Coëfficiënt van P voor de gesprekken (exclusief btw).",
    ),
    "preparation_coefficient": (
        "Coefficient de P pour les préparations (TVA comprise) ; l'arrêté dit 7,8 et son annexe 7,08.",
        "Coëfficiënt van P voor de bereidingen (btw inbegrepen); het besluit zegt 7,8 en de bijlage 7,08.",
    ),
    "key_letter_values": (
        "Valeur de la lettre-clé P à partir de cette date (estimée : à remplacer par la valeur officielle).",
        "Waarde van de sleutelletter P vanaf die datum (geschat: te vervangen door de officiële waarde).",
    ),
}


def word(key: str, lang: str, **values) -> str:
    """The pack's word `key` in `lang`, with {placeholders} filled in."""
    text = _WORDS[key][("en", "fr", "nl").index(lang)]
    return text.format(**values) if values else text


def methodology_paragraphs(lang: str, values: dict) -> list[str]:
    """The methodology summary in `lang`, filled in with the configuration in force."""
    index = ("en", "fr", "nl").index(lang)
    return [paragraph[index].format(**values) for paragraph in METHODOLOGY]


# --- numbers and dates as written in each language -----------------------------------------

_THOUSANDS = {"fr": "\u202f", "nl": ".", "en": ","}
_DECIMAL = {"fr": ",", "nl": ",", "en": "."}


def integer(value: int, lang: str) -> str:
    """1234567 -> '1 234 567' (fr, narrow no-break spaces), '1.234.567' (nl), '1,234,567'."""
    text = f"{abs(int(value)):,}".replace(",", _THOUSANDS[lang])
    return ("−" if value < 0 else "") + text


def decimal(value: float, lang: str, places: int = 2) -> str:
    """A number with `places` decimals, in the language's separators."""
    whole, _, fraction = f"{abs(value):,.{places}f}".partition(".")
    text = whole.replace(",", _THOUSANDS[lang]) + (_DECIMAL[lang] + fraction if places else "")
    return ("−" if value < 0 else "") + text


def amount(value: float, lang: str) -> str:
    """Euros: '1 234,56 €' (fr), '€ 1.234,56' (nl), '€1,234.56' (en)."""
    number = decimal(value, lang)
    return {"fr": f"{number}\u00a0€", "nl": f"€\u00a0{number}", "en": f"€{number}"}[lang]


def percent(value: float, lang: str) -> str:
    """A fraction as a percentage with one decimal: '55,4 %' (fr), '55,4%' (nl), '55.4%'."""
    number = decimal(value * 100, lang, 1)
    return f"{number}\u00a0%" if lang == "fr" else f"{number}%"


def long_date(day: dt.date, lang: str) -> str:
    """'31 octobre 2026', '31 oktober 2026', '31 October 2026'."""
    return f"{day.day} {MONTHS[lang][day.month - 1]} {day.year}"


def long_month(month: str, lang: str) -> str:
    """'2026-10' -> 'octobre 2026', 'oktober 2026', 'October 2026'."""
    year, number = month.split("-")
    return f"{MONTHS[lang][int(number) - 1]} {year}"


def date_time(moment: dt.datetime, lang: str) -> str:
    """A timestamp to the minute, day first in French and Dutch."""
    if lang == "en":
        return f"{long_date(moment.date(), lang)}, {moment:%H:%M}"
    return f"{moment:%d/%m/%Y %H:%M}" if lang == "fr" else f"{moment:%d-%m-%Y %H:%M}"
