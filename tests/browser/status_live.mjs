// Headless Chromium on Floe's status page: once the mount's card is shown
// it prints "READY"; the test then changes the title, and this waits for
// the card to show it, stays 11 s more, and prints one JSON line.
// Usage: node status_live.mjs PAGE_URL MOUNT TITLE
import { launchChromium } from './chromium.mjs';

const [pageUrl, mount, title] = process.argv.slice(2);
const browser = await launchChromium();
const result = { errors: [] };
try {
  const page = await (await browser.newContext()).newPage();
  page.on('pageerror', (e) => result.errors.push(String(e)));
  await page.goto(pageUrl, { timeout: 15000 });
  const shown = page.locator(`[data-mount="${mount}"] .now-playing dd`);
  await page.locator(`[data-mount="${mount}"]`).waitFor({ timeout: 15000 });
  // Give the event feed a moment to connect before the change is made.
  await page.locator('html[data-live="1"]').waitFor({ state: 'attached', timeout: 15000 });
  console.log('READY');
  const asked = Date.now();
  await page.waitForFunction(([sel, t]) => {
    const dd = document.querySelector(sel);
    return dd && dd.textContent === t;
  }, [`[data-mount="${mount}"] .now-playing dd`, title], { timeout: 15000 });
  result.seconds = (Date.now() - asked) / 1000;
  result.shown = await shown.textContent();
  await page.waitForTimeout(11000);
} catch (e) {
  result.exception = String(e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
