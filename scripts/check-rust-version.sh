#!/usr/bin/env bash
# Every workspace member must declare the workspace's rust-version: clippy
# checks APIs against it (incompatible_msrv), and a member without one gets
# no such check at all.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys, tomllib
want = tomllib.load(open("Cargo.toml", "rb"))["workspace"]["package"]["rust-version"]
bad = [f"{p['"'"'name'"'"']} ({p.get('"'"'rust_version'"'"')})" for p in json.load(sys.stdin)["packages"]
       if p.get("rust_version") != want]
if bad:
    sys.exit("rust-version: these members do not declare the workspace'"'"'s " + want + ": " + ", ".join(bad))
print("rust-version: every member declares", want)
'
