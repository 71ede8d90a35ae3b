#!/usr/bin/env python3
"""Summary table, results.json and PNG charts of bench/suite.

    charts.py WORKDIR OUTDIR KEY=VALUE...

Reads what the suite's parts wrote into WORKDIR (any may be missing):
local.json (bench/run), ftp.json (bench/suite-ftp), scale.json
(bench/suite-scale). Writes OUTDIR/results.json (all of them plus the
machine and the limits) and these charts:

  operations.png   local operations: ferry against its peer (medians, with sync)
  ftp.png          FTP full and 2 % incremental import: ferry, lftp, rclone
  throughput.png   MB/s of ferry and sha256sum against the SHA-256 limit
                   (openssl speed, 1 and 2 cores) and the copy limit (cp -a + sync)
  scale-files.png  time and peak memory against the number of files
  scale-bytes.png  time and peak memory against the total size
"""
import datetime
import json
import os
import platform
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the back end is chosen)

# rows of bench/run shown in the charts and the summary: id, short label
LOCAL_ROWS = [
    ("vexport_nrb_tar", "export tar vols\n(no read-back) / tar cf"),
    ("vexport_tar", "export tar vols\n(read-back) / tar cf"),
    ("export_nrb", "export tree\n(no read-back) / cp -a"),
    ("export", "export tree (read-back)\n/ cp -a+sha256sum+sign"),
    ("verify", "verify tree\n/ sha256sum -c"),
    ("verify_par", "verify tree\n/ sha256sum -c x2"),
    ("vverify", "verify tar vols\n/ sha256sum -c"),
    ("import", "import tree\n/ sha256sum -c + cp -a"),
    ("vimport_tar", "import tar vols\n/ tar xf"),
    ("incr_import", "2% incremental import\n/ rsync -a --delete"),
]


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def local_rows(local):
    by_id = {r["id"]: r for r in local["results"]} if local else {}
    return [(label, by_id[i]) for i, label in LOCAL_ROWS if i in by_id and by_id[i]["ferry_s"]]


def chart_operations(rows, dataset, out):
    fig, ax = plt.subplots(figsize=(10, 6))
    ys = range(len(rows))
    f = [r["ferry_sync_median_s"] or 0 for _, r in rows]
    b = [r["baseline_sync_median_s"] or 0 for _, r in rows]
    ax.barh([y + 0.2 for y in ys], f, height=0.4, label="ferry", color="tab:blue")
    ax.barh([y - 0.2 for y in ys], b, height=0.4, label="peer", color="tab:gray")
    for y, (fv, bv) in zip(ys, zip(f, b)):
        if bv:
            ax.text(max(fv, bv) * 1.02, y, "%.2f×" % (fv / bv), va="center", fontsize=8)
    ax.set_yticks(list(ys))
    ax.set_yticklabels([label for label, _ in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds (median, including a following sync)")
    ax.set_title("ferry against its peer, %d files / %.0f MB, warm cache" % (dataset["files"], dataset["bytes"] / 1e6))
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def chart_ftp(ftp, out):
    med = {(r["server"], r["phase"], r["tool"]): r["median_s"] for r in ftp["rows"]}
    servers = [s for s in ("pure", "vsftpd") if any(r["server"] == s for r in ftp["rows"])]
    groups = [(s, p) for s in servers for p in ("full", "incr")]
    tools = [("ferry", "tab:blue"), ("lftp", "tab:orange"), ("rclone", "tab:green")]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for k, (tool, color) in enumerate(tools):
        xs = [g + (k - 1) * 0.27 for g in range(len(groups))]
        ax.bar(xs, [med.get((s, p, tool), 0) for s, p in groups], width=0.27, label=tool, color=color)
    ax.set_xticks(range(len(groups)))
    names = {"pure": "pure-ftpd", "vsftpd": "vsftpd", "full": "full import", "incr": "2 % incremental"}
    ax.set_xticklabels(["%s\n%s" % (names[s], names[p]) for s, p in groups])
    ax.set_ylabel("seconds (median of %d)" % ftp["reps"])
    ax.set_title("FTP on 127.0.0.1: ferry (4 connections), lftp mirror -R --parallel=4, rclone sync")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def chart_throughput(local, sha_1core, out):
    by_id = {r["id"]: r for r in local["results"]}
    mb = local["dataset"]["bytes"] / 1e6
    bars = []
    for rid, label, key in [
        ("verify", "ferry verify (tree)", "ferry_median_s"),
        ("vverify", "ferry verify (tar vols)", "ferry_median_s"),
        ("verify", "sha256sum -c (1 process)", "baseline_median_s"),
        ("verify_par", "sha256sum -c (2 processes)", "baseline_median_s"),
        ("vexport_nrb_tar", "ferry export tar vols\n(no read-back, + sync)", "ferry_sync_median_s"),
        ("export_nrb", "ferry export tree\n(no read-back, + sync)", "ferry_sync_median_s"),
        ("vimport_tar", "ferry import tar vols (+ sync)", "ferry_sync_median_s"),
        ("export_nrb", "cp -a (+ sync)", "baseline_sync_median_s"),
        ("vexport_nrb_tar", "tar cf (+ sync)", "baseline_sync_median_s"),
    ]:
        r = by_id.get(rid)
        if r and r.get(key):
            bars.append((label, mb / r[key]))
    if not bars:
        return None
    copy = dict(bars).get("cp -a (+ sync)")
    fig, ax = plt.subplots(figsize=(10, 5.5))
    ax.barh(range(len(bars)), [v for _, v in bars], color="tab:blue")
    ax.set_yticks(range(len(bars)))
    ax.set_yticklabels([label for label, _ in bars], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(sha_1core, color="tab:red", ls="--", label="SHA-256 limit, 1 core (%.0f MB/s)" % sha_1core)
    ax.axvline(2 * sha_1core, color="tab:red", ls=":", label="SHA-256 limit, 2 cores (%.0f MB/s)" % (2 * sha_1core))
    if copy:
        ax.axvline(copy, color="tab:gray", ls="--", label="copy limit: cp -a + sync (%.0f MB/s)" % copy)
    ax.set_xlabel("MB/s over the repository (%.0f MB)" % mb)
    ax.set_title("throughput against the SHA-256 and copy limits")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return {label.replace("\n", " "): round(v, 1) for label, v in bars}


def chart_scale(rows, kind, out):
    pts = sorted((r for r in rows if r["kind"] == kind), key=lambda r: r["files" if kind == "files" else "bytes"])
    if not pts:
        return
    xs = [r["files"] if kind == "files" else r["bytes"] / 1e6 for r in pts]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.5))
    ferry_ops = ["export", "verify", "import", "export_tree", "verify_tree", "export2", "import_incr"]
    for op, style in [("export", "o-"), ("tar_cf", "o--"), ("verify", "s-"), ("import", "^-"), ("tar_xf", "^--"),
                      ("export_tree", "d-"), ("cp_a", "d--"), ("import_incr", "v-"), ("rsync", "v--")]:
        # A point without the operation (the one-file point has no incremental) leaves a gap.
        ys = [r.get(op + "_s", float("nan")) for r in pts]
        a1.plot(xs, ys, style, label=op.replace("_", " ") + (" (ferry)" if op in ferry_ops else ""))
    for op in ferry_ops:
        a2.plot(xs, [r.get(op + "_peak_rss_mb", float("nan")) for r in pts], "o-", label="ferry " + op.replace("_", " "))
    xl = "files" if kind == "files" else "total size, MB"
    for a in (a1, a2):
        a.set_xscale("log")
        a.set_xlabel(xl)
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=8)
    a1.set_yscale("log")
    a1.set_ylabel("seconds (one run, + sync)")
    a2.set_ylabel("peak RSS, MB")
    a1.set_title("time against %s" % ("file count" if kind == "files" else "total size"))
    a2.set_title("ferry's peak memory")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def markdown(rows, ftp, scale):
    """The tables of docs/performance.md, from the same figures."""
    out = []
    if rows:
        out += ["| operation / peer | ferry s | peer s | ratio | ferry + sync s | peer + sync s | ratio with sync | ferry peak RSS MB |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for label, r in rows:
            fs, bs, fss, bss = (r[k] for k in ("ferry_median_s", "baseline_median_s",
                                                "ferry_sync_median_s", "baseline_sync_median_s"))
            out.append("| %s | %.3f | %.3f | %.2f | %.3f | %.3f | %.2f | %.1f |" % (
                label.replace("\n", " "), fs, bs, fs / bs, fss, bss, fss / bss, r["ferry_peak_rss_mb"] or 0))
        out.append("")
    if ftp:
        med = {(r["server"], r["phase"], r["tool"]): r for r in ftp["rows"]}
        out += ["| server | phase | ferry s | lftp s | rclone s | ferry / lftp | ferry / rclone | ferry peak RSS MB |",
                "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for server in ("pure", "vsftpd"):
            for phase in ("full", "incr"):
                f, l, c = (med.get((server, phase, t)) for t in ("ferry", "lftp", "rclone"))
                if None in (f, l, c):
                    continue
                out.append("| %s | %s | %.3f | %.3f | %.3f | %.2f | %.2f | %.1f |" % (
                    server, phase, f["median_s"], l["median_s"], c["median_s"], f["median_s"] / l["median_s"],
                    f["median_s"] / c["median_s"], f["ferry_peak_rss_mb"] or 0))
        out.append("")
        for server in ("pure", "vsftpd"):
            full, incr = med.get((server, "full", "ferry")), med.get((server, "incr", "ferry"))
            if full and incr:
                out.append("ferry's incremental import / its own full import on %s: %.1f %%  " % (
                    server, 100 * incr["median_s"] / full["median_s"]))
        out.append("")
    if scale:
        ops = ["export", "tar_cf", "verify", "import", "tar_xf", "export_tree", "cp_a", "verify_tree", "export2",
               "import_incr", "rsync"]
        ferry_ops = [op for op in ops if op.startswith(("export", "verify", "import"))]
        out += ["| series | files | MB | " + " | ".join(op.replace("_", " ") + " s" for op in ops)
                + " | peak RSS MB (" + " / ".join(op.replace("_", " ") for op in ferry_ops) + ") |",
                "| --- | ---: | ---: | " + " | ".join("---:" for _ in ops) + " | --- |"]
        for r in scale["rows"]:
            times = " | ".join("%.2f" % r[op + "_s"] if op + "_s" in r else "-" for op in ops)
            rss = " / ".join(str(r.get(op + "_peak_rss_mb", "-")) for op in ferry_ops)
            out.append("| %s | %d | %.0f | %s | %s |" % (r["kind"], r["files"], r["bytes"] / 1e6, times, rss))
        out.append("")
    return "\n".join(out)


def main():
    work, outdir = sys.argv[1], sys.argv[2]
    meta = dict(a.split("=", 1) for a in sys.argv[3:])
    sha = float(meta.get("sha_1core_mbs") or 0)
    local, ftp, scale = (load(os.path.join(work, n)) for n in ("local.json", "ftp.json", "scale.json"))
    os.makedirs(outdir, exist_ok=True)
    charts = []
    doc = {
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ferry_version": meta.get("ferry_version"),
        "repetitions": int(meta.get("reps", 0)),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                    "load_average_start": meta.get("load_start"), "load_average_end": meta.get("load_end")},
        "limits": {"sha256_mb_s_per_core": sha, "sha256_mb_s_2_cores": 2 * sha},
        "local": local, "ftp": ftp, "scale": scale,
    }
    rows = local_rows(local)
    if rows:
        chart_operations(rows, local["dataset"], os.path.join(outdir, "operations.png"))
        charts.append("operations.png")
        print("%-44s %9s %9s %7s %11s %11s %7s %8s" % ("operation / peer", "ferry s", "peer s", "ratio",
              "ferry+sync", "peer+sync", "ratio", "RSS MB"))
        for label, r in rows:
            fs, bs, fss, bss = (r[k] for k in ("ferry_median_s", "baseline_median_s",
                                                "ferry_sync_median_s", "baseline_sync_median_s"))
            print("%-44s %9.3f %9.3f %7.2f %11.3f %11.3f %7.2f %8.1f" % (
                label.replace("\n", " "), fs, bs, fs / bs, fss, bss, fss / bss, r["ferry_peak_rss_mb"] or 0))
        tp = chart_throughput(local, sha, os.path.join(outdir, "throughput.png"))
        if tp:
            charts.append("throughput.png")
            doc["limits"]["copy_mb_s_cp_a_sync"] = tp.get("cp -a (+ sync)")
            doc["throughput_mb_s"] = tp
    if ftp:
        chart_ftp(ftp, os.path.join(outdir, "ftp.png"))
        charts.append("ftp.png")
    if scale:
        for kind in ("files", "bytes"):
            if any(r["kind"] == kind for r in scale["rows"]):
                chart_scale(scale["rows"], kind, os.path.join(outdir, "scale-%s.png" % kind))
                charts.append("scale-%s.png" % kind)
    doc["charts"] = charts
    with open(os.path.join(work, "summary.md"), "w") as f:
        f.write(markdown(rows, ftp, scale))
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print("SHA-256 limit (openssl speed -evp sha256): %.0f MB/s per core, %.0f MB/s on 2 cores" % (sha, 2 * sha))
    print("load average: %s at the start, %s at the end" % (meta.get("load_start"), meta.get("load_end")))
    print("wrote %s/results.json and %s" % (outdir, ", ".join(charts)))


if __name__ == "__main__":
    main()
