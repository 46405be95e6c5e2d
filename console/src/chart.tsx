import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";

export interface Series {
  label: string;
  /** One value per x. */
  values: (number | null)[];
}

const colours = ["#1f4e8c", "#b3541e", "#2e7d32", "#6a1b9a", "#00695c", "#8d6e00"];

/**
 * A time-series line chart (uPlot). `times` are in seconds since the epoch. Screen readers get `label`; the
 * same figures are always in a table next to the chart.
 */
export function TimeChart({ label, times, series }: { label: string; times: number[]; series: Series[] }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = box.current;
    if (!element) return;
    const width = Math.max(320, element.clientWidth || 640);
    const plot = new uPlot(
      {
        width,
        height: 220,
        series: [
          {},
          ...series.map((s, i) => ({
            label: s.label,
            stroke: colours[i % colours.length],
            width: 2,
            points: { show: times.length < 50 },
          })),
        ],
        axes: [{}, { size: 60 }],
        scales: { x: { time: true } },
      },
      [times, ...series.map((s) => s.values)] as uPlot.AlignedData,
      element,
    );
    return () => plot.destroy();
  }, [times, series]);
  return <div class="chart" ref={box} role="img" aria-label={label} />;
}
