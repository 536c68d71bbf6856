// chat_browser.js URL: two headless Chromium pages join the chat room of
// examples/chat; what one types must appear in the other. Prints "ok" and
// exits 0, or prints why and exits 1.
const { chromium } = require('playwright-core');

const url = process.argv[2];
const launchOptions = {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
};

async function join(browser, name) {
  const page = await browser.newPage();
  await page.goto(url);
  await page.fill('#name', name);
  await page.click('#join button');
  await page.waitForSelector('#say:not([hidden])', { timeout: 5000 });
  return page;
}

(async () => {
  const browser = await chromium.launch(launchOptions);
  try {
    const ann = await join(browser, 'ann');
    const bob = await join(browser, 'bob');
    await ann.waitForFunction(() => document.body.innerText.includes('bob joined'), null, { timeout: 5000 });
    await ann.fill('#text', 'hello from ann');
    await ann.click('#say button');
    await bob.waitForFunction(
      () => [...document.querySelectorAll('#messages li')].some(li => li.textContent === 'ann: hello from ann'),
      null, { timeout: 5000 });
    await bob.fill('#text', 'hi ann');
    await bob.press('#text', 'Enter');
    await ann.waitForFunction(
      () => [...document.querySelectorAll('#messages li')].some(li => li.textContent === 'bob: hi ann'),
      null, { timeout: 5000 });
    console.log('ok');
  } finally {
    await browser.close();
  }
})().catch((err) => {
  console.log('failed: ' + err.message);
  process.exit(1);
});
