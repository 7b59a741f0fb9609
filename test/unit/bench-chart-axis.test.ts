/** The bench report's chart axes (bench/suite/chart-axis.ts): round ticks, and log where values span decades. */
import { describe, expect, it } from 'vitest';
import { chooseAxis, linearAxis, logAxis, niceStep, spansDecades, tickLabel } from '../../bench/suite/chart-axis.js';
import { lineChart } from '../../bench/suite/svg-chart.js';

describe('chart axes', () => {
  it('steps are 1, 2 or 5 times a power of ten', () => {
    expect(niceStep(10)).toBe(2);
    expect(niceStep(13)).toBe(5);
    expect(niceStep(0.37)).toBe(0.1);
    expect(niceStep(870_000)).toBe(200_000);
    expect(niceStep(0)).toBe(1);
  });

  it('a linear axis starts at zero and ends on a whole tick above the largest value', () => {
    const axis = linearAxis([3.2, 7.9, 11.4]);
    expect(axis.log).toBe(false);
    expect(axis.ticks).toEqual([0, 5, 10, 15]);
    expect([axis.min, axis.max]).toEqual([0, 15]);
    expect(axis.fraction(7.5)).toBe(0.5);
    // No float noise in the ticks.
    expect(linearAxis([0.1, 0.7]).ticks).toEqual([0, 0.2, 0.4, 0.6, 0.8]);
    // Off zero when asked (an x axis of rates).
    expect(linearAxis([500, 16_000], { fromZero: false }).ticks).toEqual([0, 5000, 10_000, 15_000, 20_000]);
  });

  it('a log axis runs from tick to tick around the values: 1, 2 and 5 times powers of ten, or the powers alone past three decades', () => {
    const axis = logAxis([0.8, 9]);
    expect(axis.log).toBe(true);
    expect([axis.min, axis.max]).toEqual([0.5, 10]);
    expect(axis.ticks).toEqual([0.5, 1, 2, 5, 10]);
    expect(axis.fraction(0.5)).toBe(0);
    expect(axis.fraction(10)).toBe(1);
    expect(axis.fraction(1)).toBeCloseTo(Math.log10(2) / Math.log10(20), 12);
    // Connections of the fan-out, publish rates of the sweep.
    expect(logAxis([500, 2000, 10_000]).ticks).toEqual([500, 1000, 2000, 5000, 10_000]);
    expect(logAxis([500, 16_000]).ticks).toEqual([500, 1000, 2000, 5000, 10_000, 20_000]);
    // Five decades: the powers of ten only.
    expect(logAxis([3, 20_000]).ticks).toEqual([1, 10, 100, 1000, 10_000, 100_000]);
    // Values that are not positive are drawn at the bottom instead of breaking the scale.
    expect(logAxis([0, 5]).fraction(0)).toBeLessThan(0);
  });

  it("'auto' picks log only when the values span decades", () => {
    expect(spansDecades([0.5, 9])).toBe(false);
    expect(spansDecades([0.5, 10])).toBe(true);
    expect(chooseAxis([1.2, 3.4, 180], 'auto').log).toBe(true);
    expect(chooseAxis([100_000, 800_000], 'auto').log).toBe(false);
    expect(chooseAxis([100_000, 800_000], 'log').log).toBe(true);
    expect(chooseAxis([1, 1000], 'linear').log).toBe(false);
  });

  it('labels ticks short', () => {
    expect([500, 2000, 10_000, 1_500_000, 0.5, 0.05, 0.2].map(tickLabel)).toEqual(['500', '2k', '10k', '1.5M', '0.5', '0.05', '0.2']);
  });

  it('a chart of latencies over decades draws a log y axis with round labels', () => {
    const svg = lineChart({
      title: 'p99',
      xLabel: 'connections (log scale)',
      yLabel: 'p99 latency (ms)',
      logX: true,
      series: [
        {
          name: 'a',
          points: [
            [500, 1.3],
            [2000, 2.1],
            [10_000, 9.8],
          ],
        },
        {
          name: 'b',
          points: [
            [500, 14],
            [2000, 60],
            [10_000, 210],
          ],
        },
      ],
      threshold: { y: 10, label: 'target 10 ms' },
    });
    expect(svg).toMatch(/^<svg/);
    expect(svg).toContain('p99 latency (ms), log scale');
    const labels = [...svg.matchAll(/text-anchor="(?:end|middle)">([^<]+)</g)].map((m) => m[1]);
    expect(labels).toEqual(expect.arrayContaining(['1', '10', '100', '1k', '100', '1k', '10k']));
    expect(labels.some((l) => /\d\.\d{3}/.test(l))).toBe(false);
  });
});
