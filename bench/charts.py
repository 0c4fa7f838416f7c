"""The report's chart (matplotlib): profile latency and throughput against referral count."""

from __future__ import annotations

from pathlib import Path

from bench.report import TARGETS
from bench.scenarios import SIZES, WrkResult


def draw_chart(results: list[WrkResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_lat, ax_rps) = plt.subplots(1, 2, figsize=(11, 5))
    xs = list(range(len(SIZES)))
    colors = {1: "tab:blue", 16: "tab:orange", 64: "tab:red"}  # the connection levels of a full run
    for conns in sorted({r.spec.connections for r in results if r.spec.scenario == "profile"}):
        rows = {r.spec.label: r for r in results if r.spec.scenario == "profile" and r.spec.connections == conns}
        p50 = [rows[f"{size:,}"].p50_ms for size in SIZES]
        p99 = [rows[f"{size:,}"].p99_ms for size in SIZES]
        rps = [rows[f"{size:,}"].rps for size in SIZES]
        ax_lat.plot(xs, p50, "o-", color=colors[conns], label=f"p50, {conns} conn")
        ax_lat.plot(xs, p99, "s--", color=colors[conns], alpha=0.6, label=f"p99, {conns} conn")
        ax_rps.plot(xs, rps, "o-", color=colors[conns], label=f"{conns} conn")
    for ax in (ax_lat, ax_rps):
        ax.set_xticks(xs, [f"{size:,}" for size in SIZES])
        ax.set_xlabel("referrals of the user")
        ax.grid(True, alpha=0.3)
    ax_lat.axhline(TARGETS["profile_p99_ms"], color="gray", linestyle=":", linewidth=1)
    ax_lat.text(xs[-1], TARGETS["profile_p99_ms"] * 1.08, "target p99 at 16 conns", fontsize=7, color="gray",
                ha="right")
    ax_lat.set_yscale("log")
    ax_lat.set_ylabel("latency, ms (log scale)")
    ax_lat.set_title("GET /api/v1/profile/me/ latency")
    ax_lat.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    ax_rps.axhline(TARGETS["profile_rps"], color="gray", linestyle=":", linewidth=1)
    ax_rps.text(xs[-1], TARGETS["profile_rps"] * 0.95, "target at 16 conns", fontsize=7, color="gray", ha="right",
                va="top")
    ax_rps.set_ylim(0, TARGETS["profile_rps"] * 1.1)
    ax_rps.set_ylabel("requests/s")
    ax_rps.set_title("GET /api/v1/profile/me/ throughput")
    ax_rps.legend(fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    seconds = round(results[0].duration_s) if results else 0
    fig.suptitle(f"Profile cost against referral count (wrk, {seconds} s per point, one server worker)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
