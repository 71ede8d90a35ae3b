#!/usr/bin/env python3
"""Deterministic test-repository generator for bench/run.

    gen.py gen    DIR FILES MB SEED   write a fresh repository into DIR
    gen.py mutate DIR PERCENT SEED    change ~PERCENT % of the files in DIR:
                                      modify half of them, add a quarter,
                                      delete a quarter (plus one large module
                                      is rewritten, as a real update would)
    gen.py edit   DIR PERCENT SEED    as mutate, but the modified files are
                                      edited in place, as antivirus databases
                                      are: 1-3 stretches of 1-4 KiB rewritten
                                      inside, records appended to XML files,
                                      a few KiB of one large module changed
                                      (what binary patches are made for)
    gen.py many   DIR FILES FOLDERS SEED
                                      the scale layout of issue 14: FILES
                                      small files (256 B - 2 KiB) spread
                                      evenly over FOLDERS folders, two
                                      levels deep (bNNN/fNNNNN/NNNNNNN.dat)
    gen.py huge   DIR GIB SEED        one file of GIB GiB (may be fractional,
                                      e.g. 4.5 for a file over 4 GiB), sparse:
                                      1 MiB of random bytes at every GiB and
                                      at the end, holes in between (plus a
                                      VERSION file)

The same arguments always produce the same bytes (random.Random(SEED)).
Shape of a generated repository (about FILES files, about MB megabytes):
  * ~40 % of the bytes in a few large modules (10-40 MB), modules/NAME/*.bin,
    some of them executable;
  * ~45 % of the bytes in medium databases (50-500 KB), ~5 % of the files,
    db/FAMILY/SUB/*.db (larger when there are few files for many bytes:
    ~10 MB each for 2,000 files and 2 GB);
  * the remaining files are small XML index files (1-8 KB),
    index/VENDOR/CHANNEL/*.xml, nested three levels deep;
  * one empty directory (cache/empty).
"""
import os
import random
import sys

KB = 1024
MB = 1024 * 1024


def write(path, data, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def xml_bytes(rng, size):
    """An XML-looking text file of exactly `size` bytes."""
    head = '<?xml version="1.0" encoding="UTF-8"?>\n<index>\n'
    tail = "</index>\n"
    parts = [head]
    n = len(head) + len(tail)
    i = 0
    while True:
        line = '  <entry id="%d" sha256="%s" size="%d"/>\n' % (
            i, rng.randbytes(32).hex(), rng.randrange(1, 1 << 24))
        if n + len(line) > size:
            break
        parts.append(line)
        n += len(line)
        i += 1
    parts.append(" " * (size - n))
    parts.append(tail)
    return "".join(parts).encode()


def scaled(rng, count, lo, hi, budget):
    """`count` random sizes in [lo, hi], scaled towards a total of `budget`
    (kept inside [lo/2, 2*hi] so the shape stays recognisable, unless the
    budget needs files larger than that on average: few files holding many
    bytes, as in `bench/run --big`; then the cap is twice the average)."""
    if count <= 0:
        return []
    sizes = [rng.randint(lo, hi) for _ in range(count)]
    f = budget / sum(sizes)
    cap = max(2 * hi, int(2 * budget / count))
    return [max(lo // 2, min(cap, int(s * f))) for s in sizes]


def gen(root, files, mb, seed):
    rng = random.Random(seed)
    total = mb * MB
    n_large = max(1, round(total * 0.40 / (25 * MB)))
    n_med = max(1, round(files * 0.05))
    n_small = max(1, files - n_large - n_med)
    large = scaled(rng, n_large, 10 * MB, 40 * MB, total * 0.40)
    med = scaled(rng, n_med, 50 * KB, 500 * KB, total * 0.45)
    small = [rng.randint(1 * KB, 8 * KB) for _ in range(n_small)]

    names = ["engine", "scanner", "heuristics", "unpacker", "emulator",
             "netguard", "sandbox", "cloudlink", "rootkit", "behavior"]
    for i, size in enumerate(large):
        name = names[i % len(names)] + ("" if i < len(names) else str(i))
        path = os.path.join(root, "modules", name, "%s_x86_64.bin" % name)
        write(path, rng.randbytes(size), 0o755 if i % 2 == 0 else 0o644)

    fams = ["daily", "main", "bytecode", "phishing", "pua", "heur", "macro",
            "script", "elf", "pe", "pdf", "office", "archive", "mobile",
            "web", "mail"]
    for i, size in enumerate(med):
        fam = fams[i % len(fams)]
        sub = "part%02d" % (i // len(fams) % 8)
        path = os.path.join(root, "db", fam, sub, "%s_%05d.db" % (fam, i))
        write(path, rng.randbytes(size))

    vendors = ["v%02d" % v for v in range(20)]
    for i, size in enumerate(small):
        vendor = vendors[i % len(vendors)]
        chan = "ch%02d" % (i // len(vendors) % 10)
        path = os.path.join(root, "index", vendor, chan, "idx_%06d.xml" % i)
        write(path, xml_bytes(rng, size))

    os.makedirs(os.path.join(root, "cache", "empty"), exist_ok=True)
    write(os.path.join(root, "VERSION"), b"bench repository seed %d\n" % seed)


def many(root, files, folders, seed):
    """The million-file layout: `files` small files in `folders` folders
    (100 folders per parent), cheap to write so a million take minutes."""
    rng = random.Random(seed)
    per = -(-files // folders)
    n = 0
    for d in range(folders):
        path = os.path.join(root, "b%03d" % (d // 100), "f%05d" % d)
        os.makedirs(path, exist_ok=True)
        for _ in range(min(per, files - n)):
            with open(os.path.join(path, "%07d.dat" % n), "wb") as f:
                f.write(rng.randbytes(rng.randint(256, 2 * KB)))
            n += 1
    write(os.path.join(root, "VERSION"), b"bench many seed %d\n" % seed)


def huge(root, gib, seed):
    """One sparse file of `gib` GiB: random MiB at each GiB and at the end."""
    rng = random.Random(seed)
    size = int(gib * 1024 * MB)
    path = os.path.join(root, "images", "disk.img")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)
        for at in list(range(0, size - MB, 1024 * MB)) + [size - MB]:
            f.seek(at)
            f.write(rng.randbytes(MB))
    write(os.path.join(root, "VERSION"), b"bench huge seed %d\n" % seed)


def all_files(root):
    out = []
    for d, dirs, fs in os.walk(root):
        dirs.sort()
        for f in sorted(fs):
            out.append(os.path.join(d, f))
    return out


def edit_in_place(rng, data, is_xml):
    """`data` with a few KiB changed inside (records appended to XML)."""
    data = bytearray(data)
    if is_xml and len(data) > 16:
        tail = b"</index>\n"
        body = bytes(data[:-len(tail)]) if data.endswith(tail) else bytes(data)
        extra = xml_bytes(rng, rng.randint(200, 1200))[len('<?xml version="1.0" encoding="UTF-8"?>\n<index>\n'):-len(tail)]
        return body + extra + tail
    for _ in range(rng.randint(1, 3)):
        length = min(len(data), rng.randint(1 * KB, 4 * KB))
        at = rng.randrange(0, max(1, len(data) - length))
        data[at:at + length] = rng.randbytes(length)
    return bytes(data)


def mutate(root, percent, seed, in_place=False):
    rng = random.Random(seed)
    files = all_files(root)
    n = max(4, round(len(files) * percent / 100))
    n_mod, n_add = n // 2, n // 4
    n_del = n - n_mod - n_add
    small_med = [f for f in files if "/modules/" not in f and not f.endswith("VERSION")]
    large = [f for f in files if "/modules/" in f]
    picked = rng.sample(small_med, min(len(small_med), n_mod + n_del))
    mods, dels = picked[:n_mod], picked[n_mod:]
    if large:
        # a real update usually ships one new engine module
        mods.append(rng.choice(large))
    for f in mods:
        if in_place:
            with open(f, "rb") as old:
                data = edit_in_place(rng, old.read(), f.endswith(".xml"))
        else:
            size = os.path.getsize(f)
            size = max(1, size + rng.randint(-size // 10, size // 10))
            data = xml_bytes(rng, size) if f.endswith(".xml") else rng.randbytes(size)
        mode = os.stat(f).st_mode & 0o777
        write(f, data, mode)
    for f in dels:
        os.unlink(f)
    for i in range(n_add):
        if i % 5 == 4:
            path = os.path.join(root, "db", "new", "added_%05d.db" % i)
            data = rng.randbytes(rng.randint(50 * KB, 500 * KB))
        else:
            path = os.path.join(root, "index", "v%02d" % (i % 20), "new",
                                "added_%05d.xml" % i)
            data = xml_bytes(rng, rng.randint(1 * KB, 8 * KB))
        write(path, data)
    with open(os.path.join(root, "VERSION"), "ab") as f:
        f.write(b"mutated seed %d\n" % seed)
    print("modified %d, added %d, deleted %d" % (len(mods) + 1, n_add, len(dels)))


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "gen":
        gen(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif len(sys.argv) == 6 and sys.argv[1] == "many":
        many(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif len(sys.argv) == 5 and sys.argv[1] == "huge":
        huge(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
    elif len(sys.argv) == 5 and sys.argv[1] == "mutate":
        mutate(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
    elif len(sys.argv) == 5 and sys.argv[1] == "edit":
        mutate(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), in_place=True)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
