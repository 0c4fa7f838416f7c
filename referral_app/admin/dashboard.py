"""The staff dashboard at /admin/dashboard (where staff land after login): totals, sign-ups and
activations per day as server-side SVG charts (pygal; no script, nothing from another
origin, so the admin works offline), the top inviters, and links to the CSV exports."""

from __future__ import annotations

import re
from datetime import date

import pygal
from markupsafe import Markup
from pygal.style import Style
from sqladmin import BaseView, expose
from starlette.requests import Request
from starlette.responses import Response

from referral_app.services import staff

CHART_STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#1d273b",
    foreground_strong="#1d273b",
    foreground_subtle="#e6e7e9",
    opacity="1",
    opacity_hover="0.8",
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    label_font_size=15,
    major_label_font_size=15,
    value_font_size=12,
    colors=("#206bc4",),
)
_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL)


def bar_chart(label: str, per_day: list[tuple[date, int]], color: str) -> Markup:
    """An inline SVG bar chart of counts per day, a label every 5 days; pygal's script removed
    (it only carries tooltip settings)."""
    chart = pygal.Bar(
        style=Style(**{**CHART_STYLE.to_dict(), "colors": (color,)}),
        # About the card's size on a desktop (two charts side by side), so text keeps its size
        # there; on a phone the chart scales down to the screen's width.
        width=560, height=300, margin=6, margin_right=16, spacing=3, show_legend=False, js=[], disable_xml_declaration=True,
        show_minor_x_labels=False, x_labels_major_every=5, truncate_label=-1, min_scale=2, max_scale=6,
        show_y_guides=True, allow_interruptions=False,
    )
    chart.x_labels = [day.strftime("%d %b") for day, _ in per_day]
    chart.add(label, [count for _, count in per_day])
    svg = _SCRIPT.sub("", chart.render(is_unicode=True))
    return Markup(svg.replace("<svg ", f'<svg role="img" aria-label="{label}, last 30 days" ', 1))


class DashboardView(BaseView):
    name, icon = "Dashboard", "fa-solid fa-chart-column"

    @expose("/dashboard", methods=["GET"], identity="dashboard")
    async def dashboard(self, request: Request) -> Response:
        numbers = await staff.dashboard()
        context = {
            "title": "Dashboard",
            "subtitle": "How the programme grows (days in UTC)",
            "numbers": numbers,
            "signups_chart": bar_chart("Sign-ups per day", numbers.signups, "#206bc4"),
            "activations_chart": bar_chart("Activations per day", numbers.activations, "#2fb344"),
        }
        return await self.templates.TemplateResponse(request, "dashboard.html", context)
