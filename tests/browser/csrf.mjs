// Headless Chromium as an admin whose browser holds the admin credentials:
// the admin URL `typed` is opened directly (as typed or bookmarked), then a
// page on another site (served here, on http://localhost) makes the browser
// navigate to the admin URL `forged`. Prints one JSON line with the HTTP
// status each got: {"typed": 200, "forged": 403} when Floe refuses the forgery.
// Usage: node csrf.mjs FORGED_URL TYPED_URL
import http from 'node:http';
import { launchChromium } from './chromium.mjs';

const [forged, typed] = process.argv.slice(2);
const foreignPage = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/html' });
  res.end(`<!doctype html><a id="prize" href="${forged}">You won a prize</a>`);
});
await new Promise((resolve) => foreignPage.listen(0, '127.0.0.1', resolve));
const foreign = `http://localhost:${foreignPage.address().port}/`;

const browser = await launchChromium();
let result = {};
try {
  const context = await browser.newContext({ httpCredentials: { username: 'admin', password: 'hackme' } });
  const page = await context.newPage();
  const typedResponse = await page.goto(typed, { timeout: 15000 });
  result.typed = typedResponse.status();
  await page.goto(foreign, { timeout: 15000 });
  const [forgedResponse] = await Promise.all([
    page.waitForResponse((r) => r.url() === forged, { timeout: 15000 }),
    page.click('#prize'),
  ]);
  result.forged = forgedResponse.status();
} catch (e) {
  result.exception = String(e);
} finally {
  await browser.close();
  foreignPage.close();
}
console.log(JSON.stringify(result));
process.exit(result.exception ? 1 : 0);
