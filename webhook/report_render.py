"""A recovery's report (:class:`site_recovery.core.report.Report`) as HTML or PDF.

One chart per group, the RPO and RTO of its last drills as bar pairs, is drawn once with
ReportLab's graphics: the PDF holds it as vector art, the HTML as inline SVG, so the two
formats show the same figure and the HTML page needs nothing but itself.
"""

from __future__ import annotations

import io
from importlib import resources
from xml.sax.saxutils import escape

import jinja2
from reportlab.graphics import renderSVG
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from site_recovery.core.report import GroupReport, Measure, Report

RPO_COLOUR, RTO_COLOUR = colors.HexColor("#2f6fb0"), colors.HexColor("#e08a1e")
CHART_SIZE = (160 * mm, 62 * mm)
FORMATS = {"json": "application/json", "html": "text/html; charset=utf-8",
           "pdf": "application/pdf"}


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def verdict(measured: Measure) -> str:
    """For people: ``12.0 s (target 60 s, met)``."""
    if measured.seconds is None:
        return "not measured"
    if measured.target_seconds is None:
        return f"{seconds(measured.seconds)} (no target)"
    return (f"{seconds(measured.seconds)} (target {measured.target_seconds} s, "
            f"{'met' if measured.met else 'missed'})")


def chart(group: GroupReport) -> Drawing:
    """The group's last drills: RPO and RTO in seconds, a bar pair each, oldest left."""
    width, height = CHART_SIZE
    drawing = Drawing(width, height)
    drills = group.history
    if not drills:
        drawing.add(String(10, height / 2, "No drill of this group has ended yet.",
                           fontName="Helvetica", fontSize=9))
        return drawing
    bars = VerticalBarChart()
    bars.x, bars.y, bars.width, bars.height = 40, 28, width - 150, height - 40
    bars.data = [[d.rpo_seconds or 0.0 for d in drills], [d.rto_seconds or 0.0 for d in drills]]
    bars.categoryAxis.categoryNames = [d.finished_at.strftime("%m-%d %H:%M") for d in drills]
    bars.categoryAxis.labels.fontSize = 6
    bars.categoryAxis.labels.angle = 30
    bars.categoryAxis.labels.dy = -8
    bars.valueAxis.valueMin = 0
    bars.valueAxis.labels.fontSize = 7
    bars.bars[0].fillColor, bars.bars[1].fillColor = RPO_COLOUR, RTO_COLOUR
    drawing.add(bars)
    legend = Legend()
    legend.x, legend.y = width - 100, height - 14
    legend.fontSize = 8
    legend.colorNamePairs = [
        (RPO_COLOUR, f"RPO (target {_target(group.rpo)})"),
        (RTO_COLOUR, f"RTO (target {_target(group.rto)})")]
    drawing.add(legend)
    drawing.add(String(40, height - 8, "seconds, per drill", fontName="Helvetica",
                       fontSize=7))
    return drawing


def _target(measured: Measure) -> str:
    return "none" if measured.target_seconds is None else f"{measured.target_seconds} s"


def html(report: Report) -> str:
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = environment.from_string(
        resources.files(__package__).joinpath("templates/report.html.j2").read_text())
    return template.render(report=report, seconds=seconds, summary=_summary,
                           group_summary=_group_summary,
                           charts={g.id: _svg(chart(g)) for g in report.protection_groups})


def _svg(drawing: Drawing) -> str:
    """Inline SVG, its XML declaration dropped (an HTML body takes the element only)."""
    text = renderSVG.drawToString(drawing)
    return text[text.index("<svg"):]


def pdf(report: Report) -> bytes:
    styles = getSampleStyleSheet()
    out = io.BytesIO()
    document = SimpleDocTemplate(out, pagesize=A4, title=_title(report),
                                 leftMargin=18 * mm, rightMargin=18 * mm)
    story = [Paragraph(escape(_title(report)), styles["Title"]),
             _table([[k, v] for k, v in _summary(report)], header=False), Spacer(0, 6 * mm)]
    for group in report.protection_groups:
        story += [Paragraph(escape(f"Protection group {group.name} ({group.project})"),
                            styles["Heading2"]),
                  _table([[k, v] for k, v in _group_summary(group)], header=False),
                  Spacer(0, 3 * mm)]
        story += [KeepTogether([Paragraph("RPO and RTO over the last drills",
                                          styles["Heading3"]), chart(group)]),
                  Spacer(0, 3 * mm)]
        if group.servers:
            story += [Paragraph("Recovered servers", styles["Heading3"]), _table(
                [["server", "tier", "status", "boot", "ready after", "gate"]] +
                [[s.name, str(s.boot_tier), s.status or "-", seconds(s.boot_seconds),
                  seconds(s.ready_after_seconds), s.gate or "-"] for s in group.servers])]
        if group.servers_note:
            story.append(Paragraph(escape(group.servers_note), styles["Italic"]))
        if group.phases:
            story += [Paragraph("Phases", styles["Heading3"]), _table(
                [["phase", "seconds"]] + [[k, seconds(v)] for k, v in group.phases.items()])]
    document.build(story)
    return out.getvalue()


def _title(report: Report) -> str:
    return f"{report.operation_type.replace('_', ' ').capitalize()} report: " \
        f"operation {report.operation_id}"


def _summary(report: Report) -> list[tuple[str, str]]:
    return [("status", report.status), ("site", report.site),
            ("requested by", ("the drill schedule" if report.scheduled
                              else report.requested_by or "-")),
            ("requested at", report.requested_at.isoformat(timespec="seconds")),
            ("finished at", report.finished_at.isoformat(timespec="seconds")
             if report.finished_at else "-"),
            ("report made at", report.made_at.isoformat(timespec="seconds"))]


def _group_summary(group: GroupReport) -> list[tuple[str, str]]:
    failed = group.status != "completed" and group.step
    rows = [("status", group.status + (f" at {group.step}" if failed else "")),
            ("recovery point", group.recovery_point or "-"),
            ("RPO achieved", verdict(group.rpo)), ("RTO", verdict(group.rto)),
            ("production replication", group.production_replication or "-")]
    if group.reason:
        rows.append(("error", group.reason))
    return rows


def _table(rows: list[list[str]], header: bool = True) -> Table:
    styles = getSampleStyleSheet()
    table = Table([[Paragraph(escape(str(cell)), styles["BodyText"]) for cell in row]
                   for row in rows], hAlign="LEFT")
    table.setStyle(TableStyle(
        [("GRID", (0, 0), (-1, -1), 0.25, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP")]
        + ([("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef5"))] if header else [])))
    return table

