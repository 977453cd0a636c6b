// Open Floe's status page in headless Chromium, press play on a mount's
// <audio> element and report whether playback advanced.
// Usage: node play.mjs http://127.0.0.1:PORT/ /live.mp3
// Prints one JSON line; exits 0 only when currentTime advanced past 1 s.
import { report } from './chromium.mjs';

const [page_url, mount] = process.argv.slice(2);
const deadline = Date.now() + 30000;

await report(async (browser) => {
  const page = await browser.newPage();
  await page.goto(page_url, { timeout: 15000 });
  const audio = page.locator(`[data-mount="${mount}"] audio.player`);
  await audio.waitFor({ timeout: 15000 });
  await audio.evaluate((el) => { el.muted = true; return el.play(); });
  let state = {};
  while (Date.now() < deadline) {
    state = await audio.evaluate((el) => ({
      currentTime: el.currentTime, paused: el.paused, readyState: el.readyState,
      error: el.error ? el.error.code : null, src: el.currentSrc,
    }));
    if (state.currentTime > 1.0) break;
    await page.waitForTimeout(200);
  }
  return { ok: state.currentTime > 1.0, ...state };
});
