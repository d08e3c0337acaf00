import { describe, expect, it } from 'vitest';
import type { MoveVerdict } from '../../../src/core/tiers.ts';
import {
  buildReport,
  type DrillMove,
  drillFailover,
  escapeHtml,
  escapeMarkdown,
  p95,
  renderHtml,
  renderJson,
  renderMarkdown,
  summarize,
} from '../../../src/drills/report/index.ts';
import { FO_ID, failoverFixture } from '../api/failover-fixture.ts';
import { syntheticReport, T0, tiers } from './fixture.ts';

const verdict = (status: MoveVerdict['status'], mechanism: DrillMove['mechanism'], outageMs: number | null) =>
  ({
    status,
    tier: 'frontend',
    mechanism,
    limitMs: mechanism === 'live-migration' ? 2000 : null,
    outageMs,
    reason: 'r',
  }) satisfies MoveVerdict;

const move = (index: number, o: Partial<DrillMove> & Pick<DrillMove, 'verdict'>): DrillMove => ({
  index,
  vm: 'web1',
  mechanism: 'live-migration',
  from: 'h1',
  to: 'h2',
  startedMs: 0,
  endedMs: 1000,
  totalMs: 1000,
  libvirtDowntimeMs: null,
  probe: null,
  sessionSurvived: null,
  ...o,
});

const probe = (sent: number, lost: number, rtt: [number, number, number] | null, outageMs: number) => ({
  sent,
  lost,
  lossRate: lost / sent,
  rttMinMs: rtt?.[0] ?? null,
  rttAvgMs: rtt?.[1] ?? null,
  rttMaxMs: rtt?.[2] ?? null,
  outageMs,
  outageStartMs: outageMs ? 100 : null,
  outageEndMs: outageMs ? 100 + outageMs : null,
});

describe('summarize', () => {
  it("aggregates the studies' columns per mechanism and fails the drill on one failed move", () => {
    const moves = [
      move(1, {
        probe: probe(100, 10, [0.5, 1, 4], 200),
        libvirtDowntimeMs: 150,
        sessionSurvived: true,
        verdict: verdict('pass', 'live-migration', 200),
      }),
      move(2, {
        probe: probe(300, 30, [0.4, 2, 9], 2500),
        libvirtDowntimeMs: 900,
        sessionSurvived: false,
        verdict: verdict('fail', 'live-migration', 2500),
      }),
      move(3, { mechanism: 'failover', probe: null, verdict: verdict('no-objective', 'failover', null) }),
    ];
    const s = summarize(moves, tiers);
    expect(s.mechanisms).toHaveLength(2);
    const lm = s.mechanisms[0]!;
    expect(lm).toMatchObject({
      mechanism: 'live-migration',
      moves: 2,
      measured: 2,
      sent: 400,
      lost: 40,
      lossRate: 0.1,
      rttMinMs: 0.4,
      rttMaxMs: 9,
      outageMaxMs: 2500,
      outageP95Ms: 2500,
      libvirtDowntimeMaxMs: 900,
      objectiveMs: 2000,
      pass: 1,
      fail: 1,
      notJudged: 0,
      sessionsChecked: 2,
      sessionsSurvived: 1,
    });
    // Weighted by answered pings: (1 * 90 + 2 * 270) / 360.
    expect(lm.rttAvgMs).toBeCloseTo(1.75, 12);
    expect(s.mechanisms[1]).toMatchObject({
      mechanism: 'failover',
      measured: 0,
      sent: 0,
      lossRate: null,
      rttAvgMs: null,
      outageMaxMs: null,
      objectiveMs: 60000,
      notJudged: 1,
    });
    expect(s.overall).toMatchObject({ status: 'fail', moves: 3, pass: 1, fail: 1, notJudged: 1 });
    expect(s.overall.reason).toBe(
      '1 of 3 moves exceeded the objective: #2 (live-migration, outage 2,500 ms over 2,000 ms). ' +
        '1 of 3 moves could not be judged: #3 (no objective for failover).',
    );
  });

  it('passes only when every move passed, and not with no moves', () => {
    expect(
      summarize([move(1, { verdict: verdict('pass', 'live-migration', 5) })], tiers).overall,
    ).toMatchObject({
      status: 'pass',
      reason: "The move stayed within its tier's outage objective.",
    });
    expect(summarize([], tiers).overall).toMatchObject({
      status: 'fail',
      reason: 'The drill made no moves, so there is nothing to judge.',
    });
  });

  it('takes the 95th percentile by nearest rank', () => {
    expect(p95([])).toBeNull();
    expect(p95([7])).toBe(7);
    expect(p95(Array.from({ length: 20 }, (_, i) => i + 1))).toBe(19);
    expect(p95(Array.from({ length: 100 }, (_, i) => 100 - i))).toBe(95);
  });
});

describe('buildReport', () => {
  it("judges each move against the tier's objective from the probe's outage", () => {
    const r = syntheticReport({ moves: 20 });
    expect(r.moves).toHaveLength(20);
    expect(r.tier).toEqual({ id: 'core', label: 'core systems', labelJa: '基幹系' });
    expect(r.moves[6]!.verdict).toMatchObject({ status: 'fail', limitMs: 2000 });
    expect(r.moves[19]!.verdict).toMatchObject({
      status: 'pass',
      mechanism: 'cross-site-live-migration',
      limitMs: 30000,
    });
    expect(r.summary.overall).toMatchObject({ status: 'fail', pass: 19, fail: 1 });
    expect(r.summary.mechanisms.map((m) => m.mechanism)).toEqual([
      'live-migration',
      'drs',
      'cross-site-live-migration',
    ]);
  });

  it('refuses a tier the policy lacks', () => {
    expect(() =>
      buildReport(
        {
          id: 'x',
          scenario: 'burst',
          startedAt: 0,
          endedAt: 1,
          vms: [],
          tier: 'gold',
          parameters: {},
          moves: [],
          rtt: [],
          outages: [],
        },
        tiers,
      ),
    ).toThrow('tier "gold" is not defined in the tiers policy');
  });
});

describe('escaping', () => {
  it('escapes HTML and Markdown', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
    expect(escapeMarkdown('a|b *c* [d](e) `f` <g>\nh')).toBe('a\\|b \\*c\\* \\[d\\](e) \\`f\\` &lt;g&gt; h');
  });
});

const hostile = '<script>alert("x")</script>|*web*';

describe('renderMarkdown', () => {
  const r = syntheticReport({ moves: 3 });
  const md = renderMarkdown(r);

  it("has the studies' table with Japanese and English headings and the figures", () => {
    expect(md).toContain('# Drill report: live-migration, web1 — PASS');
    for (const h of [
      '実施回数 pings sent',
      '失敗回数 lost',
      '失敗率 loss rate',
      '通信断 最大 outage max (ms)',
      '通信断 p95 outage p95 (ms)',
    ])
      expect(md).toContain(h);
    const lm = r.summary.mechanisms[0]!;
    const row = md.split('\n').find((l) => l.startsWith('| live-migration | 2 |'))!;
    expect(row).toContain(`| ${lm.sent.toLocaleString('en-US')} | ${lm.lost} |`);
    expect(row).toContain(`| ${((lm.lost / lm.sent) * 100).toFixed(2)} % |`);
    expect(row).toContain(`| ${Math.round(lm.outageMaxMs!)} |`);
    expect(md).toContain('| Started | 2026-02-03 10:00:00.000 +09:00 (Asia/Tokyo) |');
    expect(md).toMatch(/^1\. Outage \d+ ms is within the 2,000 ms allowed for live-migration in tier core/m);
  });

  it('escapes a VM name', () => {
    const out = renderMarkdown(syntheticReport({ moves: 2, vm: hostile }));
    expect(out).not.toContain('<script>');
    expect(out).toContain('&lt;script&gt;alert("x")&lt;/script&gt;\\|\\*web\\*');
  });

  it('shows times in the zone asked for', () => {
    expect(renderMarkdown(r, { timeZone: 'UTC' })).toContain(
      '| Started | 2026-02-03 01:00:00.000 +00:00 (UTC) |',
    );
  });
});

describe('renderJson', () => {
  it('is the model with its format, and parses back', () => {
    const r = syntheticReport({ moves: 2 });
    const parsed = JSON.parse(renderJson(r));
    expect(parsed.format).toBe('keizoku-drill-report/1');
    expect(parsed.moves).toEqual(r.moves);
    expect(parsed.summary).toEqual(r.summary);
    expect(parsed.startedAt).toBe(T0);
  });
});

describe('renderHtml', () => {
  const r = syntheticReport({ moves: 20, vm: hostile });
  const html = renderHtml(r);

  it('is self-contained: no URL but an SVG namespace, no script, inline CSS', () => {
    const urls = html.match(/https?:\/\/[^\s"'<>]*/g) ?? [];
    expect(urls.filter((u) => !u.startsWith('http://www.w3.org/2000/svg'))).toEqual([]);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<link\b|\bsrc=|@import|url\(/i);
    expect(html).toContain('<style>');
  });

  it('escapes a <script> in the VM name', () => {
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;|*web*');
  });

  it('has the badge, both languages of headings, the moves and an SVG timeline', () => {
    expect(html).toContain('<span class="badge fail">FAIL</span>');
    for (const h of [
      '実施回数',
      'pings sent',
      '失敗回数',
      '失敗率',
      'loss rate',
      '通信断',
      'outage p95 (ms)',
    ])
      expect(html).toContain(h);
    expect(html.match(/<svg\b/g)).toHaveLength(1);
    expect(html).toContain('RTT (ms)');
    expect(html).toMatch(/>\d+ s<\/text>/);
    for (let i = 1; i <= 20; i++) expect(html).toContain(`>#${i}<title>`);
    expect(html.match(/class="outage"/g)!.length).toBeGreaterThan(20);
    expect(html.match(/class="lost"/g)!.length).toBeGreaterThan(20);
    expect(html).toContain('Outage 2,30');
  });

  it('draws thousands of probes as at most two points per pixel column', () => {
    const big = syntheticReport({ moves: 20, intervalMs: 2 });
    expect(big.rtt.length).toBeGreaterThan(50_000);
    const path = renderHtml(big).match(/<path d="([^"]*)" class="rtt"/)![1]!;
    expect(path.split(/[ML]/).length).toBeLessThan(2 * 2 * 1200);
  });

  it('renders a drill with no moves and no samples', () => {
    const empty = buildReport(
      {
        id: 'd0',
        scenario: 'host-failure',
        startedAt: T0,
        endedAt: T0 + 1000,
        vms: ['a', 'b'],
        tier: 'low',
        parameters: {},
        moves: [],
        rtt: [],
        outages: [],
      },
      tiers,
    );
    const out = renderHtml(empty);
    expect(out).toContain('no probe samples');
    expect(out).toContain('No moves.');
    expect(renderMarkdown(empty)).toContain('No moves.');
  });
});

describe('the failover of a host-failure drill', () => {
  const f = drillFailover(failoverFixture());
  const r = { ...syntheticReport({ moves: 1 }), scenario: 'host-failure' as const, failover: f };

  it('lists every VM restarted, higher priority first, with its RTO and outage', () => {
    expect(f.vms.map((v) => [v.vm, v.priority, v.status, v.rtoMs, v.outageMs])).toEqual([
      ['web1', 20, 'answering', 9_600, 9_300],
      ['vm1', 10, 'answering', 10_200, 9_900],
    ]);
    const md = renderMarkdown(r, { timeZone: 'UTC' });
    expect(md).toContain('## Failover of h1');
    expect(md).toContain(
      `Failover ${FO_ID.replace(/_/g, '\\_')} (done): RTO from the host last seen up at 14:00:00.000`,
    );
    expect(md).toContain('| web1 | 20 | frontend | h2 | answering | 14:00:09.600 | 9,600 | 9,300 |');
    expect(md).toContain('| vm1 | 10 | frontend | h2 | answering | 14:00:10.200 | 10,200 | 9,900 |');
    const html = renderHtml(r, { timeZone: 'UTC' });
    expect(html).toContain('<h2>Failover of h1');
    expect(html).toMatch(
      /<td class="nowrap">web1<\/td><td class="n">20<\/td>.*<td class="n">9,600<\/td><td class="n">9,300<\/td>/,
    );
    expect(JSON.parse(renderJson(r)).failover.vms).toHaveLength(2);
  });

  it('a live-migration report has no failover section', () => {
    const plain = syntheticReport({ moves: 1 });
    expect(renderMarkdown(plain)).not.toContain('## Failover');
    expect(renderHtml(plain)).not.toContain('Failover of');
  });
});
