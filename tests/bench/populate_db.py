#!/usr/bin/env python3
"""Fill a migrated recgate database with fresh MWS cache entries for the benches.

The database must already carry recgate's schema (start recgate once on it and
stop it: the migrations in migrations/ create the tables). Writes

  * one mws_snapshot row (account, marketplace) checked "now", whose body maps
    every category to --last-updated, and
  * N mws_recommendations rows for --category with distinct filters
    "BrandName=<prefix><i zero-padded to --width>", i in [0, N), each stored
    under that same last_updated (so they are hits while check_interval_s has
    not elapsed), bodies of sizes drawn uniformly from [--body-min, --body-max]
    bytes (a JSON array of Selection-like recommendation objects).

Prints one line: entries=N body_bytes_total=B body_bytes_mean=M seconds=S
"""
import argparse
import json
import random
import sqlite3
import time

CATEGORIES = ["Inventory", "Selection", "Pricing", "Fulfillment", "ListingQuality", "GlobalSelling", "Advertising"]


def member(i, j, brand, last_updated):
    return {
        "RecommendationId": f"SEL-{i:08d}-{j:03d}",
        "RecommendationReason": "Customers are searching for this product on Amazon",
        "LastUpdated": last_updated,
        "ItemIdentifier": {"Asin": f"B0{(i * 31 + j) % 10**8:08d}", "Sku": f"SKU-{i}-{j}", "UPC": ""},
        "ItemName": "",
        "BrandName": brand,
        "ProductCategory": "Home & Kitchen",
        "SalesRank": 1000 + (i + j) % 50000,
        "BuyboxPrice": {"CurrencyCode": "USD", "Amount": 19.99},
        "NumberOfOffers": 3 + j % 7,
        "NumberOfOffersFulfilledByAmazon": 1,
        "AverageCustomerReview": 4.3,
        "NumberOfCustomerReviews": 120 + j,
    }


def filters_key(*filters):
    """The filters column as recgate writes it (svc::key_list): each filter
    as <byte length>:<filter>, so that no filter text can fake a separator."""
    return "".join(f"{len(f.encode())}:{f}" for f in filters)


_member_cache = {}


def member_json(i, j, brand, last_updated):
    k = (i, j, brand)
    m = _member_cache.get(k)
    if m is None:
        m = json.dumps(member(i, j, brand, last_updated), separators=(",", ":"))
        _member_cache[k] = m
    return m


def body_of(i, size, brand, last_updated):
    """A JSON array of recommendations of exactly `size` bytes (padding in ItemName;
    at least one member, so tiny sizes come out larger)."""
    parts = []
    length = 1  # "]" ; "[" and commas counted per member
    j = 0
    while True:
        m = member_json(i, j, brand, last_updated)
        if parts and length + 1 + len(m) > size:
            break
        parts.append(m)
        length += 1 + len(m)
        j += 1
    pad = size - length
    if pad > 0:
        parts[-1] = parts[-1].replace('"ItemName":""', '"ItemName":"' + "x" * pad + '"', 1)
    return "[" + ",".join(parts) + "]"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--entries", type=int, required=True)
    ap.add_argument("--account", default="main")
    ap.add_argument("--marketplace", default="ATVPDKIKX0DER")
    ap.add_argument("--category", default="Selection")
    ap.add_argument("--prefix", default="Brand")
    ap.add_argument("--width", type=int, default=6)
    ap.add_argument("--body-min", type=int, default=512)
    ap.add_argument("--body-max", type=int, default=512)
    ap.add_argument("--last-updated", default="2026-01-15T08:00:00Z")
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()

    t0 = time.time()
    rnd = random.Random(a.seed)
    now_ms = int(time.time() * 1000)
    db = sqlite3.connect(a.db)
    db.execute("PRAGMA synchronous=OFF")
    snap = json.dumps({c: a.last_updated for c in CATEGORIES}, separators=(",", ":"))
    db.execute(
        "INSERT INTO mws_snapshot(account, marketplace, checked_at, body) VALUES (?,?,?,?) "
        "ON CONFLICT(account, marketplace) DO UPDATE SET checked_at=excluded.checked_at, body=excluded.body",
        (a.account, a.marketplace, now_ms, snap),
    )
    # Member JSON is memoized per (i % 64, j) with a same-length placeholder
    # brand, substituted per row: one million bodies take seconds.
    total = 0

    def rows():
        nonlocal total
        placeholder = "@" * (len(a.prefix) + a.width)
        for i in range(a.entries):
            size = rnd.randint(a.body_min, a.body_max)
            t = body_of(i % 64, size, placeholder, a.last_updated)
            brand = f"{a.prefix}{i:0{a.width}d}"
            body = t.replace(placeholder, brand)
            total += len(body)
            yield (a.account, a.marketplace, a.category, filters_key(f"BrandName={brand}"), a.last_updated, now_ms - i, body)

    db.executemany(
        "INSERT OR REPLACE INTO mws_recommendations(account, marketplace, category, filters, last_updated, "
        "fetched_at, body) VALUES (?,?,?,?,?,?,?)",
        rows(),
    )
    db.commit()
    db.close()
    mean = total / a.entries if a.entries else 0
    print(f"entries={a.entries} body_bytes_total={total} body_bytes_mean={mean:.0f} seconds={time.time() - t0:.1f}")


if __name__ == "__main__":
    main()
