// HTTP-date (RFC 9110 §5.6.7): If-Modified-Since in each of the three forms (IMF-fixdate, the
// obsolete RFC 850 form with its two-digit year, asctime) is compared with Last-Modified; an
// invalid date, or more than one, is ignored: the answer is as if the field were absent.
// Runs once per engine (one worker) and once with one worker per CPU.
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

import { MODES, Pool, Server, assertAnswers, assertQuietAndOpen } from "./helpers/clients";
import { RawClient, startVw } from "./helpers/server";

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const LONG_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const two = (n: number): string => String(n).padStart(2, "0");
const clock = (d: Date): string => `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`;

export function imfFixdate(d: Date): string {
  return d.toUTCString();
}
export function rfc850(d: Date): string {
  return `${LONG_DAYS[d.getUTCDay()]}, ${two(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${two(d.getUTCFullYear() % 100)} ${clock(d)} GMT`;
}
export function asctime(d: Date): string {
  return `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, " ")} ${clock(d)} ${d.getUTCFullYear()}`;
}

/** The file's mtime: Last-Modified of /file.txt. */
const MTIME = new Date("2021-01-01T00:00:00Z");
const at = (iso: string): Date => new Date(iso);

function siteDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vw-dates-"));
  fs.writeFileSync(path.join(dir, "file.txt"), "dated\n");
  fs.utimesSync(path.join(dir, "file.txt"), MTIME, MTIME);
  return dir;
}

function ims(value: string, extra = ""): string {
  return `GET /file.txt HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: ${value}\r\n${extra}\r\n`;
}

/** [date, expected status] pairs, in every form: after or at Last-Modified → 304, before → 200. */
function validCases(): [string, number][] {
  const now = new Date();
  const dates: [Date, number][] = [
    [MTIME, 304], // equal: not modified since
    [at("2021-01-01T00:00:01Z"), 304],
    [at("2020-12-31T23:59:59Z"), 200],
    [at("2022-11-06T08:49:37Z"), 304], // the asctime example
    [at("2024-02-29T12:00:00Z"), 304], // a leap day
    [at("2000-02-29T00:00:00Z"), 200],
    [at("1994-11-06T08:49:37Z"), 200],
    [new Date(Math.floor(now.getTime() / 1000) * 1000), 304],
  ];
  for (let i = 0; i < 24; i++) {
    // Spread over the years on either side of Last-Modified, any second of the day.
    const t = at("2000-01-01T00:00:00Z").getTime() + Math.floor(Math.random() * 50 * 365.25 * 86400) * 1000;
    const d = new Date(Math.min(t, Math.floor(now.getTime() / 1000) * 1000));
    dates.push([d, d.getTime() >= MTIME.getTime() ? 304 : 200]);
  }
  const out: [string, number][] = [];
  for (const [d, status] of dates) {
    out.push([imfFixdate(d), status], [asctime(d), status]);
    // RFC 850's two-digit year reads as the latest such year no more than 50 years ahead.
    if (d.getUTCFullYear() > now.getUTCFullYear() - 50) out.push([rfc850(d), status]);
  }
  return out;
}

/** RFC 850 two-digit years around the 50-year window (RFC 9110 §5.6.7). */
function windowCases(): [string, number][] {
  const y = new Date().getUTCFullYear();
  const on = (year: number): Date => new Date(Date.UTC(year, 5, 15, 12, 0, 0));
  return [
    [rfc850(on(y + 10)), 304], // "36" is 2036 (10 years ahead), after Last-Modified
    [rfc850(on(y + 49)), 304], // 49 years ahead is still read as the future
    [rfc850(on(y - 49)), 200], // its two digits 51 years ahead would be too far: 49 years ago, before Last-Modified
    [rfc850(on(y - 30)), 200], // 70 years ahead: 30 years ago
  ];
}

/** Not HTTP-dates, though each one names a time after Last-Modified: all ignored → 200. */
const INVALID: ReadonlyArray<string> = [
  "Sun, 06 Nov 2022 08:49:37 UTC",
  "Sun, 06 Nov 2022 08:49:37 gmt",
  "sun, 06 Nov 2022 08:49:37 GMT",
  "Sun, 06 nov 2022 08:49:37 GMT",
  "Sun, 6 Nov 2022 08:49:37 GMT",
  "Sun,  06 Nov 2022 08:49:37 GMT",
  "Sun, 06 Nov 2022 8:49:37 GMT",
  "Sun, 06 Nov 2022 08:49:37",
  "Sun, 06 Nov 22 08:49:37 GMT",
  "Sun, 06-Nov-2022 08:49:37 GMT",
  "Mon, 06 Nov 2022 08:49:37 GMT", // Nov 6 2022 was a Sunday
  "Thu, 31 Nov 2022 08:49:37 GMT", // November has 30 days
  "Wed, 29 Feb 2023 08:49:37 GMT", // 2023 is not a leap year
  "Sun, 06 Nov 2022 24:00:00 GMT",
  "Sun, 06 Nov 2022 08:60:00 GMT",
  "Sun, 06 Nov 2022 08:49:61 GMT",
  "Sun, 06 Nov 2022 08:49:37 GMT, Sun, 06 Nov 2022 08:49:37 GMT",
  "Sun, 06 Nov 2022 08:49:37 GMTx",
  "Sunday, 06-Nov-2022 08:49:37 GMT",
  "Sun, 06-Nov-22 08:49:37 GMT",
  "Sunday, 6-Nov-22 08:49:37 GMT",
  "Sunday, 06 Nov 22 08:49:37 GMT",
  "Monday, 06-Nov-22 08:49:37 GMT",
  "Sun Nov 6 08:49:37 2022",
  "Sun Nov  6 08:49:37 22",
  "Sun Nov  6 08:49:37 2022 GMT",
  "Sun  Nov 6 08:49:37 2022",
  "Sun Nov  6 08:49 2022",
  "2022-11-06T08:49:37Z",
  "1667724577",
  "tomorrow",
  "",
];

const dir = siteDir();

for (const mode of MODES) {
  describe(`HTTP-date in If-Modified-Since (${mode.name})`, () => {
    const srv = new Server([...mode.args, "--quiet", "--no-watch", "--dir", dir]);
    const pool = new Pool();
    before(() => srv.start());
    after(async () => {
      pool.closeAll();
      await srv.stop();
    });
    afterEach(async () => {
      pool.closeAll();
      await assertAnswers(srv.port);
    });

    it("Last-Modified is the file's mtime", async () => {
      const c = await pool.connect(srv.port);
      assert.equal((await c.request(`GET /file.txt HTTP/1.1\r\nHost: x\r\n\r\n`)).header("last-modified"), "Fri, 01 Jan 2021 00:00:00 GMT");
    });

    it("every valid date in each of the three forms is compared (304 at or after Last-Modified, 200 before)", async () => {
      const c = await pool.connect(srv.port);
      for (const [date, status] of [...validCases(), ...windowCases()]) {
        const r = await c.request(ims(date), { head: status === 304 });
        assert.equal(r.status, status, `If-Modified-Since: ${date}`);
        if (status === 200) assert.equal(r.body.toString(), "dated\n");
      }
      await assertQuietAndOpen(c);
    });

    it("an invalid date is ignored: 200 with the body, connection kept", async () => {
      const c = await pool.connect(srv.port);
      for (const date of INVALID) {
        const r = await c.request(ims(date));
        assert.equal(r.status, 200, `If-Modified-Since: ${JSON.stringify(date)}`);
        assert.equal(r.body.toString(), "dated\n");
      }
      await assertQuietAndOpen(c);
    });

    it("two If-Modified-Since lines are ignored, even when each alone would give 304", async () => {
      const c = await pool.connect(srv.port);
      const later = "Sun, 06 Nov 2022 08:49:37 GMT";
      assert.equal((await c.request(ims(later), { head: true })).status, 304);
      assert.equal((await c.request(ims(later, `If-Modified-Since: ${later}\r\n`))).status, 200);
    });
  });
}

describe("HTTP-date with a time zone in the environment", () => {
  it("TZ does not move Date, Last-Modified or the comparison", async () => {
    const vw = await startVw(["--workers", "1", "--quiet", "--no-watch", "--dir", dir], { env: { ...process.env, TZ: "Pacific/Kiritimati" } });
    try {
      const c = await RawClient.connect(vw.port);
      const r = await c.request(`GET /file.txt HTTP/1.1\r\nHost: x\r\n\r\n`);
      assert.ok(Math.abs(Date.parse(r.header("date")!) - Date.now()) < 3000, `Date ${r.header("date")} is now, in GMT`);
      assert.equal(r.header("last-modified"), "Fri, 01 Jan 2021 00:00:00 GMT");
      assert.equal((await c.request(ims("Fri Jan  1 00:00:00 2021"), { head: true })).status, 304);
      assert.equal((await c.request(ims("Thursday, 31-Dec-20 23:59:59 GMT"))).status, 200);
      c.destroy();
    } finally {
      await vw.stop();
    }
  });
});

process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
