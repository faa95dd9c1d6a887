"""Reasons by tables: templates per language, never a sensitive category's purchases, no
purchase-based reason when the member turned them off; the language a request asks for."""

from datetime import date

import pytest

from perkrank.privacy_config import DEFAULT_REASONS, ReasonTexts, ServingPrivacy
from perkrank.serving.domain.catalog import Offer
from perkrank.serving.domain.privacy import sensitive_categories
from perkrank.serving.domain.reasons import offer_reason, reason_language

EN, RU = DEFAULT_REASONS["en"], DEFAULT_REASONS["ru"]


def offer(category="Beauty", min_tier="base"):
    return Offer(
        "o1",
        "P1",
        "Glow",
        category=category,
        scope="federal",
        title="o1",
        reward="10%",
        min_tier=min_tier,
        valid_from=date(2026, 1, 1),
        valid_to=date(2026, 12, 31),
    )


@pytest.mark.parametrize(
    ("texts", "category", "min_tier", "sensitive", "purchase_reasons", "reason"),
    [
        (EN, "Beauty", "base", False, True, "you often buy Beauty at Glow"),
        (RU, "Beauty", "base", False, True, "вы часто покупаете Beauty в Glow"),
        (EN, "Beauty", "base", False, False, "picked for you"),
        (RU, "Beauty", "base", False, False, "подобрано для вас"),
        (EN, "Pharmacy", "base", True, True, "picked for you"),
        (EN, "Pharmacy", "vip", True, True, "VIP offer"),
        (RU, "Pharmacy", "gold", True, True, "предложение уровня Gold"),
        (EN, "Beauty", "silver", False, False, "Silver offer"),
    ],
)
def test_a_repeat_purchase_is_named_only_when_allowed_and_not_sensitive(
    texts, category, min_tier, sensitive, purchase_reasons, reason
):
    served = offer(category, min_tier)

    assert (
        offer_reason(
            served,
            personalized=True,
            known_member=True,
            repeated=True,
            texts=texts,
            sensitive=sensitive,
            purchase_reasons=purchase_reasons,
        )
        == reason
    )


def test_a_non_personalized_offer_is_popular_in_each_language():
    for texts, reason in ((EN, "popular in your region"), (RU, "популярно в вашем регионе")):
        assert (
            offer_reason(offer(), personalized=False, known_member=True, repeated=True, texts=texts)
            == reason
        )


KNOWN = {"en": EN, "ru": RU}


@pytest.mark.parametrize(
    ("requested", "header", "language"),
    [
        (None, None, "en"),
        ("ru", None, "ru"),
        ("RU", "en", "ru"),
        ("de", "ru-RU,ru;q=0.9", "ru"),
        (None, "de-DE, ru;q=0.8, en;q=0.5", "ru"),
        (None, "en;q=0.2, ru;q=0.9", "ru"),
        (None, "ru;q=0, en", "en"),
        (None, "ru;q=abc, de", "en"),
        (None, "*", "en"),
    ],
)
def test_the_language_is_the_query_then_accept_language_then_the_default(
    requested, header, language
):
    assert reason_language(requested, header, KNOWN, "en") == language


def test_templates_may_use_only_their_placeholders():
    with pytest.raises(ValueError, match="member"):
        ReasonTexts(repeat="{member} buys {category}", picked="p", popular="p", tier="{tier}")
    with pytest.raises(ValueError, match="default_language"):
        ServingPrivacy(default_language="de")


def test_sensitive_categories_compare_case_insensitively_in_the_catalogs_spelling():
    catalog = ["Pharmacy", "Beauty", "ALCOHOL drinks", "Alcohol"]

    assert sensitive_categories(catalog, ("pharmacy", "alcohol")) == {"Pharmacy", "Alcohol"}
