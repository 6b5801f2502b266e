"""Dates and numbers as typed values: "in 2025" → "2025"^^xsd:gYear.

Only forms that read unambiguously become literals; anything else ("the 1990s", "last
spring", "from 1992 to 2002") gives ``None`` and the extractor drops the fact rather than
inventing an entity called "last spring".
"""

from __future__ import annotations

import re
from datetime import date

from rdflib.namespace import XSD

XSD_DATE = str(XSD.date)
XSD_GYEAR = str(XSD.gYear)
XSD_GYEARMONTH = str(XSD.gYearMonth)
XSD_INTEGER = str(XSD.integer)
XSD_DECIMAL = str(XSD.decimal)
XSD_STRING = str(XSD.string)  # codes such as ISBNs: digits that are not quantities

DATE_LABELS = {"DATE"}
NUMBER_LABELS = {"CARDINAL", "QUANTITY", "MONEY", "PERCENT"}

_MONTHS = {m: i for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august",
     "september", "october", "november", "december"], start=1)}
_MONTHS.update({name[:3]: i for name, i in list(_MONTHS.items())})
_MONTHS["sept"] = 9
_MONTH = r"(?P<month>[A-Za-z]{3,9})\.?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>\d{4})"
_LEAD = r"^(?:(?:in|on|of|the|since|during)\s+)*"  # words NER sometimes includes

_DATE_FORMS = [
    re.compile(_LEAD + r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})$"),
    re.compile(_LEAD + _DAY + r"(?:\s+of)?\s+" + _MONTH + r",?\s+" + _YEAR + "$"),
    re.compile(_LEAD + _MONTH + r"\s+" + _DAY + r",?\s+" + _YEAR + "$"),
]
_YEAR_MONTH = re.compile(_LEAD + _MONTH + r",?\s+" + _YEAR + "$")
_YEAR_ONLY = re.compile(_LEAD + r"(?:the\s+year\s+)?" + _YEAR + "$")
_NUMBER = re.compile(r"^[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$")
_WORD_NUMBERS = {w: i for i, w in enumerate(
    ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
     "eleven", "twelve"])}


def _month(text: str) -> int | None:
    return int(text) if text.isdigit() else _MONTHS.get(text.lower())


def parse_date(text: str) -> tuple[str, str] | None:
    """("1963-03-13", xsd:date), ("1963-03", xsd:gYearMonth) or ("2025", xsd:gYear)."""
    text = " ".join(text.replace(" ,", ",").split())
    for form in _DATE_FORMS:
        m = form.match(text.lower()) or form.match(text)
        if m:
            month = _month(m["month"])
            try:
                value = date(int(m["year"]), month or 0, int(m["day"]))
            except ValueError:  # "31 February", an unknown month word
                return None
            return value.isoformat(), XSD_DATE
    m = _YEAR_MONTH.match(text.lower())
    if m and _month(m["month"]):
        return f"{m['year']}-{_month(m['month']):02d}", XSD_GYEARMONTH
    m = _YEAR_ONLY.match(text.lower())
    if m:
        return m["year"], XSD_GYEAR
    return None


def parse_number(text: str) -> tuple[str, str] | None:
    """("2000", xsd:integer) or ("1219.5", xsd:decimal) from the first number in ``text``.

    Units and currency signs are dropped ("546 metres" → 546): the relation label or the
    sentence keeps them. Thousands separators go; "1219.0" stays decimal.
    """
    for word in text.replace("$", " ").replace("€", " ").replace("£", " ").split():
        word = word.rstrip("%")
        if _NUMBER.match(word):
            plain = word.replace(",", "").lstrip("+")
            return plain, XSD_DECIMAL if "." in plain else XSD_INTEGER
        if word.lower() in _WORD_NUMBERS:
            return str(_WORD_NUMBERS[word.lower()]), XSD_INTEGER
    return None


def is_year(text: str) -> bool:
    return bool(re.fullmatch(r"1\d{3}|20\d{2}", text))
