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
