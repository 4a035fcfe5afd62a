#!/usr/bin/python3
"""Draws forklet-bench's results: the latency distribution of each start kind and baseline, and
the concurrency sweep (throughput and latency against clients).

usage: plot_bench.py RESULTS.json OUT.png|OUT.svg   (forklet-bench --plot calls it)
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def ecdf(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs, [(i + 1) / n for i in range(n)]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        r = json.load(f)
    rows = [row for row in r["rows"] if r["latency_ms"].get(row["name"])]
    sweep = r.get("sweep", [])
    nrows = 2 if sweep else 1
    fig, axes = plt.subplots(nrows, 2, figsize=(13, 5.2 * nrows), squeeze=False)

    # Distributions: one ECDF per start kind and baseline, log time axis.
    ax = axes[0][0]
    for row in rows:
        xs, ys = ecdf(r["latency_ms"][row["name"]])
        ax.step(xs, ys, where="post", label=row["name"],
                linestyle="--" if row["baseline"] else "-", linewidth=1.6)
    ax.set_xscale("log")
    ax.set_xlabel("response time as the client sees it (ms, log)")
    ax.set_ylabel("fraction of requests")
    ax.set_title("latency distribution, one client")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")

    # The same as box plots (whiskers at p1 and p99), sorted by median.
    ax = axes[0][1]
    data = sorted(((row["name"], r["latency_ms"][row["name"]]) for row in rows),
                  key=lambda kv: sorted(kv[1])[len(kv[1]) // 2])
    ax.boxplot([v for _, v in data], vert=False, whis=(1, 99), showfliers=False,
               labels=[k for k, _ in data])
    ax.set_xscale("log")
    ax.set_xlabel("ms (log); box p25-p75, whiskers p1-p99")
    ax.set_title("per start kind and baseline")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.tick_params(axis="y", labelsize=8)

    if sweep:
        clients = sorted({p["clients"] for p in sweep})
        tput, lat = axes[1][0], axes[1][1]
        families = list(dict.fromkeys(p.get("family", "") for p in sweep))  # in bench order
        colors = {"warm": ("tab:blue", "tab:cyan", "tab:purple", "tab:gray"),
                  "zygote": ("tab:red", "tab:orange", "tab:brown", "tab:pink")}
        for kind in ("warm", "zygote"):
            for i, family in enumerate(families):
                pts = sorted((p for p in sweep if p["kind"] == kind and p.get("family", "") == family),
                             key=lambda p: p["clients"])
                if not pts:
                    continue
                color = colors[kind][i % len(colors[kind])]
                c = [p["clients"] for p in pts]
                label = (family + " " if family else "") + (
                    "zygote (new sandbox each)" if kind == "zygote" else kind)
                tput.plot(c, [p["throughput_per_s"] for p in pts], "o-", color=color, label=label)
                for pct, style in (("p50", "o-"), ("p99", "^:")):
                    lat.plot(c, [p["latency_ms"][pct] for p in pts], style, color=color,
                             label=f"{label} {pct}")
        for ax, ylabel, title in ((tput, "requests per second (log)", "throughput"),
                                  (lat, "ms (log)", "latency under concurrency")):
            ax.set_xscale("log", base=2)
            ax.set_xticks(clients)
            ax.set_xticklabels([str(c) for c in clients])
            ax.set_yscale("log")
            ax.set_xlabel("concurrent clients (one connection each)")
            ax.set_ylabel(ylabel)
            ax.set_title("concurrency sweep: " + title)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)

    fig.suptitle("forklet-bench: " + r.get("machine", ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
