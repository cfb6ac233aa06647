// Runs haystack-nclient's ops against a server and prints one JSON line of results:
// {"op name": "ok" | "error text"}.
// Usage: node nclient_ops.cjs BASE PROJECT TOKEN NOW (NOW: a Zinc dateTime in New_York)
'use strict'
const { Client } = require('haystack-nclient')
const { HDateTime, HDict, HNum, HRef } = require('haystack-core')

const [base, project, token, now] = process.argv.slice(2)
const SITE = 'demo.site1'
const AHU = 'demo.site1.ahu1'
const SENSOR = 'demo.site1.ahu1.dat'
const SETPOINT = 'demo.site1.ahu1.datsp'

const client = new Client({
  base: new URL(base),
  project,
  authBearer: token,
  // nclient's default fetch asks a FIN server for a CSRF token first; Node's own
  // fetch is what a standard Haystack server needs.
  fetch: (resource, init) => fetch(resource, init),
})

function check(condition, what) {
  if (!condition) throw new Error(`unexpected result: ${what}`)
}

function yesterday() {
  const d = new Date(Date.now() - 86400000)
  return d.toISOString().slice(0, 10)
}

const ops = {
  about: async () => {
    const grid = await client.ops.about()
    check(grid.first.get('productName').value === 'haystack-server', 'productName')
  },
  ops: async () => check((await client.ops.ops()).length >= 15, 'ops'),
  formats: async () => check((await client.ops.formats()).length >= 4, 'formats'),
  'read (ids)': async () =>
    check((await client.ops.read([`@${SITE}`, `@${AHU}`])).length === 2, 'rows'),
  'read (filter, limit)': async () =>
    check((await client.ops.read('point', 3)).length === 3, 'rows'),
  nav: async () => check((await client.ops.nav()).length === 1, 'sites'),
  'nav (navId)': async () => {
    const grid = await client.ops.nav(HRef.make(SITE))
    check(grid.getRows().some((r) => r.get('id').value === AHU), 'the AHU under the site')
  },
  'hisRead (date)': async () =>
    check((await client.ops.hisRead(SENSOR, yesterday())).length === 96, 'samples'),
  'hisRead (today)': async () =>
    check((await client.ops.hisRead(SENSOR, 'today')).length >= 1, 'samples'),
  hisWrite: async () => {
    const ts = HDateTime.make(now)
    const grid = await client.ops.hisWrite(SENSOR, [HDict.make({ ts, val: HNum.make(61, '°F') })])
    check(grid !== undefined, 'reply')
  },
  pointWrite: async () => {
    await client.ops.pointWrite({ id: SETPOINT, level: 8, val: HNum.make(58, '°F'), who: 'nclient' })
    const levels = await client.ops.pointRead(SETPOINT)
    check(levels.getRows()[7].get('val').value === 58, 'level 8')
  },
  pointRead: async () => check((await client.ops.pointRead(SETPOINT)).length === 17, 'levels'),
  invokeAction: async () => {
    await client.ops.invokeAction(SETPOINT, 'override', { val: HNum.make(59, '°F') })
    const row = (await client.ops.read([`@${SETPOINT}`])).first
    check(row.get('writeVal').value === 59, 'writeVal')
  },
  'invokeOp': async () => check((await client.ops.invokeOp('about')).length === 1, 'about'),
  'watch (sub, poll, unsub)': async () => {
    const watch = await client.ops.watch.make('nclient', [`@${SETPOINT}`])
    check(watch.grid.length === 1, 'subscribed rows')
    await client.ops.pointWrite({ id: SETPOINT, level: 8, val: HNum.make(60, '°F') })
    await watch.poll()
    check(watch.grid.first.get('writeVal').value === 60, 'polled change')
    await watch.close()
  },
}

async function main() {
  const results = {}
  for (const [name, run] of Object.entries(ops)) {
    try {
      await run()
      results[name] = 'ok'
    } catch (err) {
      results[name] = String(err && err.stack ? err.stack : err).slice(0, 500)
    }
  }
  process.stdout.write(JSON.stringify(results) + '\n')
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1) })
