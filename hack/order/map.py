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
  map.py resident MAP ORDER DIR
                           what hack/order/resident saved in DIR (one
                           shim's maps and the pagemap of its binary): Rss
                           per section of MAP, the text resident inside and
                           outside the span of ORDER's functions, and the
                           functions of each resident 64 KiB window outside
  map.py matched ORDER MAP print how many of the order file's names are in
                           the link map MAP (`make build` runs it: names
                           carry hashes of the toolchain and the crates'
                           features, and lld silently skips the stale ones),
                           with a WARN when more than 1% are missing (2%
                           of the shim's cost it ~0.3 MiB of Rss)
"""
import bisect
import os
import struct
import sys


def funcs(map_path, out_path):
    rng, names = table(map_path)
    with open(out_path, "w") as f:
        for addr in sorted(names):
            print(f"{addr:x} {names[addr]}", file=f)
    print(f"{rng[0]:#x} {rng[1]:#x}")


def report(path, kind, want, have, limit, why):
    """Print how many of the `want` entries (KIND) of the order file PATH
    are in the build (`have`), and a WARN when more than `limit` of them
    (a fraction) are missing; WHY says what a stale file costs."""
    n = sum(1 for w in want if w in have)
    print(f"hack/order: {n} of the {len(want)} {kind} of {path} are in this build")
    if len(want) - n > limit * len(want):
        print(f"hack/order: WARN {path} is stale, {why}: "
              "run hack/order/gen (as root) and make build again")


def matched(order_path, map_path):
    _, names = table(map_path)
    want = [line.strip() for line in open(order_path) if line.strip()]
    report(order_path, "names", want, set(names.values()), 0.01,
           "the hot code is not packed")


def entries(map_path):
    """(address, size, depth, text) of every line of the lld link map MAP:
    depth 0 an output section, 8 an input section, 16 a symbol."""
    for line in open(map_path):
        cols = line[:49].split()
        if len(cols) != 4 or len(line) < 50 or cols[0] == "VMA":
            continue
        rest = line[49:].rstrip("\n")
        yield int(cols[0], 16), int(cols[2], 16), len(rest) - len(rest.lstrip(" ")), rest


def table(map_path):
    """The text's (LO, HI) and {address: name lld orders it by}."""
    text, syms, sections = None, [], []
    for addr, size, depth, rest in entries(map_path):
        if depth == 0:
            text = (addr, addr + size) if rest == ".text" else None
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


def sections_of(map_path):
    """[(start, end, name)] of MAP's output sections."""
    return sorted((a, a + n, rest) for a, n, depth, rest in entries(map_path)
                  if depth == 0 and a and n)


def symbols(map_path):
    """Sorted [(address, demangled name)] of MAP's text symbols."""
    out, in_text = [], False
    for addr, _, depth, rest in entries(map_path):
        if depth == 0:
            in_text = rest == ".text"
        elif in_text and depth == 16:
            out.append((addr, rest.strip()))
    return sorted(out)


def present_pages(directory):
    """Start addresses of the binary's resident pages (pagemap bit 63)."""
    pages = []
    for f in sorted(os.listdir(directory)):
        if not f.startswith("pagemap."):
            continue
        base = int(f.split(".", 1)[1], 16)
        data = open(os.path.join(directory, f), "rb").read()
        for i in range(len(data) // 8):
            (entry,) = struct.unpack_from("<Q", data, i * 8)
            if entry >> 63:
                pages.append(base + i * 4096)
    return pages


def resident(map_path, order_path, directory):
    secs = sections_of(map_path)
    pages = present_pages(directory)
    kib = {}
    for p in pages:
        name = next((n for lo, hi, n in secs if lo <= p < hi or lo <= p + 4095 < hi), "(other)")
        kib[name] = kib.get(name, 0) + 4
    print(f"resident pages of the binary: {len(pages) * 4} KiB")
    for name, k in sorted(kib.items(), key=lambda x: -x[1]):
        print(f"  {name}: {k} KiB")
    _, names = table(map_path)
    want = {line.strip() for line in open(order_path) if line.strip()}
    syms = symbols(map_path)
    starts = [a for a, _ in syms]
    ordered = sorted(a for a, n in names.items() if n in want)
    lo, hi = ordered[0], ordered[-1]
    i = bisect.bisect_right(starts, hi)
    hi = starts[i] if i < len(starts) else hi + 4096
    text = [p for p in pages if any(n == ".text" and a <= p < b for a, b, n in secs)]
    outside = [p for p in text if p + 4095 < lo or p >= hi]
    print(f"text: ordered span {lo:#x}-{hi:#x} ({(hi - lo) // 1024} KiB), "
          f"resident in it {(len(text) - len(outside)) * 4} KiB, outside it {len(outside) * 4} KiB")
    windows = {}
    for p in outside:
        windows.setdefault(p & ~0xFFFF, []).append(p)
    for w, ps in sorted(windows.items()):
        funcs = []
        for p in ps:
            j = max(bisect.bisect_right(starts, p) - 1, 0)
            while j < len(syms) and syms[j][0] < p + 4096:
                if syms[j][1] not in funcs:
                    funcs.append(syms[j][1])
                j += 1
        shown = "; ".join(f[:90] for f in funcs[:6])
        print(f"  window {w:#x}: {len(ps) * 4} KiB resident, {len(funcs)} functions: {shown}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "resident":
        resident(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) == 4 and sys.argv[1] == "funcs":
        funcs(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] in ("names", "daemon-first"):
        names(sys.argv[2], sys.argv[3], sys.argv[1] == "daemon-first")
    elif len(sys.argv) == 4 and sys.argv[1] == "matched":
        matched(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
