// Headless Chromium as every browser test starts it: the system's Chromium
// (or $CHROMIUM), no sandbox (tests run as root in CI), nothing that reaches
// the internet, and media allowed to play without a user gesture.
import { chromium } from 'playwright-core';

export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

// Run `visit(browser)` in a fresh Chromium and report what it returns as
// the scripts do: one JSON line on stdout, exit status 0 only when it says
// `ok`. An exception is reported as a failed result.
export async function report(visit) {
  const browser = await launchChromium();
  let result;
  try {
    result = await visit(browser);
  } catch (e) {
    result = { ok: false, exception: String(e) };
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(result));
  process.exit(result.ok ? 0 : 1);
}
