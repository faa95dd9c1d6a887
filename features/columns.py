"""Column names of the input tables and of the frames built from them, defined once.

Code refers to `Columns.member_id`, never to the string; `schema.py` declares the four tables
with these names (docs/data.md is the prose version).
"""


class Columns:
    """Every column name features, training, models and the serving catalog read or write."""

    # members
    member_id = "member_id"
    region = "region"
    tier = "tier"
    birth_date = "birth_date"
    signup_date = "signup_date"
    # purchases (also member_id, partner_id, category)
    ts = "ts"
    amount = "amount"
    channel = "channel"
    # partners
    partner_id = "partner_id"
    name = "name"
    scope = "scope"
    regions = "regions"
    categories = "categories"
    # offers (also partner_id, category, regions)
    offer_id = "offer_id"
    category = "category"
    title = "title"
    min_tier = "min_tier"
    valid_from = "valid_from"
    valid_to = "valid_to"
    budget = "budget"
    reward = "reward"
    occasion = "occasion"
    exclusive_tier = "exclusive_tier"
    reward_cost = "reward_cost"
    """What one redemption costs the program (currency units)."""
    partner_funding = "partner_funding"
    """What the partner pays the program per redemption (co-funding)."""
    # derived
    item_id = "item_id"
    """`vocabulary.item_id(partner_id, category)` of a purchase or an offer."""
