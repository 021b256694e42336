#!/usr/bin/env bash
# The public API of tower-jwt-auth (all features), one item a line, into
# docs/public-api.txt. CI regenerates it and fails on a diff, so a change to
# the public API is a visible change to that file in the same commit.
#
# Regenerate after changing the public API (one command, then commit the file):
#
#   scripts/public-api.sh
#
# Check without writing (what CI does): scripts/public-api.sh --check
#
# How: rustdoc's JSON output (unstable, so RUSTC_BOOTSTRAP=1 on stable; no
# cargo-public-api needed), walked from the crate root by python3: modules,
# re-exports (listed at the path a user writes), types with their public
# fields, variants, inherent methods and trait impls (blanket impls left out),
# traits with their items, functions, constants, statics and macros. Names
# and kinds only, not signatures: renames, removals, additions, and the
# auto traits (Send, Sync, Unpin, ...) a type has.
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/public-api.txt
target="${CARGO_TARGET_DIR:-target}"

RUSTC_BOOTSTRAP=1 RUSTDOCFLAGS="-Z unstable-options --output-format json" \
  cargo doc --all-features --no-deps --lib -q

python3 - "$target/doc/tower_jwt_auth.json" > "$out.new" <<'EOF'
import json, sys

doc = json.load(open(sys.argv[1]))
index = doc["index"]
lines = set()


def kind_of(item):
    inner = item["inner"]
    return next(iter(inner)) if isinstance(inner, dict) else inner


def body(item):
    inner = item["inner"]
    return inner[kind_of(item)] if isinstance(inner, dict) else {}


def type_name(ty):
    """A short rendering of a type for `impl Trait for Type` lines."""
    if not isinstance(ty, dict):
        return str(ty)
    k, v = next(iter(ty.items()))
    if k == "resolved_path":
        return v.get("path") or v.get("name", "?")
    if k == "primitive":
        return v
    if k == "generic":
        return v
    if k == "borrowed_ref":
        return "&" + type_name(v["type"])
    return k


def impls(owner, item_path, b):
    for impl_id in b.get("impls", []):
        impl = index.get(str(impl_id))
        if impl is None:
            continue
        ib = body(impl)
        if ib.get("blanket_impl") is not None:
            continue
        trait = ib.get("trait")
        if trait is None:
            for mid in ib.get("items", []):
                m = index.get(str(mid))
                if m is None or m.get("visibility") != "public":
                    continue
                lines.add(f"{kind_of(m)} {item_path}::{m['name']}")
        else:
            name = trait.get("path") or trait.get("name", "?")
            if name in ("Freeze", "UnsafeUnpin", "StructuralPartialEq"):  # compiler-internal
                continue
            args = (trait.get("args") or {}).get("angle_bracketed", {}).get("args", [])
            types = [type_name(a["type"]) for a in args if isinstance(a, dict) and "type" in a]
            if types:
                name += "<" + ", ".join(types) + ">"
            neg = "!" if ib.get("is_negative") else ""
            lines.add(f"impl {neg}{name} for {item_path}")


def walk(item_id, path, seen):
    item = index.get(str(item_id))
    if item is None or item_id in seen:
        return
    seen = seen | {item_id}
    k = kind_of(item)
    b = body(item)
    if k == "module":
        if path:
            lines.add(f"mod {path}")
        for child in b.get("items", []):
            c = index.get(str(child))
            if c is None:
                continue
            if kind_of(c) == "use":
                u = body(c)
                if u.get("is_glob"):
                    if u.get("id") is not None:
                        walk(u["id"], path, seen)
                    continue
                target = u.get("id")
                name = u["name"]
                if target is not None and str(target) in index:
                    walk(target, join(path, name), seen)
                else:
                    lines.add(f"use {join(path, name)} = {u['source']}")
            else:
                walk(child, join(path, c["name"]), seen)
        return
    lines.add(f"{k} {path}")
    if k in ("struct", "union"):
        kind = b.get("kind", {})
        fields = []
        if isinstance(kind, dict):
            if "plain" in kind:
                fields = kind["plain"].get("fields", [])
            elif "tuple" in kind:
                fields = [f for f in kind["tuple"] if f is not None]
        fields += b.get("fields", [])
        for f in fields:
            fi = index.get(str(f))
            if fi and fi.get("visibility") == "public":
                lines.add(f"field {path}::{fi['name']}")
        impls(item, path, b)
    elif k == "enum":
        for v in b.get("variants", []):
            vi = index.get(str(v))
            if vi:
                lines.add(f"variant {path}::{vi['name']}")
        impls(item, path, b)
    elif k == "trait":
        for t in b.get("items", []):
            ti = index.get(str(t))
            if ti:
                lines.add(f"{kind_of(ti)} {path}::{ti['name']}")


def join(a, b):
    return f"{a}::{b}" if a else b


walk(doc["root"], "", frozenset())
root = index[str(doc["root"])]["name"]
for line in sorted(lines):
    kind, _, rest = line.partition(" ")
    if kind == "impl":
        print(line.replace(" for ", f" for {root}::", 1))
    else:
        print(f"{kind} {root}::{rest}")
EOF

if [ "${1:-}" = "--check" ]; then
  if ! diff -u "$out" "$out.new"; then
    rm -f "$out.new"
    echo "public API changed: run scripts/public-api.sh and commit $out" >&2
    exit 1
  fi
  rm -f "$out.new"
else
  mv "$out.new" "$out"
fi
