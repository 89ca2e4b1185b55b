// Hand-written SVG: a grouped horizontal bar chart of GFLOP/s per shape per engine. No dependencies.

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * @param {{ title: string, subtitle: string, engines: { name: string, color: string }[],
 *   groups: { label: string, values: ({ gflops: number, mismatch?: boolean } | { failed: string })[] }[] }} chart
 */
export function barChartSvg({ title, subtitle, engines, groups, footnote = '' }) {
  const width = 980;
  const left = 250, right = 90, bar = 15, gap = 3, groupGap = 22;
  const legendRows = (() => { let n = 1, lx = 40; for (const e of engines) { const w = 16 + e.name.length * 7 + 18; if (lx + w > width - 20 && lx > 40) { n++; lx = 40; } lx += w; } return n; })();
  const top = 92 + (legendRows - 1) * 18;
  const plotW = width - left - right;
  const groupH = engines.length * (bar + gap) - gap;
  const plotBottom = top + groups.length * (groupH + groupGap) - groupGap + 8;
  const height = plotBottom + (footnote ? 60 : 44);
  const max = Math.max(...groups.flatMap((g) => g.values.map((v) => v.gflops ?? 0)));
  const step = max > 40 ? 10 : max > 16 ? 5 : 2;
  const axisMax = Math.ceil(max / step) * step;
  const x = (g) => left + (g / axisMax) * plotW;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${width / 2}" y="28" text-anchor="middle" font-size="18" font-weight="600" fill="#111">${esc(title)}</text>`);
  out.push(`<text x="${width / 2}" y="48" text-anchor="middle" font-size="12" fill="#555">${esc(subtitle)}</text>`);
  // legend, wrapped onto as many rows as it needs
  let lx = 40, ly = 62;
  for (const e of engines) {
    const w = 16 + e.name.length * 7 + 18;
    if (lx + w > width - 20 && lx > 40) { lx = 40; ly += 18; }
    out.push(`<rect x="${lx}" y="${ly}" width="12" height="12" fill="${e.color}"/>`);
    out.push(`<text x="${lx + 16}" y="${ly + 10}" font-size="12" fill="#222">${esc(e.name)}</text>`);
    lx += w;
  }
  // grid + axis labels
  for (let g = 0; g <= axisMax; g += step) {
    out.push(`<line x1="${x(g)}" y1="${top - 6}" x2="${x(g)}" y2="${plotBottom}" stroke="${g === 0 ? '#888' : '#e4e4e4'}" stroke-width="1"/>`);
    out.push(`<text x="${x(g)}" y="${plotBottom + 15}" text-anchor="middle" font-size="11" fill="#555">${g}</text>`);
  }
  out.push(`<text x="${left + plotW / 2}" y="${plotBottom + 32}" text-anchor="middle" font-size="12" fill="#333">GFLOP/s (4·B·H·Lq·Lk·D per call; higher is better)</text>`);
  // groups
  let y = top;
  for (const group of groups) {
    const [head, ...rest] = group.label.split('\n');
    const labelTop = y + groupH / 2 - (15 + rest.length * 14) / 2 + 12;
    out.push(`<text x="${left - 10}" y="${labelTop}" text-anchor="end" font-size="13" font-weight="600" fill="#111">${esc(head)}</text>`);
    rest.forEach((line, i) => out.push(`<text x="${left - 10}" y="${labelTop + 15 + i * 14}" text-anchor="end" font-size="11" fill="${i === 1 ? '#1f4e9c' : '#555'}"${i === 1 ? ' font-weight="600"' : ''}>${esc(line)}</text>`));
    group.values.forEach((v, i) => {
      const by = y + i * (bar + gap);
      if (v.failed !== undefined) {
        out.push(`<text x="${left + 6}" y="${by + bar - 3}" font-size="11" fill="#b00">${esc(engines[i].name)}: failed</text>`);
        return;
      }
      const w = Math.max(1, x(v.gflops) - left);
      out.push(`<rect x="${left}" y="${by}" width="${w.toFixed(1)}" height="${bar}" fill="${engines[i].color}"><title>${esc(`${engines[i].name}: ${v.gflops.toFixed(1)} GFLOP/s`)}</title></rect>`);
      out.push(`<text x="${(left + w + 5).toFixed(1)}" y="${by + bar - 3}" font-size="11" fill="#222">${v.gflops.toFixed(1)}${v.mismatch ? ' (mismatch)' : ''}</text>`);
    });
    y += groupH + groupGap;
  }
  if (footnote) out.push(`<text x="${width / 2}" y="${height - 6}" text-anchor="middle" font-size="10" fill="#777">${esc(footnote)}</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
