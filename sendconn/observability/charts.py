"""Charts drawn on the server as SVG: the geometry here, the markup in templates/observability/.

No JavaScript and no style attributes (the Content-Security-Policy allows neither): every shape carries a class
that static/sendconn.css colours, and every period a <title> that the browser shows on hover. The hundreds of
bars and points are joined here (``bars_svg``, ``points_svg``): a template loop over them took four times longer.
"""

from dataclasses import dataclass, field

from django.utils.html import format_html_join

WIDTH, HEIGHT = 600, 200  # the viewBox; the SVG scales to its container
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 26  # room for the axis labels
LABEL_HOURS = 3  # a time label every 3 hours, on the hour
GRIDLINES = 4  # above the zero line


def nice_step(value):
    """The smallest 1, 2 or 5 × 10ⁿ at or above ``value`` (at least 1): a whole number between gridlines."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class TimeLabel:
    x: float
    label: str


@dataclass(frozen=True)
class Rect:
    css_class: str
    x: float
    y: float
    width: float
    height: float


@dataclass
class Bar:
    title: str
    rects: list[Rect]


@dataclass
class Chart:
    """Axes shared by both charts: the plot area, value gridlines and time labels."""

    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM
    ticks: list[Tick] = field(default_factory=list)
    time_labels: list[TimeLabel] = field(default_factory=list)

    @property
    def label_y(self):
        return self.bottom + 16


def _axes(starts, maximum):
    """The axes for periods ``starts`` and values up to ``maximum``; the top value and the width of a period."""
    chart = Chart()
    step = nice_step(maximum / GRIDLINES)
    top = step * GRIDLINES
    plot_height = chart.bottom - chart.top
    chart.ticks = [
        Tick(round(chart.bottom - plot_height * line / GRIDLINES, 1), str(step * line)) for line in range(GRIDLINES + 1)
    ]
    width = (chart.right - chart.left) / len(starts)
    chart.time_labels = [
        TimeLabel(round(chart.left + width * index, 1), f"{start:%H:%M}")
        for index, start in enumerate(starts)
        if start.minute == 0 and start.hour % LABEL_HOURS == 0
    ]
    return chart, top, width


@dataclass
class FlowChart:
    axes: Chart
    bars: list[Bar]  # periods with mail only
    delivered: int
    deferred: int
    failed: int

    @property
    def empty(self):
        return not self.bars

    @property
    def bars_svg(self):
        return format_html_join(
            "\n",
            '<g class="chart-period"><title>{}</title>{}</g>',
            (
                (
                    bar.title,
                    format_html_join(
                        "",
                        '<rect class="{}" x="{}" y="{}" width="{}" height="{}"/>',
                        ((rect.css_class, rect.x, rect.y, rect.width, rect.height) for rect in bar.rects),
                    ),
                )
                for bar in self.bars
            ),
        )


def flow_chart(periods):
    """Stacked bars per period, delivered at the bottom, then deferred, then failed (``flow.FlowPeriod`` list)."""
    axes, top, step = _axes([period.start for period in periods], max((p.total for p in periods), default=0))
    scale = (axes.bottom - axes.top) / top
    bars = []
    for index, period in enumerate(periods):
        if not period.total:
            continue
        x, base, rects = round(axes.left + step * index, 2), axes.bottom, []
        for css_class, count in (
            ("flow-delivered", period.delivered),
            ("flow-deferred", period.deferred),
            ("flow-failed", period.failed),
        ):
            if count:
                height = count * scale
                base -= height
                rects.append(Rect(css_class, x, round(base, 2), round(max(step - 0.4, 0.6), 2), round(height, 2)))
        bars.append(
            Bar(
                f"{period.start:%H:%M} UTC: {period.delivered} delivered, {period.deferred} deferred, "
                f"{period.failed} failed",
                rects,
            )
        )
    return FlowChart(
        axes,
        bars,
        delivered=sum(p.delivered for p in periods),
        deferred=sum(p.deferred for p in periods),
        failed=sum(p.failed for p in periods),
    )


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    title: str


@dataclass
class DepthChart:
    axes: Chart
    lines: list[str]  # SVG path data, one per run of consecutive samples
    points: list[Point]  # every sample, for its <title>
    latest: int | None  # the last sample's depth
    peak: int

    @property
    def empty(self):
        return not self.points

    @property
    def points_svg(self):
        return format_html_join(
            "\n",
            '<circle class="depth-point" cx="{}" cy="{}" r="2"><title>{}</title></circle>',
            ((point.x, point.y, point.title) for point in self.points),
        )


def depth_chart(samples):
    """A line of the recipients waiting per period (``flow.DepthPoint`` list), broken where a sample is missing."""
    depths = [sample.recipients for sample in samples if sample.recipients is not None]
    axes, top, step = _axes([sample.start for sample in samples], max(depths, default=0))
    scale = (axes.bottom - axes.top) / top
    lines: list[str] = []
    points: list[Point] = []
    run: list[str] = []
    for index, sample in enumerate(samples):
        if sample.recipients is None:
            if run:
                lines.append(" ".join(run))
            run = []
            continue
        x = round(axes.left + step * index + step / 2, 2)
        y = round(axes.bottom - sample.recipients * scale, 2)
        run.append(f"{'L' if run else 'M'}{x},{y}")
        waiting = sample.recipients
        points.append(
            Point(x, y, f"{sample.start:%H:%M} UTC: {waiting} recipient{'s' if waiting != 1 else ''} waiting")
        )
    if run:
        lines.append(" ".join(run))
    return DepthChart(axes, lines, points, latest=depths[-1] if depths else None, peak=max(depths, default=0))
