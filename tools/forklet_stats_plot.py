#!/usr/bin/python3
"""Draws the latency distribution of cold, zygote and warm starts side by side (log scale) from
forkletd's statistics (GET /forklet/v1/stats?histogram=1), as `forklet stats --plot` asks.

usage: forklet_stats_plot.py [--input STATS.json] OUT.svg|OUT.png   (stdin without --input)

The daemon keeps log-bucketed histograms (32 buckets per power of two, within 1.6%); they are
merged by start kind over functions and drawn as violins (a kernel density of log latency) on a
logarithmic latency axis, with p50, p90 and p99 marked.
"""
import argparse
import json
import math
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

plt.rcParams["svg.fonttype"] = "none"  # text stays text in an SVG (searchable, smaller)

KINDS = ("cold", "zygote", "warm")
COLORS = {"cold": "#4c72b0", "zygote": "#dd8452", "warm": "#55a868"}


def merged_buckets(stats):
    """{kind: {(lo, hi): count}} over every series."""
    out = {k: {} for k in KINDS}
    for s in stats.get("series", []):
        kind = s.get("start_kind")
        if kind not in out:
            continue
        for lo, hi, n in s.get("histogram", []):
            out[kind][(lo, hi)] = out[kind].get((lo, hi), 0) + n
    return out


def weighted_quantile(buckets, q):
    total = sum(buckets.values())
    rank = max(1, math.ceil(q * total))
    seen = 0
    for (lo, hi), n in sorted(buckets.items()):
        seen += n
        if seen >= rank:
            return middle(lo, hi)
    return 0.0


def middle(lo, hi):
    return math.sqrt(lo * hi) if lo > 0 else hi / 2


def log_density(buckets, points=400):
    """A Gaussian kernel density of log10(latency), weighted by bucket counts (Silverman's
    bandwidth): (latencies in ms, density scaled to 1 at its peak)."""
    xs = np.array([math.log10(max(middle(lo, hi), 1e-4)) for lo, hi in buckets])
    ws = np.array(list(buckets.values()), dtype=float)
    n = ws.sum()
    mean = np.average(xs, weights=ws)
    std = math.sqrt(np.average((xs - mean) ** 2, weights=ws))
    order = np.argsort(xs)
    cdf = np.cumsum(ws[order]) / n
    iqr = xs[order][np.searchsorted(cdf, 0.75)] - xs[order][np.searchsorted(cdf, 0.25)]
    spread = min(std, iqr / 1.34) if iqr > 0 else std
    bw = max(0.9 * spread * n ** -0.2, 0.01)  # in decades
    grid = np.linspace(xs.min() - 3 * bw, xs.max() + 3 * bw, points)
    dens = (ws[None, :] * np.exp(-0.5 * ((grid[:, None] - xs[None, :]) / bw) ** 2)).sum(axis=1)
    return 10 ** grid, dens / dens.max()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", help="statistics JSON (default: stdin)")
    ap.add_argument("out", help="the picture: .svg or .png")
    a = ap.parse_args()
    if not a.out.endswith((".svg", ".png")):
        sys.exit("forklet_stats_plot: the output must end in .svg or .png")
    stats = json.load(open(a.input) if a.input else sys.stdin)
    buckets = merged_buckets(stats)
    kinds = [k for k in KINDS if buckets[k]]
    if not kinds:
        sys.exit("forklet_stats_plot: no cold, zygote or warm invocations to draw yet")

    fig, ax = plt.subplots(figsize=(8, 5.5))
    ax.set_yscale("log")
    positions = list(range(1, len(kinds) + 1))
    for pos, kind in zip(positions, kinds):
        b = buckets[kind]
        # A violin: the density of log(latency), so each kind's shape reads right on the log axis.
        ys, dens = log_density(b)
        ax.fill_betweenx(ys, pos - 0.4 * dens, pos + 0.4 * dens, color=COLORS[kind], alpha=0.6,
                         edgecolor="black", linewidth=0.6)
        for q, style, width in ((0.5, "-", 0.5), (0.9, "--", 0.35), (0.99, ":", 0.35)):
            ax.hlines(weighted_quantile(b, q), pos - width / 2, pos + width / 2, colors="black",
                      linestyles=style, lw=1.4)
        p50, p99 = weighted_quantile(b, 0.5), weighted_quantile(b, 0.99)
        ax.annotate(f"p50 {p50:.3g} ms\np99 {p99:.3g} ms", (pos + 0.42, p50), fontsize=8,
                    va="center")
    ax.set_xticks(positions)
    ax.set_xticklabels([f"{k}\n(n={sum(buckets[k].values())})" for k in kinds])
    ax.set_xlim(0.4, len(kinds) + 0.9)
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_ylabel("latency inside forkletd, ms (log scale)")
    ax.grid(axis="y", which="both", alpha=0.25)
    total = sum(sum(buckets[k].values()) for k in kinds)
    ax.set_title(f"forklet start latency by start kind ({total} invocations since "
                 f"{stats.get('since', '?')[:19]}Z)", fontsize=10)
    ax.text(0.01, 0.01, "lines: p50 (solid), p90 (dashed), p99 (dotted)", transform=ax.transAxes,
            fontsize=7, color="dimgray")
    fig.tight_layout()
    fig.savefig(a.out)


if __name__ == "__main__":
    main()
