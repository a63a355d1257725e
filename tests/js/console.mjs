// Drives Sesame's web console in Debian's headless chromium through
// playwright-core (which downloads no browser). Signs in with an access
// key and the operator token, creates a domain identity and downloads its
// records, opens a captured verification email and clicks its link, then
// requests production access and approves it. Screenshots of the main
// pages at 1280 and 375 pixels go to SESAME_ARTIFACTS.
import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";

const base = process.env.SESAME_URL;
const out = process.env.SESAME_ARTIFACTS;
const key = process.env.AWS_ACCESS_KEY_ID;
const secret = process.env.AWS_SECRET_ACCESS_KEY;
const operatorToken = process.env.SESAME_OPERATOR_TOKEN;
const browserPath = process.env.CHROMIUM || "/usr/bin/chromium";

function check(ok, what) {
  if (!ok) throw new Error(`console check failed: ${what}`);
}

fs.mkdirSync(out, { recursive: true });
const browser = await chromium.launch({ executablePath: browserPath, args: ["--no-sandbox"] });
const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
const page = await context.newPage();
const cspViolations = [];
page.on("console", (m) => {
  if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
});

async function shoot(name) {
  for (const width of [1280, 375]) {
    await page.setViewportSize({ width, height: width === 375 ? 812 : 900 });
    await page.screenshot({ path: path.join(out, `${name}-${width}.png`), fullPage: true });
    // Nothing may overflow sideways at either width.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 1, `${name} at ${width}px overflows by ${overflow}px`);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

// Signing in: a wrong secret is refused, the right one lands on the dashboard.
await page.goto(`${base}/console`);
check(page.url().endsWith("/console/signin"), "unsigned visitors are sent to sign in");
await shoot("signin");
await page.getByLabel("Access key ID").fill(key);
await page.getByLabel("Secret access key").fill("wrong");
await page.getByRole("button", { name: "Sign in" }).click();
check((await page.getByRole("alert").textContent()).includes("wrong"), "a wrong secret is refused");
await page.getByLabel("Access key ID").fill(key);
await page.getByLabel("Secret access key").fill(secret);
await page.getByLabel("Operator token (optional)").fill(operatorToken);
await page.getByRole("button", { name: "Sign in" }).click();
await page.waitForURL(`${base}/console`);
check((await page.locator("#access").textContent()).trim() === "Sandbox", "a new account is in the sandbox");
await shoot("dashboard");

// A domain identity: its records and the CSV in SES's layout.
await page.getByRole("link", { name: "Identities" }).click();
await page.getByLabel("Email address or domain").fill("console.example");
await page.getByRole("button", { name: "Create identity" }).click();
await page.waitForURL(/\/console\/identities\/console\.example$/);
const rows = await page.locator("table.records tbody tr").count();
check(rows >= 4, `the records to publish are listed (${rows})`);
check((await page.locator("table.records").textContent()).includes("_domainkey.console.example"), "DKIM records");
const [download] = await Promise.all([page.waitForEvent("download"), page.locator("#csv").click()]);
const csvPath = path.join(out, "console.example-records.csv");
await download.saveAs(csvPath);
const csv = fs.readFileSync(csvPath, "utf8");
check(csv.startsWith("Type,Name,Value\r\n"), "the CSV has SES's header");
check(/(CNAME|TXT),[a-z0-9]+\._domainkey\.console\.example,/.test(csv), "the CSV has the DKIM records");
check((await page.locator("#identity-status").textContent()).trim() === "Pending", "the domain is pending");
await shoot("identity");

// An email identity: its verification email, opened in the console, and
// its link clicked.
await page.getByRole("link", { name: "Identities" }).click();
await page.getByLabel("Email address or domain").fill("me@console.example");
await page.getByRole("button", { name: "Create identity" }).click();
await page.waitForURL(/me@console\.example$/);
await shoot("identities-email");
await page.getByRole("link", { name: "Mail" }).click();
await shoot("mail");
await page.locator("table a", { hasText: "Verification" }).first().click();
await page.waitForURL(/\/console\/mail\//);
await shoot("message");
const link = page.locator("ul.links a", { hasText: "/_sesame/verify/" }).first();
const [opened] = await Promise.all([context.waitForEvent("page"), link.click()]);
await opened.waitForLoadState();
check((await opened.textContent("body")).toLowerCase().includes("verified"), "the link verifies");
await opened.close();
await page.goto(`${base}/console/identities/me@console.example`);
check((await page.locator("#identity-status").textContent()).trim() === "Success", "the address shows as verified");

// Production access: requested, then approved by the operator.
await page.getByRole("link", { name: "Dashboard" }).click();
await page.getByLabel("Website URL").fill("https://console.example");
await page.getByLabel(/How you send/).fill("Receipts for orders; bounces and complaints go to an SNS topic.");
await page.getByRole("button", { name: "Request production access" }).click();
await page.waitForURL(`${base}/console`);
check((await page.locator("#review-status").textContent()).trim().toUpperCase() === "PENDING", "the request is pending");
await page.getByRole("link", { name: "Operator" }).click();
await shoot("operator");
await page.getByRole("button", { name: "Approve" }).first().click();
await page.getByRole("link", { name: "Dashboard" }).click();
check((await page.locator("#access").textContent()).trim() === "Production", "approved: production");
await shoot("dashboard-production");

// Keyboard: the skip link is the first stop and leads to the content.
await page.keyboard.press("Tab");
check((await page.evaluate(() => document.activeElement.textContent)).includes("Skip to content"), "skip link first");

check(cspViolations.length === 0, `no Content-Security-Policy violations: ${cspViolations.join("; ")}`);
await browser.close();
console.log("console flow ok");
