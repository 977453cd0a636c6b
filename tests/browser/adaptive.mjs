// Play a mount over HLS (hls.js, low-latency mode) or DASH (dash.js) from
// Floe's status page in headless Chromium, and report what the page's
// player shows. Prints "PLAYING" once playback has advanced two seconds
// (so a test can change the title or restart the source then), and one
// JSON line at the end.
//
//   node adaptive.mjs PAGE_URL MOUNT hls|dash SECONDS [SCENARIO]
//
// SCENARIO: "play" (default): play for SECONDS (the report's recentRate is
//           media seconds played per wall second at the end);
//   "seek": play, then press "−30 s" and check playback goes on 30 s back,
//           then "Live" and check it is near the live edge again;
//   "throttle": play SECONDS of media (within 30 s), then throttle the
//           network (DevTools emulation) until the player switches to a
//           lower variant, then lift it until it switches back up.
import { launchChromium } from './chromium.mjs';

const [pageUrl, mount, mode, secondsArg, scenario = 'play'] = process.argv.slice(2);
const seconds = Number(secondsArg || 12);
// Start-up (30 s at most), the throttle scenario's media wait (30 s), its
// wait for the variant's name (15 s at most, usually none) and its two
// variant switches (45 s each) fit; the test kills this at SECONDS + 170.
const deadline = Date.now() + (seconds + 160) * 1000;

const browser = await launchChromium();
const result = { ok: false, mode, scenario, samples: [], errors: [] };
let announced = false;
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (e) => result.errors.push(String(e)));
  await page.goto(pageUrl, { timeout: 15000 });
  const card = page.locator(`[data-mount="${mount}"]`);
  await card.locator(`button[data-mode="${mode}"]`).click({ timeout: 15000 });
  await card.locator('audio').evaluate((a) => { a.muted = true; });
  const sample = async () => {
    const s = await card.evaluate((c) => {
      const a = c.querySelector('audio');
      return {
        t: a.currentTime, paused: a.paused, error: a.error ? a.error.code : null,
        variant: c.getAttribute('data-variant') || '', latency: Number(c.getAttribute('data-latency') || 'NaN'),
        title: c.getAttribute('data-stream-title') || '',
        seekStart: a.seekable.length ? a.seekable.start(0) : null,
        seekEnd: a.seekable.length ? a.seekable.end(a.seekable.length - 1) : null,
      };
    });
    s.at = Date.now();
    result.samples.push(s);
    const first = result.samples.find((x) => x.t > 0);
    if (!announced && first && s.t - first.t > 2) {
      announced = true;
      console.log('PLAYING');
    }
    return s;
  };
  const playFor = async (ms) => {
    const until = Date.now() + ms;
    while (Date.now() < until && Date.now() < deadline) {
      await sample();
      await page.waitForTimeout(500);
    }
    return sample();
  };
  // Start-up time varies with the machine's load: SECONDS count from the
  // moment playback starts (within 30 s).
  const startBy = Date.now() + 30000;
  while (!((await sample()).t > 0) && Date.now() < startBy) {
    await page.waitForTimeout(250);
  }
  // Throttling needs only a player that plays: SECONDS of media (within
  // 30 s), not SECONDS of wall time, so a start-up stall on a loaded
  // machine is waited out rather than failed.
  const playMedia = async (s, until) => {
    const begun = result.samples.find((x) => x.t > 0);
    let now = await sample();
    while (begun && now.t - begun.t < s && Date.now() < until && Date.now() < deadline) {
      await page.waitForTimeout(500);
      now = await sample();
    }
    return now;
  };
  const first = scenario === 'throttle'
    ? await playMedia(seconds, Date.now() + 30000)
    : await playFor(seconds * 1000);
  const start = result.samples.find((s) => s.t > 0) || first;
  result.played = first.t - start.t;
  result.latency = first.latency;
  // The player's own live-latency estimate once settled (after 5 s of play).
  const settled = result.samples
    .filter((s) => s.t - start.t > 5 && Number.isFinite(s.latency))
    .map((s) => s.latency)
    .sort((a, b) => a - b);
  const rank = (q) => settled.length ? settled[Math.min(settled.length - 1, Math.ceil(settled.length * q) - 1)] : null;
  result.latencyMedian = rank(0.5);
  result.latencyP90 = rank(0.9);
  result.variant = first.variant;
  result.title = first.title;
  // Media seconds played per wall second over the last five seconds: a
  // player that stalled earlier (a source reconnect) but plays on shows ~1.
  const recent = result.samples.filter((s) => s.at >= first.at - 5000);
  const span = (first.at - recent[0].at) / 1000;
  result.recentRate = span > 0 ? (first.t - recent[0].t) / span : 0;
  result.ok = result.played > seconds - 4 && Number.isFinite(first.latency);
  if (scenario === 'seek') {
    const before = await sample();
    await card.locator('button.back').click();
    await page.waitForTimeout(3000);
    const after = await playFor(4000);
    result.seekedBack = before.latency === before.latency ? after.latency - before.latency : null;
    result.playedAfterSeek = after.t - (before.t - 30);
    await card.locator('button.golive').click();
    const live = await playFor(4000);
    result.backToLive = live.latency;
    result.ok = result.ok && result.seekedBack > 20 && live.latency < 6 && !live.paused;
  }
  if (scenario === 'throttle') {
    const cdp = await context.newCDPSession(page);
    // The page names the variant once the player reports it, which a busy
    // machine can make come after the media wait: a switch is only a
    // switch from a known variant.
    let start = result.variant;
    const known = Date.now() + 15000;
    while (!start && Date.now() < known && Date.now() < deadline) {
      await page.waitForTimeout(500);
      start = (await sample()).variant;
    }
    result.startVariant = start;
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 20, downloadThroughput: 12000, uploadThroughput: 12000 });
    let down = null;
    const downUntil = Date.now() + 45000;
    while (Date.now() < downUntil && Date.now() < deadline) {
      const s = await sample();
      if (start && s.variant && s.variant !== start) { down = s.variant; break; }
      await page.waitForTimeout(500);
    }
    result.downVariant = down;
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    let up = null;
    const upUntil = Date.now() + 45000;
    while (Date.now() < upUntil && Date.now() < deadline) {
      const s = await sample();
      if (down && s.variant && s.variant !== down) { up = s.variant; break; }
      await page.waitForTimeout(500);
    }
    result.upVariant = up;
    result.ok = result.ok && !!down && !!up;
  }
} catch (e) {
  result.exception = String(e);
} finally {
  await browser.close();
}
result.samples = result.samples.slice(-6);
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
