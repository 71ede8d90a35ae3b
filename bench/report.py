#!/usr/bin/env python3
"""Turn bench/run's results.tsv into the printed table and results.json.

    report.py RESULTS.tsv RESULTS.json KEY=VALUE...

Also writes the table as Markdown next to RESULTS.json (results.md).

Each TSV row: id, label, baseline label, target, status, ferry samples,
ferry+sync samples, peak RSS KiB, baseline samples, baseline+sync samples,
note. Samples are comma-separated seconds; the median is reported (the
best, i.e. minimum, stays in the JSON as *_best_s).
target is a ratio limit (ferry/baseline must be <= it), '-' for none, or
'rss' for the peak-RSS row (< 100 MB).
"""
import datetime
import json
import os
import platform
import statistics
import sys

RSS_LIMIT_MB = 100.0  # MB = 10^6 bytes


def samples(s):
    return [float(x) for x in s.split(",") if x]


def best(xs):
    return min(xs) if xs else None


def median(xs):
    return statistics.median(xs) if xs else None


def fmt(x, spec="%.3f"):
    return "-" if x is None else spec % x


def main():
    tsv, out = sys.argv[1], sys.argv[2]
    meta = dict(a.split("=", 1) for a in sys.argv[3:])
    rows = []
    with open(tsv) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            p += [""] * (13 - len(p))
            (oid, label, blabel, target, status, fs, fss, rss, bs, bss, note, fc, bc) = p[:13]
            r = {
                "id": oid, "operation": label, "baseline": blabel or None,
                "status": status,
                "ferry_s": samples(fs), "ferry_sync_s": samples(fss),
                "baseline_s": samples(bs), "baseline_sync_s": samples(bss),
                "ferry_cpu_s": samples(fc), "baseline_cpu_s": samples(bc),
                "ferry_peak_rss_mb": round(int(rss or 0) * 1024 / 1e6, 1) if rss and rss != "0" else None,
                "note": note or None,
            }
            r["ferry_best_s"] = best(r["ferry_s"])
            r["ferry_sync_best_s"] = best(r["ferry_sync_s"])
            r["baseline_best_s"] = best(r["baseline_s"])
            r["baseline_sync_best_s"] = best(r["baseline_sync_s"])
            r["ferry_cpu_best_s"] = best(r["ferry_cpu_s"])
            r["baseline_cpu_best_s"] = best(r["baseline_cpu_s"])
            for k in ("ferry", "ferry_sync", "baseline", "baseline_sync", "ferry_cpu", "baseline_cpu"):
                r[k + "_median_s"] = median(r[k + "_s"])
            r["ratio"] = None
            if r["ferry_median_s"] is not None and r["baseline_median_s"]:
                r["ratio"] = round(r["ferry_median_s"] / r["baseline_median_s"], 3)
            r["ratio_with_sync"] = None
            if r["ferry_sync_median_s"] is not None and r["baseline_sync_median_s"]:
                r["ratio_with_sync"] = round(r["ferry_sync_median_s"] / r["baseline_sync_median_s"], 3)
            if target == "rss":
                r["target"] = "peak RSS < %g MB" % RSS_LIMIT_MB
                mb = r["ferry_peak_rss_mb"]
                r["result"] = "n/a" if mb is None else ("PASS" if mb < RSS_LIMIT_MB else "MISS")
            elif target == "-":
                r["target"] = None
                r["result"] = None
            else:
                lim = float(target)
                r["target"] = "ratio <= %g" % lim
                if status != "ok" or r["ratio"] is None:
                    r["result"] = "FAIL" if status == "fail" else "n/a"
                else:
                    r["result"] = "PASS" if r["ratio"] <= lim else "MISS"
            if status == "fail" and r["result"] is None:
                r["result"] = "FAIL"
            r["ferry_output"] = _ferry_json(meta.get("outdir"), oid)
            rows.append(r)

    head = ["operation", "ferry s", "baseline", "base s", "ratio",
            "ferry RSS MB", "target", "result", "ferry+sync s", "base+sync s",
            "ferry CPU s", "base CPU s"]
    table = []
    for r in rows:
        table.append([
            r["operation"], fmt(r["ferry_median_s"]), r["baseline"] or "-",
            fmt(r["baseline_median_s"]), fmt(r["ratio"], "%.2f"),
            fmt(r["ferry_peak_rss_mb"], "%.1f"), r["target"] or "-",
            r["result"] or "-", fmt(r["ferry_sync_median_s"]),
            fmt(r["baseline_sync_median_s"]), fmt(r["ferry_cpu_median_s"]),
            fmt(r["baseline_cpu_median_s"]),
        ])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *table)]
    right = {1, 3, 4, 5, 8, 9, 10, 11}

    def line(cells):
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    print(line(head))
    print(line(["-" * w for w in widths]))
    for t in table:
        print(line(t))
    # the same table in Markdown, for bench/README.md
    with open(os.path.splitext(out)[0] + ".md", "w") as f:
        f.write("| " + " | ".join(head) + " |\n")
        f.write("| " + " | ".join("---:" if i in right else "---" for i in range(len(head))) + " |\n")
        for t in table:
            f.write("| " + " | ".join(str(c) for c in t) + " |\n")
    print()
    print("ratio = ferry / baseline (medians of %s runs each, warm page cache); "
          "< 1 means ferry is faster." % meta.get("reps", "?"))
    print("ferry+sync / base+sync: the same runs including a following `sync` "
          "(ferry fsyncs as it writes; cp -a and rsync do not).")
    print("CPU s: user+sys seconds of all processes (median); less sensitive "
          "than wall time to other load on the machine.")
    print("dataset: %s files, %s directories, %.1f MB in %s; %s CPUs, "
          "load average %s at the start, %s at the end" % (
              meta.get("files"), meta.get("dirs"), int(meta.get("bytes", 0)) / 1e6,
              meta.get("bench_dir"), os.cpu_count(), meta.get("load_start"),
              meta.get("load_end")))
    for r in rows:
        fo = r["ferry_output"]
        if r["id"] == "incr_import" and isinstance(fo, dict) and "added" in fo:
            print("ferry import of sequence 2: %s added, %s changed, %s removed, "
                  "%.1f MB transferred (switch: %s)" % (
                      fo.get("added"), fo.get("changed"), fo.get("removed"),
                      (fo.get("bytes_transferred") or 0) / 1e6, fo.get("switch")))
    for r in rows:
        if r["note"]:
            print("NOTE %s: %s" % (r["operation"], r["note"]))

    doc = {
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {
            "cpus": os.cpu_count(),
            "kernel": platform.release(),
            "cpu": _cpu_model(),
            "load_average_start": meta.get("load_start"),
            "load_average_end": meta.get("load_end"),
            "bench_dir": meta.get("bench_dir"),
        },
        "dataset": {
            "files": int(meta.get("files", 0)),
            "directories": int(meta.get("dirs", 0)),
            "bytes": int(meta.get("bytes", 0)),
            "seed": int(meta.get("seed", 0)),
            "change_percent": float(meta.get("change_percent", 0)),
        },
        "repetitions": int(meta.get("reps", 0)),
        "parallel_jobs": int(meta.get("jobs", 0)),
        "ferry": meta.get("ferry"),
        "ferry_version": meta.get("ferry_version"),
        "baselines_only": meta.get("baselines_only") == "1",
        "results": rows,
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


def _ferry_json(outdir, oid):
    """The --json result of the last timed ferry run of this operation."""
    if not outdir:
        return None
    try:
        with open(os.path.join(outdir, "ferry-%s.json" % oid)) as f:
            text = f.read()
    except OSError:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text.strip() or None


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


if __name__ == "__main__":
    main()
