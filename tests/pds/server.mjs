// A real Bluesky PDS plus an in-memory PLC directory, on 127.0.0.1 only, for crossposter's tests.
//
//   node server.mjs --pds-port 2583 --plc-port 2582
//
// Prints one JSON line {"ready": true, "pds": URL, "plc": URL, "adminPassword": ...} on stdout once both
// servers listen, then runs until SIGTERM/SIGINT or until stdin closes (so a crashed test run cannot
// leave it behind); on the way out it stops both servers and removes its temporary data directory.
// Set CROSSPOSTER_PDS_LOG=1 to get the servers' logs on stderr.

import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'

const HOST = '127.0.0.1'

function arg(name, fallback) {
  const i = process.argv.indexOf(name)
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1]
  return fallback
}

function port(name, envName) {
  const raw = arg(name, process.env[envName])
  const n = Number.parseInt(raw ?? '', 10)
  if (!Number.isInteger(n) || n <= 0 || n > 65535) {
    console.error(`server.mjs: ${name} PORT (or ${envName}) is required, got ${JSON.stringify(raw)}`)
    process.exit(2)
  }
  return n
}

const pdsPort = port('--pds-port', 'PDS_PORT')
const plcPort = port('--plc-port', 'PLC_PORT')

if (process.env.CROSSPOSTER_PDS_LOG === '1') {
  process.env.LOG_ENABLED = 'true'
  process.env.LOG_DESTINATION = process.env.LOG_DESTINATION ?? '/dev/stderr'
} else {
  process.env.LOG_ENABLED = 'false'
}

// Both packages are CommonJS; createRequire avoids relying on ESM named-export detection.
// Required after LOG_* is set: their loggers read the environment when first loaded.
const require = createRequire(import.meta.url)
const { PDS, envToCfg, envToSecrets } = require('@atproto/pds')
const { PlcServer, Database } = require('@did-plc/server')

// express's app.listen(port) binds every interface; pin it to loopback before the servers start.
function bindLoopback(app) {
  const listen = app.listen.bind(app)
  app.listen = (p, ...rest) => listen(p, HOST, ...rest)
}

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'crossposter-pds-'))
let plc
let pds
let stopping = false

function removeDataDir() {
  try {
    fs.rmSync(dataDir, { recursive: true, force: true })
  } catch (err) {
    console.error(`server.mjs: could not remove ${dataDir}: ${err}`)
  }
}

async function stop(code) {
  if (stopping) return
  stopping = true
  const hardExit = setTimeout(() => {
    removeDataDir()
    process.exit(code)
  }, 5000)
  hardExit.unref()
  try {
    await pds?.destroy()
  } catch (err) {
    console.error(`server.mjs: stopping the PDS: ${err}`)
  }
  try {
    await plc?.destroy()
  } catch (err) {
    console.error(`server.mjs: stopping the PLC: ${err}`)
  }
  removeDataDir()
  process.exit(code)
}

process.on('SIGTERM', () => stop(0))
process.on('SIGINT', () => stop(0))
process.stdin.on('end', () => stop(0))
process.stdin.on('error', () => stop(0))
process.stdin.resume()

try {
  plc = PlcServer.create({ db: Database.mock(), port: plcPort })
  bindLoopback(plc.app)
  await plc.start()

  const adminPassword = randomBytes(16).toString('hex')
  // The same fields envToCfg/envToSecrets read from PDS_* variables (see readEnv in @atproto/pds), set
  // directly so that nothing in the caller's environment changes the test server.
  const env = {
    port: pdsPort,
    hostname: 'localhost', // keeps publicUrl plain http (any other hostname means https)
    devMode: true,
    inviteRequired: false,
    serviceHandleDomains: ['.test'],
    dataDirectory: dataDir,
    blobstoreDiskLocation: path.join(dataDir, 'blobs'),
    didPlcUrl: `http://${HOST}:${plcPort}`,
    jwtSecret: randomBytes(32).toString('hex'),
    adminPassword,
    // A random 32-byte scalar is a valid secp256k1 private key with overwhelming probability.
    plcRotationKeyK256PrivateKeyHex: randomBytes(32).toString('hex'),
    rateLimitsEnabled: false,
    crawlers: [],
  }
  pds = await PDS.create(envToCfg(env), envToSecrets(env))
  bindLoopback(pds.app)
  await pds.start()

  process.stdout.write(
    JSON.stringify({
      ready: true,
      pds: `http://${HOST}:${pdsPort}`,
      plc: `http://${HOST}:${plcPort}`,
      adminPassword,
      dataDirectory: dataDir,
    }) + '\n',
  )
} catch (err) {
  console.error(`server.mjs: failed to start: ${err?.stack ?? err}`)
  await stop(1)
}
