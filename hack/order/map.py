#!/usr/bin/env python3
"""Link-map helpers for hack/order/gen.

  map.py funcs MAP FUNCS   write "ADDR NAME" for every function in the text
                           of the lld link map MAP (NAME: the symbol lld
                           orders it by, i.e. its input section's), and
                           print the text's "LO HI"
  map.py names FUNCS ADDRS print the names of the function addresses in
                           ADDRS (trace.c's "ADDR TID TGID" lines), first use
                           first, once
  map.py daemon-first FUNCS ADDRS
                           the same, but the functions of the processes that
                           ran more than one thread (the shim's daemon) come
                           first, those only its forked single-threaded
                           helpers and `start` ran after them: the daemon
                           lives long and keeps what it touches resident
  map.py matched ORDER MAP print how many of the order file's names are in
                           the link map MAP (`make build` runs it: names
                           carry hashes of the toolchain and the crates'
                           features, and lld silently skips the stale ones),
                           with a WARN when fewer than 90%
"""
import bisect
import sys


def funcs(map_path, out_path):
    rng, names = table(map_path)
    with open(out_path, "w") as f:
        for addr in sorted(names):
            print(f"{addr:x} {names[addr]}", file=f)
    print(f"{rng[0]:#x} {rng[1]:#x}")


def matched(order_path, map_path):
    _, names = table(map_path)
    have = set(names.values())
    want = [line.strip() for line in open(order_path) if line.strip()]
    n = sum(1 for w in want if w in have)
    print(f"hack/order: {n} of the {len(want)} names of {order_path} are in this build")
    if n < 0.9 * len(want):
        print(f"WARN hack/order: {order_path} is stale, the hot code is not packed: "
              "run hack/order/gen (as root) and make build again")


def table(map_path):
    """The text's (LO, HI) and {address: name lld orders it by}."""
    text, syms, sections = None, [], []
    for line in open(map_path):
        cols = line[:49].split()
        if len(cols) != 4 or len(line) < 50 or cols[0] == "VMA":
            continue
        addr, rest = int(cols[0], 16), line[49:].rstrip("\n")
        depth = len(rest) - len(rest.lstrip(" "))
        if depth == 0:
            text = (addr, addr + int(cols[2], 16)) if rest == ".text" else None
        elif text and depth == 8:
            # "  /path/obj.o:(.text.NAME)": Rust and C++ functions each have
            # their own section; C objects put theirs in one ".text".
            sec = rest[rest.rfind(":(") + 2 : -1] if rest.endswith(")") else ""
            name = sec[len(".text.") :] if sec.startswith(".text.") else None
            for prefix in ("unlikely.", "startup.", "hot.", "exit."):
                if name and name.startswith(prefix):
                    name = name[len(prefix) :]
            sections.append((addr, name))
        elif text and depth == 16:
            syms.append((addr, rest.strip(), text))
    starts = [a for a, _ in sections]
    names, rng = {}, None
    for addr, sym, rng in syms:
        i = bisect.bisect_right(starts, addr) - 1
        sec = sections[i][1] if i >= 0 else None
        # A mangled section name is the function's own (the map prints the
        # symbol demangled); others (glibc's string functions share names
        # like .text.avx, one object each) are ordered by the symbol.
        names.setdefault(addr, sec if sec and sec.startswith(("_Z", "_R")) else sym)
    return rng, names


def hits(addrs_path):
    """trace.c's records as (ADDR, TID, TGID) string triples."""
    for line in open(addrs_path):
        cols = line.split()
        if len(cols) == 3:
            yield cols


def names(funcs_path, addrs_path, daemon_first=False):
    table = dict(line.rstrip("\n").split(" ", 1) for line in open(funcs_path))
    records = list(hits(addrs_path))
    threads = {}
    for _, tid, tgid in records:
        threads.setdefault(tgid, set()).add(tid)
    daemons = {g for g, tids in threads.items() if len(tids) > 1} if daemon_first else set()
    first = [a for a, _, g in records if g in daemons]
    rest = [a for a, _, g in records if g not in daemons]
    done = set()
    for addr in first + rest:
        name = table.get(addr)
        if name and name not in done:
            done.add(name)
            print(name)
    if daemon_first:
        n = len({table.get(a) for a in first} - {None})
        print(f"map.py: {n} functions of {len(daemons)} threaded processes first", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "funcs":
        funcs(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] in ("names", "daemon-first"):
        names(sys.argv[2], sys.argv[3], sys.argv[1] == "daemon-first")
    elif len(sys.argv) == 4 and sys.argv[1] == "matched":
        matched(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
