/** Renders bench/results.json as an SVG bar chart of the side-by-side ratios and counts (docs/performance.svg). */

interface Results {
  readonly date: string;
  readonly machine: { readonly node: string; readonly cpus: number; readonly cpu: string };
  readonly results: readonly {
    readonly id: string;
    readonly title: string;
    readonly figures: Record<string, number | string>;
  }[];
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** One bar group per comparison: our figure against the peer's or the ideal (lower is better). */
export function renderChart(data: Results): string {
  const get = (id: string, key: string) => {
    const v = data.results.find((r) => r.id === id)?.figures[key];
    return typeof v === 'number' ? v : undefined;
  };
  const groups: {
    label: string;
    bars: { name: string; value: number | undefined; ours: boolean }[];
    unit: string;
  }[] = [
    {
      label: '1. Hot path, µs per call',
      unit: 'µs',
      bars: [
        { name: 'oauth-mailbox', value: inverse(get('1', 'oauth-mailbox calls/s')), ours: true },
        { name: 'google-auth-library', value: inverse(get('1', 'google-auth-library calls/s')), ours: false },
      ],
    },
    {
      label: '3. Token requests for 1,000 concurrent callers',
      unit: '',
      bars: [
        { name: 'oauth-mailbox', value: get('3', 'oauth-mailbox token requests'), ours: true },
        { name: 'google-auth-library', value: get('3', 'google-auth-library token requests'), ours: false },
        { name: 'nodemailer XOAuth2', value: get('3', 'nodemailer XOAuth2 token requests'), ours: false },
      ],
    },
    {
      label: '4. invalid_grant, 8 processes × 200 accounts',
      unit: '',
      bars: [
        { name: 'oauth-mailbox (PostgreSQL)', value: get('4', 'postgres invalid_grant'), ours: true },
        { name: 'oauth-mailbox (Redis)', value: get('4', 'redis invalid_grant'), ours: true },
        { name: 'google-auth-library', value: get('4', 'google-auth-library invalid_grant'), ours: false },
      ],
    },
    {
      label: '5. Bulk refresh wall time, ms',
      unit: 'ms',
      bars: [
        { name: 'oauth-mailbox', value: get('5', 'wall ms'), ours: true },
        { name: 'ideal', value: get('5', 'ideal ms'), ours: false },
      ],
    },
    {
      label: '6. Encrypt + decrypt, µs',
      unit: 'µs',
      bars: [
        { name: 'oauth-mailbox', value: get('6', 'oauth-mailbox mean µs'), ours: true },
        { name: 'raw node:crypto', value: get('6', 'raw node:crypto mean µs'), ours: false },
      ],
    },
    {
      label: '7. IMAP connect + logout, ms',
      unit: 'ms',
      bars: [
        { name: 'connectImap', value: get('7', 'connectImap median ms'), ours: true },
        { name: 'raw imapflow', value: get('7', 'raw imapflow median ms'), ours: false },
      ],
    },
    {
      label: '7. RSS per idle IMAP watcher, KB',
      unit: 'KB',
      bars: [
        { name: 'oauth-mailbox watch()', value: get('7', 'RSS per idle watcher KB'), ours: true },
        {
          name: 'raw imapflow IDLE',
          value: get('7', 'raw imapflow RSS per idle connection KB'),
          ours: false,
        },
      ],
    },
    ...(['10k', '50k'] as const).map((size) => ({
      label: `9. Bulk refresh of ${size} accounts, ms (floor: provider.refresh alone)`,
      unit: 'ms',
      bars: [
        ...(['memory', 'PGlite', 'PostgreSQL', 'Redis'] as const).map((engine) => ({
          name: engine,
          value: get(`9-${engine}`, `bulk ms @${size}`),
          ours: true,
        })),
        {
          name: 'floor',
          value: ((m, r) => (m === undefined || r === undefined ? undefined : m / r))(
            get('9-memory', `bulk ms @${size}`),
            get('9-memory', `bulk / floor @${size}`),
          ),
          ours: false,
        },
      ],
    })),
    ...(['walk', 'health'] as const).map((what) => ({
      label: `9. ${what === 'walk' ? 'Full walk' : 'health()'} at 10k / 50k / 100k accounts, ms`,
      unit: 'ms',
      bars: (['memory', 'PGlite', 'PostgreSQL', 'Redis'] as const).flatMap((engine) =>
        (['10k', '50k', '100k'] as const)
          .map((size) => ({
            name: `${engine} @${size}`,
            value: get(`9-${engine}`, `${what} ms @${size}`),
            ours: true,
          }))
          .filter((bar) => bar.value !== undefined),
      ),
    })),
  ];
  const width = 760;
  const barHeight = 18;
  const labelWidth = 220;
  let y = 50;
  const parts: string[] = [];
  for (const group of groups) {
    parts.push(`<text x="10" y="${y}" font-weight="bold">${esc(group.label)}</text>`);
    y += 8;
    const max = Math.max(1e-9, ...group.bars.map((b) => b.value ?? 0));
    for (const bar of group.bars) {
      const w = bar.value === undefined ? 0 : Math.max(1, ((width - labelWidth - 120) * bar.value) / max);
      parts.push(
        `<text x="20" y="${y + 13}">${esc(bar.name)}</text>`,
        `<rect x="${labelWidth}" y="${y}" width="${w.toFixed(1)}" height="${barHeight - 4}" fill="${bar.ours ? '#2f6fde' : '#9aa4b2'}"/>`,
        `<text x="${labelWidth + w + 6}" y="${y + 13}">${bar.value === undefined ? 'n/a' : format(bar.value)}${group.unit ? ` ${group.unit}` : ''}</text>`,
      );
      y += barHeight;
    }
    y += 22;
  }
  const title = `oauth-mailbox benchmarks, ${data.date.slice(0, 10)}, Node ${data.machine.node}, ${data.machine.cpus} × ${data.machine.cpu}`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" font-family="sans-serif" font-size="12" role="img">
<title>${esc(title)}</title>
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="24" font-size="14" font-weight="bold">${esc(title)}</text>
${parts.join('\n')}
</svg>
`;
}

function inverse(callsPerSecond: number | undefined): number | undefined {
  return callsPerSecond === undefined || callsPerSecond === 0 ? undefined : 1e6 / callsPerSecond;
}

function format(n: number): string {
  if (Number.isInteger(n)) return String(n);
  return n >= 100 ? String(Math.round(n)) : n >= 1 ? n.toFixed(2) : n.toFixed(3);
}
