"""A tiny hand-made copy of the Complete Journey raw files (shared by importer and
benchmark-machinery tests)."""

import gzip
from pathlib import Path

RAW = {
    "campaign_descriptions.csv": """\
campaign_id,campaign_type,start_date,end_date
1,Type B,2017-01-10,2017-02-10
2,Type A,2017-03-01,2017-04-01
""",
    "campaigns.csv": """\
campaign_id,household_id
1,10
1,20
2,10
2,30
""",
    "products.csv.gz": """\
product_id,manufacturer_id,department,brand,product_category,product_type,package_size
100,1,GROCERY,National,BAG SNACKS,CHIPS,
101,1,GROCERY,Private,BAG SNACKS,PRETZELS,
200,2,DRUG GM,National,,,
300,3,MEAT,National,BEEF,STEAK,1 LB
""",
    "coupons.csv.gz": """\
coupon_upc,product_id,campaign_id
111,100,1
111,101,1
222,300,1
222,300,1
111,100,2
333,200,2
333,999,2
""",
    "coupon_redemptions.csv": """\
household_id,coupon_upc,campaign_id,redemption_date
10,111,1,2017-01-25
10,111,1,2017-01-20
30,333,2,2017-03-05
""",
    "transactions_sample.csv.gz": """\
household_id,store_id,basket_id,product_id,quantity,sales_value,retail_disc,coupon_disc,\
coupon_match_disc,week,transaction_timestamp
10,5,1,100,1,2.5,0.0,0.0,0.0,1,2017-01-05T23:30:00-05:00
10,7,2,300,1,8.0,0.5,0.0,0.0,2,2017-01-12T10:00:00-05:00
10,7,3,101,2,1.0,0.0,0.0,0.0,8,2017-02-20T10:00:00-05:00
20,5,4,999,1,3.0,0.0,0.0,0.0,3,2017-01-13T09:00:00-05:00
""",
}
"""Quirks: a duplicate coupon line, a coupon product missing from products, an empty product
category, a repeated redemption, a household whose only line has an unknown product and one
without lines, purchase times late in the evening (their UTC date is the next day)."""


def write_raw(directory: Path) -> Path:
    """Write `RAW` into `directory` (gzipping the .gz files); the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in RAW.items():
        if name.endswith(".gz"):
            with gzip.open(directory / name, "wt", encoding="utf-8") as file:
                file.write(text)
        else:
            (directory / name).write_text(text)
    return directory
