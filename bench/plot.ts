/**
 * Quality against time per method, as an SVG scatter plot written by the project itself
 * (no plotting library: the figure is a handful of points, axes and labels).
 */
export interface PlotPoint { label: string; ms: number; sad: number }

export function qualityTimePlot(points: PlotPoint[], title: string): string {
  const W = 720, H = 420, L = 70, R = 200, T = 40, B = 55;
  const maxSad = Math.max(...points.map((p) => p.sad)) * 1.1;
  const logMin = Math.floor(Math.log10(Math.max(1, Math.min(...points.map((p) => p.ms))))), logMax = Math.ceil(Math.log10(Math.max(...points.map((p) => p.ms))));
  const x = (ms: number) => L + ((Math.log10(Math.max(1, ms)) - logMin) / Math.max(1, logMax - logMin)) * (W - L - R);
  const y = (sad: number) => T + (1 - sad / maxSad) * (H - T - B);
  const colours = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#17becf'];
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="22" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/>`,
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`,
    `<text x="${(L + W - R) / 2}" y="${H - 15}" text-anchor="middle">milliseconds per image (log scale)</text>`,
    `<text x="18" y="${(T + H - B) / 2}" transform="rotate(-90 18 ${(T + H - B) / 2})" text-anchor="middle">SAD over the unknown region (lower is better)</text>`,
  ];
  for (let e = logMin; e <= logMax; e++) {
    parts.push(`<line x1="${x(10 ** e)}" y1="${H - B}" x2="${x(10 ** e)}" y2="${H - B + 5}" stroke="black"/><text x="${x(10 ** e)}" y="${H - B + 18}" text-anchor="middle">${10 ** e}</text>`);
  }
  for (let k = 0; k <= 5; k++) {
    const v = (maxSad * k) / 5;
    parts.push(`<line x1="${L - 5}" y1="${y(v)}" x2="${L}" y2="${y(v)}" stroke="black"/><text x="${L - 8}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(1)}</text>`);
  }
  points.forEach((p, i) => {
    const c = colours[i % colours.length]!;
    parts.push(`<circle cx="${x(p.ms)}" cy="${y(p.sad)}" r="6" fill="${c}"/>`);
    parts.push(`<circle cx="${W - R + 20}" cy="${T + 10 + i * 22}" r="6" fill="${c}"/><text x="${W - R + 32}" y="${T + 14 + i * 22}">${esc(p.label)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
