"""Program mechanics in serving: quiet hours and list sizes per channel, occasions in the
member's time zone, occasion offers eligible and boosted, tier-exclusive offers, reasons."""

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from typing import get_args
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from perkrank.config import ServeConfig
from perkrank.features.occasions import member_facts
from perkrank.features.schema import CHANNELS
from perkrank.mechanics_config import ChannelName, ChannelSettings, ProgramMechanics, QuietHours
from perkrank.privacy_config import DEFAULT_REASONS
from perkrank.serving.domain.catalog import Member, build_catalog
from perkrank.serving.domain.channels import in_quiet_hours, list_size, quiet_at
from perkrank.serving.domain.mechanics import exclusive_tier, member_occasions
from perkrank.serving.domain.ranking import OfferRanker, OfferRequest
from perkrank.serving.domain.reasons import offer_reason
from perkrank.serving.state.memory import MemoryStateStore
from tests.serving.domain.test_ranking import make_bundle, offer

NIGHT = QuietHours(start=time(21), end=time(9))
VLADIVOSTOK, KALININGRAD = ZoneInfo("Asia/Vladivostok"), ZoneInfo("Europe/Kaliningrad")
MIDNIGHT_IN_VLADIVOSTOK = datetime(2026, 3, 14, 14, 30, tzinfo=UTC).timestamp()
"""00:30 on 15 March in Vladivostok (UTC+10), 16:30 on 14 March in Kaliningrad (UTC+2)."""


@pytest.mark.parametrize(
    ("clock", "quiet", "expected"),
    [
        (time(20, 59), NIGHT, False),
        (time(21, 0), NIGHT, True),
        (time(0, 0), NIGHT, True),
        (time(8, 59), NIGHT, True),
        (time(9, 0), NIGHT, False),
        (time(13, 0), QuietHours(start=time(12), end=time(14)), True),
        (time(14, 0), QuietHours(start=time(12), end=time(14)), False),
        (time(3, 0), QuietHours(start=time(5), end=time(5)), True),  # all day
    ],
)
def test_quiet_hours_span_midnight_when_they_end_before_they_start(clock, quiet, expected):
    assert quiet_at(clock, quiet) is expected


def test_quiet_hours_are_the_members_local_time():
    push = ChannelSettings(quiet_hours=NIGHT)
    assert in_quiet_hours(MIDNIGHT_IN_VLADIVOSTOK, VLADIVOSTOK, push)
    assert not in_quiet_hours(MIDNIGHT_IN_VLADIVOSTOK, KALININGRAD, push)
    assert not in_quiet_hours(MIDNIGHT_IN_VLADIVOSTOK, VLADIVOSTOK, ChannelSettings())
    assert not in_quiet_hours(MIDNIGHT_IN_VLADIVOSTOK, VLADIVOSTOK, None)


@pytest.mark.parametrize(
    ("limit", "settings", "expected"),
    [(10, None, 10), (10, ChannelSettings(), 10), (10, ChannelSettings(max_offers=1), 1),
     (3, ChannelSettings(max_offers=6), 3)],
)  # fmt: skip
def test_list_size_is_at_most_the_channels(limit, settings, expected):
    assert list_size(limit, settings) == expected


def test_default_mechanics_mute_push_and_sms_at_night_and_size_their_lists():
    channels = ProgramMechanics().channels
    assert channels["push"].quiet_hours == NIGHT and channels["sms"].quiet_hours == NIGHT
    assert channels["push"].max_offers == 1 and channels["email"].quiet_hours is None


def test_an_unknown_time_zone_is_a_config_error():
    with pytest.raises(ValueError, match="Mars/Olympus"):
        ProgramMechanics(time_zones={"north": "Mars/Olympus"})


BIRTHDAY_MEMBERS = pd.DataFrame(
    {
        "member_id": ["vlad", "kali", "silver"],
        "region": ["coast", "west", "coast"],
        "tier": ["base", "vip", "silver"],
        "birth_date": pd.to_datetime(["1990-03-15", "1990-03-15", None]),
        "signup_date": pd.to_datetime(["2020-01-01"] * 3),
    }
)
NO_PURCHASES = pd.DataFrame(
    {"member_id": [], "ts": pd.to_datetime([]), "amount": np.array([], dtype=float)}
)
TODAY = date(2026, 3, 14)
OCCASION_OFFERS = [
    offer("grocery", "P2", "Grocery", "FreshMart", valid_from=TODAY, valid_to=TODAY),
    offer("cake", "P3", "Bakery", "Bakery", occasion="birthday", valid_from=TODAY,
          valid_to=TODAY + timedelta(days=1)),
    offer("lounge", "P1", "Beauty", "Glow", exclusive_tier="gold", valid_from=TODAY,
          valid_to=TODAY),
]  # fmt: skip


def birthday_catalog():
    facts = member_facts(BIRTHDAY_MEMBERS, NO_PURCHASES, upgrade_share=0.8, upgrade_days=365)
    members = {
        member_id: Member(region, tier)
        for member_id, region, tier in zip(
            BIRTHDAY_MEMBERS["member_id"],
            BIRTHDAY_MEMBERS["region"],
            BIRTHDAY_MEMBERS["tier"],
            strict=True,
        )
    }
    bundle = make_bundle()
    return bundle, build_catalog(OCCASION_OFFERS, members, bundle, facts)


@pytest.mark.parametrize(
    ("member_id", "region", "expected"),
    [("vlad", "coast", {"birthday"}), ("kali", "west", set())],
)
def test_a_birthday_at_midnight_in_vladivostok_is_not_yet_in_kaliningrad(
    member_id, region, expected
):
    _, catalog = birthday_catalog()
    mechanics = ProgramMechanics().model_copy(
        update={"occasions": ProgramMechanics().occasions.model_copy(
            update={"birthday_days_before": 0, "birthday_days_after": 0})}
    )  # fmt: skip
    day = int(MIDNIGHT_IN_VLADIVOSTOK // 86_400)
    occasions = member_occasions(
        catalog, member_id, region, day, MIDNIGHT_IN_VLADIVOSTOK, mechanics
    )
    assert occasions == expected


def test_a_tier_override_never_opens_a_higher_tiers_exclusive_offers():
    _, catalog = birthday_catalog()
    assert exclusive_tier(catalog, "vlad", "vip") == "base"
    assert exclusive_tier(catalog, "kali", "silver") == "silver"
    assert exclusive_tier(catalog, "stranger", "gold") == "gold"


def rank_for(member_id, *, tier=None, boost=1.0):
    bundle, catalog = birthday_catalog()
    settings = ServeConfig(
        app_api_keys="test:app-key-for-tests-0001",
        mechanics={"occasions": {"birthday_days_before": 0, "birthday_days_after": 0,
                                 "boost": boost}},
    )  # fmt: skip
    ranker = OfferRanker(bundle, catalog, settings)
    request = OfferRequest(member_id, "app", 3, tier=tier)
    return asyncio.run(ranker.rank(MemoryStateStore(), request, (), MIDNIGHT_IN_VLADIVOSTOK))


def served_ids(ranking):
    return [served.offer.offer_id for served in ranking.offers]


def test_an_occasion_offer_is_served_only_while_its_occasion_applies():
    assert "cake" in served_ids(rank_for("vlad"))
    assert "cake" not in served_ids(rank_for("kali"))
    assert "cake" not in served_ids(rank_for("silver"))


def test_the_occasion_boost_puts_the_occasion_offer_first():
    assert served_ids(rank_for("vlad", boost=100.0))[0] == "cake"
    unboosted = {served.offer.offer_id: served.score for served in rank_for("vlad").offers}
    boosted = {served.offer.offer_id: served.score for served in rank_for("vlad", boost=3).offers}
    assert boosted["cake"] == pytest.approx(unboosted["cake"] + 2.0, abs=1e-5)
    assert boosted["grocery"] == pytest.approx(unboosted["grocery"], abs=1e-6)


@pytest.mark.parametrize(
    ("member_id", "tier", "shown"),
    [("kali", None, True), ("silver", None, False), ("vlad", "vip", False),
     ("stranger", "gold", True), ("stranger", None, False)],
)  # fmt: skip
def test_an_exclusive_offer_is_shown_to_its_tier_and_above_only(member_id, tier, shown):
    assert ("lounge" in served_ids(rank_for(member_id, tier=tier))) is shown


@pytest.mark.parametrize(
    ("fields", "language", "expected"),
    [
        ({"occasion": "birthday"}, "en", "for your birthday"),
        ({"occasion": "birthday"}, "ru", "к вашему дню рождения"),
        ({"occasion": "welcome"}, "en", "welcome to the program"),
        ({"occasion": "winback"}, "ru", "мы по вам скучаем"),
        ({"occasion": "tier_upgrade"}, "en", "closer to your next tier"),
        ({"exclusive_tier": "vip"}, "en", "exclusive for VIP members"),
        ({"exclusive_tier": "gold"}, "ru", "только для уровня Gold и выше"),
        ({"exclusive_tier": "base"}, "en", "you often buy Beauty at Glow"),  # open to all
        ({"occasion": "birthday", "exclusive_tier": "vip"}, "en",
         "for your birthday · exclusive for VIP members"),
    ],
)  # fmt: skip
def test_reasons_of_occasion_and_exclusive_offers(fields, language, expected):
    served = offer("x", "P1", "Beauty", "Glow", **fields)
    reason = offer_reason(
        served,
        personalized=True,
        known_member=True,
        repeated=True,
        texts=DEFAULT_REASONS[language],
    )
    assert reason == expected


def test_a_language_without_occasion_texts_gets_its_defaults():
    settings = ServeConfig(
        app_api_keys="test:app-key-for-tests-0001",
        privacy={"reasons": {"ru": {"repeat": "r", "picked": "p", "popular": "q", "tier": "t"}},
                 "default_language": "ru"},
    )  # fmt: skip
    assert settings.privacy.reasons["ru"].birthday == "к вашему дню рождения"


def test_the_config_and_the_data_contract_name_the_same_channels():
    assert get_args(ChannelName) == CHANNELS


def test_a_regions_time_zone_is_loaded_once_whatever_zoneinfo_drops_from_its_cache():
    mechanics = ProgramMechanics(time_zones={"north": "Europe/Oslo"})
    first = mechanics.time_zone("north")
    ZoneInfo.clear_cache()  # what zoneinfo does to a zone once 8 others were used since
    assert mechanics.time_zone("north") is first
    assert str(mechanics.time_zone("north")) == "Europe/Oslo"
    assert mechanics.time_zone("elsewhere") is mechanics.time_zone("nowhere")
