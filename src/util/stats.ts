/**
 * The statistics an experiment report needs (issue 17 §5), from sufficient
 * statistics only (counts, sums, sums of squares), so that every worker
 * process can add its share in Redis with HINCRBY and the reader never needs
 * the samples:
 *
 *   - a rate (failures, cache hits, "correct" feedback): Wilson's score
 *     interval, which unlike the normal approximation stays inside [0, 1]
 *     and keeps its coverage for small counts and rates near 0 or 1; two
 *     rates are compared with the pooled two-proportion z-test;
 *   - a mean (rating, latency, tokens, cost): Student's t interval, and two
 *     means are compared with Welch's t-test, which does not assume the two
 *     variants have the same variance (a new prompt often changes it).
 *
 * The t distribution's CDF is the regularized incomplete beta function,
 * evaluated by its continued fraction (Lentz's method, as in Numerical
 * Recipes §6.4); the normal quantile is Acklam's rational approximation
 * (relative error below 1.2e-9). Checked against R in test/unit/stats.test.ts.
 */

/** ln Γ(x), Lanczos (g = 7, n = 9): about 15 significant digits for x > 0. */
function logGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let a = c[0] as number;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += (c[i] as number) / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** The continued fraction of the incomplete beta function (Lentz). */
function betaFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return h;
}

/** The regularized incomplete beta function I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  // The fraction converges fast only below the mean; above it, use the symmetry I_x(a,b) = 1 - I_{1-x}(b,a).
  return x < (a + 1) / (a + b + 2) ? (front * betaFraction(a, b, x)) / a : 1 - (front * betaFraction(b, a, 1 - x)) / b;
}

/** P(T ≤ t) for Student's t with `df` degrees of freedom (df may be fractional, as Welch's is). */
export function studentTCdf(t: number, df: number): number {
  if (!Number.isFinite(t)) return t > 0 ? 1 : 0;
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t > 0 ? 1 - tail : tail;
}

/** The t quantile: the t with P(T ≤ t) = p, by bisection on the CDF (monotone; 100 steps are exact to 1e-12). */
export function studentTQuantile(p: number, df: number): number {
  if (p <= 0) return Number.NEGATIVE_INFINITY;
  if (p >= 1) return Number.POSITIVE_INFINITY;
  let lo = -1e6;
  let hi = 1e6;
  for (let i = 0; i < 200 && hi - lo > 1e-12; i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** P(Z ≤ z) for the standard normal: erfc by its Chebyshev fit (Numerical Recipes' erfcc, relative error < 1.2e-7). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * x);
  const erfc =
    t *
    Math.exp(
      -x * x -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return z >= 0 ? 1 - erfc / 2 : erfc / 2;
}

/** The standard normal quantile (Acklam's approximation). */
export function normalQuantile(p: number): number {
  if (p <= 0) return Number.NEGATIVE_INFINITY;
  if (p >= 1) return Number.POSITIVE_INFINITY;
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239,
  ];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const poly = (k: number[], x: number) => k.reduce((acc, v) => acc * x + v, 0);
  const low = 0.02425;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return poly(c, q) / (poly(d, q) * q + 1);
  }
  if (p > 1 - low) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return (poly(a, r) * q) / (poly(b, r) * r + 1);
}

export interface Interval {
  low: number;
  high: number;
}

/** Wilson's score interval of a rate `successes / n` at confidence 1 - alpha; undefined with no trials. */
export function wilsonInterval(successes: number, n: number, alpha = 0.05): Interval | undefined {
  if (n <= 0) return undefined;
  const z = normalQuantile(1 - alpha / 2);
  const p = successes / n;
  const z2n = (z * z) / n;
  const centre = (p + z2n / 2) / (1 + z2n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2n / (4 * n))) / (1 + z2n);
  return { low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

/** A sample summarised by its count, sum and sum of squares. */
export interface Moments {
  n: number;
  sum: number;
  sumSquares: number;
}

export function meanOf(m: Moments): number | undefined {
  return m.n > 0 ? m.sum / m.n : undefined;
}

/** The unbiased sample variance; undefined below two samples. Clamped at 0 against rounding. */
export function varianceOf(m: Moments): number | undefined {
  if (m.n < 2) return undefined;
  return Math.max(0, (m.sumSquares - (m.sum * m.sum) / m.n) / (m.n - 1));
}

/** Student's t interval of the mean at confidence 1 - alpha; undefined below two samples. */
export function meanInterval(m: Moments, alpha = 0.05): Interval | undefined {
  const variance = varianceOf(m);
  const mean = meanOf(m);
  if (variance === undefined || mean === undefined) return undefined;
  const half = studentTQuantile(1 - alpha / 2, m.n - 1) * Math.sqrt(variance / m.n);
  return { low: mean - half, high: mean + half };
}

export interface Comparison {
  /** b's estimate minus a's. */
  difference: number;
  /** The interval of the difference at confidence 1 - alpha. */
  interval: Interval;
  /** Two-sided p-value of "no difference". */
  pValue: number;
  significant: boolean;
}

/**
 * Welch's t-test of mean(b) - mean(a); undefined when either side has fewer
 * than two samples. Two samples with no variance at all and different means
 * differ for certain (p = 0); with the same mean, not at all (p = 1).
 */
export function welchTest(a: Moments, b: Moments, alpha = 0.05): Comparison | undefined {
  const va = varianceOf(a);
  const vb = varianceOf(b);
  const ma = meanOf(a);
  const mb = meanOf(b);
  if (va === undefined || vb === undefined || ma === undefined || mb === undefined) return undefined;
  const difference = mb - ma;
  const sa = va / a.n;
  const sb = vb / b.n;
  const se = Math.sqrt(sa + sb);
  if (se === 0) {
    const pValue = difference === 0 ? 1 : 0;
    return { difference, interval: { low: difference, high: difference }, pValue, significant: pValue < alpha };
  }
  // Welch–Satterthwaite degrees of freedom.
  const df = (sa + sb) ** 2 / (sa ** 2 / (a.n - 1) + sb ** 2 / (b.n - 1));
  const t = difference / se;
  const pValue = Math.min(1, 2 * (1 - studentTCdf(Math.abs(t), df)));
  const half = studentTQuantile(1 - alpha / 2, df) * se;
  return {
    difference,
    interval: { low: difference - half, high: difference + half },
    pValue,
    significant: pValue < alpha,
  };
}

/**
 * The two-proportion z-test of rate(b) - rate(a) (pooled standard error for
 * the test, unpooled for the interval); undefined when either side has no
 * trials.
 */
export function proportionTest(
  a: { successes: number; n: number },
  b: { successes: number; n: number },
  alpha = 0.05,
): Comparison | undefined {
  if (a.n <= 0 || b.n <= 0) return undefined;
  const pa = a.successes / a.n;
  const pb = b.successes / b.n;
  const difference = pb - pa;
  const pooled = (a.successes + b.successes) / (a.n + b.n);
  const sePooled = Math.sqrt(pooled * (1 - pooled) * (1 / a.n + 1 / b.n));
  const pValue =
    sePooled === 0 ? (difference === 0 ? 1 : 0) : Math.min(1, 2 * (1 - normalCdf(Math.abs(difference / sePooled))));
  const se = Math.sqrt((pa * (1 - pa)) / a.n + (pb * (1 - pb)) / b.n);
  const half = normalQuantile(1 - alpha / 2) * se;
  return {
    difference,
    interval: { low: difference - half, high: difference + half },
    pValue,
    significant: pValue < alpha,
  };
}
