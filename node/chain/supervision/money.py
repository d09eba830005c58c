"""Amounts as the ledger keeps them (integer minor units) and as a person reads them."""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_currency, get_currency_precision

LOCALES = {"en": "en", "zh": "zh_CN"}


def major(amount: int, currency: str) -> Decimal:
    """Minor units to major units, exactly (USD 12345 -> 123.45; JPY 500 -> 500)."""
    return Decimal(amount).scaleb(-get_currency_precision(currency))


def major_text(amount: int, currency: str) -> str:
    """The major-unit amount as a plain decimal string with the currency's digits."""
    digits = get_currency_precision(currency)
    return f"{major(amount, currency):.{digits}f}"


def spoken(amount: int, currency: str, lang: str) -> str:
    """'US$1,234.50' style text in English or Chinese, for explanations."""
    text: str = format_currency(
        major(amount, currency), currency, locale=LOCALES[lang], currency_digits=True
    )
    return text
