// Play a stream in headless Chromium's <audio> element for a while and
// report every sign of an underrun: `waiting` events (playback stopped for
// want of data), `stalled` events, errors, and how far the playhead fell
// behind the wall clock. For the long playback drill (scripts/playback-drill).
// Usage: node listen.mjs STREAM_URL SECONDS
// Prints one JSON line; exits 0 only when it played through without a stop.
import { report } from './chromium.mjs';

const [url, seconds] = [process.argv[2], Number(process.argv[3] || 60)];

await report(async (browser) => {
  const page = await browser.newPage();
  await page.setContent('<audio id="a" preload="auto"></audio>');
  await page.evaluate((src) => {
    const a = document.getElementById('a');
    window.drill = { waiting: 0, stalled: 0, errors: [], playing: null, stops: [] };
    a.addEventListener('playing', () => {
      if (window.drill.playing === null) window.drill.playing = performance.now();
    });
    // A stop after playback began is what a listener hears as a dropout.
    a.addEventListener('waiting', () => {
      if (window.drill.playing !== null) {
        window.drill.waiting += 1;
        window.drill.stops.push(Math.round((performance.now() - window.drill.playing) / 1000));
      }
    });
    a.addEventListener('stalled', () => { window.drill.stalled += 1; });
    a.addEventListener('error', () => { window.drill.errors.push(a.error ? a.error.code : 'unknown'); });
    a.muted = true;
    a.src = src;
    return a.play();
  }, url);
  const started = Date.now();
  let worst_lag = 0;
  while (Date.now() - started < seconds * 1000) {
    await page.waitForTimeout(1000);
    const s = await page.evaluate(() => {
      const a = document.getElementById('a');
      const since = window.drill.playing === null ? 0 : (performance.now() - window.drill.playing) / 1000;
      return { currentTime: a.currentTime, since };
    });
    // The playhead against the wall clock since playback began (it may
    // start ahead, inside the burst): a growing lag is time spent stopped.
    worst_lag = Math.max(worst_lag, s.since - s.currentTime);
  }
  const drill = await page.evaluate(() => window.drill);
  const currentTime = await page.evaluate(() => document.getElementById('a').currentTime);
  return {
    ok: drill.playing !== null && drill.waiting === 0 && drill.errors.length === 0 && worst_lag < 1.0,
    played_s: Math.round(currentTime),
    waiting: drill.waiting,
    stalled: drill.stalled,
    stops_at_s: drill.stops,
    errors: drill.errors,
    worst_lag_s: Math.round(worst_lag * 100) / 100,
  };
});
