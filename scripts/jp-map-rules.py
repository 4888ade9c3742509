#!/usr/bin/env python3
"""Converts a MAP-E rule table in the community "fc2" layout into the rows of
proto/src/map/jp_rules.csv.

Input lines: <table> <hexkey> <octet1> <octet2> [octet3], tables 31, 38 and
38_20, as in JohnsonRan/luci-app-jp-ipoe:root/usr/share/jp-ipoe/ocn-mape-rules
(a copy of http://ipv4.web.fc2.com/map-e.html). Usage:

    scripts/jp-map-rules.py ocn-mape-rules > rows.csv

then replace the rows (not the header) of jp_rules.csv and update its date and
source lines; config/README.md says how to check the result.
"""
import sys

V6PLUS_BR = "2404:9200:225:100::64"
BIGLOBE_EAST_BR = "2001:260:700:1::1:275"  # 2404:7a80 to 2404:7a83
BIGLOBE_WEST_BR = "2001:260:700:1::1:276"  # 2404:7a84 to 2404:7a87
OCN_BR = "2001:380:a120::9"


def row(table, key, octets):
    h0, h1 = int(key[0:4], 16), int(key[4:8], 16)
    if table == "31":
        v6 = f"{h0:x}:{h1:x}::/31"
        v4 = f"{octets[0]}.{octets[1]}.0.0/15"
        if h0 == 0x240B:
            return ("v6plus", v6, v4, 25, 4, V6PLUS_BR)
        br = BIGLOBE_EAST_BR if h1 <= 0x7A83 else BIGLOBE_WEST_BR
        return ("biglobe", v6, v4, 25, 4, br)
    h2 = int(key[8:10], 16) << 8
    v6 = f"{h0:x}:{h1:x}:{h2:x}::/38" if h2 else f"{h0:x}:{h1:x}::/38"
    if table == "38":
        br = BIGLOBE_EAST_BR if h1 <= 0x7A83 else BIGLOBE_WEST_BR
        return ("biglobe", v6, f"{octets[0]}.{octets[1]}.{octets[2]}.0/22", 18, 4, br)
    if table == "38_20":
        return ("ocn", v6, f"{octets[0]}.{octets[1]}.{octets[2]}.0/20", 18, 6, OCN_BR)
    sys.exit(f"unknown table {table!r}")


with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        print(",".join(str(x) for x in row(fields[0], fields[1], fields[2:])))
