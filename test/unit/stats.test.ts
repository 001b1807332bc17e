/**
 * The experiment report's statistics against reference values computed with
 * SciPy 1.x (scipy.stats.t, norm, ttest_ind(equal_var=False)); Wilson's
 * interval against its closed form.
 */
import { describe, expect, test } from "bun:test";
import {
  meanInterval,
  normalCdf,
  normalQuantile,
  proportionTest,
  studentTCdf,
  studentTQuantile,
  welchTest,
  wilsonInterval,
} from "../../src/util/stats";

const moments = (xs: number[]) => ({
  n: xs.length,
  sum: xs.reduce((a, b) => a + b, 0),
  sumSquares: xs.reduce((a, b) => a + b * b, 0),
});

describe("distributions", () => {
  test("Student's t CDF and quantile match SciPy, fractional degrees of freedom included", () => {
    expect(studentTCdf(2, 10)).toBeCloseTo(0.9633059826, 8);
    expect(studentTCdf(-1.3, 3.7)).toBeCloseTo(0.1343333621, 8);
    expect(studentTQuantile(0.975, 10)).toBeCloseTo(2.228138852, 7);
    expect(studentTQuantile(0.975, 1)).toBeCloseTo(12.7062047362, 6);
    expect(studentTQuantile(0.975, 5.5)).toBeCloseTo(2.5018586176, 7);
  });

  test("the normal CDF and quantile match SciPy", () => {
    expect(normalQuantile(0.975)).toBeCloseTo(1.9599639845, 7);
    expect(normalQuantile(0.001)).toBeCloseTo(-3.0902323062, 7);
    expect(normalCdf(1.96)).toBeCloseTo(0.9750021049, 6);
    expect(normalCdf(-1.96)).toBeCloseTo(1 - 0.9750021049, 6);
  });
});

describe("intervals", () => {
  test("Wilson's interval: 50/100 and 0/10 (it stays inside [0, 1] where the normal one would not)", () => {
    const half = wilsonInterval(50, 100);
    expect(half?.low).toBeCloseTo(0.40383, 4);
    expect(half?.high).toBeCloseTo(0.59617, 4);
    const none = wilsonInterval(0, 10);
    expect(none?.low).toBe(0);
    expect(none?.high).toBeCloseTo(0.27753, 4);
    expect(wilsonInterval(0, 0)).toBeUndefined();
  });

  test("the t interval of a mean: 4.4 ± 0.5002 for ten ratings", () => {
    const ci = meanInterval(moments([4, 5, 4, 5, 5, 4, 3, 5, 4, 5]));
    expect(ci?.low).toBeCloseTo(4.4 - 0.5001817684, 6);
    expect(ci?.high).toBeCloseTo(4.4 + 0.5001817684, 6);
    expect(meanInterval(moments([3]))).toBeUndefined();
  });
});

describe("comparisons", () => {
  test("Welch's t-test matches SciPy's ttest_ind(equal_var=False), its p-value and interval", () => {
    const notSignificant = welchTest(moments([1, 2, 3, 4, 5]), moments([2, 4, 6, 8, 10]));
    expect(notSignificant?.difference).toBe(3);
    expect(notSignificant?.pValue).toBeCloseTo(0.1075311949, 6);
    expect(notSignificant?.significant).toBe(false);

    const a = moments([4, 5, 4, 5, 5, 4, 3, 5, 4, 5]);
    const b = moments([3, 2, 3, 4, 2, 3, 3, 2, 4, 3]);
    const worse = welchTest(a, b);
    expect(worse?.difference).toBeCloseTo(-1.5, 10);
    expect(worse?.pValue).toBeCloseTo(0.0001935172, 8);
    expect(worse?.interval.low).toBeCloseTo(-1.5 - 0.6754919012, 6);
    expect(worse?.interval.high).toBeCloseTo(-1.5 + 0.6754919012, 6);
    expect(worse?.significant).toBe(true);
    // At a stricter level the same difference is still significant; at 1e-4 it is not.
    expect(welchTest(a, b, 1e-4)?.significant).toBe(false);
  });

  test("Welch's test needs two samples a side; constant samples differ for certain or not at all", () => {
    expect(welchTest(moments([1]), moments([1, 2]))).toBeUndefined();
    expect(welchTest(moments([5, 5, 5]), moments([4, 4]))?.pValue).toBe(0);
    expect(welchTest(moments([5, 5, 5]), moments([5, 5]))?.pValue).toBe(1);
  });

  test("two rates: the pooled two-proportion z-test matches its closed form (30/100 against 45/100)", () => {
    const test = proportionTest({ successes: 30, n: 100 }, { successes: 45, n: 100 });
    expect(test?.difference).toBeCloseTo(0.15, 10);
    expect(test?.pValue).toBeCloseTo(0.0284597369, 5);
    expect(test?.significant).toBe(true);
    expect(proportionTest({ successes: 0, n: 0 }, { successes: 1, n: 2 })).toBeUndefined();
  });
});
