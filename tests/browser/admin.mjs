// Headless Chromium as the admin on Floe's admin page: it loads without
// console errors, shows the mount, kicks the one listener and sets a title
// through the page's own buttons. Prints one JSON line.
// Usage: node admin.mjs ADMIN_URL MOUNT TITLE
import { launchChromium } from './chromium.mjs';

const [adminUrl, mount, title] = process.argv.slice(2);
const browser = await launchChromium();
const result = { errors: [] };
try {
  const context = await browser.newContext({ httpCredentials: { username: 'admin', password: 'hackme' } });
  const page = await context.newPage();
  page.on('pageerror', (e) => result.errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') result.errors.push(m.text()); });
  const response = await page.goto(adminUrl, { timeout: 15000 });
  result.status = response.status();
  await page.waitForSelector('body[data-ready="1"]', { timeout: 15000 });
  const card = page.locator(`section[data-mount="${mount}"]`);
  await card.waitFor({ timeout: 15000 });
  result.listenersShown = await card.locator('.fact-listeners').textContent();

  await card.locator('button.show-listeners').click();
  const kick = card.locator('table.listeners button.kick').first();
  await kick.waitFor({ timeout: 15000 });
  result.rowsBefore = await card.locator('table.listeners tr[data-id]').count();
  result.bytesShown = await card.locator('table.listeners td.bytes').first().textContent();
  result.spark = await card.locator('canvas.spark').isVisible();
  await kick.click();
  await page.waitForFunction(() => /disconnected/.test(document.getElementById('notice').textContent), null, { timeout: 15000 });
  result.notice = await page.locator('#notice').textContent();

  await card.locator('form.set-title input').fill(title);
  await card.locator('form.set-title button').click();
  await page.waitForFunction(
    ([m, t]) => document.querySelector(`section[data-mount="${m}"] .title`).textContent === 'Now: ' + t,
    [mount, title], { timeout: 15000 });
  result.titleShown = await card.locator('.title').textContent();
  result.graph = await page.locator('#graph').isVisible();

  await page.locator('#reload').click();
  await page.waitForFunction(() => /reloaded/.test(document.getElementById('notice').textContent), null, { timeout: 15000 });
  result.reloadNotice = await page.locator('#notice').textContent();
} catch (e) {
  result.exception = String(e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
