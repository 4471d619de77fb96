#!/usr/bin/env python3
"""Lay out the read-only data the ordered functions use first.

  rodata.py script BINARY MAP ORDER OUT.ld
  rodata.py matched OUT.ld MAP   how many of the script's sections MAP has
                                 (`make build` runs it, as map.py matched),
                                 with a WARN when more than 5% are missing

hack/order/*.order put the code a container's life (or a pod's shim) runs
first in the text. Its read-only data stays where the compiler's sections
happen to fall: the constants, strings, jump tables and vtables those
functions read are spread over the whole .rodata, and the kernel maps up to
64 KiB of the page cache around each fault there too (one idle shim kept
10 such windows of its read-only data resident, 664 KiB).

This finds the .rodata input sections the ORDER's functions reference (the
addresses their instructions name, from objdump of BINARY, which MAP
linked) and, transitively, the ones those sections point at (vtables,
tables of string slices; only out of sections up to FOLLOW_MAX bytes),
and writes OUT.ld, a linker script that puts
them in an output section `.rodata.hot` before `.rodata`
(`INSERT BEFORE`, so the rest of lld's layout stays its default). Like the
function orders, the section names come from one build: the compiler's
anonymous constants are named `.rodata..Lanon.HASH.N`, and N moves when
code changes, so hack/order/gen makes it again with the order, and
`rodata.py matched` counts how many of its names a build still has. Data
read only through pointers held in writable statics is not found.
"""
import bisect
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import map as linkmap  # noqa: E402  (hack/order/map.py)

RO_SECTIONS = (".rodata.hot", ".rodata")
# Pointers are followed out of sections up to this size (vtables, tables of
# string slices); a large table of pointers (regex-syntax's Unicode classes
# by name) names far more than one lookup reads.
FOLLOW_MAX = 1024


def input_sections(map_path):
    """Sorted [(addr, size, file, section)] of the .rodata input sections."""
    out, outsec = [], None
    for addr, size, depth, rest in linkmap.entries(map_path):
        if depth == 0:
            outsec = rest
        elif depth == 8 and outsec in RO_SECTIONS and size and rest.endswith(")"):
            cut = rest.rfind(":(")
            out.append((addr, size, rest[:cut].strip(), rest[cut + 2 : -1]))
    return sorted(out)


def hot_ranges(map_path, order_path):
    """[(lo, hi)] of the text of the functions named in ORDER."""
    _, names = linkmap.table(map_path)
    want = {line.strip() for line in open(order_path) if line.strip()}
    starts = sorted(names)
    ranges = []
    for i, addr in enumerate(starts):
        if names[addr] in want and i + 1 < len(starts):
            ranges.append((addr, starts[i + 1]))
    return ranges


def referenced(binary, ranges, lo, hi):
    """Addresses in [lo, hi) named by instructions inside RANGES."""
    dis = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", binary],
        check=True, capture_output=True, text=True).stdout
    starts = [a for a, _ in ranges]
    found = set()
    insn = re.compile(r"^\s*([0-9a-f]+):\t")
    # RIP-relative operands ("# 0x..." comments), immediates ("$0x...") and,
    # this code being linked at fixed addresses, absolute displacements
    # ("0x...(,%rax,8)", jump tables and lookup tables among them).
    # A RIP-relative displacement itself is not an address.
    target = re.compile(r"(?<!-)0x([0-9a-f]+)\b(?!\(%rip\))")
    for line in dis.splitlines():
        m = insn.match(line)
        if not m:
            continue
        at = int(m.group(1), 16)
        i = bisect.bisect_right(starts, at) - 1
        if i < 0 or at >= ranges[i][1]:
            continue
        for t in target.finditer(line[m.end():]):
            a = int(t.group(1), 16)
            if lo <= a < hi:
                found.add(a)
    return found


def loads(binary):
    """[(vaddr, offset, filesz)] of BINARY's PT_LOAD segments."""
    out = []
    lines = subprocess.run(["readelf", "-lW", binary], check=True,
                           capture_output=True, text=True).stdout.splitlines()
    for line in lines:
        cols = line.split()
        if cols and cols[0] == "LOAD":
            out.append((int(cols[2], 16), int(cols[1], 16), int(cols[4], 16)))
    return out


def hot_sections(binary, map_path, order_path):
    secs = input_sections(map_path)
    starts = [s[0] for s in secs]
    lo, hi = secs[0][0], secs[-1][0] + secs[-1][1]

    def section_of(a):
        i = bisect.bisect_right(starts, a) - 1
        return i if i >= 0 and a < secs[i][0] + secs[i][1] else None

    image = open(binary, "rb").read()
    segs = loads(binary)

    def data(i):
        addr, size = secs[i][0], secs[i][1]
        for vaddr, off, filesz in segs:
            if vaddr <= addr and addr + size <= vaddr + filesz:
                return image[off + addr - vaddr : off + addr - vaddr + size]
        return b""

    roots = referenced(binary, hot_ranges(map_path, order_path), lo, hi)
    todo = {section_of(a) for a in roots}
    todo.discard(None)
    hot = set()
    while todo:
        i = todo.pop()
        hot.add(i)
        if secs[i][2] == "<internal>" or secs[i][1] > FOLLOW_MAX:
            continue  # merged strings and constants hold no pointers
        raw = data(i)
        for k in range((-secs[i][0]) % 8, len(raw) - 7, 8):
            j = section_of(int.from_bytes(raw[k : k + 8], "little"))
            if j is not None and j not in hot:
                todo.add(j)
    return [secs[i] for i in sorted(hot)]


def pattern(file, section):
    """A linker-script input section description for one input section."""
    if file == "<internal>" or section != ".rodata":
        # Merged sections by name; the compiler's own names are unique.
        return f"*({section})"
    # glibc's objects keep theirs in a plain .rodata: name the member.
    m = re.match(r".*/([^/(]+\.a)\(([^)]+)\)$", file)
    return f"*{m.group(1)}:{m.group(2)}({section})" if m else None


def script(binary, map_path, order_path, out_path):
    hot = hot_sections(binary, map_path, order_path)
    lines, seen, size = [], set(), 0
    # Merged sections first (one pattern takes all of a name), then the rest
    # in their old order.
    for addr, n, file, section in sorted(hot, key=lambda s: (s[2] != "<internal>", s[0])):
        p = pattern(file, section)
        if p and p not in seen:
            seen.add(p)
            lines.append(f"    {p}")
            size += n
    with open(out_path, "w") as f:
        print("/* Generated by hack/order/rodata.py from hack/order/gen's build: the",
              file=f)
        print("   read-only data the ordered functions use, first (see rodata.py). */", file=f)
        print("SECTIONS {\n  .rodata.hot : {", file=f)
        print("\n".join(lines), file=f)
        print("  }\n} INSERT BEFORE .rodata;", file=f)
    print(f"rodata.py: {len(lines)} input sections, {size // 1024} KiB, in {out_path}",
          file=sys.stderr)


def matched(ld_path, map_path):
    have = {pattern(f, s) for _, _, f, s in input_sections(map_path)}
    want = [line.strip() for line in open(ld_path) if line.startswith("    *")]
    linkmap.report(ld_path, "sections", want, have, 0.05,
                   "the hot read-only data is not packed")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "script":
        script(*sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "matched":
        matched(*sys.argv[2:])
    else:
        sys.exit(__doc__)
