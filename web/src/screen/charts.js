// ECharts, tree-shaken to the two chart types the screen draws (line, bar) on canvas.
import { BarChart, LineChart } from "echarts/charts";
import { GridComponent, TooltipComponent } from "echarts/components";
import * as echarts from "echarts/core";
import { CanvasRenderer } from "echarts/renderers";

echarts.use([LineChart, BarChart, GridComponent, TooltipComponent, CanvasRenderer]);

const TEXT = "#d8e2f0";
const AXIS = "#5b6b84";
const charts = new Map();

function chart(element) {
  if (!element) return null;
  let instance = charts.get(element);
  if (!instance) {
    instance = echarts.init(element, null, { renderer: "canvas" });
    charts.set(element, instance);
  }
  return instance;
}

export function resizeAll() {
  for (const instance of charts.values()) instance.resize();
}

const fontSize = () => Math.round(window.innerWidth / 110);

// A small line without axes labels: the trend of the threat score, or alerts per minute.
export function sparkline(element, points, colour) {
  chart(element)?.setOption({
    animation: false,
    grid: { left: 4, right: 4, top: 6, bottom: 4 },
    xAxis: { type: "category", show: false, data: points.map((p) => p[0]) },
    yAxis: { type: "value", show: false, min: 0 },
    series: [{ type: "line", data: points.map((p) => p[1]), smooth: false, symbol: "none",
      lineStyle: { color: colour, width: 3 }, areaStyle: { color: colour, opacity: 0.18 } }],
  });
}

// Horizontal bars: label on the left, count at the bar's end.
export function bars(element, rows, colours) {
  const size = fontSize();
  const ordered = [...rows].reverse();
  chart(element)?.setOption({
    animation: false,
    grid: { left: 8, right: size * 4, top: 4, bottom: 4, containLabel: true },
    xAxis: { type: "value", show: false },
    yAxis: { type: "category", data: ordered.map((r) => r.label),
      axisLabel: { color: TEXT, fontSize: size }, axisLine: { lineStyle: { color: AXIS } },
      axisTick: { show: false } },
    series: [{ type: "bar", barMaxWidth: size * 1.6,
      data: ordered.map((r, i) => ({ value: r.count,
        itemStyle: { color: colours ? colours[ordered.length - 1 - i] : "#3b82f6" } })),
      label: { show: true, position: "right", color: TEXT, fontSize: size } }],
  }, true);
}
